package pgtest

import (
	"errors"
	"fmt"
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
