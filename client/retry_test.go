package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
)

// scripted is a stub service answering each request with the next of its
// replies (the last one repeats) and recording what it was sent.
type scripted struct {
	mu      sync.Mutex
	replies []reply
	bodies  [][]byte
}

type reply struct {
	status     int
	retryAfter string
	body       string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, b)
	rp := s.replies[min(len(s.bodies), len(s.replies))-1]
	s.mu.Unlock()
	if rp.retryAfter != "" {
		w.Header().Set("Retry-After", rp.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rp.status)
	io.WriteString(w, rp.body)
}

func (s *scripted) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

const (
	throttled   = `{"error":{"code":"TooManyRequests","message":"slow down"}}`
	unavailable = `{"error":{"code":"ServiceUnavailable","message":"try later"}}`
	metadata    = `{"issuer":"https://x.attest.azure.net","jwks_uri":"https://x.attest.azure.net/certs"}`
)

// recorder is a Retry.Wait that records the delays instead of sleeping.
type recorder struct{ waits []time.Duration }

func (r *recorder) wait(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

// TestRetry: 429 and 503 are repeated, honouring Retry-After (seconds or
// HTTP date) or else backing off exponentially with jitter; other statuses
// are not; the retry budget, the MaxDelay cap and cancellation end the loop
// with the service's error.
func TestRetry(t *testing.T) {
	future := time.Now().Add(45 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name    string
		retry   client.Retry
		replies []reply
		// wantOK: the call succeeds in the end; else it fails with status.
		wantOK     bool
		status     int
		calls      int
		waits      []time.Duration // exact waits; nil: check backoff bounds
		backoffs   int             // number of waits within backoff bounds
		retryAfter time.Duration   // on the final error
	}{
		{name: "429 Retry-After seconds then 200", replies: []reply{{429, "2", throttled}, {429, "1", throttled}, {200, "", metadata}},
			wantOK: true, calls: 3, waits: []time.Duration{2 * time.Second, time.Second}},
		{name: "503 Retry-After HTTP date then 200", replies: []reply{{503, future, unavailable}, {200, "", metadata}},
			wantOK: true, calls: 2, backoffs: -1},
		{name: "503 without Retry-After backs off", replies: []reply{{503, "", unavailable}, {503, "", unavailable}, {503, "", unavailable}, {200, "", metadata}},
			wantOK: true, calls: 4, backoffs: 3},
		{name: "budget exhausted", retry: client.Retry{MaxRetries: 2}, replies: []reply{{429, "1", throttled}},
			status: 429, calls: 3, waits: []time.Duration{time.Second, time.Second}, retryAfter: time.Second},
		{name: "Retry-After beyond MaxDelay is not shortened", retry: client.Retry{MaxDelay: 10 * time.Second}, replies: []reply{{429, "30", throttled}},
			status: 429, calls: 1, waits: []time.Duration{}, retryAfter: 30 * time.Second},
		{name: "retries off", retry: client.Retry{MaxRetries: -1}, replies: []reply{{503, "", unavailable}},
			status: 503, calls: 1, waits: []time.Duration{}},
		{name: "400 not retried", replies: []reply{{400, "1", `{"error":{"code":"InvalidParameter","message":"no"}}`}},
			status: 400, calls: 1, waits: []time.Duration{}, retryAfter: time.Second},
		{name: "500 not retried", replies: []reply{{500, "", `{"error":{"code":"InternalError","message":"no"}}`}},
			status: 500, calls: 1, waits: []time.Duration{}},
		{name: "garbage Retry-After falls back to backoff", replies: []reply{{429, "soon", throttled}, {200, "", metadata}},
			wantOK: true, calls: 2, backoffs: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stub := &scripted{replies: tc.replies}
			srv := httptest.NewServer(stub)
			defer srv.Close()
			rec := &recorder{}
			r := tc.retry
			r.Wait = rec.wait
			c, err := client.New(srv.URL, &client.Options{Retry: r})
			if err != nil {
				t.Fatal(err)
			}
			md, err := c.GetOpenIDMetadata(context.Background())
			if tc.wantOK {
				if err != nil || md.Issuer != "https://x.attest.azure.net" {
					t.Fatalf("metadata %+v, %v", md, err)
				}
			} else {
				e := wantError(t, err, tc.status, map[int]string{429: "TooManyRequests", 503: "ServiceUnavailable", 400: "InvalidParameter", 500: "InternalError"}[tc.status])
				if e.Attempts != tc.calls || e.RetryAfter != tc.retryAfter {
					t.Fatalf("error attempts %d retry-after %v, want %d %v", e.Attempts, e.RetryAfter, tc.calls, tc.retryAfter)
				}
			}
			if stub.calls() != tc.calls {
				t.Fatalf("%d calls, want %d", stub.calls(), tc.calls)
			}
			switch {
			case tc.waits != nil:
				if len(rec.waits) != len(tc.waits) {
					t.Fatalf("waits %v, want %v", rec.waits, tc.waits)
				}
				for i := range tc.waits {
					if rec.waits[i] != tc.waits[i] {
						t.Fatalf("waits %v, want %v", rec.waits, tc.waits)
					}
				}
			case tc.backoffs < 0: // HTTP date: 45 s from now (to the second)
				if len(rec.waits) != 1 || rec.waits[0] < 20*time.Second || rec.waits[0] > 45*time.Second {
					t.Fatalf("waits %v, want one of about 45 s", rec.waits)
				}
			default:
				if len(rec.waits) != tc.backoffs {
					t.Fatalf("waits %v, want %d backoffs", rec.waits, tc.backoffs)
				}
				for i, w := range rec.waits {
					full := 800 * time.Millisecond << i
					if w < full/2 || w > full {
						t.Fatalf("wait %d = %v, want in [%v, %v]", i, w, full/2, full)
					}
				}
			}
		})
	}
}

// TestRetryResendsBody: a refused attest call is repeated with the same
// body, and the final error (here a 400 after a 429) is the service's.
func TestRetryResendsBody(t *testing.T) {
	stub := &scripted{replies: []reply{{429, "1", throttled}, {400, "", `{"error":{"code":"InvalidParameter","message":"bad quote"}}`}}}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	rec := &recorder{}
	c, err := client.New(srv.URL, &client.Options{Retry: client.Retry{Wait: rec.wait}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AttestSgxEnclave(context.Background(), []byte("quote bytes"), &client.AttestOptions{RuntimeData: []byte("rt"), Nonce: "n1"})
	if e := wantError(t, err, 400, "InvalidParameter"); e.Attempts != 2 {
		t.Fatalf("attempts %d", e.Attempts)
	}
	if len(stub.bodies) != 2 || len(stub.bodies[0]) == 0 || !bytes.Equal(stub.bodies[0], stub.bodies[1]) {
		t.Fatalf("bodies %q", stub.bodies)
	}
}

// TestRetryCancelled: a context cancelled during the wait ends the call
// with both the service's answer and the cancellation.
func TestRetryCancelled(t *testing.T) {
	stub := &scripted{replies: []reply{{503, "5", unavailable}}}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := client.New(srv.URL, &client.Options{Retry: client.Retry{Wait: func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetOpenIDMetadata(ctx)
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the 503 and context.Canceled", err)
	}
	if stub.calls() != 1 {
		t.Fatalf("%d calls after cancellation, want 1", stub.calls())
	}
}
