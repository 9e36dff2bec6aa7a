package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/instance"
)

// CodeTooManyRequests is the error code of a 429 answer. maa-api.md records
// no throttled MAA response; Azure data-plane services answer throttling
// with HTTP 429, a Retry-After header and this code, which is what the SDKs'
// retry policies key on (status 429 and Retry-After).
const CodeTooManyRequests = "TooManyRequests"

// Defaults of AdmissionOptions.
const (
	// DefaultMaxWait bounds how long an attest request waits for a slot:
	// past it a client is better served by a prompt 429 and a retry (to
	// another replica, perhaps) than by latency that grows with the flood.
	DefaultMaxWait = time.Second
	// DefaultRetryAfter is the Retry-After of a 429.
	DefaultRetryAfter = time.Second
	// DefaultBodyReadTimeout bounds reading an attest request body (4 MiB
	// at most): a slow body holds its slot for this long at most, not for
	// the server's whole read timeout.
	DefaultBodyReadTimeout = 10 * time.Second
	// DefaultMaxClients bounds the per-client rate limiter's table.
	DefaultMaxClients = 65536
)

// AdmissionOptions configure admission control of the attest routes. Every
// zero value means the documented default, so AdmissionOptions{} is the
// production setting.
type AdmissionOptions struct {
	// MaxInFlight is how many attestations run at once. 0: 2×GOMAXPROCS
	// (an attestation is CPU-bound — signature checks and the token
	// signature — so more than the cores can run only adds latency);
	// negative: no limit (and no queue).
	MaxInFlight int
	// MaxQueue is how many requests may wait for a slot. 0: 4×MaxInFlight;
	// negative: none (a request that finds every slot taken gets 429 at once).
	MaxQueue int
	// MaxWait bounds the wait for a slot. 0: DefaultMaxWait.
	MaxWait time.Duration
	// RetryAfter is sent with every 429, rounded up to whole seconds. 0:
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// BodyReadTimeout is the deadline for reading an attest request's body,
	// counted from the request's arrival (so time spent queued counts).
	// 0: DefaultBodyReadTimeout; negative: none (the server's ReadTimeout
	// alone applies).
	BodyReadTimeout time.Duration
	// ClientRate limits each client (remote IP address, as the connection
	// shows it: behind a proxy that is the proxy) to this many attest
	// requests per second, with bursts of ClientBurst. 0: off.
	ClientRate float64
	// ClientBurst is the per-client bucket size. 0: max(1, ⌈ClientRate⌉).
	ClientBurst int
	// MaxClients bounds the clients the rate limiter tracks at once; when
	// the table is full, clients whose bucket has refilled are forgotten
	// and, failing that, new clients share one overflow bucket. 0:
	// DefaultMaxClients.
	MaxClients int
	// Now reads the clock for the rate limiter and deadlines. nil: time.Now.
	Now func() time.Time
}

// AdmissionStats are the admission counters, for metrics. The counters
// only grow; InFlight and Waiting are the current values.
type AdmissionStats struct {
	Admitted      uint64 // requests that got a slot
	Queued        uint64 // of those and the shed, requests that had to wait
	ShedQueueFull uint64 // 429: every slot and every queue place taken
	ShedWait      uint64 // 429: no slot within MaxWait
	ShedRate      uint64 // 429: the client exceeded ClientRate
	Abandoned     uint64 // the client went away while waiting
	InFlight      int64
	Waiting       int64
}

// Shed is the number of requests answered 429.
func (s AdmissionStats) Shed() uint64 { return s.ShedQueueFull + s.ShedWait + s.ShedRate }

// Admission is admission control for attest requests: a bounded number run
// at once, a short bounded queue waits at most MaxWait, everything beyond
// is answered 429 Too Many Requests with Retry-After at once, so overload
// costs the server a few microseconds per shed request instead of
// unbounded latency and memory for every request. Admin, metadata, /certs
// and /healthz routes do not pass through it and keep answering under an
// attest flood. An Admission is safe for concurrent use; one serves every
// instance of a handler, since the cores it protects are shared.
type Admission struct {
	slots      chan struct{} // nil: no limit
	maxWait    time.Duration
	retryAfter string
	bodyRead   time.Duration
	now        func() time.Time
	rate       *rateLimiter // nil: off
	waiting    atomic.Int64
	maxWaiting int64
	inFlight   atomic.Int64
	effective  AdmissionOptions // the options with defaults applied, for Effective

	admitted, queued, shedFull, shedWait, shedRate, abandoned atomic.Uint64
}

// NewAdmission validates o and returns the admission controller.
func NewAdmission(o AdmissionOptions) (*Admission, error) {
	if math.IsNaN(o.ClientRate) || math.IsInf(o.ClientRate, 0) || o.ClientRate < 0 {
		return nil, fmt.Errorf("api: admission: client rate %v must be a non-negative number", o.ClientRate)
	}
	if o.MaxWait < 0 || o.RetryAfter < 0 || o.ClientBurst < 0 || o.MaxClients < 0 {
		return nil, errors.New("api: admission: max wait, retry-after, client burst and max clients must not be negative")
	}
	a := &Admission{maxWait: o.MaxWait, bodyRead: o.BodyReadTimeout, now: o.Now}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxWait == 0 {
		a.maxWait = DefaultMaxWait
	}
	ra := o.RetryAfter
	if ra == 0 {
		ra = DefaultRetryAfter
	}
	a.retryAfter = strconv.FormatInt(int64((ra+time.Second-1)/time.Second), 10)
	if a.bodyRead == 0 {
		a.bodyRead = DefaultBodyReadTimeout
	}
	n := o.MaxInFlight
	if n == 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	if n > 0 {
		a.slots = make(chan struct{}, n)
		q := o.MaxQueue
		if q == 0 {
			q = 4 * n
		}
		a.maxWaiting = int64(max(q, 0))
	}
	if o.ClientRate > 0 {
		burst := o.ClientBurst
		if burst == 0 {
			burst = max(1, int(math.Ceil(o.ClientRate)))
		}
		mc := o.MaxClients
		if mc == 0 {
			mc = DefaultMaxClients
		}
		a.rate = &rateLimiter{rate: o.ClientRate, burst: float64(burst), max: mc, clients: map[string]*bucket{}}
		o.ClientBurst, o.MaxClients = burst, mc
	}
	o.MaxInFlight, o.MaxQueue, o.MaxWait, o.RetryAfter, o.BodyReadTimeout = n, int(a.maxWaiting), a.maxWait, ra, a.bodyRead
	o.Now = nil
	a.effective = o
	return a, nil
}

// Effective returns the options in force, defaults applied (Now omitted),
// for the startup log.
func (a *Admission) Effective() AdmissionOptions { return a.effective }

// Stats returns the counters.
func (a *Admission) Stats() AdmissionStats {
	return AdmissionStats{
		Admitted: a.admitted.Load(), Queued: a.queued.Load(),
		ShedQueueFull: a.shedFull.Load(), ShedWait: a.shedWait.Load(), ShedRate: a.shedRate.Load(),
		Abandoned: a.abandoned.Load(), InFlight: a.inFlight.Load(), Waiting: a.waiting.Load(),
	}
}

// Wrap puts next behind admission control: the body read deadline is set
// on arrival, then the per-client rate and a slot are checked.
func (a *Admission) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrival := a.now()
		if a.bodyRead > 0 {
			// Not supported by every ResponseWriter (httptest's recorder):
			// then the server's ReadTimeout alone applies.
			_ = http.NewResponseController(w).SetReadDeadline(arrival.Add(a.bodyRead))
		}
		if a.rate != nil && !a.rate.allow(clientKey(r), arrival) {
			a.shedRate.Add(1)
			a.reject(w, r, "the client exceeded its rate of attest requests")
			return
		}
		release, why := a.acquire(r.Context())
		if release == nil {
			if why != "" {
				a.reject(w, r, why)
			}
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// acquire takes a slot, waiting in the queue if there is room. It returns
// nil and the reason to give the client when the request is shed, or nil
// and "" when the client went away.
func (a *Admission) acquire(ctx context.Context) (release func(), why string) {
	if a.slots == nil {
		a.admitted.Add(1)
		a.inFlight.Add(1)
		return func() { a.inFlight.Add(-1) }, ""
	}
	release = func() {
		a.inFlight.Add(-1)
		<-a.slots
	}
	select {
	case a.slots <- struct{}{}:
		a.admitted.Add(1)
		a.inFlight.Add(1)
		return release, ""
	default:
	}
	if a.waiting.Add(1) > a.maxWaiting {
		a.waiting.Add(-1)
		a.shedFull.Add(1)
		return nil, "attestd is at capacity: every attestation slot and queue place is taken"
	}
	defer a.waiting.Add(-1)
	a.queued.Add(1)
	t := time.NewTimer(a.maxWait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		a.admitted.Add(1)
		a.inFlight.Add(1)
		return release, ""
	case <-t.C:
		a.shedWait.Add(1)
		return nil, "attestd is at capacity: no attestation slot became free within " + a.maxWait.String()
	case <-ctx.Done():
		a.abandoned.Add(1)
		return nil, ""
	}
}

// reject answers 429 in the MAA error envelope with Retry-After.
func (a *Admission) reject(w http.ResponseWriter, r *http.Request, why string) {
	err := &instance.Error{Code: CodeTooManyRequests, Message: why + "; retry after " + a.retryAfter + " s"}
	if rl := logInfoFrom(r.Context()); rl != nil {
		rl.err = err
	}
	w.Header().Set("Retry-After", a.retryAfter)
	writeJSON(w, http.StatusTooManyRequests, errorBody{Error: errorDetail{Code: err.Code, Message: err.Message}})
}

// clientKey is the remote IP address of the connection.
func clientKey(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// rateLimiter is a token bucket per client.
type rateLimiter struct {
	rate, burst float64
	max         int
	mu          sync.Mutex
	clients     map[string]*bucket
	overflow    bucket    // shared by new clients while the table is full
	lastEvict   time.Time // evict scans the table at most once a second
}

type bucket struct {
	tokens float64
	last   time.Time
	used   bool
}

func (l *rateLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= l.max && now.Sub(l.lastEvict) >= time.Second {
			l.lastEvict = now
			l.evict(now)
		}
		if len(l.clients) >= l.max {
			b = &l.overflow
		} else {
			b = &bucket{}
			l.clients[key] = b
		}
	}
	if !b.used {
		b.tokens, b.last, b.used = l.burst, now, true
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict forgets clients whose bucket is full again: forgetting them changes
// nothing, since a new bucket starts full.
func (l *rateLimiter) evict(now time.Time) {
	for k, b := range l.clients {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.clients, k)
		}
	}
}
