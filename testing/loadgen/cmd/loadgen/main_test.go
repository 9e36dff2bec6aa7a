package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/attestd/attestd/testing/loadgen"
)

// fakeAttest is a TLS server that checks the MAA attest body and answers
// with a token, or 429 for every shedEvery-th request after the 8 of the
// warm-up.
func fakeAttest(t *testing.T, quote []byte, shedEvery int64) (*httptest.Server, string) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Quote       string            `json:"quote"`
			RuntimeData map[string]string `json:"runtimeData"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		q, err := base64.RawURLEncoding.DecodeString(body.Quote)
		if err != nil || !bytes.Equal(q, quote) || body.RuntimeData["dataType"] != "Binary" {
			http.Error(w, "wrong evidence", http.StatusBadRequest)
			return
		}
		if k := n.Add(1); shedEvery > 0 && k > 8 && k%shedEvery == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":{"code":"TooManyRequests"}}`, http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"token":"h.p.s"}`))
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	quote := []byte("quote bytes")
	qf, rf := filepath.Join(dir, "q.bin"), filepath.Join(dir, "rt.bin")
	os.WriteFile(qf, quote, 0o644)
	os.WriteFile(rf, []byte("runtime"), 0o644)
	pid := strconv.Itoa(os.Getpid())
	cases := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{"closed", []string{"-c", "2", "-n", "40"}, []string{"closed loop c=2", "requests 40", "shed(429) 10", "ok 30"}, ""},
		{"open with server stats", []string{"-rate", "2000", "-n", "40", "-max-inflight", "4", "-pid", pid, "-reset-peak"},
			[]string{"open loop", "offered 2000.0/s", "requests 40", "shed(429) 10", "server CPU", "peak RSS"}, ""},
		{"strict fails on 429", []string{"-c", "2", "-n", "40", "-strict"}, []string{"shed(429) 10"}, "10 of 40"},
		{"missing quote", []string{"-quote", ""}, nil, "required"},
		{"sample without pid", []string{"-sample", "1s"}, nil, "need -pid"},
		{"bad rate", []string{"-rate", "-1"}, nil, "-rate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, ca := fakeAttest(t, quote, 4)
			base := []string{"-url", srv.URL + "/attest/SgxEnclave", "-cacert", ca, "-quote", qf, "-runtime", rf, "-warmup", "8", "-warmup-c", "2"}
			var out bytes.Buffer
			err := run(context.Background(), append(append([]string{}, base...), tc.args...), &out, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestRunJSON: -json prints the Stats the script reads.
func TestRunJSON(t *testing.T) {
	dir := t.TempDir()
	quote := []byte{1, 2, 3}
	qf, rf := filepath.Join(dir, "q.bin"), filepath.Join(dir, "rt.bin")
	os.WriteFile(qf, quote, 0o644)
	os.WriteFile(rf, []byte("rt"), 0o644)
	srv, ca := fakeAttest(t, quote, 0)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-url", srv.URL + "/attest/SgxEnclave", "-cacert", ca, "-quote", qf, "-runtime", rf,
		"-rate", "1000", "-n", "20", "-json", "-pid", strconv.Itoa(os.Getpid())}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var st loadgen.Stats
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if st.Mode != "open" || st.OK != 20 || st.Offered != 1000 || st.Server == nil || st.Server.PeakRSS <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWarmupMustSucceed: a server that refuses the evidence stops the run
// before measuring.
func TestWarmupMustSucceed(t *testing.T) {
	dir := t.TempDir()
	qf := filepath.Join(dir, "q.bin")
	os.WriteFile(qf, []byte("other"), 0o644)
	srv, ca := fakeAttest(t, []byte("expected"), 0)
	err := run(context.Background(), []string{"-url", srv.URL, "-cacert", ca, "-quote", qf, "-n", "5"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "warm-up") {
		t.Fatalf("err %v, want a warm-up failure", err)
	}
}
