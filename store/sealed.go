package store

import (
	"context"
	"fmt"
)

// Sealer encrypts values for the database and decrypts them again
// (token.KEK implements it). aad binds a sealed value to its row.
type Sealer interface {
	Seal(plain, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// SealedSecretPrefix starts the names under which SealSecrets keeps
// sealed instance secrets. Secrets stored in plaintext by earlier versions
// under the bare name are left alone and no longer used: the only such
// secret seals short-lived multi-round state, so switching costs at most
// the protocol runs in flight during the upgrade.
const SealedSecretPrefix = "sealed:"

// SealSecrets returns s with InstanceSecret sealed under k: a generated
// secret is stored only as k.Seal(secret) (under SealedSecretPrefix+name),
// and what is read back is opened, so the database never holds instance
// secrets in plaintext. All other methods are s's.
func SealSecrets(s Store, k Sealer) Store { return &sealedSecrets{Store: s, k: k} }

type sealedSecrets struct {
	Store
	k Sealer
}

// SecretAAD is the additional data binding a sealed instance secret to
// its instance and name (without SealedSecretPrefix): what Seal and Open
// get for it, and what a re-seal (store.Resealer) must give again.
func SecretAAD(instance, name string) []byte { return secretAAD(instance, name) }

func secretAAD(instance, name string) []byte {
	return []byte("attestd instance secret\x00" + instance + "\x00" + name)
}

func (s *sealedSecrets) InstanceSecret(ctx context.Context, instance, name string, generate func() ([]byte, error)) ([]byte, error) {
	aad := secretAAD(instance, name)
	v, err := s.Store.InstanceSecret(ctx, instance, SealedSecretPrefix+name, func() ([]byte, error) {
		p, err := generate()
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, fmt.Errorf("instance secret %s/%s: generated an empty secret", instance, name)
		}
		return s.k.Seal(p, aad)
	})
	if err != nil {
		return nil, err
	}
	p, err := s.k.Open(v, aad)
	if err != nil {
		return nil, fmt.Errorf("store: instance secret %s/%s: %w", instance, name, err)
	}
	return p, nil
}
