package token_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

func testKEK(t testing.TB, b byte) *token.KEK {
	t.Helper()
	k, err := token.NewKEK(bytes.Repeat([]byte{b}, token.KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKEKSealOpen(t *testing.T) {
	k, other := testKEK(t, 1), testKEK(t, 2)
	s, err := k.Seal([]byte("secret"), []byte("row a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s, []byte("secret")) {
		t.Fatal("plaintext in envelope")
	}
	if p, err := k.Open(s, []byte("row a")); err != nil || string(p) != "secret" {
		t.Fatalf("open: %q %v", p, err)
	}
	flipped := bytes.Clone(s)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct {
		k    *token.KEK
		s    []byte
		aad  string
		want error
	}{
		"other row":   {k, s, "row b", nil},
		"altered":     {k, flipped, "row a", nil},
		"wrong KEK":   {other, s, "row a", token.ErrWrongKEK},
		"truncated":   {k, s[:10], "row a", nil},
		"empty":       {k, nil, "row a", nil},
		"bad version": {k, append([]byte{9}, s[1:]...), "row a", nil},
	} {
		_, err := tc.k.Open(tc.s, []byte(tc.aad))
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseKEK(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	want := testKEK(t, 7).ID()
	for name, in := range map[string][]byte{
		"raw":       raw,
		"base64":    []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString(raw)),
	} {
		k, err := token.ParseKEK(in)
		if err != nil || k.ID() != want {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string][]byte{"short": raw[:31], "long b64": []byte(base64.StdEncoding.EncodeToString(append(raw, 1))), "text": []byte("not a key at all")} {
		if _, err := token.ParseKEK(in); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestEnsureKEKFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "kek")
	a, created, err := token.EnsureKEKFile(p)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	b, created, err := token.EnsureKEKFile(p)
	if err != nil || created || a.ID() != b.ID() {
		t.Fatalf("reopen: %v %v", created, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := token.LoadKEK(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable KEK: %v", err)
	}
}

// TestEnsureKEKFileRace: replicas starting together on one empty shared
// data directory all end up with the same KEK, and exactly one of them
// created it; a KEK file is never replaced once written.
func TestEnsureKEKFileRace(t *testing.T) {
	for round := range 20 {
		p := filepath.Join(t.TempDir(), "kek")
		const n = 8
		ids := make([]string, n)
		made := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				k, created, err := token.EnsureKEKFile(p)
				if err == nil {
					ids[i] = k.ID()
				}
				made[i], errs[i] = created, err
			}()
		}
		close(start)
		wg.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: replica %d: %v", round, i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("round %d: replicas got KEKs %v", round, ids)
			}
			if made[i] {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d replicas report creating the KEK, want 1", round, creators)
		}
		onDisk, err := token.LoadKEK(p)
		if err != nil || onDisk.ID() != ids[0] {
			t.Fatalf("round %d: the file holds %v (%v), the replicas use %s", round, onDisk, err, ids[0])
		}
	}
}

// TestSealedInstanceSecrets: through store.SealSecrets the database holds
// only the envelope, replicas with the same KEK read one secret, and a
// replica with another KEK is refused rather than handed garbage.
func TestSealedInstanceSecrets(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := store.SealSecrets(db, testKEK(t, 1))
	got, err := a.InstanceSecret(ctx, "inst", "service-context", func() ([]byte, error) { return secret, nil })
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("first: %x %v", got, err)
	}
	stored, err := db.InstanceSecret(ctx, "inst", store.SealedSecretPrefix+"service-context", func() ([]byte, error) { return nil, errors.New("must exist") })
	if err != nil || bytes.Contains(stored, secret) {
		t.Fatalf("stored form %x %v", stored, err)
	}
	b := store.SealSecrets(db, testKEK(t, 1))
	if got, err := b.InstanceSecret(ctx, "inst", "service-context", func() ([]byte, error) { return []byte("other"), nil }); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("second replica: %q %v", got, err)
	}
	c := store.SealSecrets(db, testKEK(t, 2))
	if _, err := c.InstanceSecret(ctx, "inst", "service-context", func() ([]byte, error) { return []byte("x"), nil }); !errors.Is(err, token.ErrWrongKEK) {
		t.Fatalf("wrong KEK: %v", err)
	}
}

// TestLoadKEKNotKeyBytes: the key itself given where a file name belongs
// (--key-encryption-key "$(cat kek)") must not be echoed into the error,
// which reaches logs and terminals; the error says what went wrong.
func TestLoadKEKNotKeyBytes(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, token.KEKSize)
	for _, s := range []string{base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)} {
		_, err := token.LoadKEK(s)
		if err == nil || strings.Contains(err.Error(), s) || !strings.Contains(err.Error(), "file name") {
			t.Fatalf("LoadKEK(key bytes) = %v", err)
		}
	}
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "absent.kek"), "/tmp/" + strings.Repeat("k", token.KEKSize-5)} {
		if _, err := token.LoadKEK(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("a missing file %s is not named: %v", p, err)
		}
	}
}
