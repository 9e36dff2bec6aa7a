package store

import (
	"context"
	"errors"
	"time"
)

// ErrKeyConflict is returned by ChangeSigningKeys when the change's
// precondition (KeyChange.IfNewest) no longer holds: another replica or
// command changed the instance's keys first. Nothing was written; reread
// the keys and decide again.
var ErrKeyConflict = errors.New("store: the instance's signing keys changed concurrently")

// SigningKey is one token-signing key of an instance as stored. The store
// treats Private as opaque bytes: it is sealed (or, for PKCS#11, a
// reference to a key held by the HSM) before it gets here.
type SigningKey struct {
	Instance    string
	KID         string
	Certificate []byte // DER of the key's (self-signed) certificate
	Private     []byte // sealed private key or HSM reference; never plaintext
	Created     time.Time
	// ActivateAt is when the key starts to sign. Before it the key is
	// only published (pending).
	ActivateAt time.Time
	// RetireAt is when the key leaves /certs; zero: not scheduled.
	RetireAt time.Time
}

// KeyChange is one atomic change of an instance's signing keys.
type KeyChange struct {
	// IfNewest makes the change conditional: it applies only if the
	// instance's newest key (greatest ActivateAt, then KID) has this kid,
	// or, when IfNewest is empty, if the instance has no key at all.
	// Otherwise ChangeSigningKeys returns ErrKeyConflict. It is how two
	// replicas rotating at once end with one new key, not two.
	IfNewest string
	// Unconditional skips the IfNewest check (operator commands).
	Unconditional bool
	// Add is inserted; its KID must be new.
	Add []SigningKey
	// Activate sets the ActivateAt of existing keys (kid → time): a
	// standby key promoted by a rotation.
	Activate map[string]time.Time
	// Retire sets the RetireAt of existing keys (kid → time).
	Retire map[string]time.Time
	// Purge deletes keys (retired ones past their retention).
	Purge []string
}

// KeyStore persists signing keys. store/sqlite and store/postgres
// implement it; it is separate from Store so that test doubles of Store
// need not.
type KeyStore interface {
	// SigningKeys returns instance's keys ordered by ActivateAt, then KID
	// (oldest first); none is not an error.
	SigningKeys(ctx context.Context, instance string) ([]SigningKey, error)
	// ChangeSigningKeys applies c and appends a in one transaction.
	ChangeSigningKeys(ctx context.Context, instance string, c KeyChange, a AuditEntry) error
}

// KeyWatcher is implemented by stores that can tell a replica at once that
// another one changed an instance's keys (PostgreSQL LISTEN/NOTIFY).
// WatchSigningKeys calls changed with the instance's name after every
// committed ChangeSigningKeys of any process, until ctx ends; it returns
// when ctx ends or the watch fails for good. Callers still poll: a
// notification may be lost while the connection is being re-established.
type KeyWatcher interface {
	WatchSigningKeys(ctx context.Context, changed func(instance string)) error
}

// SealedValue is one value a store holds sealed under the key-encryption
// key: the private part of a signing key (KID set) or a sealed instance
// secret (Secret set: its name without SealedSecretPrefix).
type SealedValue struct {
	Instance string
	KID      string
	Secret   string
	Value    []byte
}

// String names v for messages, never with its value.
func (v SealedValue) String() string {
	if v.KID != "" {
		return "signing key " + v.KID + " of " + v.Instance
	}
	return "instance secret " + v.Secret + " of " + v.Instance
}

// Resealer is implemented by stores that can re-seal every sealed value in
// one transaction: a key-encryption-key rotation ("attestd keys rewrap")
// is all or nothing, so a crash never leaves some keys under the old KEK
// and some under the new one.
type Resealer interface {
	// Reseal calls reseal for the private part of every signing key of
	// every instance and for every sealed instance secret, inside one
	// write transaction that holds off every other writer of them (so no
	// value sealed under the old key can be added meanwhile); reseal
	// returns the value to store instead, or nil to leave it. If reseal
	// fails, or anything else does, nothing is written. For each instance
	// with replaced values, in name order, audit gets them (Value nil)
	// and returns the entry appended in the same transaction; instances
	// whose signing keys changed are announced as ChangeSigningKeys does.
	// It returns the number of values replaced.
	Reseal(ctx context.Context, reseal func(SealedValue) ([]byte, error), audit func(instance string, changed []SealedValue) AuditEntry) (int, error)
}
