// Package loadgen is a small, bounded load generator for attestd's attest
// endpoint, used by benchmarks over a real socket (BENCHMARKS.md,
// scripts/load.sh); no test of the server depends on it. It lives under
// testing/ so the server binary does not contain it.
//
// Two modes:
//
//   - Closed loop (RunClosed): C workers each keep one request in flight.
//     This finds the saturation rate, but it cannot show overload: when the
//     server slows down, the workers slow down with it and the latency of
//     the requests they did not send is never measured (coordinated
//     omission).
//   - Open loop (RunOpen): requests are scheduled at a fixed rate whatever
//     the server does, and each latency is measured from the request's
//     intended send time, so time spent waiting for a free slot or a
//     connection counts against the server, as it would for a real client
//     arriving at that instant.
//
// Responses are counted by HTTP status; 429 (what MAA answers when it
// throttles) is counted separately as shed, not as a failure of the
// generator.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Sender sends one request. status is the HTTP status (0 when no response
// arrived, with err set); err is also set for a response that is not an
// acceptable success (then status says which).
type Sender interface {
	Send(ctx context.Context) (status int, err error)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context) (int, error)

// Send calls f.
func (f SenderFunc) Send(ctx context.Context) (int, error) { return f(ctx) }

// HTTPSender POSTs Body to URL. A response counts as a success only when
// its status is 200 and its body contains Want (attestd's `"token"`), so a
// 200 carrying an error page is not mistaken for an attestation.
type HTTPSender struct {
	Client      *http.Client
	URL         string
	Body        []byte
	ContentType string // default application/json
	Want        []byte // nil: any 200 body
}

// ErrBadBody is returned for a 200 response without Want in its body.
var ErrBadBody = errors.New("200 response without the expected content")

// Send posts one request and drains the response so the connection is reused.
func (h *HTTPSender) Send(ctx context.Context) (int, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(h.Body))
	if err != nil {
		return 0, err
	}
	ct := h.ContentType
	if ct == "" {
		ct = "application/json"
	}
	r.Header.Set("Content-Type", ct)
	res, err := h.Client.Do(r)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	// Bounded read: a token is a few KB; an error envelope smaller.
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("read response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, fmt.Errorf("HTTP %d: %.200s", res.StatusCode, b)
	}
	if h.Want != nil && !bytes.Contains(b, h.Want) {
		return res.StatusCode, fmt.Errorf("%w: %.200s", ErrBadBody, b)
	}
	return res.StatusCode, nil
}

// Clock is the time source of a run; tests use a fake one so that the
// schedule and the latencies are exact and never depend on the machine's
// speed.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t or later (at once when t has passed), or
	// with ctx's error.
	SleepUntil(ctx context.Context, t time.Time) error
}

// RealClock is the wall clock (monotonic readings).
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// SleepUntil waits on a timer until t.
func (RealClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Percentiles of a latency distribution (nearest rank).
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

// percentiles sorts lat in place.
func percentiles(lat []time.Duration) Percentiles {
	if len(lat) == 0 {
		return Percentiles{}
	}
	slices.Sort(lat)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return lat[max(0, min(len(lat)-1, i))]
	}
	return Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: lat[len(lat)-1]}
}

// Stats is the outcome of one run.
type Stats struct {
	Mode string `json:"mode"` // "open" or "closed"
	// Offered is the scheduled rate (open loop) in requests/s; for a closed
	// loop it is the rate at which requests were sent.
	Offered float64 `json:"offered_rps"`
	// Served is the rate of successful responses over Elapsed.
	Served  float64       `json:"served_rps"`
	Elapsed time.Duration `json:"elapsed_ns"` // first intended send to last completion
	Sent    int           `json:"sent"`
	OK      int           `json:"ok"`
	Shed    int           `json:"shed"` // HTTP 429
	// Failed counts other HTTP statuses by code (a 200 with a bad body is
	// counted under 200).
	Failed map[int]int `json:"failed_by_status,omitempty"`
	// Transport counts requests without any response (connection errors,
	// per-request timeouts); Timeouts is the part of them that timed out.
	Transport  int    `json:"transport_errors"`
	Timeouts   int    `json:"timeouts"`
	FirstError string `json:"first_error,omitempty"`
	// Latency is over successful responses, from the intended send time
	// (open loop) or the actual send time (closed loop).
	Latency Percentiles `json:"latency_ns"`
	// ShedLatency is over 429 responses: how quickly overload is refused.
	ShedLatency Percentiles `json:"shed_latency_ns"`
	// MaxSendDelay is the largest gap between a request's intended and
	// actual send time in an open loop: large values mean the generator
	// (MaxInFlight or its CPU), not only the server, held requests back;
	// their latency still counts from the intended time.
	MaxSendDelay time.Duration `json:"max_send_delay_ns"`
	// Server is the server process's resource use over the run, when a pid
	// was given.
	Server *ProcDelta `json:"server,omitempty"`
}

// Errors is the number of requests that neither succeeded nor were shed.
func (s *Stats) Errors() int {
	n := s.Transport
	for _, c := range s.Failed {
		n += c
	}
	return n
}

// recorder collects outcomes from concurrent requests.
type recorder struct {
	mu      sync.Mutex
	st      Stats
	lat     []time.Duration
	shedLat []time.Duration
	last    time.Time
}

func (r *recorder) add(status int, err error, lat time.Duration, done time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Sent++
	if done.After(r.last) {
		r.last = done
	}
	switch {
	case err == nil && status == http.StatusOK:
		r.st.OK++
		r.lat = append(r.lat, lat)
		return
	case status == http.StatusTooManyRequests:
		r.st.Shed++
		r.shedLat = append(r.shedLat, lat)
		return
	case status == 0:
		r.st.Transport++
		if errors.Is(err, context.DeadlineExceeded) {
			r.st.Timeouts++
		}
	default:
		if r.st.Failed == nil {
			r.st.Failed = map[int]int{}
		}
		r.st.Failed[status]++
	}
	if r.st.FirstError == "" && err != nil {
		r.st.FirstError = err.Error()
	}
}

func (r *recorder) finish(mode string, start time.Time) *Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Mode = mode
	st.Latency = percentiles(r.lat)
	st.ShedLatency = percentiles(r.shedLat)
	if r.last.After(start) {
		st.Elapsed = r.last.Sub(start)
		st.Served = float64(st.OK) / st.Elapsed.Seconds()
	}
	return &st
}

// OpenConfig configures an open-loop run.
type OpenConfig struct {
	Rate float64 // requests per second, > 0
	// Duration of the schedule, or N requests when N > 0.
	Duration time.Duration
	N        int
	// MaxInFlight bounds the generator's outstanding requests (and so its
	// memory and connections). When it is reached the next request waits
	// for a slot; its latency still counts from its intended time.
	MaxInFlight int
	// Timeout per request (0: none); a timed-out request is a transport
	// error, and its slot is freed.
	Timeout time.Duration
	Clock   Clock // nil: RealClock
}

// RunOpen sends requests at cfg.Rate from now on, each on its own
// goroutine, whatever the latency of earlier ones.
func RunOpen(ctx context.Context, s Sender, cfg OpenConfig) (*Stats, error) {
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) {
		return nil, fmt.Errorf("open loop: rate %v must be a positive number", cfg.Rate)
	}
	if cfg.N <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("open loop: need a duration or a request count")
	}
	if cfg.MaxInFlight < 1 {
		return nil, fmt.Errorf("open loop: max in flight %d must be at least 1", cfg.MaxInFlight)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = RealClock{}
	}
	var (
		rec      recorder
		wg       sync.WaitGroup
		sem      = make(chan struct{}, cfg.MaxInFlight)
		maxDelay time.Duration
		runErr   error
	)
	start := clk.Now()
	for i := 0; ; i++ {
		if cfg.N > 0 && i >= cfg.N {
			break
		}
		// Computed from the start, not by adding intervals, so rounding
		// never drifts the rate.
		intended := start.Add(time.Duration(float64(i) * float64(time.Second) / cfg.Rate))
		if cfg.N <= 0 && !intended.Before(start.Add(cfg.Duration)) {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			runErr = ctx.Err()
		}
		if runErr != nil {
			break
		}
		if err := clk.SleepUntil(ctx, intended); err != nil {
			<-sem
			runErr = err
			break
		}
		if d := clk.Now().Sub(intended); d > maxDelay {
			maxDelay = d
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := ctx, context.CancelFunc(func() {})
			if cfg.Timeout > 0 {
				rctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
			}
			status, err := s.Send(rctx)
			cancel()
			done := clk.Now()
			rec.add(status, err, done.Sub(intended), done)
			<-sem
		}()
	}
	wg.Wait()
	st := rec.finish("open", start)
	st.Offered = cfg.Rate
	st.MaxSendDelay = maxDelay
	return st, runErr
}

// ClosedConfig configures a closed-loop run.
type ClosedConfig struct {
	Concurrency int // workers, each with one request in flight
	// Duration of the run, or N requests in all when N > 0.
	Duration time.Duration
	N        int
	Timeout  time.Duration // per request, 0: none
	Clock    Clock         // nil: RealClock
}

// RunClosed keeps cfg.Concurrency requests in flight: each worker sends its
// next request when the previous one completes. Latency is from the actual
// send time (there is no intended time in a closed loop).
func RunClosed(ctx context.Context, s Sender, cfg ClosedConfig) (*Stats, error) {
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("closed loop: concurrency %d must be at least 1", cfg.Concurrency)
	}
	if cfg.N <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("closed loop: need a duration or a request count")
	}
	clk := cfg.Clock
	if clk == nil {
		clk = RealClock{}
	}
	var (
		rec    recorder
		wg     sync.WaitGroup
		mu     sync.Mutex
		issued int
	)
	start := clk.Now()
	deadline := start.Add(cfg.Duration)
	// next reserves a request under the budget (count or time).
	next := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if cfg.N > 0 {
			mu.Lock()
			defer mu.Unlock()
			if issued >= cfg.N {
				return false
			}
			issued++
			return true
		}
		return clk.Now().Before(deadline)
	}
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next() {
				rctx, cancel := ctx, context.CancelFunc(func() {})
				if cfg.Timeout > 0 {
					rctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
				}
				t0 := clk.Now()
				status, err := s.Send(rctx)
				cancel()
				done := clk.Now()
				rec.add(status, err, done.Sub(t0), done)
			}
		}()
	}
	wg.Wait()
	st := rec.finish("closed", start)
	if st.Elapsed > 0 {
		st.Offered = float64(st.Sent) / st.Elapsed.Seconds()
	}
	return st, ctx.Err()
}
