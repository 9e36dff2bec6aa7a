// Command loadgen is a small bounded HTTP load generator for attestd's
// attest endpoint (benchmarks over a real socket; not used by tests):
//
//	go run ./testing/loadgen -url https://127.0.0.1:8443/attest/SgxEnclave \
//	    -cacert data/tls/cert.pem -quote gen/sgx-quote-v3.bin -runtime gen/runtime.bin \
//	    -c 4 -d 10s
//
// It keeps -c requests in flight over keep-alive connections for -d (or -n
// requests), requires HTTP 200 with a token for every one, and prints
// throughput and latency percentiles. It lives under testing/ so the server
// binary does not contain it.
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
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	url := fs.String("url", "", "attest URL, e.g. https://127.0.0.1:8443/attest/SgxEnclave")
	cacert := fs.String("cacert", "", "PEM file of the server's TLS certificate (default: system roots)")
	quote := fs.String("quote", "", "evidence file (SGX quote or OpenEnclave report)")
	runtime := fs.String("runtime", "", "runtime data file (optional)")
	runtimeJSON := fs.Bool("runtime-json", false, "send the runtime data with dataType JSON")
	conc := fs.Int("c", 2, "requests in flight")
	dur := fs.Duration("d", 10*time.Second, "duration (ignored when -n is set)")
	n := fs.Int("n", 0, "total requests (0: run for -d)")
	warm := fs.Int("warmup", 20, "requests sent before measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *quote == "" {
		return errors.New("-url and -quote are required")
	}
	if *conc < 1 || *conc > 256 {
		return errors.New("-c must be 1..256")
	}
	q, err := os.ReadFile(*quote)
	if err != nil {
		return err
	}
	field := "quote"
	if bytes.Contains([]byte(*url), []byte("/attest/OpenEnclave")) {
		field = "report"
	}
	req := map[string]any{field: base64.RawURLEncoding.EncodeToString(q)}
	if *runtime != "" {
		rt, err := os.ReadFile(*runtime)
		if err != nil {
			return err
		}
		dt := "Binary"
		if *runtimeJSON {
			dt = "JSON"
		}
		req["runtimeData"] = map[string]string{"data": base64.RawURLEncoding.EncodeToString(rt), "dataType": dt}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc, ForceAttemptHTTP2: false, TLSClientConfig: &tls.Config{}}
	if *cacert != "" {
		pemb, err := os.ReadFile(*cacert)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemb) {
			return fmt.Errorf("%s: no certificate", *cacert)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	one := func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		r.Header.Set("Content-Type", "application/json")
		res, err := client.Do(r)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return 0, err
		}
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"token"`)) {
			return 0, fmt.Errorf("HTTP %d: %.300s", res.StatusCode, b)
		}
		return time.Since(start), nil
	}
	ctx := context.Background()
	for i := 0; i < *warm; i++ {
		if _, err := one(ctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	var (
		issued   atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(*dur)
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				if *n > 0 {
					if issued.Add(1) > int64(*n) {
						break
					}
				} else if time.Now().After(deadline) {
					break
				}
				d, err := one(ctx)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	if len(lat) == 0 {
		return errors.New("no request completed")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Fprintf(stdout, "requests %d  concurrency %d  elapsed %s  throughput %.1f req/s  latency p50 %s p90 %s p99 %s max %s\n",
		len(lat), *conc, elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	return nil
}
