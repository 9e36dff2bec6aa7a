package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
)

// get is a GET through p's HTTPS client.
func (p *proc) get(t *testing.T, path, bearer string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", p.base+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return b
}

// TestReplicaProcessesOnPostgres runs three attestd OS processes on one
// PostgreSQL database, each with its own data directory and one shared
// key-encryption key (issue 15's proof, with real processes):
//   - a token signed by replica A verifies against replica C's /certs;
//   - a staged rotation (attestd keys rotate on B's data directory) is
//     published by all three before any signs with it, and a /certs cached
//     before it verifies every token after the switch;
//   - policy writes stream through A while A is SIGKILLed mid-stream; B,
//     still serving, then holds every acknowledged write (the last
//     acknowledged text, or the one write in flight), never a torn one;
//   - a write through C afterwards is in force on B at once.
func TestReplicaProcessesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts attestd processes and PostgreSQL")
	}
	kek := replicaStore(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	a := startProcess(t, dirs[0], "--key-encryption-key", kek)
	b := startProcess(t, dirs[1], "--key-encryption-key", kek)
	c := startProcess(t, dirs[2], "--key-encryption-key", kek)

	// A's token against C's /certs.
	var r struct{ Token string }
	if err := json.Unmarshal(a.get(t, "/policies/SgxEnclave?api-version=2020-10-01", devToken(t, dirs[0], "reader")), &r); err != nil {
		t.Fatal(err)
	}
	tok, err := verifier.ParseToken(r.Token)
	if err != nil {
		t.Fatal(err)
	}
	set, err := verifier.ParseJWKS(c.get(t, "/certs", ""))
	if err != nil {
		t.Fatal(err)
	}
	k := set.Lookup(tok.Header.Kid)
	if k == nil {
		t.Fatalf("A signs with %s, which C does not publish", tok.Header.Kid)
	}
	if err := tok.CheckSignature(k.Certificates[0]); err != nil {
		t.Fatalf("A's token against C's /certs: %v", err)
	}

	// Staged rotation through the CLI on B's data directory: every process
	// publishes the new key before any signs with it (NOTIFY carries it:
	// polling is off), and a /certs cached before the rotation verifies
	// every token after the switch.
	procs := map[string]*proc{"A": a, "B": b, "C": c}
	readers := map[string]string{"A": devToken(t, dirs[0], "reader"), "B": devToken(t, dirs[1], "reader"), "C": devToken(t, dirs[2], "reader")}
	kids := func(p *proc) []string {
		set, err := verifier.ParseJWKS(p.get(t, "/certs", ""))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KID)
		}
		return out
	}
	signer := func(p *proc, bearer string) *verifier.Token {
		var r struct{ Token string }
		if err := json.Unmarshal(p.get(t, "/policies/SgxEnclave?api-version=2020-10-01", bearer), &r); err != nil {
			t.Fatal(err)
		}
		tok, err := verifier.ParseToken(r.Token)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := kids(a)
	cached, err := verifier.ParseJWKS(c.get(t, "/certs", ""))
	if err != nil {
		t.Fatal(err)
	}
	verifyCached := func(tok *verifier.Token, what string) {
		k := cached.Lookup(tok.Header.Kid)
		if k == nil {
			t.Fatalf("%s: kid %s not in the /certs cached before the rotation", what, tok.Header.Kid)
		}
		if err := tok.CheckSignature(k.Certificates[0]); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	const prepublish = 6 * time.Second
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rotate", "--data", dirs[1], "--key-encryption-key", kek, "--key-prepublish", prepublish.String()}, &out, &errb); code != 0 {
		t.Fatalf("keys rotate: %d %s", code, errb.String())
	}
	m := regexp.MustCompile(`(?m)^(\S{44})\s+pending\s+\S+\s+(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("rotate output has no pending key:\n%s", out.String())
	}
	second := m[1]
	activate, err := time.Parse(time.RFC3339, m[2])
	if err != nil {
		t.Fatal(err)
	}
	activate = activate.Add(time.Second) // the listing truncates to seconds
	for n, p := range procs {
		for deadline := time.Now().Add(prepublish); len(kids(p)) != 3 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if got := kids(p); len(got) != 3 || !slices.Contains(got, second) {
			t.Fatalf("process %s publishes %v during pre-publication, want 3 keys with %s", n, got, second)
		}
		asked := time.Now()
		tok := signer(p, readers[n])
		if asked.Before(activate.Add(-time.Second)) && tok.Header.Kid != first[0] {
			t.Fatalf("process %s signs with %s before the activation of %s at %s", n, tok.Header.Kid, second, activate)
		}
		verifyCached(tok, "process "+n+" before the switch")
	}
	time.Sleep(time.Until(activate))
	for n, p := range procs {
		tok := signer(p, readers[n])
		if tok.Header.Kid != second {
			t.Fatalf("process %s signs with %s after the activation of %s", n, tok.Header.Kid, second)
		}
		verifyCached(tok, "process "+n+" after the switch")
	}

	// Writes through A; SIGKILL A while they are in flight.
	w := &writer{typ: "SgxEnclave"}
	var stop atomic.Bool
	var acks atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(a, devToken(t, dirs[0], "contributor"), &stop, &acks) }()
	want := int64(20 + rand.IntN(20))
	for deadline := time.Now().Add(10 * time.Second); acks.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	stop.Store(true)
	wg.Wait()
	la := w.lastAcked()
	if la < 0 {
		t.Fatalf("no write through A was acknowledged:\n%s", a.stderr)
	}
	got := storedPolicy(t, b, devToken(t, dirs[1], "reader"), "SgxEnclave")
	switch idx := slices.Index(w.sent, got); {
	case idx < 0:
		t.Fatalf("B serves none of the texts sent through A (torn or foreign): %.120q", got)
	case idx < la:
		t.Fatalf("acknowledged write %d lost after A was killed: B serves write %d", la, idx)
	case idx > la+1:
		t.Fatalf("B serves write %d, never sent after the last acknowledged %d", idx, la)
	}
	t.Logf("A killed after %d acknowledged writes (%d sent); B serves an acknowledged or in-flight write", acks.Load(), len(w.sent))

	// The surviving replicas keep working together.
	text := crashPolicy("after", 3)
	req, _ := http.NewRequest("PUT", c.base+"/policies/SgxEnclave?api-version=2020-10-01", strings.NewReader(text))
	req.Header.Set("Authorization", "Bearer "+devToken(t, dirs[2], "contributor"))
	res, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("PUT through C: %d", res.StatusCode)
	}
	if got := storedPolicy(t, b, devToken(t, dirs[1], "reader"), "SgxEnclave"); got != text {
		t.Fatalf("B does not serve C's change at once: %.80q", got)
	}
}
