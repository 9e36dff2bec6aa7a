package token

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/attestd/attestd/store"
)

// pkcs11RefPrefix starts what token/pkcs11keys stores for a key kept in
// an HSM (an RFC 7512 "pkcs11:" URI); that package imports this one, so
// the prefix is repeated here rather than imported.
var pkcs11RefPrefix = []byte("pkcs11:")

// RewrapOptions configure RewrapKEK.
type RewrapOptions struct {
	Store store.Resealer
	// Old is the key-encryption key the values are sealed under now (or
	// partly: values already under New are left alone); New is the one
	// they end under. Old may equal New: then nothing changes.
	Old, New *KEK
	// Actor is recorded in the audit trail ("attestd keys rewrap").
	Actor string
	// Started, when set, is called once inside the transaction, before
	// the first value is re-sealed (progress output; the crash test kills
	// the process there).
	Started func()
}

// RewrapReport says what RewrapKEK did; it names values, never holds them.
type RewrapReport struct {
	Old, New string // KEK IDs
	// Keys and Secrets count the signing keys and instance secrets moved
	// from Old to New.
	Keys, Secrets int
	// Already counts values that were under New before.
	Already int
	// References lists signing keys not sealed under any KEK (PKCS#11
	// references: their private keys stay in the HSM), left as they are.
	References []string
}

// ErrRewrapRefused wraps every refusal of RewrapKEK: a value that opens
// under neither key. Nothing was written.
var ErrRewrapRefused = errors.New("token: key-encryption-key rewrap refused; nothing was changed")

// RewrapKEK re-seals every private signing key (of every instance) and
// every sealed instance secret from o.Old to o.New in one transaction of
// the store, with one "keys.rewrap" audit entry per instance it changed:
// afterwards every value is under New, or, if anything fails (a crash
// included), every value is as it was. Each value is authenticated under
// its key before anything is written; one that opens under neither (a
// third KEK, or altered) is named and refuses the whole rewrap. Values
// already under New are left, so a rerun after success (or with New as
// Old) changes nothing.
func RewrapKEK(ctx context.Context, o RewrapOptions) (RewrapReport, error) {
	if o.Store == nil || o.Old == nil || o.New == nil {
		return RewrapReport{}, errors.New("token: rewrap needs a store, the old and the new key-encryption key")
	}
	if o.Actor == "" {
		o.Actor = "attestd keys rewrap"
	}
	// Only the keys themselves: a fallback (WithPrevious) must not make
	// a third KEK's values pass as Old's.
	old, nw := o.Old.WithPrevious(nil), o.New.WithPrevious(nil)
	rep := RewrapReport{Old: old.ID(), New: nw.ID()}
	started := false
	reseal := func(v store.SealedValue) ([]byte, error) {
		if !started {
			started = true
			if o.Started != nil {
				o.Started()
			}
		}
		aad := store.SecretAAD(v.Instance, v.Secret)
		if v.KID != "" {
			aad = keyAAD(KeyRef{Instance: v.Instance, KID: v.KID})
		}
		id, ok := EnvelopeKEK(v.Value)
		switch {
		case !ok && v.KID != "" && bytes.HasPrefix(v.Value, pkcs11RefPrefix):
			rep.References = append(rep.References, v.Instance+" "+v.KID)
			return nil, nil
		case !ok && v.KID != "":
			// Neither sealed nor a reference (an envelope whose header was
			// altered, say): leaving it would let the report say every
			// value is under the new key while this one opens under none.
			return nil, fmt.Errorf("%w: %s is neither a key-encryption-key envelope nor a PKCS#11 reference", ErrRewrapRefused, v)
		case !ok:
			return nil, fmt.Errorf("%w: %s is not a key-encryption-key envelope", ErrRewrapRefused, v)
		case id == nw.ID():
			if _, err := nw.Open(v.Value, aad); err != nil {
				return nil, fmt.Errorf("%w: %s is marked as sealed under the new key-encryption key %s but does not open under it: %v", ErrRewrapRefused, v, id, err)
			}
			rep.Already++
			return nil, nil
		case id == old.ID():
			p, err := old.Open(v.Value, aad)
			if err != nil {
				return nil, fmt.Errorf("%w: %s does not open under the old key-encryption key %s: %v", ErrRewrapRefused, v, id, err)
			}
			defer clear(p)
			nv, err := nw.Seal(p, aad)
			if err != nil {
				return nil, err
			}
			if v.KID != "" {
				rep.Keys++
			} else {
				rep.Secrets++
			}
			return nv, nil
		default:
			return nil, fmt.Errorf("%w: %s is sealed under key-encryption key %s, neither the old (%s) nor the new (%s) one", ErrRewrapRefused, v, id, old.ID(), nw.ID())
		}
	}
	audit := func(instance string, changed []store.SealedValue) store.AuditEntry {
		var kids, secrets []string
		for _, v := range changed {
			if v.KID != "" {
				kids = append(kids, v.KID)
			} else {
				secrets = append(secrets, v.Secret)
			}
		}
		sort.Strings(kids)
		sort.Strings(secrets)
		d := fmt.Sprintf("re-sealed under key-encryption key %s (was %s): %d signing key(s)", nw.ID(), old.ID(), len(kids))
		if len(kids) > 0 {
			d += " " + strings.Join(kids, ", ")
		}
		d += fmt.Sprintf("; %d instance secret(s)", len(secrets))
		if len(secrets) > 0 {
			d += " " + strings.Join(secrets, ", ")
		}
		return store.AuditEntry{Action: "keys.rewrap", Actor: o.Actor, Target: "kek " + nw.ID(), Detail: d}
	}
	if _, err := o.Store.Reseal(ctx, reseal, audit); err != nil {
		return RewrapReport{Old: rep.Old, New: rep.New}, err
	}
	return rep, nil
}
