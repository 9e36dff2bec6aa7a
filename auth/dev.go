package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DevIssuer is the iss of development-identity tokens. The .local name
// cannot belong to a real public issuer.
const DevIssuer = "https://attestd.local/dev"

// DevSubject is the sub of development-identity tokens.
const DevSubject = "attestd-dev"

// Files of the development identity inside DIR/dev-identity/.
const (
	devDirName  = "dev-identity"
	devKeyFile  = "key.pem"   // PKCS#8 ECDSA P-256 private key, 0600
	devJWKSFile = "jwks.json" // public JWKS the server trusts
)

// DevIdentity is a local token issuer for development and tests: an ECDSA
// P-256 key kept in DIR/dev-identity/ next to the server's other state. A
// server started with the same data directory can trust it through
// (*DevIdentity).Issuer(); whoever can read the data directory can mint
// admin tokens, so a server must trust it only when explicitly asked to
// (it already holds the signing keys there, so this grants nothing new to
// someone with that access).
type DevIdentity struct {
	dir string
	key *ecdsa.PrivateKey
	kid string
}

// OpenDevIdentity loads the development identity of dataDir, creating it on
// first use. Creation is atomic (the directory appears complete or not at
// all), so concurrent first uses agree on one key.
func OpenDevIdentity(dataDir string) (*DevIdentity, error) {
	if dataDir == "" {
		return nil, errors.New("auth: empty data directory")
	}
	dir := filepath.Join(dataDir, devDirName)
	id, err := loadDevIdentity(dir)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := createDevIdentity(dataDir, dir); err != nil {
		return nil, err
	}
	return loadDevIdentity(dir)
}

func loadDevIdentity(dir string) (*DevIdentity, error) {
	path := filepath.Join(dir, devKeyFile)
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("auth: development key %s has mode %04o; it must not be accessible to group or others (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read development key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("auth: %s does not hold a PRIVATE KEY PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: parse development key %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("auth: development key %s is %T, want ECDSA P-256", path, k)
	}
	kid, err := devKID(&ek.PublicKey)
	if err != nil {
		return nil, err
	}
	id := &DevIdentity{dir: dir, key: ek, kid: kid}
	// The JWKS file must describe this key; rewrite it if it was lost or
	// damaged (it is public and derived).
	if want, err := id.jwks(); err != nil {
		return nil, err
	} else if got, err := os.ReadFile(id.JWKSFile()); err != nil || string(got) != string(want) {
		if err := os.WriteFile(id.JWKSFile(), want, 0o644); err != nil {
			return nil, fmt.Errorf("auth: rewrite development JWKS: %w", err)
		}
	}
	return id, nil
}

// devKID is the RFC 7638 JWK thumbprint (SHA-256, base64url).
func devKID(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("auth: development key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func createDevIdentity(dataDir, dir string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("auth: create data directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dataDir, ".dev-identity-*")
	if err != nil {
		return fmt.Errorf("auth: create development identity: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename this is a no-op
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: generate development key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("auth: encode development key: %w", err)
	}
	kid, err := devKID(&key.PublicKey)
	if err != nil {
		return err
	}
	id := &DevIdentity{dir: tmp, key: key, kid: kid}
	jwks, err := id.jwks()
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, devKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("auth: write development key: %w", err)
	}
	if err := writeSynced(filepath.Join(tmp, devJWKSFile), jwks, 0o644); err != nil {
		return fmt.Errorf("auth: write development JWKS: %w", err)
	}
	// rename(2) of a directory onto an existing non-empty one fails: if
	// another process won the race, use its identity.
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, devKeyFile)); statErr == nil {
			return nil
		}
		return fmt.Errorf("auth: install development identity: %w", err)
	}
	if d, err := os.Open(dataDir); err == nil {
		d.Sync() //nolint:errcheck // best effort: make the rename durable
		d.Close()
	}
	return nil
}

func writeSynced(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (d *DevIdentity) jwks() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &d.key.PublicKey, KeyID: d.kid, Algorithm: string(jose.ES256), Use: "sig",
	}}}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("auth: encode development JWKS: %w", err)
	}
	return append(b, '\n'), nil
}

// KeyID returns the kid of the development key.
func (d *DevIdentity) KeyID() string { return d.kid }

// JWKSFile is the path of the development identity's public JWKS.
func (d *DevIdentity) JWKSFile() string { return filepath.Join(d.dir, devJWKSFile) }

// Issuer returns the Issuer entry under which a server trusts this identity.
func (d *DevIdentity) Issuer() Issuer {
	return Issuer{Issuer: DevIssuer, JWKSFile: d.JWKSFile()}
}

// Mint issues a token for role (reader or contributor), valid from now for
// ttl, with aud https://attest.azure.net and the default role value
// (Attestation.Reader / Attestation.Contributor) in roles. A non-empty
// instance scopes the token to that instance (claim attestd_instance).
func (d *DevIdentity) Mint(now time.Time, role Role, instance string, ttl time.Duration) (string, error) {
	var roleName string
	switch role {
	case RoleReader:
		roleName = ReaderRole
	case RoleContributor:
		roleName = ContributorRole
	default:
		return "", fmt.Errorf("auth: cannot mint a token for role %s", role)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: token lifetime %v must be positive", ttl)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: d.key, KeyID: d.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("auth: development signer: %w", err)
	}
	var jti [16]byte
	rand.Read(jti[:])
	claims := map[string]any{
		"iss":   DevIssuer,
		"sub":   DevSubject,
		"aud":   Audience,
		"iat":   jwt.NewNumericDate(now),
		"nbf":   jwt.NewNumericDate(now),
		"exp":   jwt.NewNumericDate(now.Add(ttl)),
		"jti":   base64.RawURLEncoding.EncodeToString(jti[:]),
		"roles": []string{roleName},
		"name":  "attestd development identity",
	}
	if instance != "" {
		claims["attestd_instance"] = instance
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("auth: sign development token: %w", err)
	}
	return tok, nil
}

// HasDevIdentity reports whether dataDir holds a development identity (one
// a server has created, or OpenDevIdentity). "attestd token" checks it so
// that a mistyped data directory is an error instead of a fresh identity
// whose tokens no server trusts.
func HasDevIdentity(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, devDirName, devKeyFile))
	return err == nil
}

// MintDevToken mints a development token with the identity of dataDir
// (created on first use); role is "reader" or "contributor". It reads the
// wall clock: it is meant for the "attestd token" command.
func MintDevToken(dataDir string, role string, instance string, ttl time.Duration) (string, error) {
	r, err := ParseRole(role)
	if err != nil {
		return "", err
	}
	id, err := OpenDevIdentity(dataDir)
	if err != nil {
		return "", err
	}
	return id.Mint(time.Now(), r, instance, ttl)
}
