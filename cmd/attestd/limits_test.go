package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLimitsPrecedence: the limits follow flag > environment > file >
// default like every other serve setting, and bad values are usage errors.
func TestLimitsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "attestd.json")
	if err := os.WriteFile(cfg, []byte(`{"limits":{"max_connections":64,"max_inflight":3,"max_queue":5,"queue_wait":"300ms",
		"retry_after":"2s","attest_body_timeout":"4s","client_rate":2.5,"client_burst":7}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	o, _, err := parseServeFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxConns != DefaultMaxConnections || o.Admission.MaxInFlight != 0 || o.Admission.ClientRate != 0 {
		t.Fatalf("defaults: %d %+v", o.MaxConns, o.Admission)
	}
	o, _, err = parseServeFlags([]string{"--config", cfg}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := o.Admission
	if o.MaxConns != 64 || a.MaxInFlight != 3 || a.MaxQueue != 5 || a.MaxWait != 300*time.Millisecond || a.RetryAfter != 2*time.Second ||
		a.BodyReadTimeout != 4*time.Second || a.ClientRate != 2.5 || a.ClientBurst != 7 {
		t.Fatalf("from the file: %d %+v", o.MaxConns, a)
	}
	t.Setenv("ATTESTD_MAX_INFLIGHT", "9")
	t.Setenv("ATTESTD_QUEUE_WAIT", "2s")
	o, _, err = parseServeFlags([]string{"--config", cfg, "--max-inflight", "11", "--client-rate", "0.5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Admission.MaxInFlight != 11 || o.Admission.MaxWait != 2*time.Second || o.Admission.ClientRate != 0.5 || o.MaxConns != 64 {
		t.Fatalf("flag > env > file: %d %+v", o.MaxConns, o.Admission)
	}
	t.Setenv("ATTESTD_MAX_INFLIGHT", "")
	t.Setenv("ATTESTD_QUEUE_WAIT", "")
	for _, args := range [][]string{
		{"--max-connections", "0"},
		{"--max-connections", "many"},
		{"--queue-wait", "-1s"},
		{"--attest-body-timeout", "soon"},
		{"--client-rate", "-3"},
		{"--client-rate", "NaN"},
		{"--client-burst", "-1"},
	} {
		if _, _, err := parseServeFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}
