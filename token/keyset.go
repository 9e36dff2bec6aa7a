// Package token issues attestd's tokens: MAA-shaped RS256 JWTs signed with a
// per-instance key, the JWKS (/certs) that lets clients verify them, and the
// unsigned (alg "none") form MAA uses for draft-policy results.
//
// A KeySet's keys live in the store that replicas share (OpenStoreKeySet,
// storekeys.go: sealed under a key-encryption key, or in a PKCS#11 token
// through token/pkcs11keys), which is what attestd serve uses; or in a
// directory (OpenKeySet), the single-node layout of earlier versions that
// tests and "attestd keys import" still read.
//
// Directory keys live in a directory, one PEM file per key (PKCS#8 private key followed
// by its self-signed certificate, mode 0600) plus a manifest keyset.json that
// records each key's creation and retirement time. The newest key signs;
// older keys stay in the JWKS until their retire-after time, so tokens issued
// just before a rotation keep verifying for clients that refetch /certs.
//
// Changes to the directory (first key, rotation, pruning) happen under an
// advisory file lock (flock on Unix), so a server and an "attestd keys"
// command, or two overlapping server processes, cannot interleave them; a
// running KeySet sees another process's rotation only after Reload.
package token

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// KeyBits is the RSA modulus size of keys created here. MAA clients verify
// RS256 only (Python's EC path is broken, spec §0.5), and 2048 keeps signing
// at ~1 ms on the hot path.
const KeyBits = 2048

// MinKeyBits is the smallest RSA key accepted from disk.
const MinKeyBits = 2048

// CertValidity is the lifetime of the self-signed certificates. Real MAA
// signer certificates run for decades (2019..2050); clients use the
// certificate only as a key carrier, never check its validity period against
// the token, so a long validity avoids an outage nobody would notice coming.
const CertValidity = 30 * 365 * 24 * time.Hour

const manifestName = "keyset.json"

// KeySet is an instance's set of signing keys. Methods are safe for
// concurrent use; Sign and JWKS never block on Rotate.
type KeySet struct {
	dir     string
	subject string
	now     func() time.Time
	alg     Algorithm // "" is RS256 (OpenKeySet); see OpenKeySetAlgorithm

	mu    sync.Mutex // serialises Rotate and disk writes
	state atomic.Pointer[keyState]

	// src, when set, keeps the keys in a database instead of dir (see
	// OpenStoreKeySet); Reload, Rotate and Retire then go through it.
	src *storeSource
}

// keyState is an immutable snapshot of the keys, newest activation
// first (file keys: newest created first).
type keyState struct {
	keys []*signingKey
}

// active returns the key that signs at t: the newest whose activation has
// come and that is not retired. Every replica reading the same keys picks
// the same one; a pending key (activation ahead) is published but does not
// sign. If none qualifies (a clock set before every activation), the
// earliest unretired key signs rather than none.
func (st *keyState) active(t time.Time) *signingKey {
	var fallback *signingKey
	for _, k := range st.keys {
		if k.signer == nil || (!k.retireAt.IsZero() && !t.Before(k.retireAt)) {
			continue
		}
		if !k.activateAt.After(t) {
			return k
		}
		fallback = k
	}
	if fallback == nil {
		return st.keys[0]
	}
	return fallback
}

type signingKey struct {
	kid     string
	file    string
	cert    *x509.Certificate
	signer  crypto.Signer
	created time.Time
	// activateAt is when the key starts to sign (zero for file keys: the
	// newest signs at once).
	activateAt time.Time
	retireAt   time.Time // zero: not scheduled for retirement
	jwk        []byte    // precomputed JWKS entry
	// rs256 is the encoded RS256 header for the jku of the last Sign: an
	// instance signs with one jku, so after its first token the header is
	// never encoded again.
	rs256 atomic.Pointer[encodedHeader]
}

// encodedHeader is base64url({"alg":"RS256","jku":jku,"kid":…,"typ":"JWT"}).
type encodedHeader struct {
	jku string
	b64 []byte
}

// KeyInfo describes one key of the set.
type KeyInfo struct {
	KID         string
	Certificate *x509.Certificate
	Created     time.Time
	ActivateAt  time.Time // zero: signed from creation (file keys)
	RetireAt    time.Time // zero: not scheduled for retirement
	Active      bool      // the key Sign uses
	State       KeyState
}

// KeyState is where a key is in its life, as "attestd keys list" shows it.
type KeyState string

// Key states. A store key starts as the standby (published in /certs,
// next in line, no activation scheduled); a rotation makes it pending
// (activation scheduled, not signing yet), then it is active (signing),
// then retiring (still published so that the tokens it signed verify,
// with a retirement date), then retired (gone from /certs). A superseded
// key with no retirement date (directory keys) is "verifying".
const (
	KeyStandby   KeyState = "standby"
	KeyPending   KeyState = "pending"
	KeyActive    KeyState = "active"
	KeyRetiring  KeyState = "retiring"
	KeyVerifying KeyState = "verifying"
	KeyRetired   KeyState = "retired"
)

// manifest is keyset.json.
type manifest struct {
	Version int             `json:"version"`
	Keys    []manifestEntry `json:"keys"` // oldest first
}

type manifestEntry struct {
	File     string     `json:"file"`
	KID      string     `json:"kid"`
	Created  time.Time  `json:"created"`
	RetireAt *time.Time `json:"retire_at,omitempty"`
}

// OpenKeySet loads the key set stored in dir, creating dir and a first key
// (RSA-2048, certificate CN=subject) when there is none. subject is usually
// the instance URL. now is the clock used for certificate validity and key
// retirement. Keys whose retire-after time has passed are deleted.
func OpenKeySet(dir, subject string, now func() time.Time) (*KeySet, error) {
	if dir == "" {
		return nil, errors.New("token: empty key directory")
	}
	if subject == "" {
		return nil, errors.New("token: empty certificate subject")
	}
	if now == nil {
		return nil, errors.New("token: nil clock")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token: create key directory: %w", err)
	}
	ks := &KeySet{dir: dir, subject: subject, now: now}
	if err := ks.Reload(); err != nil {
		return nil, err
	}
	return ks, nil
}

// Reload rereads the key set from disk, e.g. after "attestd keys rotate"
// ran in another process; it also deletes keys past their retire-after
// time and creates a first key if none is left. Sign and JWKS keep serving
// the previous state until the new one is complete.
func (ks *KeySet) Reload() error {
	if ks.src != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		return ks.src.reload(ctx, ks)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	unlock, err := lockDir(ks.dir)
	if err != nil {
		return fmt.Errorf("token: lock key directory: %w", err)
	}
	defer unlock()
	keys, err := ks.loadDisk()
	if err != nil {
		return err
	}
	t := ks.now()
	live := pruneRetired(keys, t)
	if len(live) == 0 {
		k, err := ks.newKey(t)
		if err != nil {
			return err
		}
		live = []*signingKey{k}
	}
	return ks.commit(live, keys)
}

// loadDisk reads the manifest and every key it lists, newest first.
// ks.mu and the directory lock are held.
func (ks *KeySet) loadDisk() ([]*signingKey, error) {
	m, err := ks.readManifest()
	if err != nil {
		return nil, err
	}
	keys := make([]*signingKey, 0, len(m.Keys))
	for i := len(m.Keys) - 1; i >= 0; i-- {
		k, err := ks.loadKey(m.Keys[i])
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// pruneRetired returns the keys whose retire-after time is still ahead.
func pruneRetired(keys []*signingKey, t time.Time) []*signingKey {
	var live []*signingKey
	for _, k := range keys {
		if k.retireAt.IsZero() || t.Before(k.retireAt) {
			live = append(live, k)
		}
	}
	return live
}

// commit writes the manifest for live (newest first), publishes it, and
// deletes the files of keys in old that are no longer live. ks.mu is held.
func (ks *KeySet) commit(live, old []*signingKey) error {
	m := manifest{Version: 1}
	for i := len(live) - 1; i >= 0; i-- {
		k := live[i]
		e := manifestEntry{File: k.file, KID: k.kid, Created: k.created.UTC()}
		if !k.retireAt.IsZero() {
			r := k.retireAt.UTC()
			e.RetireAt = &r
		}
		m.Keys = append(m.Keys, e)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("token: encode manifest: %w", err)
	}
	if err := writeFileAtomic(ks.dir, manifestName, append(b, '\n')); err != nil {
		return fmt.Errorf("token: write manifest: %w", err)
	}
	ks.state.Store(&keyState{keys: live})
	keep := map[string]bool{}
	for _, k := range live {
		keep[k.file] = true
	}
	for _, k := range old {
		if !keep[k.file] {
			// Best effort: a leftover retired key file is inert (not in the
			// manifest), so failing to delete it is not worth failing for.
			_ = os.Remove(filepath.Join(ks.dir, k.file))
		}
	}
	return nil
}

func (ks *KeySet) readManifest() (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(ks.dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("token: read manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("token: parse %s: %w", filepath.Join(ks.dir, manifestName), err)
	}
	if m.Version != 1 {
		return m, fmt.Errorf("token: %s: unsupported manifest version %d", filepath.Join(ks.dir, manifestName), m.Version)
	}
	return m, nil
}

// loadKey reads one key file, checks its permissions, that the certificate
// matches the private key, and that the recorded kid matches the certificate.
func (ks *KeySet) loadKey(e manifestEntry) (*signingKey, error) {
	if e.File == "" || filepath.Base(e.File) != e.File || strings.HasPrefix(e.File, ".") {
		return nil, fmt.Errorf("token: manifest names invalid key file %q", e.File)
	}
	path := filepath.Join(ks.dir, e.File)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("token: key %s: %w", e.KID, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token: key file %s has mode %04o; it holds a private key and must not be accessible to group or others (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: read key file: %w", err)
	}
	var keyDER, certDER []byte
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY":
			keyDER = blk.Bytes
		case "CERTIFICATE":
			certDER = blk.Bytes
		}
	}
	if keyDER == nil || certDER == nil {
		return nil, fmt.Errorf("token: key file %s must hold a PRIVATE KEY and a CERTIFICATE PEM block", path)
	}
	priv, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("token: key file %s: parse private key: %w", path, err)
	}
	if ks.alg == ES256 {
		return ks.loadECKey(e, path, priv, certDER)
	}
	rk, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token: key file %s: private key is %T, want RSA (MAA tokens are RS256)", path, priv)
	}
	if rk.N.BitLen() < MinKeyBits {
		return nil, fmt.Errorf("token: key file %s: RSA key has %d bits, want at least %d", path, rk.N.BitLen(), MinKeyBits)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("token: key file %s: parse certificate: %w", path, err)
	}
	if !rk.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("token: key file %s: certificate does not match the private key", path)
	}
	rk.Precompute()
	return loadedKey(rk, jose.RS256, cert, e, path)
}

// loadedKey is newSigningKey for a key file the manifest entry e names
// (read from path): its certificate must have the manifest's kid, and the
// entry's retirement carries over.
func loadedKey(signer crypto.Signer, alg jose.SignatureAlgorithm, cert *x509.Certificate, e manifestEntry, path string) (*signingKey, error) {
	k, err := newSigningKey(signer, alg, cert, e.File, e.Created)
	if err != nil {
		return nil, err
	}
	if k.kid != e.KID {
		return nil, fmt.Errorf("token: key file %s: certificate kid %q differs from manifest kid %q", path, k.kid, e.KID)
	}
	if e.RetireAt != nil {
		k.retireAt = *e.RetireAt
	}
	return k, nil
}

// KID returns the key id attestd gives a signing certificate: standard
// base64 of SHA-256 over the certificate DER (44 characters, the shape of
// real MAA kids). Clients treat it as an opaque string.
func KID(certDER []byte) string {
	s := sha256.Sum256(certDER)
	return base64.StdEncoding.EncodeToString(s[:])
}

// newSigningKey makes the in-memory key and its /certs entry, the JWK
// MAA's shape has (kid, kty, x5c with the self-signed certificate, the key
// members of cert's public key) naming alg. signer is nil for a retired key
// of a store key set, whose private part is not opened any more.
func newSigningKey(signer crypto.Signer, alg jose.SignatureAlgorithm, cert *x509.Certificate, file string, created time.Time) (*signingKey, error) {
	k := &signingKey{
		kid:     KID(cert.Raw),
		file:    file,
		cert:    cert,
		created: created,
	}
	if signer != nil {
		k.signer = signer
	}
	jwk := jose.JSONWebKey{
		Key:          cert.PublicKey,
		KeyID:        k.kid,
		Algorithm:    string(alg),
		Use:          "sig",
		Certificates: []*x509.Certificate{cert},
	}
	b, err := jwk.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("token: encode JWK of %s: %w", k.kid, err)
	}
	k.jwk = b
	return k, nil
}

// newKey creates, and writes to disk, a fresh RSA key and certificate.
func (ks *KeySet) newKey(t time.Time) (*signingKey, error) {
	if ks.alg == ES256 {
		return ks.newECKey(t)
	}

	rk, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("token: generate RSA key: %w", err)
	}
	t = t.UTC()
	cert, err := selfSigned(ks.subject, rk, t)
	if err != nil {
		return nil, err
	}
	file, err := ks.writeKeyFile("signer-", rk, cert, t)
	if err != nil {
		return nil, err
	}
	rk.Precompute()
	return newSigningKey(rk, jose.RS256, cert, file, t)
}

// writeKeyFile writes a new key file of the set, the PKCS#8 private key
// then the certificate as PEM, under a fresh name prefix+time+random, and
// returns that name.
func (ks *KeySet) writeKeyFile(prefix string, priv crypto.Signer, cert *x509.Certificate, t time.Time) (string, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("token: encode private key: %w", err)
	}
	var buf bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})   //nolint:errcheck // bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}) //nolint:errcheck // bytes.Buffer
	var rnd [6]byte
	rand.Read(rnd[:])
	file := fmt.Sprintf("%s%s-%s.pem", prefix, t.Format("20060102T150405Z"), base64.RawURLEncoding.EncodeToString(rnd[:]))
	if err := writeFileAtomic(ks.dir, file, buf.Bytes()); err != nil {
		return "", fmt.Errorf("token: write key file: %w", err)
	}
	return file, nil
}

// selfSigned makes the certificate that carries a signing key in /certs:
// self-signed by the key itself (through crypto.Signer, so an HSM key
// works too), CN=subject.
func selfSigned(subject string, s crypto.Signer, t time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("token: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             t.Add(-24 * time.Hour).Truncate(time.Second), // tolerate clients with slow clocks
		NotAfter:              t.Add(CertValidity).Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	if err != nil {
		return nil, fmt.Errorf("token: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("token: parse new certificate: %w", err)
	}
	return cert, nil
}

// writeFileAtomic writes name in dir with mode 0600 via a synced temporary
// file and a rename, then syncs the directory, so a crash leaves either the
// old or the new content, never a torn file.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Rotate creates a new key, which signs from now on, and schedules every
// older key that is not already retiring sooner to retire retireOldAfter from
// now. Until then the old keys stay in the JWKS, so tokens they signed keep
// verifying; choose retireOldAfter at least as long as the longest token
// lifetime (8 h for attestation tokens) plus client /certs cache time.
func (ks *KeySet) Rotate(retireOldAfter time.Duration) error {
	if ks.src != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		return ks.src.rotate(ctx, ks, RotateOptions{RetireAfter: retireOldAfter})
	}
	if retireOldAfter < 0 {
		return fmt.Errorf("token: negative retirement delay %v", retireOldAfter)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	unlock, err := lockDir(ks.dir)
	if err != nil {
		return fmt.Errorf("token: lock key directory: %w", err)
	}
	defer unlock()
	// Start from the disk state: another process may have rotated.
	old, err := ks.loadDisk()
	if err != nil {
		return err
	}
	if len(old) == 0 {
		old = ks.state.Load().keys
	}
	t := ks.now()
	k, err := ks.newKey(t)
	if err != nil {
		return err
	}
	retire := t.Add(retireOldAfter)
	next := []*signingKey{k}
	for _, o := range old {
		// A copy: the current state's keys are shared with running Signs.
		c := &signingKey{kid: o.kid, file: o.file, cert: o.cert, signer: o.signer, created: o.created, activateAt: o.activateAt, retireAt: o.retireAt, jwk: o.jwk}
		if c.retireAt.IsZero() || retire.Before(c.retireAt) {
			c.retireAt = retire
		}
		next = append(next, c)
	}
	live := pruneRetired(next, t)
	if err := ks.commit(live, append([]*signingKey{k}, old...)); err != nil {
		os.Remove(filepath.Join(ks.dir, k.file))
		return err
	}
	return nil
}

// Keys describes the keys of the set, the active one first, including keys past their retire-after time that
// have not been deleted yet.
func (ks *KeySet) Keys() []KeyInfo {
	st := ks.state.Load()
	t := ks.now()
	act := st.active(t)
	out := make([]KeyInfo, 0, len(st.keys))
	info := func(k *signingKey) KeyInfo {
		i := KeyInfo{KID: k.kid, Certificate: k.cert, Created: k.created, ActivateAt: k.activateAt, RetireAt: k.retireAt, Active: k == act}
		switch {
		case !k.retireAt.IsZero() && !t.Before(k.retireAt):
			i.State = KeyRetired
		case i.Active:
			i.State = KeyActive
		case k.activateAt.Equal(StandbyAt):
			i.State = KeyStandby
		case k.activateAt.After(t):
			i.State = KeyPending
		case !k.retireAt.IsZero():
			i.State = KeyRetiring
		default:
			i.State = KeyVerifying
		}
		return i
	}
	// Then the keys next in line (pending, then the standby), then the
	// older ones, newest first: the order of their lives.
	out = append(out, info(act))
	for i := len(st.keys) - 1; i >= 0; i-- {
		if k := st.keys[i]; k != act && k.activateAt.After(act.activateAt) {
			out = append(out, info(k))
		}
	}
	for _, k := range st.keys {
		if k != act && !k.activateAt.After(act.activateAt) {
			out = append(out, info(k))
		}
	}
	return out
}

// ActiveKID returns the kid of the signing key.
func (ks *KeySet) ActiveKID() string { return ks.state.Load().active(ks.now()).kid }

// Signer returns the active signing key's certificate and crypto.Signer.
func (ks *KeySet) Signer() (*x509.Certificate, crypto.Signer) {
	k := ks.state.Load().active(ks.now())
	return k.cert, k.signer
}

// JWKS returns the JSON Web Key Set served at /certs: every key not yet
// retired, active first, each with kty, kid, use, alg, n, e and x5c (the
// self-signed certificate, standard base64 DER). Serve it as
// application/json: the JS SDK does not parse application/jwk+json.
func (ks *KeySet) JWKS() []byte {
	st := ks.state.Load()
	t := ks.now()
	act := st.active(t)
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	b.Write(act.jwk)
	n := 1
	for _, k := range st.keys {
		if k == act || (!k.retireAt.IsZero() && !t.Before(k.retireAt)) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(k.jwk)
		n++
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// lookup returns the unretired key with kid.
func (ks *KeySet) lookup(kid string) *signingKey {
	t := ks.now()
	for _, k := range ks.state.Load().keys {
		if k.kid == kid && (k.retireAt.IsZero() || t.Before(k.retireAt)) {
			return k
		}
	}
	return nil
}

// sortedKIDs is used in error messages.
func (ks *KeySet) sortedKIDs() []string {
	var out []string
	for _, k := range ks.state.Load().keys {
		out = append(out, k.kid)
	}
	sort.Strings(out)
	return out
}
