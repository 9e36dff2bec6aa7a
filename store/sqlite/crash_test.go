package sqlite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
)

// The crash test re-executes the test binary as a child that streams
// PutPolicy writes and prints "ACK <n>" after each write returns. The parent
// SIGKILLs it mid-stream, reopens the database and checks that every
// acknowledged write is there, whole. A SIGKILL loses the process, not the
// OS page cache, so this proves atomicity and that an acknowledged commit
// reached the file; fsync-to-media (synchronous=FULL) is checked separately
// by TestDurabilitySettings.
const (
	crashChildEnv  = "ATTESTD_STORE_CRASH_CHILD"
	crashStartEnv  = "ATTESTD_STORE_CRASH_START"
	crashTypes     = 4
	crashKillAfter = 40 // acknowledged writes before the kill
)

var crashTime = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// crashPolicy builds write n deterministically: the policy text (sized to
// span several SQLite pages for some n), an unsigned JWS carrying it, and
// the audit entry whose Hash is SHA-256 of the JWS.
func crashPolicy(n int) (*store.Policy, store.AuditEntry) {
	typ := fmt.Sprintf("Type%d", n%crashTypes)
	pad := strings.Repeat(fmt.Sprintf("%08d", n), 1+(n*997)%2048) // up to ~16 KiB
	text := fmt.Sprintf("version=1.0; authorizationrules { => permit(); }; // write %d %s", n, pad)
	payload, _ := json.Marshal(map[string]string{"AttestationPolicy": base64.RawURLEncoding.EncodeToString([]byte(text))})
	jws := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(payload) + "."
	sum := sha256.Sum256([]byte(jws))
	p := &store.Policy{Instance: "crash", Type: typ, JWS: jws, Text: text, UpdatedAt: crashTime.Add(time.Duration(n) * time.Second)}
	a := store.AuditEntry{At: p.UpdatedAt, Actor: "child", Action: "policy.set", Target: typ,
		Hash: base64.RawURLEncoding.EncodeToString(sum[:]), Detail: strconv.Itoa(n)}
	return p, a
}

// checkPolicyConsistent verifies that a stored policy is one whole write:
// its text is the one its JWS carries, and it equals crashPolicy(n).
func checkPolicyConsistent(t *testing.T, p *store.Policy) int {
	t.Helper()
	parts := strings.Split(p.JWS, ".")
	if len(parts) != 3 {
		t.Fatalf("torn JWS for %s: %d parts", p.Type, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("torn JWS payload for %s: %v", p.Type, err)
	}
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("torn JWS payload JSON for %s: %v", p.Type, err)
	}
	text, err := base64.RawURLEncoding.DecodeString(body["AttestationPolicy"])
	if err != nil || string(text) != p.Text {
		t.Fatalf("policy %s: text does not match its JWS", p.Type)
	}
	var n int
	if _, err := fmt.Sscanf(p.Text[strings.Index(p.Text, "// write ")+len("// write "):], "%d", &n); err != nil {
		t.Fatalf("policy %s: cannot find write number: %v", p.Type, err)
	}
	want, _ := crashPolicy(n)
	if p.Text != want.Text || p.JWS != want.JWS || !p.UpdatedAt.Equal(want.UpdatedAt) || p.Type != want.Type {
		t.Fatalf("policy %s: stored record differs from write %d", p.Type, n)
	}
	return n
}

func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestCrashAcknowledgedWritesSurvive")
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	db, err := Open(context.Background(), path, nil)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	for n := start; ; n++ {
		p, a := crashPolicy(n)
		if err := db.PutPolicy(context.Background(), p, a); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Printf("ACK %d\n", n) // os.Stdout is unbuffered: printed means acknowledged
	}
}

func TestCrashAcknowledgedWritesSurvive(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in child")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	next := 0
	for round := range 3 {
		acked := runCrashChild(t, path, next, time.Duration(round)*700*time.Microsecond)
		db, err := Open(context.Background(), path, nil)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		// Every acknowledged write has its audit entry, with the right hash.
		entries, err := db.Audit(context.Background(), "crash", 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]store.AuditEntry{}
		for _, e := range entries {
			n, err := strconv.Atoi(e.Detail)
			if err != nil {
				t.Fatalf("audit entry with bad detail %q", e.Detail)
			}
			_, want := crashPolicy(n)
			if e.Hash != want.Hash || e.Target != want.Target || !e.At.Equal(want.At) {
				t.Fatalf("round %d: audit entry of write %d is torn: %+v", round, n, e)
			}
			seen[n] = e
		}
		lastAcked := map[string]int{}
		for _, n := range acked {
			if _, ok := seen[n]; !ok {
				t.Fatalf("round %d: acknowledged write %d has no audit entry", round, n)
			}
			p, _ := crashPolicy(n)
			lastAcked[p.Type] = n
		}
		// Every type holds a whole write at least as new as its last acknowledged one,
		// and the policy matches the newest audit entry of that type.
		maxN := next - 1
		for typ, n := range lastAcked {
			p, err := db.GetPolicy(context.Background(), "crash", typ)
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, typ, err)
			}
			got := checkPolicyConsistent(t, p)
			if got < n {
				t.Fatalf("round %d: %s holds write %d, older than acknowledged write %d", round, typ, got, n)
			}
			if _, ok := seen[got]; !ok {
				t.Fatalf("round %d: %s holds write %d, which has no audit entry", round, typ, got)
			}
			maxN = max(maxN, got)
		}
		for n := range seen {
			maxN = max(maxN, n)
		}
		// At most one write can be committed but unacknowledged at the kill.
		if last := acked[len(acked)-1]; maxN > last+1 {
			t.Fatalf("round %d: write %d committed, but the child had acknowledged only up to %d", round, maxN, last)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d writes acknowledged before SIGKILL, newest committed write %d", round, len(acked), maxN)
		next = maxN + 1
	}
}

// runCrashChild starts the child at write number start, lets it acknowledge
// crashKillAfter writes, SIGKILLs it after delay (so the kill lands at
// varying points inside a write and its commit) and returns the
// acknowledged numbers.
func runCrashChild(t *testing.T, path string, start int, delay time.Duration) []int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashStartEnv+"="+strconv.Itoa(start))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []int
	sc := bufio.NewScanner(out)
	var killed atomic.Bool
	// killed is set before the signal is sent: once it lands, the pipe
	// closes and Wait may return before a store after Signal would run.
	kill := func() {
		killed.Store(true)
		cmd.Process.Signal(syscall.SIGKILL)
	}
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child failed: %s", line)
		}
		var n int
		if _, err := fmt.Sscanf(line, "ACK %d", &n); err != nil {
			continue // test framework chatter
		}
		acked = append(acked, n)
		if len(acked) == crashKillAfter {
			time.AfterFunc(delay, kill)
		}
	}
	err = cmd.Wait()
	if !killed.Load() {
		t.Fatalf("child exited before %d acknowledgements (%d): %v", crashKillAfter, len(acked), err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", err)
	}
	// Lines printed after the kill signal was sent but before it landed are
	// acknowledged writes too; the scanner has read them all.
	return acked
}
