package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/store/postgres/pgtest"
	"github.com/attestd/attestd/token"
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
//   - policy writes stream through A while A is SIGKILLed mid-stream; B,
//     still serving, then holds every acknowledged write (the last
//     acknowledged text, or the one write in flight), never a torn one;
//   - a write through C afterwards is in force on B at once.
func TestReplicaProcessesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts attestd processes and PostgreSQL")
	}
	srv, err := pgtest.Start(context.Background())
	pgtest.Require(t, err)
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Setenv("ATTESTD_STORE_DSN", srv.NewDatabase(t))
	kek := filepath.Join(t.TempDir(), "kek")
	if _, _, err := token.EnsureKEKFile(kek); err != nil {
		t.Fatal(err)
	}
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
