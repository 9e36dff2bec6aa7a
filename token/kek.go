package token

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KEKSize is the length of a key-encryption key: AES-256.
const KEKSize = 32

// kekVersion starts every envelope; the 4 bytes after it identify the KEK
// (a hash of it, not the key), so a wrong KEK is named as such instead of
// failing as a corrupt ciphertext.
const kekVersion = 0x01

// ErrWrongKEK is returned by Open for an envelope sealed under another
// key-encryption key.
var ErrWrongKEK = errors.New("token: sealed under a different key-encryption key")

// KEK is a key-encryption key. Private keys and instance secrets are stored
// in the database only as AES-256-GCM envelopes under it, bound by
// additional data to what they are (instance and kid), so the database
// alone never yields a key, and a sealed value cannot be moved to another
// row. The KEK itself is never stored in the database or logged.
type KEK struct {
	aead cipher.AEAD
	id   [4]byte
	// prev, when set, also opens envelopes (never seals): the KEK being
	// rotated out (see WithPrevious).
	prev *KEK
}

// WithPrevious returns a KEK that seals under k and opens envelopes sealed
// under k or under prev, the key-encryption key being rotated out
// (--previous-key-encryption-key). Replicas restarted one by one with
// both keep reading what the others stored under prev while every value
// they write is under k; "attestd keys rewrap" then re-seals the rest, and
// prev can go. prev's own previous key is not consulted.
func (k *KEK) WithPrevious(prev *KEK) *KEK {
	c := *k
	c.prev = nil
	if prev != nil && prev.id != k.id {
		p := *prev
		p.prev = nil
		c.prev = &p
	}
	return &c
}

// Previous returns the KEK given to WithPrevious, or nil.
func (k *KEK) Previous() *KEK { return k.prev }

// NewKEK makes a KEK of 32 key bytes.
func NewKEK(key []byte) (*KEK, error) {
	if len(key) != KEKSize {
		return nil, fmt.Errorf("token: key-encryption key has %d bytes, want %d", len(key), KEKSize)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token: key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, fmt.Errorf("token: key-encryption key: %w", err)
	}
	k := &KEK{aead: aead}
	h := sha256.Sum256(append([]byte("attestd key-encryption key id\x00"), key...))
	copy(k.id[:], h[:])
	return k, nil
}

// ID is a short public identifier of the KEK (hex of a hash), for logs.
func (k *KEK) ID() string { return fmt.Sprintf("%x", k.id) }

// ParseKEK reads a key-encryption key file's content: exactly 32 raw
// bytes, or their base64 (standard or URL alphabet, padded or not) with
// surrounding whitespace.
func ParseKEK(b []byte) (*KEK, error) {
	if len(b) == KEKSize {
		return NewKEK(b)
	}
	t := bytes.TrimSpace(b)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(string(t)); err == nil && len(d) == KEKSize {
			return NewKEK(d)
		}
	}
	return nil, fmt.Errorf("token: a key-encryption key file holds %d random bytes, raw or base64; this one holds %d bytes that are neither", KEKSize, len(b))
}

// parseKEKErr says whether s is a base64 key-encryption key (ParseKEK's
// text forms; a 32-byte s is more likely a file name than raw key bytes).
func parseKEKErr(s string) error {
	_, err := ParseKEK([]byte(s))
	return err
}

// LoadKEK reads the key-encryption key file at path. Like a private key
// file it must not be readable by group or others.
func LoadKEK(path string) (*KEK, error) {
	st, err := os.Stat(path)
	if err != nil {
		if len(path) != KEKSize && parseKEKErr(path) == nil {
			// The key itself where its file name belongs: repeating it
			// would copy it into logs and terminals.
			return nil, errors.New("token: key-encryption key: the value given is the key itself, not a file name; put the key in a file (mode 0600) and give its name (a key on a command line is visible in process listings)")
		}
		return nil, fmt.Errorf("token: key-encryption key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token: key-encryption key file %s has mode %04o; it must not be accessible to group or others (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: key-encryption key: %w", err)
	}
	k, err := ParseKEK(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}

// EnsureKEKFile loads the KEK at path, creating it (32 random bytes,
// base64, mode 0600) when absent: the single-node default, kept in the
// data directory. created reports a new file.
func EnsureKEKFile(path string) (k *KEK, created bool, err error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		k, err := LoadKEK(path)
		return k, false, err
	}
	key := make([]byte, KEKSize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("token: generate key-encryption key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("token: key-encryption key: %w", err)
	}
	// Created exclusively: replicas starting together on one empty shared
	// data directory (deploy/replicas) race here, and a file replaced
	// after another replica sealed keys under it would lock them out for
	// good. The loser of the race uses the winner's key.
	won, err := createFileExclusive(filepath.Dir(path), filepath.Base(path), []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, false, fmt.Errorf("token: write key-encryption key: %w", err)
	}
	if !won {
		k, err := LoadKEK(path)
		return k, false, err
	}
	k, err = NewKEK(key)
	return k, err == nil, err
}

// createFileExclusive writes data to dir/name (mode 0600) only if no such
// file exists, and reports whether it did. The content is written and
// synced under a temporary name, then hard-linked into place, so a reader
// never sees a partial file and an existing file is never replaced; where
// the file system has no hard links it falls back to O_EXCL creation.
func createFileExclusive(dir, name string, data []byte) (created bool, err error) {
	final := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	switch err := os.Link(tmp, final); {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return false, nil
	default:
		ef, eerr := os.OpenFile(final, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(eerr, fs.ErrExist) {
			return false, nil
		}
		if eerr != nil {
			return false, fmt.Errorf("%v; and exclusive create: %w", err, eerr)
		}
		if _, err := ef.Write(data); err != nil {
			ef.Close()
			return false, err
		}
		if err := ef.Sync(); err != nil {
			ef.Close()
			return false, err
		}
		if err := ef.Close(); err != nil {
			return false, err
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return true, err
	}
	defer d.Close()
	return true, d.Sync()
}

// EnvelopeKEK returns the ID (as KEK.ID) of the key-encryption key that
// sealed b, and false when b is not an envelope of this format (e.g. a
// PKCS#11 key reference). It reads only the header: b may be corrupt.
func EnvelopeKEK(b []byte) (string, bool) {
	const hdr = 1 + 4 + 12 + 16 // version, KEK id, GCM nonce, GCM tag
	if len(b) < hdr || b[0] != kekVersion {
		return "", false
	}
	return fmt.Sprintf("%x", b[1:5]), true
}

// Seal returns version ‖ KEK id ‖ nonce ‖ AES-GCM(plain) with aad
// authenticated. aad must say what plain is and where it belongs.
func (k *KEK) Seal(plain, aad []byte) ([]byte, error) {
	out := make([]byte, 1+len(k.id)+k.aead.NonceSize(), 1+len(k.id)+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out[0] = kekVersion
	copy(out[1:], k.id[:])
	nonce := out[1+len(k.id):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("token: seal: %w", err)
	}
	return k.aead.Seal(out, nonce, plain, aad), nil
}

// Open reverses Seal. It fails with ErrWrongKEK for another KEK's
// envelope, and with an authentication error when the envelope or aad was
// changed.
func (k *KEK) Open(sealed, aad []byte) ([]byte, error) {
	hdr := 1 + len(k.id) + k.aead.NonceSize()
	if len(sealed) < hdr+k.aead.Overhead() || sealed[0] != kekVersion {
		return nil, errors.New("token: not a key-encryption-key envelope (version 1)")
	}
	if !bytes.Equal(sealed[1:1+len(k.id)], k.id[:]) {
		if k.prev != nil && bytes.Equal(sealed[1:1+len(k.id)], k.prev.id[:]) {
			return k.prev.Open(sealed, aad)
		}
		if k.prev != nil {
			return nil, fmt.Errorf("%w (envelope KEK %x, this KEK %x, previous KEK %x): every replica needs the same --key-encryption-key", ErrWrongKEK, sealed[1:1+len(k.id)], k.id, k.prev.id)
		}
		return nil, fmt.Errorf("%w (envelope KEK %x, this KEK %x): every replica needs the same --key-encryption-key", ErrWrongKEK, sealed[1:1+len(k.id)], k.id)
	}
	p, err := k.aead.Open(nil, sealed[1+len(k.id):hdr], sealed[hdr:], aad)
	if err != nil {
		return nil, errors.New("token: sealed value fails authentication (altered, or moved from another row)")
	}
	return p, nil
}
