package client

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry says how a Client retries a call the service refused for load:
// 429 Too Many Requests (MAA's throttling, and attestd's admission control)
// and 503 Service Unavailable. Every MAA operation is safe to repeat (an
// attest call has no side effect, a policy or certificate change sets state
// rather than adding to it, and its answer names the resolution), so all
// are retried. Other statuses and transport errors are not: a 400 will not
// change, and a request that died mid-flight may be the reason the service
// is overloaded. The zero value retries 3 times.
type Retry struct {
	// MaxRetries is the number of repeats after the first try; 0 means 3,
	// a negative value turns retries off.
	MaxRetries int
	// BaseDelay is the wait before the first retry when the service sent
	// no Retry-After; it doubles each time. 0 means 800 ms (the Azure SDKs'
	// default).
	BaseDelay time.Duration
	// MaxDelay caps one wait; 0 means 60 s. A Retry-After longer than this
	// is not shortened (retrying earlier than asked only earns another
	// refusal): the call instead returns the *Error at once, whose
	// RetryAfter tells the caller when to come back.
	MaxDelay time.Duration
	// Wait sleeps for d or until ctx is done; nil means a timer. Tests
	// replace it to record the delays instead of sleeping.
	Wait func(ctx context.Context, d time.Duration) error
}

func (r Retry) withDefaults() Retry {
	if r.MaxRetries == 0 {
		r.MaxRetries = 3
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = 800 * time.Millisecond
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 60 * time.Second
	}
	if r.Wait == nil {
		r.Wait = sleepCtx
	}
	return r
}

// retryable reports whether a status is worth repeating the call for.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// delay returns how long to wait before retry number n (0-based) after
// err, and false when the call should give up instead. A Retry-After from
// the service wins over the backoff; without one the wait is the
// exponential backoff with jitter in [d/2, d], so clients refused together
// do not come back together.
func (r Retry) delay(n int, err *Error) (time.Duration, bool) {
	if n >= r.MaxRetries {
		return 0, false
	}
	if err.RetryAfter > 0 {
		if err.RetryAfter > r.MaxDelay {
			return 0, false
		}
		return err.RetryAfter, true
	}
	d := r.BaseDelay
	for i := 0; i < n && d < r.MaxDelay; i++ { // doubling, without overflow
		d *= 2
	}
	d = min(d, r.MaxDelay)
	return d/2 + rand.N(d/2+1), true
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3). Anything else, a date in the past, or a
// delay of more than a day, is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 || s > int64(24*time.Hour/time.Second) {
			// A day or more is no retry hint a client can use; treat it as
			// absent rather than overflow or park the caller.
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 && d <= 24*time.Hour {
			return d
		}
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
