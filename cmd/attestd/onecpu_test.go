package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/testing/loadgen"
	"github.com/attestd/attestd/testing/sgxplatform"
)

func TestProcsFor(t *testing.T) {
	for _, c := range []struct {
		current        int
		explicit       bool
		want           int
		raise, warning bool
	}{
		{1, false, 2, true, false}, // Go's default on one CPU: raised
		{1, true, 1, false, true},  // the operator's GOMAXPROCS=1: kept, warned
		{2, false, 2, false, false},
		{2, true, 2, false, false},
		{8, false, 8, false, false},
	} {
		n, raise, warn := procsFor(c.current, c.explicit)
		if n != c.want || raise != c.raise || warn != c.warning {
			t.Errorf("procsFor(%d, %v) = %d, %v, %v; want %d, %v, %v", c.current, c.explicit, n, raise, warn, c.want, c.raise, c.warning)
		}
	}
}

// TestOneCPUFloodSheds runs attestd on one CPU (taskset, GOMAXPROCS unset,
// as in a one-CPU container) and floods it from the test process far past
// what one CPU attests. Admission control must engage: requests beyond
// capacity are answered 429, none is left to time out in front of
// admission, and /healthz answers throughout. With a single P (GOMAXPROCS=1
// set explicitly) the same flood starves the accept loop and handshakes
// instead: no request reaches admission in time, attest requests time out
// and /healthz goes unanswered for seconds (BENCHMARKS.md, "One CPU").
func TestOneCPUFloodSheds(t *testing.T) {
	if testing.Short() {
		t.Skip("floods an attestd process for a few seconds")
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil || runtime.NumCPU() < 2 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs taskset (util-linux) and two CPUs: %v, %d CPUs", err, runtime.NumCPU())
		}
		t.Skipf("needs taskset and two CPUs (one for attestd, one for the flood): %v, %d CPUs", err, runtime.NumCPU())
	}
	dir := t.TempDir()
	quote := writePlatform(t, dir, sgxplatform.Options{Now: time.Now()})
	cfg := `{"collateral": {"type": "bundle", "path": "collateral.json"}, "sgx": {"roots": ["root.pem"]}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	data := filepath.Join(dir, "data")
	p := startProcessAs(t, []string{taskset, "-c", "0"}, env, data, "--config", filepath.Join(dir, "config.json"), "--log-level", "info")
	if !strings.Contains(p.stderr.String(), "raised GOMAXPROCS") {
		t.Fatalf("attestd on one CPU did not raise GOMAXPROCS:\n%s", p.stderr)
	}

	pemb, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemb)
	const conns = 256
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, MaxIdleConns: conns}}
	defer client.CloseIdleConnections()
	sender := &loadgen.HTTPSender{Client: client, URL: p.base + "/attest/SgxEnclave?api-version=2020-10-01",
		Body: []byte(`{"quote": "` + base64.RawURLEncoding.EncodeToString(quote) + `"}`), Want: []byte(`"token"`)}
	if _, err := sender.Send(context.Background()); err != nil {
		t.Fatalf("attest before the flood: %v", err)
	}

	// /healthz, polled during the flood on a connection of its own.
	health := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx, stop := context.WithCancel(context.Background())
	var (
		wg              sync.WaitGroup
		polls, failures int
		firstFailure    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			res, err := health.Get(p.base + "/healthz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					err = &statusError{res.StatusCode}
				}
			}
			polls++
			if err != nil {
				failures++
				if firstFailure == nil {
					firstFailure = err
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	// One CPU attests a few hundred quotes a second; 2000/s is several
	// times that.
	st, err := loadgen.RunOpen(context.Background(), sender, loadgen.OpenConfig{Rate: 2000, Duration: 3 * time.Second, MaxInFlight: conns, Timeout: 5 * time.Second})
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flood: sent %d, ok %d, shed %d, transport errors %d (timeouts %d), other %v; p99 %v, max %v; /healthz %d polls, %d failed",
		st.Sent, st.OK, st.Shed, st.Transport, st.Timeouts, st.Failed, st.Latency.P99, st.Latency.Max, polls, failures)
	if st.Shed == 0 {
		t.Errorf("no 429 in a flood several times one CPU's capacity")
	}
	if st.Transport > 0 || len(st.Failed) > 0 {
		t.Errorf("%d requests got no answer (%d timed out) and %v another status; first error: %s", st.Transport, st.Timeouts, st.Failed, st.FirstError)
	}
	if failures > 0 || polls == 0 {
		t.Errorf("/healthz during the flood: %d of %d polls failed, first: %v", failures, polls, firstFailure)
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "HTTP " + http.StatusText(e.code) }
