package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/store/sqlite"
)

// childEnv makes the test binary run attestd's main instead of the tests,
// so the crash test can SIGKILL a real attestd process without building a
// second binary.
const childEnv = "ATTESTD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// proc is an attestd process started from the test binary.
type proc struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
	stderr *syncBuffer
}

func startProcess(t *testing.T, data string, extra ...string) *proc {
	t.Helper()
	return startProcessAs(t, nil, os.Environ(), data, extra...)
}

// startProcessAs starts attestd under the command prefix (e.g. taskset -c
// 0) with the environment env.
func startProcessAs(t *testing.T, prefix, env []string, data string, extra ...string) *proc {
	t.Helper()
	args := append(slices.Clone(prefix), os.Args[0], "serve", "--listen", "127.0.0.1:0", "--data", data, "--log-level", "warn", "--key-reload-interval", "0")
	cmd := exec.Command(args[0], append(args[1:], extra...)...)
	cmd.Env = append(slices.Clone(env), childEnv+"=1")
	p := &proc{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "attestd listening on https://"); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("attestd exited before listening:\n%s", p.stderr)
		}
		p.base = "https://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("attestd did not start:\n%s", p.stderr)
	}
	pemb, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemb)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return p
}

// crashPolicy is write seq's policy text: each differs in content and size,
// so a torn or mixed write cannot look like any of them.
func crashPolicy(typ string, seq int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"seq\", value=%d);", seq)
	for i := range seq % 7 * 40 {
		fmt.Fprintf(&b, "\n  => issue(type=\"%s-%d-%d\", value=\"%s\");", typ, seq, i, strings.Repeat("x", seq%13))
	}
	b.WriteString("};")
	return b.String()
}

// writer streams PUT /policies/{typ} writes (raw text and unsigned JWS
// alternately), one at a time, and remembers
// what it sent and what was acknowledged (200).
type writer struct {
	typ   string
	sent  []string // texts in send order (across processes)
	acked []bool
}

func (w *writer) run(p *proc, tok string, stop *atomic.Bool, acks *atomic.Int64) {
	for !stop.Load() {
		text := crashPolicy(w.typ, len(w.sent))
		w.sent = append(w.sent, text)
		w.acked = append(w.acked, false)
		body := text
		if len(w.sent)%2 == 1 {
			// Every other write is the SDKs' unsigned JWS form, which is
			// stored as the JWS itself.
			p, _ := json.Marshal(map[string]string{"AttestationPolicy": base64.RawURLEncoding.EncodeToString([]byte(text))})
			body = "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(p) + "."
		}
		req, _ := http.NewRequest("PUT", p.base+"/policies/"+w.typ+"?api-version=2020-10-01", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := p.client.Do(req)
		if err != nil {
			return // the process died under us: this write is unacknowledged
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return
		}
		w.acked[len(w.acked)-1] = true
		acks.Add(1)
	}
}

func (w *writer) lastAcked() int {
	for i := len(w.acked) - 1; i >= 0; i-- {
		if w.acked[i] {
			return i
		}
	}
	return -1
}

// storedPolicy GETs the policy text in force for typ.
func storedPolicy(t *testing.T, p *proc, tok, typ string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", p.base+"/policies/"+typ+"?api-version=2020-10-01", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct{ Token string }
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", typ, res.StatusCode, err)
	}
	seg := func(s string, i int) []byte {
		parts := strings.Split(s, ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWS: %q", s)
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var c struct {
		Policy string `json:"x-ms-policy"`
	}
	json.Unmarshal(seg(r.Token, 1), &c)
	var sp struct{ AttestationPolicy string }
	json.Unmarshal(seg(c.Policy, 1), &sp)
	text, err := base64.RawURLEncoding.DecodeString(sp.AttestationPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// TestCrashDuringPolicyWrites runs the real attestd process, streams policy
// writes for two attestation types over HTTPS, SIGKILLs it mid-stream
// (three times), restarts it on the same data directory and checks that
//   - every acknowledged write survived: GET returns the last acknowledged
//     text or the one write that was in flight, never anything else (torn,
//     older, mixed);
//   - the audit trail is consistent with it: the policy.set entries of a
//     type are an in-order subsequence of the writes sent that contains
//     every acknowledged one, and the last entry names the policy in force.
func TestCrashDuringPolicyWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts attestd processes")
	}
	data := t.TempDir()
	writers := []*writer{{typ: "SgxEnclave"}, {typ: "OpenEnclave"}}
	var tok string
	for round := range 3 {
		p := startProcess(t, data)
		if tok == "" {
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"token", "--data", data, "--role", "contributor", "--ttl", "1h"}, &out, &errb); code != 0 {
				t.Fatalf("token: %d %s", code, errb.String())
			}
			tok = lastLine(out.String())
		}
		var stop atomic.Bool
		var acks atomic.Int64
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Add(1)
			go func() { defer wg.Done(); w.run(p, tok, &stop, &acks) }()
		}
		deadline := time.Now().Add(5 * time.Second)
		want := int64(40 + rand.IntN(40))
		for acks.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
		if acks.Load() == 0 {
			t.Fatalf("round %d: no write was acknowledged:\n%s", round, p.stderr)
		}
		// SIGKILL while both writers have requests in flight.
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()
		stop.Store(true)
		wg.Wait()
		t.Logf("round %d: killed after %d acknowledged writes", round, acks.Load())
	}

	p := startProcess(t, data)
	final := map[string]string{}
	for _, w := range writers {
		got := storedPolicy(t, p, tok, w.typ)
		final[w.typ] = got
		la := w.lastAcked()
		if la < 0 {
			t.Fatalf("%s: no acknowledged write", w.typ)
		}
		idx := slices.Index(w.sent, got)
		switch {
		case idx < 0:
			t.Fatalf("%s: stored policy is none of the texts sent (torn or foreign write): %.120q", w.typ, got)
		case idx < la:
			t.Fatalf("%s: acknowledged write %d lost: the stored policy is write %d", w.typ, la, idx)
		case idx > la+1:
			// Each writer stops at its first failure, so only write la+1
			// can have been in flight after the last acknowledgement.
			t.Fatalf("%s: stored write %d was never sent after the last acknowledged write %d", w.typ, idx, la)
		}
		if _, err := policy.Parse(got); err != nil {
			t.Fatalf("%s: stored policy does not parse: %v", w.typ, err)
		}
	}
	// Graceful stop, then read the audit trail from the database.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("attestd after SIGTERM: %v\n%s", err, p.stderr)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(data, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	audit, err := db.Audit(ctx, "default", 0)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(audit) // oldest first
	for _, w := range writers {
		hashes := map[string]int{}
		for i, s := range w.sent {
			hashes["x-ms-policy-hash "+policy.Hash(s)] = i
		}
		var seqs []int
		for _, a := range audit {
			if a.Action != "policy.set" || a.Target != w.typ {
				continue
			}
			found := -1
			for suffix, i := range hashes {
				if strings.HasSuffix(a.Detail, suffix) {
					found = i
				}
			}
			if found < 0 {
				t.Fatalf("%s: audit entry %d names no write that was sent: %q", w.typ, a.ID, a.Detail)
			}
			if a.Actor == "" || a.Actor == "anonymous" || a.At.IsZero() {
				t.Errorf("%s: audit entry %d lacks who/when: %+v", w.typ, a.ID, a)
			}
			seqs = append(seqs, found)
		}
		if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Fatalf("%s: audit order %v is not the send order", w.typ, seqs)
		}
		for i, ok := range w.acked {
			if ok && !slices.Contains(seqs, i) {
				t.Fatalf("%s: acknowledged write %d has no audit entry (audit %v)", w.typ, i, seqs)
			}
		}
		if last := seqs[len(seqs)-1]; w.sent[last] != final[w.typ] {
			t.Fatalf("%s: last audited write %d is not the policy in force", w.typ, last)
		}
		t.Logf("%s: %d sent, %d acknowledged, %d audited", w.typ, len(w.sent), countTrue(w.acked), len(seqs))
	}
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}
