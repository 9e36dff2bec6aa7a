package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// limitEnv is one AAD instance at the root behind a given Admission, over
// TLS, with its log captured.
type limitEnv struct {
	srv    *httptest.Server
	reader string
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func newLimitEnv(t *testing.T, adm *Admission, v evidence.Verifier) *limitEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dev, err := auth.OpenDevIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{Issuers: []auth.Issuer{dev.Issuer()}, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &limitEnv{log: &syncBuffer{}}
	e.srv = httptest.NewUnstartedServer(nil)
	base := "https://" + e.srv.Listener.Addr().String()
	ks, err := token.OpenKeySet(filepath.Join(dir, "keys"), base, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	in, err := instance.New(ctx, instance.Config{Name: "default", Mode: instance.ModeAAD, Issuer: base},
		instance.Options{Store: db, Keys: ks, Logger: quiet, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Mounts: []Mount{{Instance: in, Auth: authn}}, Logger: slog.New(slog.NewTextHandler(e.log, nil)), Admission: adm})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = h
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	if e.reader, err = dev.Mint(time.Now(), auth.RoleReader, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *limitEnv) get(t *testing.T, path, bearer string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// fakeAttestBody is an attest request fakeVerifier accepts.
func fakeAttestBody() string {
	rt := []byte("runtime")
	h := sha256.Sum256(rt)
	return `{"quote":"` + b64u.EncodeToString(append(h[:], make([]byte, 32)...)) + `","runtimeData":{"data":"` + b64u.EncodeToString(rt) + `","dataType":"Binary"}}`
}

// blockingVerifier is fakeVerifier that first waits for release: fake
// work that holds its admission slot as long as the test wants.
type blockingVerifier struct {
	release chan struct{}
}

func (v blockingVerifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	p, err := fakeVerifier{}.Parse(ctx, req)
	if err != nil {
		return nil, err
	}
	return blockingParsed{p, v.release}, nil
}

type blockingParsed struct {
	evidence.Parsed
	release chan struct{}
}

func (p blockingParsed) Verify(ctx context.Context, props map[string]any) (*evidence.Result, error) {
	select {
	case <-p.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Parsed.Verify(ctx, props)
}

// waitFor polls cond until it holds; the deadline only keeps a broken
// build from hanging, the test asserts on counts, not on time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAdmissionFlood: a flood beyond capacity (two slots, one queue place)
// gets 429 with Retry-After and an MAA error body while the admitted
// requests are blocked; /healthz, GET /policies, /certs and the OpenID
// metadata keep answering; the admitted requests succeed once released.
func TestAdmissionFlood(t *testing.T) {
	adm, err := NewAdmission(AdmissionOptions{MaxInFlight: 2, MaxQueue: 1, MaxWait: 50 * time.Millisecond, RetryAfter: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	v := blockingVerifier{release: make(chan struct{})}
	e := newLimitEnv(t, adm, v)
	const flood = 10
	type answer struct {
		status     int
		retryAfter string
		code       string
	}
	answers := make(chan answer, flood)
	body := fakeAttestBody()
	for i := 0; i < flood; i++ {
		go func() {
			res, err := e.srv.Client().Post(e.srv.URL+"/attest/SgxEnclave?api-version=2020-10-01", "application/json", strings.NewReader(body))
			if err != nil {
				answers <- answer{status: -1, code: err.Error()}
				return
			}
			defer res.Body.Close()
			var b struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			raw, _ := io.ReadAll(res.Body)
			_ = json.Unmarshal(raw, &b)
			answers <- answer{res.StatusCode, res.Header.Get("Retry-After"), b.Error.Code}
		}()
	}
	// Two requests hold the slots; every other one is shed, at once or
	// after the queue wait.
	var shed []answer
	for len(shed) < flood-2 {
		a := <-answers
		if a.status != http.StatusTooManyRequests {
			t.Fatalf("while both slots are held: answer %+v, want 429", a)
		}
		shed = append(shed, a)
	}
	for _, a := range shed {
		if a.retryAfter != "2" || a.code != CodeTooManyRequests {
			t.Errorf("429 with Retry-After %q and code %q, want \"2\" and %s", a.retryAfter, a.code, CodeTooManyRequests)
		}
	}
	if st := adm.Stats(); st.InFlight != 2 || st.Shed() != flood-2 || st.ShedWait < 1 || st.ShedQueueFull < 1 {
		t.Fatalf("stats %+v: want 2 in flight, %d shed, by wait and by a full queue", st, flood-2)
	}
	// Under the flood the other routes answer.
	for _, c := range []struct{ path, bearer string }{
		{"/healthz", ""},
		{"/policies/SgxEnclave?api-version=2020-10-01", e.reader},
		{"/certs", ""},
		{"/.well-known/openid-configuration", ""},
	} {
		if status, b := e.get(t, c.path, c.bearer); status != http.StatusOK {
			t.Errorf("GET %s under an attest flood: %d %s", c.path, status, b)
		}
	}
	close(v.release)
	for i := 0; i < 2; i++ {
		if a := <-answers; a.status != http.StatusOK {
			t.Errorf("admitted request: %+v, want 200", a)
		}
	}
	if st := adm.Stats(); st.Admitted != 2 || st.InFlight != 0 || st.Waiting != 0 {
		t.Errorf("stats after the flood %+v", st)
	}
	var logged429 int
	for _, l := range e.log.lines() {
		if strings.Contains(l, "status=429") && strings.Contains(l, "level=WARN") {
			logged429++
		}
	}
	if logged429 != flood-2 {
		t.Errorf("%d 429s logged at WARN, want %d", logged429, flood-2)
	}
}

// TestAdmissionSlowBody: a client that sends part of its body and stalls
// loses its slot at the body read deadline, not when it gives up.
func TestAdmissionSlowBody(t *testing.T) {
	adm, err := NewAdmission(AdmissionOptions{MaxInFlight: 1, MaxQueue: -1, BodyReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := newLimitEnv(t, adm, fakeVerifier{})
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/attest/SgxEnclave", pr)
		req.ContentLength = int64(len(fakeAttestBody()))
		res, err := e.srv.Client().Do(req)
		if err != nil {
			done <- -1
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	if _, err := pw.Write([]byte(fakeAttestBody()[:10])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow request to be admitted", func() bool { return adm.Stats().Admitted == 1 })
	// The client never finishes its body; the deadline frees the slot.
	waitFor(t, "the slot to be released", func() bool { return adm.Stats().InFlight == 0 })
	if status := <-done; status != http.StatusBadRequest && status != -1 {
		t.Errorf("slow body answered %d, want 400 (body read failed) or a broken connection", status)
	}
	// The slot is free for the next client.
	res, err := e.srv.Client().Post(e.srv.URL+"/attest/SgxEnclave", "application/json", strings.NewReader(fakeAttestBody()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("next attest: %d", res.StatusCode)
	}
}

// TestAdmissionClientRate: the per-client token bucket, on a fixed clock.
func TestAdmissionClientRate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	adm, err := NewAdmission(AdmissionOptions{ClientRate: 1, ClientBurst: 2, MaxClients: 2, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h := adm.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	call := func(ip string) int {
		r := httptest.NewRequest(http.MethodPost, "/attest/SgxEnclave", nil)
		r.RemoteAddr = ip + ":40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return w.Code
	}
	steps := []struct {
		advance time.Duration
		ip      string
		want    int
	}{
		{0, "192.0.2.1", http.StatusNoContent},
		{0, "192.0.2.1", http.StatusNoContent},           // burst of 2
		{0, "192.0.2.1", http.StatusTooManyRequests},     // bucket empty
		{0, "192.0.2.2", http.StatusNoContent},           // another client has its own bucket
		{0, "192.0.2.3", http.StatusNoContent},           // table full: the shared overflow bucket
		{0, "192.0.2.4", http.StatusNoContent},           // overflow burst
		{0, "192.0.2.5", http.StatusTooManyRequests},     // overflow empty
		{time.Second, "192.0.2.1", http.StatusNoContent}, // one token per second
		{0, "192.0.2.1", http.StatusTooManyRequests},
		{10 * time.Second, "192.0.2.6", http.StatusNoContent}, // full buckets were forgotten: a table slot
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := call(s.ip); got != s.want {
			t.Fatalf("step %d (%s): %d, want %d", i, s.ip, got, s.want)
		}
	}
	if st := adm.Stats(); st.ShedRate != 3 {
		t.Errorf("ShedRate %d, want 3", st.ShedRate)
	}
}

func TestNewAdmissionRejects(t *testing.T) {
	for _, o := range []AdmissionOptions{{ClientRate: -1}, {MaxWait: -time.Second}, {ClientBurst: -1}, {RetryAfter: -1}} {
		if _, err := NewAdmission(o); err == nil {
			t.Errorf("NewAdmission(%+v) accepted", o)
		}
	}
}

// TestErrorsAndLogsBounded: error responses and request log lines stay
// small whatever the request quoted: a 1 MB literal in a draft policy,
// a long path.
func TestErrorsAndLogsBounded(t *testing.T) {
	e := newLimitEnv(t, nil, fakeVerifier{})
	lit := strings.Repeat("é", 450<<10) // ~900 KB
	draft := `version=1.0;authorizationrules{"` + lit + `"};`
	var req map[string]any
	_ = json.Unmarshal([]byte(fakeAttestBody()), &req)
	req["draftPolicyForAttestation"] = draft
	b, _ := json.Marshal(req)
	res, err := e.srv.Client().Post(e.srv.URL+"/attest/SgxEnclave", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "PolicyParsingError") {
		t.Fatalf("draft with a 1 MB literal: %d %.300s", res.StatusCode, raw)
	}
	if len(raw) > 16<<10 {
		t.Errorf("error response is %d bytes", len(raw))
	}
	if status, body := e.get(t, "/"+strings.Repeat("p", 200<<10), ""); status != http.StatusNotFound || len(body) > 16<<10 {
		t.Errorf("long path: %d, %d bytes", status, len(body))
	}
	for _, l := range e.log.lines() {
		if len(l) > 24<<10 {
			t.Errorf("log line of %d bytes: %.200s", len(l), l)
		}
	}
}

func TestClipText(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…(4 bytes)"},
		{"aéb", 2, "a…(4 bytes)"}, // é is two bytes: never split
		{"", 0, ""},
	}
	for _, tc := range tests {
		if got := clipText(tc.in, tc.n); got != tc.want {
			t.Errorf("clipText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
