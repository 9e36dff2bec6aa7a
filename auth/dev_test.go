package auth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDevTokenRoundTrip(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	id, err := OpenDevIdentity(data)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := New(Config{Issuers: []Issuer{id.Issuer()}, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role     string
		instance string
		want     Role
	}{
		{"reader", "", RoleReader},
		{"contributor", "inst1", RoleContributor},
		{"Attestation.Contributor", "", RoleContributor},
	} {
		tok, err := MintDevToken(data, tc.role, tc.instance, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p, err := auth.Authenticate(context.Background(), "Bearer "+tok)
		if err != nil {
			t.Fatalf("%s: %v", tc.role, err)
		}
		if p.Role != tc.want || p.Issuer != DevIssuer || p.Subject != DevSubject || p.Instance != tc.instance {
			t.Fatalf("%s: principal %+v", tc.role, p)
		}
	}
	if _, err := MintDevToken(data, "owner", "", time.Hour); err == nil {
		t.Error("minted a token for an unknown role")
	}
	if _, err := MintDevToken(data, "reader", "", 0); err == nil {
		t.Error("minted a token with zero lifetime")
	}

	// Reopening reuses the key; a token from another data dir is rejected.
	id2, err := OpenDevIdentity(data)
	if err != nil || id2.KeyID() != id.KeyID() {
		t.Fatalf("reopen: kid %v vs %v, %v", id2, id.KeyID(), err)
	}
	other, err := MintDevToken(filepath.Join(t.TempDir(), "other"), "contributor", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(context.Background(), "Bearer "+other); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("token of another dev identity: %v, want unknown_key", err)
	}

	st, err := os.Stat(filepath.Join(data, "dev-identity", "key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v, %v", st.Mode(), err)
	}
}

func TestDevTokenExpires(t *testing.T) {
	id, err := OpenDevIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	auth, err := New(Config{Issuers: []Issuer{id.Issuer()}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := id.Mint(t0, RoleContributor, "", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(context.Background(), "Bearer "+tok); err != nil {
		t.Fatal(err)
	}
	c.Add(20 * time.Minute)
	if _, err := auth.Authenticate(context.Background(), "Bearer "+tok); ReasonOf(err) != ReasonExpired {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestDevIdentityConcurrentCreate(t *testing.T) {
	data := t.TempDir()
	var wg sync.WaitGroup
	kids := make([]string, 4)
	errs := make([]error, 4)
	for i := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := OpenDevIdentity(data)
			errs[i] = err
			if err == nil {
				kids[i] = id.KeyID()
			}
		}()
	}
	wg.Wait()
	for i := range kids {
		if errs[i] != nil || kids[i] != kids[0] {
			t.Fatalf("concurrent opens disagree: %q %v", kids, errs)
		}
	}
	entries, _ := os.ReadDir(data)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".dev-identity") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestDevIdentityRejectsLooseKey(t *testing.T) {
	data := t.TempDir()
	if _, err := OpenDevIdentity(data); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(data, "dev-identity", "key.pem"), 0o644)
	if _, err := OpenDevIdentity(data); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose key accepted: %v", err)
	}
}

func TestDevIdentityRepairsJWKS(t *testing.T) {
	data := t.TempDir()
	id, err := OpenDevIdentity(data)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(id.JWKSFile())
	if _, err := OpenDevIdentity(data); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(id.JWKSFile())
	if err != nil || !strings.Contains(string(b), id.KeyID()) {
		t.Fatalf("JWKS not rewritten: %s, %v", b, err)
	}
}
