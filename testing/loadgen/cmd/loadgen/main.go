// Command loadgen drives a running attestd's attest endpoint over HTTPS
// (benchmarks over a real socket; not used by tests):
//
//	# closed loop: 4 requests in flight for 10 s (the saturation rate)
//	loadgen -url https://127.0.0.1:8443/attest/SgxEnclave \
//	    -cacert data/tls/cert.pem -quote gen/sgx-quote-v3.bin -runtime gen/runtime.bin -c 4 -d 10s
//	# open loop: 800 requests/s for 10 s, latency from each intended send time,
//	# with the server's CPU time and peak RSS over the run
//	loadgen ... -rate 800 -d 10s -pid $(pgrep -n attestd) -reset-peak
//
// The quote is an SGX test-platform quote (testing/sgxplatform/cmd/sgxgen)
// or any quote the server trusts. A response counts as a success only when
// it is HTTP 200 with a token; 429 is counted as shed; other statuses and
// transport errors are counted by kind, and the run goes on. The exit status
// is 1 when no request succeeded (or, with -strict, when any failed).
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/testing/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type options struct {
	url, cacert, quote, runtime string
	runtimeJSON                 bool
	conc, n, warm, warmConns    int
	dur, timeout, sample        time.Duration
	rate                        float64
	maxInFlight                 int
	pid                         int
	resetPeak, jsonOut, strict  bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "attest URL, e.g. https://127.0.0.1:8443/attest/SgxEnclave")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of the server's TLS certificate (default: system roots)")
	fs.StringVar(&o.quote, "quote", "", "evidence file (SGX quote or OpenEnclave report)")
	fs.StringVar(&o.runtime, "runtime", "", "runtime data file (optional)")
	fs.BoolVar(&o.runtimeJSON, "runtime-json", false, "send the runtime data with dataType JSON")
	fs.IntVar(&o.conc, "c", 2, "closed loop: requests in flight")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: requests per second (0: closed loop)")
	fs.IntVar(&o.maxInFlight, "max-inflight", 512, "open loop: most requests outstanding (and connections)")
	fs.DurationVar(&o.dur, "d", 10*time.Second, "duration (ignored when -n is set)")
	fs.IntVar(&o.n, "n", 0, "total requests (0: run for -d)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout (a transport error)")
	fs.IntVar(&o.warm, "warmup", 20, "requests sent before measuring (must all succeed)")
	fs.IntVar(&o.warmConns, "warmup-c", 0, "connections opened by the warm-up (default: -c, or min(-max-inflight, 16) in open loop)")
	fs.IntVar(&o.pid, "pid", 0, "server process id: report its CPU time and peak RSS over the run (Linux /proc)")
	fs.BoolVar(&o.resetPeak, "reset-peak", false, "with -pid: reset the server's peak RSS (VmHWM) before measuring")
	fs.DurationVar(&o.sample, "sample", 0, "with -pid: print the server's RSS every interval during the run (soak)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when any request failed (429 included)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case o.url == "" || o.quote == "":
		return nil, errors.New("-url and -quote are required")
	case o.rate == 0 && (o.conc < 1 || o.conc > 1024):
		return nil, errors.New("-c must be 1..1024")
	case o.rate < 0 || o.rate > 1e6:
		return nil, errors.New("-rate must be 0 (closed loop) or a rate up to 1e6/s")
	case o.rate > 0 && (o.maxInFlight < 1 || o.maxInFlight > 1<<14):
		return nil, errors.New("-max-inflight must be 1..16384")
	case (o.resetPeak || o.sample > 0) && o.pid == 0:
		return nil, errors.New("-reset-peak and -sample need -pid")
	}
	if o.warmConns == 0 {
		o.warmConns = o.conc
		if o.rate > 0 {
			o.warmConns = min(o.maxInFlight, 16)
		}
	}
	return &o, nil
}

// requestBody is the MAA attest body: base64url evidence under "quote"
// (SgxEnclave) or "report" (OpenEnclave), optional runtime data.
func requestBody(url string, quote, runtime []byte, runtimeJSON bool) ([]byte, error) {
	field := "quote"
	if strings.Contains(url, "/attest/OpenEnclave") {
		field = "report"
	}
	req := map[string]any{field: base64.RawURLEncoding.EncodeToString(quote)}
	if runtime != nil {
		dt := "Binary"
		if runtimeJSON {
			dt = "JSON"
		}
		req["runtimeData"] = map[string]string{"data": base64.RawURLEncoding.EncodeToString(runtime), "dataType": dt}
	}
	return json.Marshal(req)
}

func newClient(cacert string, conns int) (*http.Client, error) {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, MaxIdleConns: conns,
		IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: false, TLSClientConfig: &tls.Config{},
	}
	if cacert != "" {
		pemb, err := os.ReadFile(cacert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemb) {
			return nil, fmt.Errorf("%s: no certificate", cacert)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	q, err := os.ReadFile(o.quote)
	if err != nil {
		return err
	}
	var rt []byte
	if o.runtime != "" {
		if rt, err = os.ReadFile(o.runtime); err != nil {
			return err
		}
	}
	body, err := requestBody(o.url, q, rt, o.runtimeJSON)
	if err != nil {
		return err
	}
	conns := o.conc
	if o.rate > 0 {
		conns = o.maxInFlight
	}
	client, err := newClient(o.cacert, conns)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	sender := &loadgen.HTTPSender{Client: client, URL: o.url, Body: body, Want: []byte(`"token"`)}

	if o.warm > 0 {
		w, err := loadgen.RunClosed(ctx, sender, loadgen.ClosedConfig{Concurrency: o.warmConns, N: max(o.warm, o.warmConns), Timeout: o.timeout})
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if w.OK != w.Sent {
			return fmt.Errorf("warm-up: %d of %d requests failed (%d shed), first error: %s", w.Sent-w.OK, w.Sent, w.Shed, w.FirstError)
		}
	}

	var before loadgen.ProcSample
	if o.pid != 0 {
		if o.resetPeak {
			if err := loadgen.ResetPeak(ctx, o.pid); err != nil {
				return err
			}
		}
		if before, err = loadgen.ReadProc(ctx, o.pid); err != nil {
			return err
		}
	}
	stopSampler := func() {}
	if o.sample > 0 {
		stopSampler = sampleRSS(ctx, o.pid, o.sample, before, stdout)
	}
	var st *loadgen.Stats
	if o.rate > 0 {
		st, err = loadgen.RunOpen(ctx, sender, loadgen.OpenConfig{Rate: o.rate, Duration: o.dur, N: o.n, MaxInFlight: o.maxInFlight, Timeout: o.timeout})
	} else {
		st, err = loadgen.RunClosed(ctx, sender, loadgen.ClosedConfig{Concurrency: o.conc, Duration: o.dur, N: o.n, Timeout: o.timeout})
	}
	stopSampler()
	if err != nil && st == nil {
		return err
	}
	if o.pid != 0 {
		after, perr := loadgen.ReadProc(context.WithoutCancel(ctx), o.pid)
		if perr != nil {
			return perr
		}
		st.Server = after.Sub(before)
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		if e := enc.Encode(st); e != nil {
			return e
		}
	} else {
		fmt.Fprintln(stdout, summary(st, o.conc))
	}
	switch {
	case err != nil:
		return err
	case st.OK == 0:
		return fmt.Errorf("no request succeeded; first error: %s", st.FirstError)
	case o.strict && st.OK != st.Sent:
		return fmt.Errorf("%d of %d requests did not succeed; first error: %s", st.Sent-st.OK, st.Sent, st.FirstError)
	}
	return nil
}

// summary is the one-line human report of a run.
func summary(st *loadgen.Stats, conc int) string {
	var b bytes.Buffer
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	if st.Mode == "closed" {
		fmt.Fprintf(&b, "closed loop c=%d", conc)
	} else {
		fmt.Fprintf(&b, "open loop")
	}
	fmt.Fprintf(&b, "  elapsed %s  offered %.1f/s  served %.1f/s  requests %d  ok %d  shed(429) %d",
		st.Elapsed.Round(time.Millisecond), st.Offered, st.Served, st.Sent, st.OK, st.Shed)
	if e := st.Errors(); e > 0 {
		codes := make([]int, 0, len(st.Failed))
		for c := range st.Failed {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		fmt.Fprintf(&b, "  errors %d (transport %d, timeouts %d", e, st.Transport, st.Timeouts)
		for _, c := range codes {
			fmt.Fprintf(&b, ", HTTP %d: %d", c, st.Failed[c])
		}
		fmt.Fprintf(&b, ")")
	}
	l := st.Latency
	fmt.Fprintf(&b, "  latency p50 %s p90 %s p99 %s max %s", r(l.P50), r(l.P90), r(l.P99), r(l.Max))
	if st.Mode == "open" {
		fmt.Fprintf(&b, "  max send delay %s", r(st.MaxSendDelay))
	}
	if s := st.Server; s != nil {
		fmt.Fprintf(&b, "  server CPU %.2fs", s.CPU.Seconds())
		if st.OK > 0 {
			fmt.Fprintf(&b, " (%.0f µs/ok)", float64(s.CPU.Microseconds())/float64(st.OK))
		}
		fmt.Fprintf(&b, "  peak RSS %.1f MiB", float64(s.PeakRSS)/(1<<20))
	}
	if st.FirstError != "" {
		fmt.Fprintf(&b, "\n  first error: %s", st.FirstError)
	}
	return b.String()
}

// sampleRSS prints the server's RSS, peak RSS and CPU time every interval
// until the returned function is called.
func sampleRSS(ctx context.Context, pid int, every time.Duration, base loadgen.ProcSample, w io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s, err := loadgen.ReadProc(ctx, pid)
			if err != nil {
				fmt.Fprintf(w, "rss  t=%s  error: %v\n", time.Since(start).Round(time.Second), err)
				continue
			}
			fmt.Fprintf(w, "rss  t=%-6s  rss %6.1f MiB  peak %6.1f MiB  server CPU %.1fs\n",
				time.Since(start).Round(time.Second), float64(s.RSS)/(1<<20), float64(s.HWM)/(1<<20), (s.CPU - base.CPU).Seconds())
		}
	}()
	return func() { cancel(); <-done }
}
