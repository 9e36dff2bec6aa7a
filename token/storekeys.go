package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/attestd/attestd/store"
	jose "github.com/go-jose/go-jose/v4"
)

// storeTimeout bounds one database round of Reload/Rotate when the caller
// gives no context.
const storeTimeout = 30 * time.Second

// Token lifetimes a retiring key must outlive: attestation tokens (8 h),
// TPM reports (1 day), policy results (1 h). DefaultRetireAfter covers the
// longest plus an hour of client clock skew and /certs caching.
const (
	DefaultPrepublish  = time.Hour
	DefaultRetireAfter = 25 * time.Hour
	// RetainRetired is how long a retired key stays listed (state
	// "retired", no longer published, its private part never opened
	// again) before it is deleted from the database.
	RetainRetired = 7 * 24 * time.Hour
)

// StandbyAt is the activation time of a standby key: the next key, always
// published in /certs beside the active one but not scheduled to sign (the
// latest instant a BIGINT of Unix nanoseconds holds, in 2262). A rotation
// promotes the standby, which relying parties have held since the previous
// rotation, and publishes a new standby; so a client that fetched /certs
// once and keeps it (the JS and Python MAA clients do) verifies tokens
// across a rotation.
var StandbyAt = time.Unix(0, math.MaxInt64).UTC()

func isStandby(r store.SigningKey) bool { return r.ActivateAt.Equal(StandbyAt) }

// PrivateKeys is where the private keys of a store key set live: sealed
// into the database under a key-encryption key (KEKKeys), or inside an HSM
// with only a reference in the database (PKCS#11, build tag pkcs11).
type PrivateKeys interface {
	// Create makes a new key pair of ref.Alg: RSA-2048 for RS256, P-256
	// for ES256. The returned signer is what selfSigned and Wrap get; for
	// ES256 it may sign DER (crypto/ecdsa), as X.509 wants.
	Create(ctx context.Context, ref KeyRef) (crypto.Signer, error)
	// Wrap returns what the database stores for s: never the plaintext
	// private key.
	Wrap(ctx context.Context, ref KeyRef, s crypto.Signer) ([]byte, error)
	// Unwrap turns stored bytes back into a signer whose public key is pub.
	// For ES256 it signs as JWS wants (raw R||S, joseES256), since it
	// signs tokens.
	Unwrap(ctx context.Context, ref KeyRef, stored []byte, pub crypto.PublicKey) (crypto.Signer, error)
	// Describe names the key source for logs ("kek 1a2b3c4d", "pkcs11 …").
	Describe() string
}

// KeyRef names one key for PrivateKeys; it is bound into sealed envelopes
// so that a sealed key cannot be moved to another instance or kid. Before
// the certificate exists (Create) KID is empty and Label is a fresh
// unique name.
type KeyRef struct {
	Instance string
	KID      string
	Label    string
	// Alg is the algorithm of the key set ("" is RS256).
	Alg Algorithm
}

// KEKKeys keeps private keys in the database as PKCS#8 sealed under a KEK.
type KEKKeys struct{ KEK *KEK }

func keyAAD(ref KeyRef) []byte {
	return []byte("attestd signing key\x00" + ref.Instance + "\x00" + ref.KID)
}

// Create implements PrivateKeys.
func (k KEKKeys) Create(ctx context.Context, ref KeyRef) (crypto.Signer, error) {
	if ref.Alg == ES256 {
		// The raw key, whose Sign returns DER: the certificate is signed
		// with it. Unwrap hands out the JWS signer.
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("token: generate P-256 key: %w", err)
		}
		return ek, nil
	}
	rk, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("token: generate RSA key: %w", err)
	}
	return rk, nil
}

// Wrap implements PrivateKeys.
func (k KEKKeys) Wrap(ctx context.Context, ref KeyRef, s crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(rawKey(s))
	if err != nil {
		return nil, fmt.Errorf("token: encode private key %s: %w", ref.KID, err)
	}
	return k.KEK.Seal(der, keyAAD(ref))
}

// Unwrap implements PrivateKeys.
func (k KEKKeys) Unwrap(ctx context.Context, ref KeyRef, stored []byte, pub crypto.PublicKey) (crypto.Signer, error) {
	der, err := k.KEK.Open(stored, keyAAD(ref))
	if err != nil {
		return nil, fmt.Errorf("token: key %s of %s: %w", ref.KID, ref.Instance, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("token: key %s: parse private key: %w", ref.KID, err)
	}
	if ref.Alg == ES256 {
		ek, ok := priv.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, fmt.Errorf("token: key %s: private key is %T, want ECDSA P-256 (this key set signs ES256)", ref.KID, priv)
		}
		if !ek.PublicKey.Equal(pub) {
			return nil, fmt.Errorf("token: key %s: certificate does not match the private key", ref.KID)
		}
		return joseES256{ek}, nil
	}
	rk, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token: key %s: private key is %T, want RSA (this key set signs RS256)", ref.KID, priv)
	}
	if !rk.PublicKey.Equal(pub) {
		return nil, fmt.Errorf("token: key %s: certificate does not match the private key", ref.KID)
	}
	rk.Precompute()
	return rk, nil
}

// rawKey undoes joseES256, whose R||S signatures neither X.509 nor PKCS#8
// encoding can use: they need the *ecdsa.PrivateKey itself.
func rawKey(s crypto.Signer) crypto.Signer {
	switch j := s.(type) {
	case joseES256:
		return j.k
	case derES256:
		return j.s
	}
	return s
}

// Describe implements PrivateKeys.
func (k KEKKeys) Describe() string { return "kek " + k.KEK.ID() }

// Rotation is the schedule of a store key set.
type Rotation struct {
	// Prepublish is how long a new key is published in /certs before it
	// signs (default DefaultPrepublish): clients that fetch /certs once
	// and keep it learn the key before they see a token it signed.
	Prepublish time.Duration
	// RetireAfter is how long a superseded key stays published after its
	// successor starts signing (default DefaultRetireAfter).
	RetireAfter time.Duration
	// Every, when positive, rotates on a schedule: a new key is written
	// Prepublish before the newest key has signed for Every.
	Every time.Duration
}

func (r Rotation) withDefaults() Rotation {
	if r.Prepublish <= 0 {
		r.Prepublish = DefaultPrepublish
	}
	if r.RetireAfter <= 0 {
		r.RetireAfter = DefaultRetireAfter
	}
	return r
}

// RotateOptions shape one rotation.
type RotateOptions struct {
	// Prepublish: the new key signs this long from now; 0 means at once
	// ("attestd keys rotate --now": for a compromised key).
	Prepublish time.Duration
	// RetireAfter: superseded keys leave /certs this long after the new
	// key starts signing (0: the set's default).
	RetireAfter time.Duration
	// Actor is recorded in the audit trail.
	Actor string
}

// StoreOptions configure OpenStoreKeySet.
type StoreOptions struct {
	Store    store.KeyStore
	Instance string
	// Subject is the CN of new keys' certificates (the instance URL).
	Subject  string
	Keys     PrivateKeys
	Rotation Rotation
	Now      func() time.Time
	Logger   *slog.Logger
	// ImportDir, when set and the instance has no key in the store yet,
	// is a key directory (the single-node layout) whose keys are imported
	// instead of creating a first key; a missing directory is no error.
	ImportDir string
	// Algorithm is what the set's keys sign with ("" is RS256). A set
	// holds keys of one algorithm: a stored key of another fails to load.
	Algorithm Algorithm
}

// storeSource is the database behind a KeySet made by OpenStoreKeySet.
type storeSource struct {
	st       store.KeyStore
	instance string
	subject  string
	keys     PrivateKeys
	alg      Algorithm
	rot      Rotation
	log      *slog.Logger
	opened   map[string]*signingKey // kid → key whose private part is open; under KeySet.mu
}

// OpenStoreKeySet returns the key set of an instance kept in a database
// that replicas share, creating the instance's first key if it has none.
// Every replica computes the signing key from the same rows (the newest key
// whose activation time has passed), so replicas agree on it without
// talking to each other, and a rotation is a row whose activation lies
// Prepublish ahead: every replica publishes it on its next Reload before
// any signs with it. Changes are compare-and-set on the newest key
// (store.KeyChange.IfNewest), so replicas rotating on the same schedule
// write one new key, not one each.
func OpenStoreKeySet(ctx context.Context, o StoreOptions) (*KeySet, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("token: store key set without a store")
	case o.Instance == "" || o.Subject == "":
		return nil, errors.New("token: store key set needs an instance and a certificate subject")
	case o.Keys == nil:
		return nil, errors.New("token: store key set needs a private-key source (key-encryption key or PKCS#11)")
	case o.Now == nil:
		return nil, errors.New("token: nil clock")
	}
	alg, err := ParseAlgorithm(string(o.Algorithm))
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ks := &KeySet{subject: o.Subject, now: o.Now, alg: alg, src: &storeSource{st: o.Store, instance: o.Instance, subject: o.Subject, keys: o.Keys, alg: alg,
		rot: o.Rotation.withDefaults(), log: o.Logger, opened: map[string]*signingKey{}}}
	if o.ImportDir != "" {
		if _, err := os.Stat(filepath.Join(o.ImportDir, manifestName)); err == nil {
			rows, err := o.Store.SigningKeys(ctx, o.Instance)
			if err != nil {
				return nil, fmt.Errorf("token: signing keys of %s: %w", o.Instance, err)
			}
			if len(rows) == 0 {
				kids, err := ks.ImportKeyDir(ctx, o.ImportDir)
				if err != nil {
					return nil, fmt.Errorf("token: import %s: %w", o.ImportDir, err)
				}
				o.Logger.InfoContext(ctx, "signing keys imported into the database", "instance", o.Instance, "from", o.ImportDir, "kids", kids)
			}
		}
	}
	if err := ks.src.reload(ctx, ks); err != nil {
		return nil, err
	}
	return ks, nil
}

// ReloadContext is Reload bounded by ctx.
func (ks *KeySet) ReloadContext(ctx context.Context) error {
	if ks.src != nil {
		return ks.src.reload(ctx, ks)
	}
	return ks.Reload()
}

// RotateContext rotates a store key set with staged publication (see
// RotateOptions). A directory key set supports only an immediate
// rotation (Prepublish 0), as Rotate.
func (ks *KeySet) RotateContext(ctx context.Context, o RotateOptions) error {
	if ks.src == nil {
		if o.Prepublish > 0 {
			return errors.New("token: staged rotation needs keys in the store (--key-encryption-key); a key directory rotates at once")
		}
		return ks.Rotate(o.RetireAfter)
	}
	return ks.src.rotate(ctx, ks, o)
}

// Retire makes the key kid leave /certs at at (now if zero) and never
// sign again. It refuses to retire the only key that could sign then:
// rotate first.
func (ks *KeySet) Retire(ctx context.Context, kid string, at time.Time, actor string) error {
	if ks.src == nil {
		return errors.New("token: retiring one key needs keys in the store (--key-encryption-key)")
	}
	return ks.src.retire(ctx, ks, kid, at, actor)
}

// maxConflicts bounds the compare-and-set retries of one change: each
// conflict means another process changed the keys, which happens a few
// times at most when replicas rotate together.
const maxConflicts = 8

// change applies the change plan computes from the current rows, retrying
// on store.ErrKeyConflict, then loads the result. plan returns nil for no
// change. ks.mu is held.
func (s *storeSource) change(ctx context.Context, ks *KeySet, plan func(rows []store.SigningKey, t time.Time) (*store.KeyChange, store.AuditEntry, error)) error {
	for range maxConflicts {
		rows, err := s.st.SigningKeys(ctx, s.instance)
		if err != nil {
			return fmt.Errorf("token: signing keys of %s: %w", s.instance, err)
		}
		t := ks.now()
		c, a, err := plan(rows, t)
		if err != nil {
			return err
		}
		if c == nil {
			return s.load(ctx, ks, rows, t)
		}
		if len(rows) > 0 && !c.Unconditional {
			c.IfNewest = rows[len(rows)-1].KID
		}
		err = s.st.ChangeSigningKeys(ctx, s.instance, *c, a)
		if errors.Is(err, store.ErrKeyConflict) {
			s.log.InfoContext(ctx, "signing keys changed concurrently; rereading", "instance", s.instance)
			continue
		}
		if err != nil {
			return fmt.Errorf("token: change signing keys of %s: %w", s.instance, err)
		}
		for _, k := range c.Add {
			s.log.InfoContext(ctx, "signing key created", "instance", s.instance, "alg", s.alg, "kid", k.KID,
				"activate_at", k.ActivateAt, "keys", s.keys.Describe(), "action", a.Action)
		}
		// Reread: the plan's own follow-ups (e.g. none) are computed
		// from what is now stored.
		plan = func(rows []store.SigningKey, t time.Time) (*store.KeyChange, store.AuditEntry, error) {
			return s.housekeeping(ctx, rows, t)
		}
	}
	return fmt.Errorf("token: signing keys of %s: %d concurrent changes in a row; giving up this round", s.instance, maxConflicts)
}

func (s *storeSource) reload(ctx context.Context, ks *KeySet) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return s.change(ctx, ks, func(rows []store.SigningKey, t time.Time) (*store.KeyChange, store.AuditEntry, error) {
		return s.housekeeping(ctx, rows, t)
	})
}

// live reports whether row r is published at t.
func live(r store.SigningKey, t time.Time) bool { return r.RetireAt.IsZero() || t.Before(r.RetireAt) }

// housekeeping is what any replica does on every reload: create a first
// key, rotate on schedule, delete keys retired long ago.
func (s *storeSource) housekeeping(ctx context.Context, rows []store.SigningKey, t time.Time) (*store.KeyChange, store.AuditEntry, error) {
	anyLive := slices.ContainsFunc(rows, func(r store.SigningKey) bool { return live(r, t) })
	var c store.KeyChange
	var a store.AuditEntry
	switch {
	case !anyLive:
		k, err := s.newKey(ctx, t, after(rows, t))
		if err != nil {
			return nil, a, err
		}
		sb, err := s.newKey(ctx, t, StandbyAt)
		if err != nil {
			return nil, a, err
		}
		c.Add = []store.SigningKey{k, sb}
		a = store.AuditEntry{Action: "keys.create", Actor: "attestd", Target: k.KID, Detail: "first signing key, standby " + sb.KID + " (" + s.keys.Describe() + ")"}
	case !slices.ContainsFunc(rows, func(r store.SigningKey) bool { return live(r, t) && isStandby(r) }):
		sb, err := s.newKey(ctx, t, StandbyAt)
		if err != nil {
			return nil, a, err
		}
		c.Add = []store.SigningKey{sb}
		a = store.AuditEntry{Action: "keys.standby", Actor: "attestd", Target: sb.KID, Detail: "standby key (" + s.keys.Describe() + ")"}
	case s.rot.Every > 0 && !newestLive(rows, t).ActivateAt.Add(s.rot.Every).After(t.Add(s.rot.Prepublish)):
		c2, a2, err := s.rotation(ctx, rows, t, RotateOptions{Prepublish: s.rot.Prepublish, Actor: "attestd (schedule)"})
		if err != nil {
			return nil, a, err
		}
		c, a = *c2, a2
	}
	for _, r := range rows {
		if !r.RetireAt.IsZero() && !r.RetireAt.Add(RetainRetired).After(t) {
			c.Purge = append(c.Purge, r.KID)
		}
	}
	if len(c.Add) == 0 && len(c.Purge) == 0 && len(c.Retire) == 0 {
		return nil, a, nil
	}
	if a.Action == "" {
		a = store.AuditEntry{Action: "keys.purge", Actor: "attestd", Target: fmt.Sprint(c.Purge), Detail: "retired more than " + RetainRetired.String() + " ago"}
	}
	return &c, a, nil
}

// newestLive is the live row with the latest activation (rows ascending,
// at least one live).
func newestLive(rows []store.SigningKey, t time.Time) store.SigningKey {
	for i := len(rows) - 1; i >= 0; i-- {
		if live(rows[i], t) && !isStandby(rows[i]) {
			return rows[i]
		}
	}
	return rows[len(rows)-1]
}

// after returns t, or just after the newest row's activation if that is
// not earlier: a new key must be the newest, whatever the clocks say (two
// activations at one instant would leave the order to the kids).
func after(rows []store.SigningKey, t time.Time) time.Time {
	if len(rows) > 0 {
		if n := rows[len(rows)-1].ActivateAt; !n.Before(t) {
			return n.Add(time.Nanosecond)
		}
	}
	return t
}

// newKey creates a key (through s.keys) and its certificate, signing from
// activate.
func (s *storeSource) newKey(ctx context.Context, t, activate time.Time) (store.SigningKey, error) {
	var lbl [9]byte
	rand.Read(lbl[:]) //nolint:errcheck // crypto/rand never fails
	ref := KeyRef{Instance: s.instance, Alg: s.alg, Label: fmt.Sprintf("attestd-%s-%x", t.UTC().Format("20060102T150405Z"), lbl)}
	signer, err := s.keys.Create(ctx, ref)
	if err != nil {
		return store.SigningKey{}, err
	}
	cert, err := selfSigned(s.subject, rawKey(signer), t.UTC())
	if err != nil {
		return store.SigningKey{}, err
	}
	ref.KID = KID(cert.Raw)
	priv, err := s.keys.Wrap(ctx, ref, signer)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{Instance: s.instance, KID: ref.KID, Certificate: cert.Raw, Private: priv, Created: t.UTC(), ActivateAt: activate.UTC()}, nil
}

// rotation plans a rotation at t: the standby key (published since the
// previous rotation; a fresh key if there is none) signs o.Prepublish from
// t, a new standby is published, every key signing before then retires
// RetireAfter after the switch (unless it retires sooner already), and
// keys scheduled to sign later than the switch are superseded: they never
// sign and leave /certs at the switch.
func (s *storeSource) rotation(ctx context.Context, rows []store.SigningKey, t time.Time, o RotateOptions) (*store.KeyChange, store.AuditEntry, error) {
	if o.Prepublish < 0 || o.RetireAfter < 0 {
		return nil, store.AuditEntry{}, errors.New("token: negative rotation delay")
	}
	retireAfter := o.RetireAfter
	if retireAfter == 0 {
		retireAfter = s.rot.RetireAfter
	}
	activate := t.Add(o.Prepublish)
	for _, r := range rows { // ascending: bump past every tie
		if r.ActivateAt.Equal(activate) {
			activate = activate.Add(time.Nanosecond)
		}
	}
	c := &store.KeyChange{Activate: map[string]time.Time{}, Retire: map[string]time.Time{}}
	next := ""
	for _, r := range rows {
		if live(r, t) && isStandby(r) && next == "" {
			next = r.KID
			c.Activate[next] = activate
		}
	}
	fresh := ""
	if next == "" {
		k, err := s.newKey(ctx, t, activate)
		if err != nil {
			return nil, store.AuditEntry{}, err
		}
		c.Add = append(c.Add, k)
		next, fresh = k.KID, " (a new key: there was no standby)"
	}
	sb, err := s.newKey(ctx, t, StandbyAt)
	if err != nil {
		return nil, store.AuditEntry{}, err
	}
	c.Add = append(c.Add, sb)
	retire := activate.Add(retireAfter)
	for _, r := range rows {
		switch {
		case r.KID == next || !live(r, t):
		case r.ActivateAt.After(activate):
			if r.RetireAt.IsZero() || activate.Before(r.RetireAt) {
				c.Retire[r.KID] = activate
			}
		case r.RetireAt.IsZero() || retire.Before(r.RetireAt):
			c.Retire[r.KID] = retire
		}
	}
	actor := o.Actor
	if actor == "" {
		actor = "attestd keys rotate"
	}
	return c, store.AuditEntry{Action: "keys.rotate", Actor: actor, Target: next,
		Detail: fmt.Sprintf("signs from %s%s; new standby %s; previous keys retire %s", activate.UTC().Format(time.RFC3339), fresh, sb.KID, retire.UTC().Format(time.RFC3339))}, nil
}

func (s *storeSource) rotate(ctx context.Context, ks *KeySet, o RotateOptions) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	done := false
	return s.change(ctx, ks, func(rows []store.SigningKey, t time.Time) (*store.KeyChange, store.AuditEntry, error) {
		if done {
			return s.housekeeping(ctx, rows, t)
		}
		c, a, err := s.rotation(ctx, rows, t, o)
		done = err == nil
		return c, a, err
	})
}

func (s *storeSource) retire(ctx context.Context, ks *KeySet, kid string, at time.Time, actor string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	done := false
	return s.change(ctx, ks, func(rows []store.SigningKey, t time.Time) (*store.KeyChange, store.AuditEntry, error) {
		if done {
			return s.housekeeping(ctx, rows, t)
		}
		when := at
		if when.IsZero() {
			when = t
		}
		i := slices.IndexFunc(rows, func(r store.SigningKey) bool { return r.KID == kid })
		if i < 0 {
			return nil, store.AuditEntry{}, fmt.Errorf("token: instance %s has no signing key %q", s.instance, kid)
		}
		// After the change, some key must still be able to sign at when.
		ok := false
		for _, r := range rows {
			if r.KID != kid && live(r, when) && !r.ActivateAt.After(when) {
				ok = true
			}
		}
		if !ok {
			return nil, store.AuditEntry{}, fmt.Errorf("token: key %s is the only key that can sign at %s; rotate first (attestd keys rotate --now)", kid, when.UTC().Format(time.RFC3339))
		}
		done = true
		if actor == "" {
			actor = "attestd keys retire"
		}
		return &store.KeyChange{Retire: map[string]time.Time{kid: when}}, store.AuditEntry{Action: "keys.retire", Actor: actor, Target: kid,
			Detail: "retires " + when.UTC().Format(time.RFC3339)}, nil
	})
}

// load makes rows the key set's state: every row's certificate, and the
// private part of every key not retired at t (opened once per kid).
func (s *storeSource) load(ctx context.Context, ks *KeySet, rows []store.SigningKey, t time.Time) error {
	sorted := slices.Clone(rows)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].ActivateAt.Equal(sorted[j].ActivateAt) {
			return sorted[i].ActivateAt.After(sorted[j].ActivateAt)
		}
		return sorted[i].KID > sorted[j].KID
	})
	var keys []*signingKey
	opened := map[string]*signingKey{}
	for _, r := range sorted {
		cert, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			return fmt.Errorf("token: key %s of %s: parse certificate: %w", r.KID, s.instance, err)
		}
		if KID(cert.Raw) != r.KID {
			return fmt.Errorf("token: key %s of %s: certificate kid is %s", r.KID, s.instance, KID(cert.Raw))
		}
		var signer crypto.Signer
		if live(r, t) {
			if prev := s.opened[r.KID]; prev != nil {
				signer = prev.signer
			} else if signer, err = s.keys.Unwrap(ctx, KeyRef{Instance: s.instance, KID: r.KID, Alg: s.alg}, r.Private, cert.PublicKey); err != nil {
				return err
			} else if s.alg == ES256 && !isES256Signer(signer) {
				// A DER signature in a JWS verifies nowhere: refuse at
				// load rather than issue such tokens.
				return fmt.Errorf("token: key %s of %s: %s returned an ECDSA signer without R||S encoding (wrap it with token.ES256Signer)", r.KID, s.instance, s.keys.Describe())
			}
		}
		k, err := newSigningKey(signer, jose.SignatureAlgorithm(ks.Algorithm()), cert, "", r.Created)
		if err != nil {
			return err
		}
		if prev := s.opened[r.KID]; prev != nil {
			k.rs256.Store(prev.rs256.Load())
		}
		k.activateAt, k.retireAt = r.ActivateAt, r.RetireAt
		if signer != nil {
			opened[r.KID] = k
		}
		keys = append(keys, k)
	}
	if len(opened) == 0 {
		return fmt.Errorf("token: instance %s has no usable signing key", s.instance)
	}
	s.opened = opened
	ks.state.Store(&keyState{keys: keys})
	return nil
}

// ImportKeyDir copies the keys of a key directory (the single-node layout,
// DATA/keys/NAME) into a store key set: each unretired key keeps its kid,
// certificate, creation and retirement, signs from its creation, and is
// sealed with the set's private-key source. Keys already in the store are
// skipped, so importing twice is harmless. It returns the kids imported.
func (ks *KeySet) ImportKeyDir(ctx context.Context, dir string) ([]string, error) {
	if ks.src == nil {
		return nil, errors.New("token: import needs a store key set")
	}
	if _, ok := ks.src.keys.(KEKKeys); !ok {
		return nil, fmt.Errorf("token: file keys can be imported only under a key-encryption key, not into %s (an HSM generates its own keys)", ks.src.keys.Describe())
	}
	fileKeys, err := readKeyDir(dir, ks.Algorithm())
	if err != nil {
		return nil, err
	}
	s := ks.src
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var imported []string
	err = s.change(ctx, ks, func(rows []store.SigningKey, t time.Time) (*store.KeyChange, store.AuditEntry, error) {
		if imported != nil {
			return s.housekeeping(ctx, rows, t)
		}
		have := map[string]bool{}
		for _, r := range rows {
			have[r.KID] = true
		}
		c := &store.KeyChange{Unconditional: true}
		var kids []string
		for _, k := range fileKeys {
			if have[k.kid] || (!k.retireAt.IsZero() && !t.Before(k.retireAt)) {
				continue
			}
			ref := KeyRef{Instance: s.instance, KID: k.kid, Alg: s.alg}
			priv, err := s.keys.Wrap(ctx, ref, k.signer)
			if err != nil {
				return nil, store.AuditEntry{}, err
			}
			c.Add = append(c.Add, store.SigningKey{Instance: s.instance, KID: k.kid, Certificate: k.cert.Raw, Private: priv,
				Created: k.created, ActivateAt: k.created, RetireAt: k.retireAt})
			kids = append(kids, k.kid)
		}
		imported = kids
		if imported == nil {
			imported = []string{}
		}
		if len(c.Add) == 0 {
			return nil, store.AuditEntry{}, nil
		}
		return c, store.AuditEntry{Action: "keys.import", Actor: "attestd keys import", Target: fmt.Sprint(kids), Detail: "from " + dir}, nil
	})
	return imported, err
}

// readKeyDir reads a key directory without changing it.
func readKeyDir(dir string, alg Algorithm) ([]*signingKey, error) {
	fks := &KeySet{dir: dir, alg: alg}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("token: lock key directory %s: %w", dir, err)
	}
	defer unlock()
	keys, err := fks.loadDisk()
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("token: no keys in %s", dir)
	}
	return keys, nil
}
