package token

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/sqlite"
	jose "github.com/go-jose/go-jose/v4"
)

func kekT(t testing.TB, b byte) *KEK {
	t.Helper()
	k, err := NewKEK(bytes.Repeat([]byte{b}, KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sqliteT(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openStoreSet(t *testing.T, st store.KeyStore, c *clock, kek *KEK, rot Rotation) *KeySet {
	t.Helper()
	ks, err := OpenStoreKeySet(context.Background(), StoreOptions{Store: st, Instance: "inst", Subject: subject, Keys: KEKKeys{KEK: kek}, Rotation: rot, Now: c.Now})
	if err != nil {
		t.Fatalf("OpenStoreKeySet: %v", err)
	}
	return ks
}

func kidsOf(t *testing.T, jwks []byte) []string {
	var out []string
	for _, k := range jwksDoc(t, jwks).Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func signT(t *testing.T, ks *KeySet) string {
	t.Helper()
	tok, err := ks.Sign(jku, map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func headerKID(t *testing.T, tok string) string {
	h, _, _ := splitJWT(t, tok)
	i := bytes.Index(h, []byte(`"kid":"`))
	return string(h[i+7 : i+7+44])
}

// TestStoreKeysStagedRotation is the rotation story with two
// replicas on one database: they share the first key and its standby; a
// rotation promotes the standby, which signs only after the
// pre-publication period, and publishes a new standby; a relying party
// that cached /certs before the rotation verifies every token through the
// switch; the old key leaves /certs only after RetireAfter.
func TestStoreKeysStagedRotation(t *testing.T) {
	db := sqliteT(t)
	c := &clock{t: t0}
	rot := Rotation{Prepublish: time.Hour, RetireAfter: 25 * time.Hour}
	a := openStoreSet(t, db, c, kekT(t, 1), rot)
	b := openStoreSet(t, db, c, kekT(t, 1), rot)
	first := a.ActiveKID()
	published := kidsOf(t, b.JWKS())
	if b.ActiveKID() != first || len(published) != 2 || published[0] != first {
		t.Fatalf("replicas disagree on the first key: %s %s, /certs %v", first, b.ActiveKID(), published)
	}
	standby := published[1]
	if keys := a.Keys(); keys[1].State != KeyStandby || keys[1].KID != standby {
		t.Fatalf("no standby key: %+v", keys)
	}
	cached := b.JWKS() // a client fetching /certs once, before the rotation
	verifyLikeClient(t, cached, signT(t, a))

	if err := a.RotateContext(context.Background(), RotateOptions{Prepublish: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	var third string
	for name, ks := range map[string]*KeySet{"a": a, "b": b} {
		if ks.ActiveKID() != first || headerKID(t, signT(t, ks)) != first {
			t.Fatalf("%s signs with the promoted key before its activation", name)
		}
		got := kidsOf(t, ks.JWKS())
		if len(got) != 3 || got[0] != first {
			t.Fatalf("%s publishes %v", name, got)
		}
		keys := ks.Keys()
		if keys[1].KID != standby || keys[1].State != KeyPending || !keys[1].ActivateAt.Equal(t0.Add(time.Hour)) || keys[2].State != KeyStandby {
			t.Fatalf("%s keys during pre-publication: %+v", name, keys)
		}
		third = keys[2].KID
	}

	c.Add(time.Hour) // activation: no reload needed, both switch on the clock
	for _, ks := range []*KeySet{a, b} {
		if ks.ActiveKID() != standby {
			t.Fatalf("after activation %s signs, want %s", ks.ActiveKID(), standby)
		}
		verifyLikeClient(t, cached, signT(t, ks)) // /certs cached before the rotation still verifies
	}
	if keys := a.Keys(); keys[0].KID != standby || keys[1].KID != third || keys[2].State != KeyRetiring || !keys[2].RetireAt.Equal(t0.Add(26*time.Hour)) {
		t.Fatalf("keys after activation: %+v", keys)
	}
	c.Add(25*time.Hour - time.Second)
	if got := kidsOf(t, a.JWKS()); len(got) != 3 {
		t.Fatalf("old key left /certs before RetireAfter: %v", got)
	}
	c.Add(time.Second)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(t, a.JWKS()); len(got) != 2 || got[0] != standby || got[1] != third {
		t.Fatalf("after retirement: %v", got)
	}
	if keys := a.Keys(); len(keys) != 3 || keys[2].State != KeyRetired {
		t.Fatalf("retired key not listed as retired: %+v", keys)
	}
	c.Add(RetainRetired)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if keys := b.Keys(); len(keys) != 2 {
		t.Fatalf("retired key not purged after %v: %+v", RetainRetired, keys)
	}
}

// TestStoreKeysScheduledRotationRace: replicas reloading at once on a
// rotation schedule write one new key between them.
func TestStoreKeysScheduledRotationRace(t *testing.T) {
	db := sqliteT(t)
	c := &clock{t: t0}
	rot := Rotation{Prepublish: time.Hour, Every: 30 * 24 * time.Hour}
	var sets []*KeySet
	for range 4 {
		sets = append(sets, openStoreSet(t, db, c, kekT(t, 1), rot))
	}
	if err := sets[0].Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(sets[0].Keys()); n != 2 {
		t.Fatalf("rotated before schedule: %d keys", n)
	}
	c.Add(30*24*time.Hour - time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, len(sets))
	for i, ks := range sets {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = ks.Reload() }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	rows, err := db.SigningKeys(context.Background(), "inst")
	if err != nil || len(rows) != 3 {
		t.Fatalf("rows after scheduled rotation: %d %v", len(rows), err)
	}
	for _, ks := range sets {
		if err := ks.Reload(); err != nil {
			t.Fatal(err)
		}
		if ks.Keys()[1].State != KeyPending || ks.Keys()[2].State != KeyStandby {
			t.Fatalf("scheduled key not pending: %+v", ks.Keys())
		}
	}
}

// TestStoreKeysAtRest: the database holds no plaintext private key; a
// replica with another KEK is refused naming the KEK; a sealed key moved to
// another kid does not open.
func TestStoreKeysAtRest(t *testing.T) {
	db := sqliteT(t)
	c := &clock{t: t0}
	a := openStoreSet(t, db, c, kekT(t, 1), Rotation{})
	_, signer := a.Signer()
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := db.SigningKeys(context.Background(), "inst")
	rk := signer.(*rsa.PrivateKey)
	if len(rows) != 2 || rows[0].KID != a.ActiveKID() || bytes.Contains(rows[0].Private, der) || bytes.Contains(rows[0].Private, rk.D.Bytes()) || bytes.Contains(rows[0].Private, rk.Primes[0].Bytes()) {
		t.Fatal("private key stored in plaintext")
	}
	_, err = OpenStoreKeySet(context.Background(), StoreOptions{Store: db, Instance: "inst", Subject: subject, Keys: KEKKeys{KEK: kekT(t, 2)}, Now: c.Now})
	if !errors.Is(err, ErrWrongKEK) || !strings.Contains(err.Error(), "same --key-encryption-key") {
		t.Fatalf("wrong KEK: %v", err)
	}
	if _, err := (KEKKeys{KEK: kekT(t, 1)}).Unwrap(context.Background(), KeyRef{Instance: "inst", KID: "other"}, rows[0].Private, signer.Public()); err == nil {
		t.Fatal("sealed key opened under another kid")
	}
}

// TestStoreKeysRotateNowAndRetire: an emergency rotation signs at once;
// the only key that can sign cannot be retired; a superseded key can be
// retired at once and leaves /certs.
func TestStoreKeysRotateNowAndRetire(t *testing.T) {
	db := sqliteT(t)
	c := &clock{t: t0}
	a := openStoreSet(t, db, c, kekT(t, 1), Rotation{})
	first := a.ActiveKID()
	ctx := context.Background()
	if err := a.Retire(ctx, first, time.Time{}, "test"); err == nil || !strings.Contains(err.Error(), "rotate first") {
		t.Fatalf("retired the only signing key: %v", err)
	}
	c.Add(time.Second)
	if err := a.RotateContext(ctx, RotateOptions{Prepublish: 0}); err != nil {
		t.Fatal(err)
	}
	second := a.ActiveKID()
	if second == first || headerKID(t, signT(t, a)) != second {
		t.Fatalf("rotate --now: active %s, first %s", second, first)
	}
	if err := a.Retire(ctx, second, time.Time{}, "test"); err != nil {
		// first can still sign (it retires in RetireAfter): allowed, and
		// first signs again.
		t.Fatalf("retire the new key with the old one live: %v", err)
	}
	if a.ActiveKID() != first || len(kidsOf(t, a.JWKS())) != 2 {
		t.Fatalf("after retiring the new key: active %s, /certs %v", a.ActiveKID(), kidsOf(t, a.JWKS()))
	}
	if err := a.Retire(ctx, "nope", time.Time{}, "test"); err == nil {
		t.Fatal("retired an unknown kid")
	}
	au, err := db.Audit(ctx, "inst", 0)
	if err != nil || len(au) != 3 || au[0].Action != "keys.retire" || au[1].Action != "keys.rotate" || au[2].Action != "keys.create" || len(kidsOf(t, a.JWKS())) != 2 {
		t.Fatalf("audit: %+v %v", au, err)
	}
}

// TestImportKeyDir moves a directory key set into the store: same kids,
// the directory's active key still signs, tokens signed before the import
// verify against the store set's /certs; importing again adds nothing.
func TestImportKeyDir(t *testing.T) {
	c := &clock{t: t0}
	dir := t.TempDir()
	fks := openSet(t, dir, c)
	c.Add(time.Minute)
	if err := fks.Rotate(time.Hour); err != nil {
		t.Fatal(err)
	}
	old := signT(t, fks)
	c.Add(time.Minute)
	db := sqliteT(t)
	// The store set starts empty: import before the first key is made.
	ks := &KeySet{subject: subject, now: c.Now, src: &storeSource{st: db, instance: "inst", subject: subject, keys: KEKKeys{KEK: kekT(t, 1)},
		rot: Rotation{}.withDefaults(), log: discard(), opened: map[string]*signingKey{}}}
	got, err := ks.ImportKeyDir(context.Background(), dir)
	if err != nil || len(got) != 2 {
		t.Fatalf("import: %v %v", got, err)
	}
	if ks.ActiveKID() != fks.ActiveKID() {
		t.Fatalf("active after import %s, directory's %s", ks.ActiveKID(), fks.ActiveKID())
	}
	verifyLikeClient(t, ks.JWKS(), old)
	if keys := ks.Keys(); len(keys) != 3 || keys[1].State != KeyStandby {
		t.Fatalf("imported set has no standby: %+v", keys)
	}
	if again, err := ks.ImportKeyDir(context.Background(), dir); err != nil || len(again) != 0 {
		t.Fatalf("second import: %v %v", again, err)
	}
	if _, err := ks.ImportKeyDir(context.Background(), t.TempDir()); err == nil {
		t.Fatal("imported an empty directory")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestStoreKeysES256: an ES256 store set makes P-256 keys sealed under the
// KEK, signs JWS ES256 that verifies with x5c[0] of its /certs key at
// another replica, rotates staged like RS256 sets, imports an ES256 key
// directory, and refuses to load its keys as an RS256 set (and the
// reverse): an instance never signs with an algorithm it does not name.
func TestStoreKeysES256(t *testing.T) {
	ctx := context.Background()
	db := sqliteT(t)
	c := &clock{t: t0}
	open := func(inst string, alg Algorithm, importDir string) (*KeySet, error) {
		return OpenStoreKeySet(ctx, StoreOptions{Store: db, Instance: inst, Subject: subject, Keys: KEKKeys{KEK: kekT(t, 1)},
			Now: c.Now, Algorithm: alg, ImportDir: importDir})
	}
	a, err := open("inst/es256", ES256, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := open("inst/es256", ES256, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Algorithm() != ES256 || a.ActiveKID() != b.ActiveKID() {
		t.Fatalf("algorithm %s, replicas sign with %s and %s", a.Algorithm(), a.ActiveKID(), b.ActiveKID())
	}
	tok := signT(t, a)
	if h := headerOf(t, tok); h["alg"] != "ES256" {
		t.Fatalf("header %v", h)
	}
	if sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2]); len(sig) != 64 {
		t.Fatalf("signature is %d bytes, want JWS R||S (64)", len(sig))
	}
	verifyJWKS(t, b.JWKS(), tok, jose.ES256)
	if _, err := b.Verify(tok); err != nil {
		t.Fatalf("replica b rejects a's token: %v", err)
	}
	for _, k := range jwksDoc(t, a.JWKS()).Keys {
		if k.Algorithm != "ES256" || k.Certificates[0].PublicKeyAlgorithm != x509.ECDSA {
			t.Fatalf("/certs key %s: alg %s, certificate key %v", k.KeyID, k.Algorithm, k.Certificates[0].PublicKeyAlgorithm)
		}
	}
	rows, err := db.SigningKeys(ctx, "inst/es256")
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %d, %v", len(rows), err)
	}
	if bytes.Contains(rows[0].Private, []byte("PRIVATE")) || len(rows[0].Private) < 64 {
		t.Fatalf("private key not sealed: %q", rows[0].Private)
	}

	cached := b.JWKS()
	first := a.ActiveKID()
	if err := a.RotateContext(ctx, RotateOptions{Prepublish: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := b.ReloadContext(ctx); err != nil {
		t.Fatal(err)
	}
	if b.ActiveKID() != first {
		t.Fatal("promoted key signs before its activation")
	}
	c.Add(time.Hour)
	if b.ActiveKID() == first || a.ActiveKID() != b.ActiveKID() {
		t.Fatalf("after activation a %s b %s, first %s", a.ActiveKID(), b.ActiveKID(), first)
	}
	verifyJWKS(t, cached, signT(t, b), jose.ES256) // the standby was published before the rotation

	if _, err := open("inst/es256", RS256, ""); err == nil || !strings.Contains(err.Error(), "want RSA") {
		t.Fatalf("ES256 keys opened as an RS256 set: %v", err)
	}
	if _, err := open("inst", RS256, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := open("inst", ES256, ""); err == nil || !strings.Contains(err.Error(), "want ECDSA P-256") {
		t.Fatalf("RSA keys opened as an ES256 set: %v", err)
	}

	// Import of a file ES256 set, on first open only.
	dir := t.TempDir()
	fks, err := OpenKeySetAlgorithm(dir, subject, c.Now, ES256)
	if err != nil {
		t.Fatal(err)
	}
	old := signT(t, fks)
	imp, err := open("other/es256", ES256, dir)
	if err != nil {
		t.Fatal(err)
	}
	if imp.ActiveKID() != fks.ActiveKID() {
		t.Fatalf("imported set signs with %s, directory's key %s", imp.ActiveKID(), fks.ActiveKID())
	}
	verifyJWKS(t, imp.JWKS(), old, jose.ES256)
	if _, err := imp.Verify(signT(t, imp)); err != nil {
		t.Fatal(err)
	}
}

// derOnlySigner hides *ecdsa.PrivateKey behind crypto.Signer, as an HSM
// key does: Sign returns ASN.1 DER.
type derOnlySigner struct{ k *ecdsa.PrivateKey }

func (d derOnlySigner) Public() crypto.PublicKey { return &d.k.PublicKey }
func (d derOnlySigner) Sign(r io.Reader, digest []byte, o crypto.SignerOpts) ([]byte, error) {
	return d.k.Sign(r, digest, o)
}

// opaqueKeys is a PrivateKeys whose keys live "elsewhere" (the map) and
// sign DER, like pkcs11keys: wrapJWS says whether Unwrap adapts them with
// ES256Signer, as a correct implementation must.
type opaqueKeys struct {
	keys    map[string]*ecdsa.PrivateKey
	wrapJWS bool
}

func (o *opaqueKeys) Create(ctx context.Context, ref KeyRef) (crypto.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	o.keys[ref.Label] = k
	return derOnlySigner{k}, nil
}

func (o *opaqueKeys) Wrap(ctx context.Context, ref KeyRef, s crypto.Signer) ([]byte, error) {
	for lbl, k := range o.keys {
		if k.PublicKey.Equal(s.Public()) {
			return []byte("ref:" + lbl), nil
		}
	}
	return nil, errors.New("unknown key")
}

func (o *opaqueKeys) Unwrap(ctx context.Context, ref KeyRef, stored []byte, pub crypto.PublicKey) (crypto.Signer, error) {
	k := o.keys[strings.TrimPrefix(string(stored), "ref:")]
	if k == nil {
		return nil, errors.New("no such key")
	}
	if !o.wrapJWS {
		return derOnlySigner{k}, nil
	}
	return ES256Signer(derOnlySigner{k})
}

func (o *opaqueKeys) Describe() string { return "opaque test keys" }

// TestStoreKeysES256ExternalSigner: an ES256 set whose keys sign DER
// elsewhere (an HSM's) issues R||S tokens that verify with its /certs key
// when Unwrap adapts them with ES256Signer, and refuses to load when it
// does not (such tokens would verify nowhere). ES256Signer refuses RSA.
func TestStoreKeysES256ExternalSigner(t *testing.T) {
	ctx := context.Background()
	db := sqliteT(t)
	c := &clock{t: t0}
	keys := &opaqueKeys{keys: map[string]*ecdsa.PrivateKey{}, wrapJWS: true}
	ks, err := OpenStoreKeySet(ctx, StoreOptions{Store: db, Instance: "hsm/es256", Subject: subject, Keys: keys, Now: c.Now, Algorithm: ES256})
	if err != nil {
		t.Fatal(err)
	}
	tok := signT(t, ks)
	if sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2]); len(sig) != 64 {
		t.Fatalf("signature is %d bytes, want R||S (64)", len(sig))
	}
	verifyJWKS(t, ks.JWKS(), tok, jose.ES256)
	if err := ks.RotateContext(ctx, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	verifyJWKS(t, ks.JWKS(), signT(t, ks), jose.ES256)

	keys.wrapJWS = false
	if _, err := OpenStoreKeySet(ctx, StoreOptions{Store: db, Instance: "hsm/es256", Subject: subject, Keys: keys, Now: c.Now, Algorithm: ES256}); err == nil || !strings.Contains(err.Error(), "R||S") {
		t.Fatalf("a DER signer loaded into an ES256 set: %v", err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ES256Signer(rk); err == nil {
		t.Fatal("ES256Signer accepted an RSA key")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := ES256Signer(p384); err == nil {
		t.Fatal("ES256Signer accepted a P-384 key")
	}
}
