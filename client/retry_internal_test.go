package client

import (
	"testing"
	"time"
)

// TestParseRetryAfter: both RFC 9110 forms; junk, zero, negative, past
// dates and absurd values are "no hint".
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"99999999999999999999", 0},
		{"86401", 0},
		{"Wed, 02 Dec 2026 12:00:30 GMT", 30 * time.Second},
		{"Wed, 02 Dec 2026 11:59:00 GMT", 0},
		{"tomorrow", 0},
		{"Thu, 03 Dec 2026 12:00:01 GMT", 0}, // more than a day ahead
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestBackoffBounds: the backoff doubles, stays within [d/2, d], never
// exceeds MaxDelay, and does not overflow for large retry numbers.
func TestBackoffBounds(t *testing.T) {
	r := Retry{MaxRetries: 100, BaseDelay: time.Second, MaxDelay: 10 * time.Second}.withDefaults()
	for n := 0; n < 100; n++ {
		d, ok := r.delay(n, &Error{StatusCode: 503})
		full := 10 * time.Second
		if n < 4 {
			full = time.Second << n
		}
		if !ok || d < full/2 || d > full {
			t.Fatalf("retry %d: %v %v, want in [%v, %v]", n, d, ok, full/2, full)
		}
	}
	if _, ok := r.delay(100, &Error{StatusCode: 503}); ok {
		t.Fatal("retry past MaxRetries")
	}
}

// FuzzParseRetryAfter: any header value gives a delay in [0, 24 h] (the
// header comes from the service, so it is untrusted input).
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "3", "120", "-1", "86400", "86401", "1e9", "Wed, 02 Dec 2026 12:00:30 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", " 7 ", "9223372036854775807"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d := parseRetryAfter(s, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %v", s, d)
		}
	})
}
