package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/store/postgres/pgtest"
	"github.com/attestd/attestd/token"
)

// signedPolicyToken GETs the SgxEnclave policy: the response token is
// signed by the replica's active key.
func signedPolicyToken(t *testing.T, s *server, bearer string) *verifier.Token {
	t.Helper()
	code, body := s.do(t, "GET", "/policies/SgxEnclave?api-version=2020-10-01", bearer, "")
	if code != 200 {
		t.Fatalf("GET policy: %d %s", code, body)
	}
	var r struct{ Token string }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	tok, err := verifier.ParseToken(r.Token)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verifyAgainst checks tok against a /certs document as a relying party
// does: the key with the token's kid, its x5c[0].
func verifyAgainst(t *testing.T, certs []byte, tok *verifier.Token, what string) {
	t.Helper()
	set, err := verifier.ParseJWKS(certs)
	if err != nil {
		t.Fatal(err)
	}
	k := set.Lookup(tok.Header.Kid)
	if k == nil {
		t.Fatalf("%s: kid %s not in /certs %s", what, tok.Header.Kid, certs)
	}
	if err := tok.CheckSignature(k.Certificates[0]); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func certKIDs(t *testing.T, s *server) []string {
	t.Helper()
	_, b := s.do(t, "GET", "/certs", "", "")
	set, err := verifier.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

func devToken(t *testing.T, data, role string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "--data", data, "--role", role}, &out, &errb); code != 0 {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	return lastLine(out.String())
}

// TestReplicasShareSigningKeys runs three replicas on one PostgreSQL
// database with separate data directories and one key-encryption key, and
// polling off (--key-reload-interval 0), so only LISTEN/NOTIFY carries key
// changes between them. A token signed by A verifies against C's /certs; a
// policy set through A is in force on B at once; a staged rotation is
// published by all three before any signs with it; a relying party that
// cached /certs before the rotation verifies every token through the
// switch; the database holds neither the KEK nor a plaintext private key.
func TestReplicasShareSigningKeys(t *testing.T) {
	kekFile := replicaStore(t)
	dirs := map[string]string{"A": t.TempDir(), "B": t.TempDir(), "C": t.TempDir()}
	servers := map[string]*server{}
	for _, n := range []string{"A", "B", "C"} {
		servers[n] = startServer(t, "--data", dirs[n], "--key-encryption-key", kekFile, "--key-reload-interval", "0")
	}
	defer func() {
		for _, s := range servers {
			s.stop(t)
		}
	}()
	a, b, c := servers["A"], servers["B"], servers["C"]
	readers := map[string]string{}
	for n, d := range dirs {
		readers[n] = devToken(t, d, "reader")
		if _, err := os.Stat(filepath.Join(d, "keys")); err == nil {
			t.Errorf("replica %s wrote key files into its data directory", n)
		}
	}
	first := certKIDs(t, a) // the active key and its standby
	for n, s := range servers {
		if got := certKIDs(t, s); len(got) != 2 || !slices.Equal(got, first) {
			t.Fatalf("replica %s publishes %v, A %v", n, got, first)
		}
	}
	_, certsC := c.do(t, "GET", "/certs", "", "")
	verifyAgainst(t, certsC, signedPolicyToken(t, a, readers["A"]), "A's token against C's /certs")

	const text = "version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"replica\", value=\"three\"); };"
	if code, body := a.do(t, "PUT", "/policies/SgxEnclave?api-version=2020-10-01", devToken(t, dirs["A"], "contributor"), text); code != 200 {
		t.Fatalf("PUT through A: %d %s", code, body)
	}
	if got := servedPolicy(t, b, readers["B"]); got != text {
		t.Fatalf("B serves %q right after A's change", got)
	}

	// Staged rotation through the CLI, on B's data directory.
	cached := certsC
	const prepublish = 8 * time.Second
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rotate", "--data", dirs["B"], "--key-encryption-key", kekFile,
		"--key-prepublish", prepublish.String()}, &out, &errb); code != 0 {
		t.Fatalf("keys rotate: %d %s", code, errb.String())
	}
	m := regexp.MustCompile(`(?m)^(\S{44})\s+pending\s+\S+\s+(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("rotate output has no pending key:\n%s", out.String())
	}
	second := m[1]
	if second != first[1] {
		t.Fatalf("the rotation promoted %s, not the standby %s every client already holds", second, first[1])
	}
	activate, err := time.Parse(time.RFC3339, m[2])
	if err != nil {
		t.Fatal(err)
	}
	activate = activate.Add(time.Second) // the listing truncates to seconds
	// Every replica publishes the new standby (through NOTIFY: nothing
	// polls) while the old key still signs.
	for n, s := range servers {
		deadline := time.Now().Add(prepublish)
		for len(certKIDs(t, s)) != 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := certKIDs(t, s); len(got) != 3 || got[0] != first[0] || !slices.Contains(got, second) {
			t.Fatalf("replica %s publishes %v during pre-publication (want %s first, and %s)", n, got, first[0], second)
		}
		asked := time.Now()
		tok := signedPolicyToken(t, s, readers[n])
		if asked.Before(activate.Add(-time.Second)) && tok.Header.Kid != first[0] {
			t.Fatalf("replica %s signed with %s before its activation at %s", n, tok.Header.Kid, activate)
		}
		verifyAgainst(t, cached, tok, "before the switch, cached /certs")
	}
	time.Sleep(time.Until(activate))
	for n, s := range servers {
		tok := signedPolicyToken(t, s, readers[n])
		if tok.Header.Kid != second {
			t.Fatalf("replica %s signs with %s after the activation of %s", n, tok.Header.Kid, second)
		}
		verifyAgainst(t, cached, tok, "after the switch, /certs cached before the rotation")
	}
	// "keys list" from any data directory shows the same states.
	out.Reset()
	if code := run(context.Background(), []string{"keys", "list", "--data", dirs["C"], "--key-encryption-key", kekFile}, &out, &errb); code != 0 {
		t.Fatalf("keys list: %s", errb.String())
	}
	if !regexp.MustCompile(regexp.QuoteMeta(second)+`\s+active`).MatchString(out.String()) ||
		!regexp.MustCompile(regexp.QuoteMeta(first[0])+`\s+retiring`).MatchString(out.String()) {
		t.Fatalf("keys list after the switch:\n%s", out.String())
	}
	// A replica with another KEK refuses to start rather than sign with
	// keys of its own.
	other := filepath.Join(t.TempDir(), "kek")
	if _, _, err := token.EnsureKEKFile(other); err != nil {
		t.Fatal(err)
	}
	var sout syncBuffer
	err = serveCmd(context.Background(), []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--key-encryption-key", other}, &sout, &sout, nil)
	if err == nil || !strings.Contains(err.Error(), "same --key-encryption-key") {
		t.Fatalf("replica with another KEK: %v", err)
	}
}

// replicaStore starts PostgreSQL with a fresh database, points every
// replica the test starts at it (ATTESTD_STORE_DSN) and returns the one
// key-encryption key file they all share.
func replicaStore(t *testing.T) (kekFile string) {
	t.Helper()
	srv, err := pgtest.Start(context.Background())
	pgtest.Require(t, err)
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Setenv("ATTESTD_STORE_DSN", srv.NewDatabase(t))
	kekFile = filepath.Join(t.TempDir(), "kek")
	if _, _, err := token.EnsureKEKFile(kekFile); err != nil {
		t.Fatal(err)
	}
	return kekFile
}
