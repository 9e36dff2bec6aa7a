package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is virtual time: sleeping jumps the clock forward, and a fake
// server advances it by its service time. With one request in flight the
// whole schedule is deterministic.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// serviceSender is a server that takes d per request and answers 200.
func serviceSender(c *fakeClock, d time.Duration) Sender {
	return SenderFunc(func(context.Context) (int, error) {
		c.advance(d)
		return http.StatusOK, nil
	})
}

const ms = time.Millisecond

// TestOpenLoopLatencyFromIntendedTime: a server slower than the offered
// rate makes every later request wait; the open loop charges that wait to
// the server, a closed loop at the same concurrency does not (coordinated
// omission).
func TestOpenLoopLatencyFromIntendedTime(t *testing.T) {
	cases := []struct {
		name       string
		service    time.Duration
		wantLat    Percentiles
		wantServed float64
		wantDelay  time.Duration
	}{
		// 100/s, 5 ms each: the server keeps up, every latency is 5 ms; the
		// last completes at 9×10+5 = 95 ms.
		{"keeps up", 5 * ms, Percentiles{5 * ms, 5 * ms, 5 * ms, 5 * ms}, 10 / 0.095, 0},
		// 25 ms each against 10 ms intervals: request i is sent at 25i ms
		// and done at 25(i+1), so its latency is 25+15i ms: 25, 40, …, 160.
		{"falls behind", 25 * ms, Percentiles{P50: 85 * ms, P90: 145 * ms, P99: 160 * ms, Max: 160 * ms}, 10 / 0.250, 135 * ms},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			st, err := RunOpen(context.Background(), serviceSender(clk, tc.service),
				OpenConfig{Rate: 100, N: 10, MaxInFlight: 1, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			if st.Sent != 10 || st.OK != 10 || st.Shed != 0 || st.Errors() != 0 {
				t.Fatalf("sent %d ok %d shed %d errors %d, want 10/10/0/0", st.Sent, st.OK, st.Shed, st.Errors())
			}
			if st.Latency != tc.wantLat {
				t.Errorf("latency %+v, want %+v", st.Latency, tc.wantLat)
			}
			if diff := st.Served - tc.wantServed; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("served %.6f/s, want %.6f/s", st.Served, tc.wantServed)
			}
			if st.Offered != 100 {
				t.Errorf("offered %v, want 100", st.Offered)
			}
			if st.MaxSendDelay != tc.wantDelay {
				t.Errorf("max send delay %s, want %s", st.MaxSendDelay, tc.wantDelay)
			}

			// The closed loop against the same server sees only the
			// service time.
			clk2 := newFakeClock()
			cl, err := RunClosed(context.Background(), serviceSender(clk2, tc.service),
				ClosedConfig{Concurrency: 1, N: 10, Clock: clk2})
			if err != nil {
				t.Fatal(err)
			}
			if want := (Percentiles{tc.service, tc.service, tc.service, tc.service}); cl.Latency != want {
				t.Errorf("closed loop latency %+v, want %+v", cl.Latency, want)
			}
		})
	}
}

// TestOpenLoopDuration: a duration schedules exactly rate×duration requests.
func TestOpenLoopDuration(t *testing.T) {
	clk := newFakeClock()
	st, err := RunOpen(context.Background(), serviceSender(clk, ms), OpenConfig{Rate: 250, Duration: 2 * time.Second, MaxInFlight: 1, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 500 {
		t.Fatalf("sent %d, want 500", st.Sent)
	}
}

// TestCounting: outcomes are counted by kind — success, 429 as shed, other
// statuses by code (a 200 without a token under 200), transport errors and
// timeouts — in both modes, through a real HTTP server.
func TestCounting(t *testing.T) {
	var k atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch k.Add(1) % 10 {
		case 0:
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":{"code":"TooManyRequests"}}`, http.StatusTooManyRequests)
		case 1:
			http.Error(w, `{"error":{"code":"InternalError"}}`, http.StatusInternalServerError)
		case 2:
			w.Write([]byte(`{"error":"not a token"}`))
		default:
			w.Write([]byte(`{"token":"a.b.c"}`))
		}
	}))
	defer srv.Close()
	runs := map[string]func(context.Context, Sender) (*Stats, error){
		"open": func(ctx context.Context, s Sender) (*Stats, error) {
			return RunOpen(ctx, s, OpenConfig{Rate: 5000, N: 100, MaxInFlight: 8})
		},
		"closed": func(ctx context.Context, s Sender) (*Stats, error) {
			return RunClosed(ctx, s, ClosedConfig{Concurrency: 4, N: 100})
		},
	}
	for name, runFn := range runs {
		t.Run(name, func(t *testing.T) {
			k.Store(0)
			s := &HTTPSender{Client: srv.Client(), URL: srv.URL, Body: []byte(`{}`), Want: []byte(`"token"`)}
			st, err := runFn(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode != name || st.Sent != 100 || st.OK != 70 || st.Shed != 10 || st.Transport != 0 {
				t.Fatalf("mode %s sent %d ok %d shed %d transport %d, want %s/100/70/10/0", st.Mode, st.Sent, st.OK, st.Shed, st.Transport, name)
			}
			if st.Failed[500] != 10 || st.Failed[200] != 10 || len(st.Failed) != 2 || st.Errors() != 20 {
				t.Fatalf("failed %v (errors %d), want 10×500 and 10×200", st.Failed, st.Errors())
			}
			if st.FirstError == "" {
				t.Error("no first error recorded")
			}
			if st.Served <= 0 || st.Elapsed <= 0 {
				t.Errorf("served %v over %s", st.Served, st.Elapsed)
			}
		})
	}
}

// TestTimeouts: a server that never answers yields timeouts, not a hang.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release: // the server may not notice the client's give-up
		}
	}))
	defer srv.Close()
	defer close(release)
	s := &HTTPSender{Client: srv.Client(), URL: srv.URL, Body: []byte(`{}`)}
	st, err := RunOpen(context.Background(), s, OpenConfig{Rate: 1000, N: 5, MaxInFlight: 5, Timeout: 20 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if st.Transport != 5 || st.Timeouts != 5 || st.OK != 0 || st.Served != 0 {
		t.Fatalf("transport %d timeouts %d ok %d served %v, want 5/5/0/0", st.Transport, st.Timeouts, st.OK, st.Served)
	}
}

// TestCancel: cancelling the context stops the schedule and returns what
// was measured with the context's error.
func TestCancel(t *testing.T) {
	clk := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	s := SenderFunc(func(context.Context) (int, error) {
		calls++
		clk.advance(ms)
		if calls == 3 {
			cancel()
		}
		return http.StatusOK, nil
	})
	st, err := RunOpen(ctx, s, OpenConfig{Rate: 10, Duration: time.Hour, MaxInFlight: 1, Clock: clk})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if st == nil || st.Sent != 3 || st.OK != 3 {
		t.Fatalf("stats %+v, want 3 sent and ok", st)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := SenderFunc(func(context.Context) (int, error) { return 200, nil })
	cases := []struct {
		name string
		run  func() (*Stats, error)
		want string
	}{
		{"zero rate", func() (*Stats, error) { return RunOpen(context.Background(), ok, OpenConfig{N: 1, MaxInFlight: 1}) }, "rate"},
		{"NaN rate", func() (*Stats, error) {
			return RunOpen(context.Background(), ok, OpenConfig{Rate: nan(), N: 1, MaxInFlight: 1})
		}, "rate"},
		{"no budget", func() (*Stats, error) { return RunOpen(context.Background(), ok, OpenConfig{Rate: 1, MaxInFlight: 1}) }, "duration"},
		{"no slots", func() (*Stats, error) { return RunOpen(context.Background(), ok, OpenConfig{Rate: 1, N: 1}) }, "in flight"},
		{"no workers", func() (*Stats, error) { return RunClosed(context.Background(), ok, ClosedConfig{N: 1}) }, "concurrency"},
		{"closed no budget", func() (*Stats, error) {
			return RunClosed(context.Background(), ok, ClosedConfig{Concurrency: 1})
		}, "duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) || st != nil {
				t.Fatalf("got %v, %v; want an error naming %q", st, err, tc.want)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestPercentiles(t *testing.T) {
	seq := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(n-i) * ms // reversed: percentiles sorts
		}
		return out
	}
	cases := []struct {
		n    int
		want Percentiles
	}{
		{0, Percentiles{}},
		{1, Percentiles{ms, ms, ms, ms}},
		{2, Percentiles{ms, 2 * ms, 2 * ms, 2 * ms}},
		{100, Percentiles{50 * ms, 90 * ms, 99 * ms, 100 * ms}},
		{1000, Percentiles{500 * ms, 900 * ms, 990 * ms, 1000 * ms}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			if got := percentiles(seq(tc.n)); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
