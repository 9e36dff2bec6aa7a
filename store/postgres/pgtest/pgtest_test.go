package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatal instead of acting.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = true }
func (r *recorder) Fatal(args ...any) { r.failed = true }

func TestRequire(t *testing.T) {
	tests := []struct {
		name        string
		ci          string
		err         error
		skip, fatal bool
	}{
		{"available", "", nil, false, false},
		{"available under CI", "true", nil, false, false},
		{"unavailable locally: skip", "", ErrUnavailable, true, false},
		{"unavailable under CI: fail", "true", ErrUnavailable, false, true},
		{"wrapped unavailable locally", "", fmt.Errorf("start: %w", ErrUnavailable), true, false},
		{"broken server: fail", "", errors.New("pg_ctl start: exit status 1"), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			Require(r, tc.err)
			if r.skipped != tc.skip || r.failed != tc.fatal {
				t.Errorf("skipped=%v failed=%v, want %v %v", r.skipped, r.failed, tc.skip, tc.fatal)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u@127.0.0.1:5/postgres?sslmode=disable", "postgres://u@127.0.0.1:5/x?sslmode=disable"},
		{"postgresql://u:p@h/other", "postgresql://u:p@h/x"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=x"},
	}
	for _, tc := range tests {
		got, err := withDatabase(tc.dsn, "x")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
}

// TestDSNErrorsHidePassword: a bad ATTESTD_TEST_POSTGRES_DSN (often a CI
// secret) fails Start, and a URL that does not parse fails withDatabase,
// without any part of the password in the error, which CI logs print.
func TestDSNErrorsHidePassword(t *testing.T) {
	for _, dsn := range []string{
		`host=127.0.0.1 port=1 password=s3cret\ pw0rd sslmode=bogus`,
		`host=127.0.0.1 port=1 password=s3cret pw0rd`,
		"postgres://app:s3cret-pw0rd@[::1/db",
	} {
		t.Setenv(EnvDSN, dsn)
		s, err := Start(context.Background())
		if err == nil {
			s.Stop()
			t.Fatalf("Start(%q) succeeded", dsn)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "pw0rd") {
			t.Errorf("Start: error reveals (part of) the password: %q", msg)
		}
	}
	if _, err := withDatabase("postgres://app:s3cret-pw0rd@[::1/db", "x"); err == nil {
		t.Error("withDatabase of an unparsable URL succeeded")
	} else if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "pw0rd") {
		t.Errorf("withDatabase: error reveals (part of) the password: %q", msg)
	}
}
