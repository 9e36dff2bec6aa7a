package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/attestd/attestd/api"
)

// DefaultMaxConnections bounds the connections the server holds open.
// Go raises the soft file-descriptor limit to the hard one at start, so
// this is what bounds descriptors and per-connection memory (TLS buffers,
// one goroutine each: about 50 KiB an idle connection).
const DefaultMaxConnections = 1024

// LimitsConfig is the "limits" block of the configuration file: overload
// behaviour. Every field is optional; zero or absent means the default.
//
//	"limits": {"max_connections": 1024, "max_inflight": 0, "max_queue": 0,
//	           "queue_wait": "1s", "retry_after": "1s", "attest_body_timeout": "10s",
//	           "client_rate": 0, "client_burst": 0}
type LimitsConfig struct {
	// MaxConnections bounds open connections (DefaultMaxConnections).
	MaxConnections int `json:"max_connections"`
	// MaxInFlight bounds attestations running at once (2×GOMAXPROCS); -1: no limit.
	MaxInFlight int `json:"max_inflight"`
	// MaxQueue bounds attest requests waiting for a slot (4×max_inflight); -1: none.
	MaxQueue int `json:"max_queue"`
	// QueueWait bounds the wait for a slot, a Go duration (1s).
	QueueWait string `json:"queue_wait"`
	// RetryAfter is the Retry-After of a 429, a Go duration (1s).
	RetryAfter string `json:"retry_after"`
	// AttestBodyTimeout bounds reading an attest body, a Go duration (10s).
	AttestBodyTimeout string `json:"attest_body_timeout"`
	// ClientRate limits attest requests per second per client IP (0: off).
	ClientRate float64 `json:"client_rate"`
	// ClientBurst is the per-client burst (⌈client_rate⌉).
	ClientBurst int `json:"client_burst"`
}

// limitFlags are the serve flags of the limits, as given (empty: not set).
type limitFlags struct {
	maxConns, maxInFlight, maxQueue, queueWait, retryAfter, bodyTimeout, clientRate, clientBurst string
}

func (lf *limitFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&lf.maxConns, "max-connections", "", "connections held open at most; more wait in the kernel's backlog (env ATTESTD_MAX_CONNECTIONS; default "+strconv.Itoa(DefaultMaxConnections)+")")
	fs.StringVar(&lf.maxInFlight, "max-inflight", "", "attestations running at once; -1: no limit (env ATTESTD_MAX_INFLIGHT; default 2×GOMAXPROCS)")
	fs.StringVar(&lf.maxQueue, "max-queue", "", "attest requests waiting for a slot, beyond which 429 (env ATTESTD_MAX_QUEUE; default 4×max-inflight; -1: none)")
	fs.StringVar(&lf.queueWait, "queue-wait", "", "longest wait for an attestation slot before 429 (env ATTESTD_QUEUE_WAIT; default "+api.DefaultMaxWait.String()+")")
	fs.StringVar(&lf.retryAfter, "retry-after", "", "Retry-After of a 429, rounded up to seconds (env ATTESTD_RETRY_AFTER; default "+api.DefaultRetryAfter.String()+")")
	fs.StringVar(&lf.bodyTimeout, "attest-body-timeout", "", "deadline for reading an attest request body, from its arrival (env ATTESTD_ATTEST_BODY_TIMEOUT; default "+api.DefaultBodyReadTimeout.String()+")")
	fs.StringVar(&lf.clientRate, "client-rate", "", "attest requests per second per client IP address, beyond which 429; 0: off (env ATTESTD_CLIENT_RATE; default 0)")
	fs.StringVar(&lf.clientBurst, "client-burst", "", "per-client burst of attest requests (env ATTESTD_CLIENT_BURST; default ⌈client-rate⌉)")
}

// resolveLimits combines flags, environment and the file's "limits" block
// (flag > environment > file > default) into the connection limit and the
// admission options.
func resolveLimits(lf *limitFlags, c LimitsConfig) (maxConns int, o api.AdmissionOptions, err error) {
	itoa := func(v int) string {
		if v == 0 {
			return ""
		}
		return strconv.Itoa(v)
	}
	ftoa := func(v float64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	intOf := func(name, flagV, env, file string, dst *int) {
		s := firstNonEmpty(flagV, os.Getenv(env), file)
		if s == "" || err != nil {
			return
		}
		n, e := strconv.Atoi(s)
		if e != nil {
			err = fmt.Errorf("%w: %s %q is not an integer", errUsage, name, s)
			return
		}
		*dst = n
	}
	durOf := func(name, flagV, env, file string, dst *time.Duration) {
		s := firstNonEmpty(flagV, os.Getenv(env), file)
		if s == "" || err != nil {
			return
		}
		d, e := time.ParseDuration(s)
		if e != nil || d <= 0 {
			err = fmt.Errorf("%w: %s %q is not a positive duration", errUsage, name, s)
			return
		}
		*dst = d
	}
	maxConns = DefaultMaxConnections
	intOf("max-connections", lf.maxConns, "ATTESTD_MAX_CONNECTIONS", itoa(c.MaxConnections), &maxConns)
	intOf("max-inflight", lf.maxInFlight, "ATTESTD_MAX_INFLIGHT", itoa(c.MaxInFlight), &o.MaxInFlight)
	intOf("max-queue", lf.maxQueue, "ATTESTD_MAX_QUEUE", itoa(c.MaxQueue), &o.MaxQueue)
	durOf("queue-wait", lf.queueWait, "ATTESTD_QUEUE_WAIT", c.QueueWait, &o.MaxWait)
	durOf("retry-after", lf.retryAfter, "ATTESTD_RETRY_AFTER", c.RetryAfter, &o.RetryAfter)
	durOf("attest-body-timeout", lf.bodyTimeout, "ATTESTD_ATTEST_BODY_TIMEOUT", c.AttestBodyTimeout, &o.BodyReadTimeout)
	intOf("client-burst", lf.clientBurst, "ATTESTD_CLIENT_BURST", itoa(c.ClientBurst), &o.ClientBurst)
	if s := firstNonEmpty(lf.clientRate, os.Getenv("ATTESTD_CLIENT_RATE"), ftoa(c.ClientRate)); s != "" && err == nil {
		if o.ClientRate, err = strconv.ParseFloat(s, 64); err != nil {
			err = fmt.Errorf("%w: client-rate %q is not a number", errUsage, s)
		}
	}
	if err != nil {
		return 0, api.AdmissionOptions{}, err
	}
	if maxConns <= 0 {
		return 0, api.AdmissionOptions{}, fmt.Errorf("%w: max-connections must be positive, got %d", errUsage, maxConns)
	}
	if o.ClientBurst < 0 {
		return 0, api.AdmissionOptions{}, fmt.Errorf("%w: client-burst must not be negative, got %d", errUsage, o.ClientBurst)
	}
	if _, e := api.NewAdmission(o); e != nil {
		return 0, api.AdmissionOptions{}, fmt.Errorf("%w: %v", errUsage, e)
	}
	return maxConns, o, nil
}
