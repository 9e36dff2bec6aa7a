// Package metrics exposes attestd's Prometheus metrics (namespace attestd_):
// attestations by instance, type, outcome and failed check with their
// latency, every request by operation, admin changes, signing-key states and
// admission control (in-flight, waiting and shed attest requests).
//
// It consumes what the other packages already report, api.RequestEvent
// (through api.Options.Observe), api.AdmissionStats and token.KeySet.Keys,
// so it is a decorator around the pipeline, never a part of it. Every
// Metrics owns its registry: there is no global state, and two servers in
// one test process do not share counters.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/token"
)

// Namespace prefixes every metric name.
const Namespace = "attestd"

// Label values used when a request did not name one.
const (
	LabelNone  = "none"  // no failed check, no instance
	LabelOther = "other" // an attestation type attestd does not know
)

// KeySource is an instance's signing keys.
type KeySource interface {
	Keys() []token.KeyInfo
}

// Options configure New. Every field is optional.
type Options struct {
	// Version is reported by attestd_build_info.
	Version string
	// Admission reports the attest admission counters (api.Admission.Stats).
	Admission func() api.AdmissionStats
	// Keys are the signing keys by instance name.
	Keys map[string]KeySource
	// Now is the clock for key states (retiring vs published); default time.Now.
	Now func() time.Time
	// LatencyBuckets replaces the default histogram buckets (seconds).
	LatencyBuckets []float64
	// Collateral are the collateral sources the plugins opened: cache
	// lookups, fetches, documents by state, age, next expiry, readiness.
	Collateral []CollateralSource
}

// Metrics collects attestd's metrics. Observe is safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	attestations *prometheus.CounterVec
	attestTime   *prometheus.HistogramVec
	requests     *prometheus.CounterVec
	requestTime  *prometheus.HistogramVec
	changes      *prometheus.CounterVec
}

// DefaultLatencyBuckets cover a cached-collateral SGX verification (about a
// millisecond) up to a collateral fetch from a slow PCS (tens of seconds).
var defaultLatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New builds the metrics and registers them, with the Go runtime and
// process collectors, on a fresh registry.
func New(o Options) (*Metrics, error) {
	buckets := o.LatencyBuckets
	if len(buckets) == 0 {
		buckets = defaultLatencyBuckets
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "attestations_total",
			Help: "Attest requests answered, by instance, attestation type, outcome (ok or the MAA error code) and failed evidence check (none when the error named no check)."},
			[]string{"instance", "type", "outcome", "check"}),
		attestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "attestation_duration_seconds",
			Help: "Time from receiving an attest request to its answer, by instance, attestation type and outcome.", Buckets: buckets},
			[]string{"instance", "type", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "requests_total",
			Help: "HTTP requests answered, by instance, operation and status code."},
			[]string{"instance", "operation", "code"}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "request_duration_seconds",
			Help: "Time to answer an HTTP request, by operation.", Buckets: buckets},
			[]string{"operation"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "admin_changes_total",
			Help: "Policy and policy-management certificate changes asked for, by instance, action (policy.set, policy.reset, certificate.add, certificate.remove) and outcome."},
			[]string{"instance", "action", "outcome"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help: "Always 1; labels name the attestd version and the Go version that built it."}, []string{"version", "goversion"})
	build.WithLabelValues(o.Version, runtime.Version()).Set(1)
	for _, c := range []prometheus.Collector{m.attestations, m.attestTime, m.requests, m.requestTime, m.changes, build,
		&stateCollector{o: o},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Registry is where the metrics are registered (tests gather from it; a
// caller may register more collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe records one answered request; pass it as api.Options.Observe.
func (m *Metrics) Observe(e api.RequestEvent) {
	inst := e.Instance
	if inst == "" {
		inst = LabelNone
	}
	outcome := e.Outcome()
	m.requests.WithLabelValues(inst, e.Operation, statusLabel(e.Status)).Inc()
	m.requestTime.WithLabelValues(e.Operation).Observe(e.Duration.Seconds())
	if e.Operation == api.OpAttest {
		typ := typeLabel(e.Type)
		check := e.Check
		if check == "" {
			check = LabelNone
		}
		m.attestations.WithLabelValues(inst, typ, outcome, check).Inc()
		m.attestTime.WithLabelValues(inst, typ, outcome).Observe(e.Duration.Seconds())
	}
	if e.Action != "" {
		m.changes.WithLabelValues(inst, e.Action, outcome).Inc()
	}
}

// typeLabel bounds the type label to the known attestation types (matched
// case-insensitively, as clients spell them differently), so that clients
// cannot create series at will.
func typeLabel(s string) string {
	for _, t := range evidence.Types {
		if strings.EqualFold(string(t), s) {
			return string(t)
		}
	}
	return LabelOther
}

func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// stateCollector reports values read at scrape time: admission control,
// signing keys and collateral caches.
type stateCollector struct{ o Options }

var (
	descInFlight = prometheus.NewDesc(Namespace+"_attest_inflight", "Attest requests running now.", nil, nil)
	descWaiting  = prometheus.NewDesc(Namespace+"_attest_waiting", "Attest requests waiting for a slot now.", nil, nil)
	descAdmitted = prometheus.NewDesc(Namespace+"_attest_admitted_total", "Attest requests that got a slot.", nil, nil)
	descQueued   = prometheus.NewDesc(Namespace+"_attest_queued_total", "Attest requests that had to wait for a slot (admitted or shed).", nil, nil)
	descShed     = prometheus.NewDesc(Namespace+"_attest_shed_total", "Attest requests answered 429, by reason (queue_full, wait, client_rate).", []string{"reason"}, nil)
	descAbandon  = prometheus.NewDesc(Namespace+"_attest_abandoned_total", "Attest requests whose client went away while waiting.", nil, nil)
	descKeys     = prometheus.NewDesc(Namespace+"_signing_keys", "Token-signing keys by instance and state: active (signs), published (in /certs, verifies older tokens), retiring (past its retire-after time, about to leave /certs).", []string{"instance", "state"}, nil)
	descKeyExp   = prometheus.NewDesc(Namespace+"_signing_key_not_after_seconds", "Expiry (Unix time) of the certificate of each instance's active signing key.", []string{"instance"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append([]*prometheus.Desc{descInFlight, descWaiting, descAdmitted, descQueued, descShed, descAbandon, descKeys, descKeyExp}, collateralDescri...) {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.o.Admission != nil {
		s := c.o.Admission()
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight))
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(s.Waiting))
		ch <- prometheus.MustNewConstMetric(descAdmitted, prometheus.CounterValue, float64(s.Admitted))
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.CounterValue, float64(s.Queued))
		ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(s.ShedQueueFull), "queue_full")
		ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(s.ShedWait), "wait")
		ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(s.ShedRate), "client_rate")
		ch <- prometheus.MustNewConstMetric(descAbandon, prometheus.CounterValue, float64(s.Abandoned))
	}
	now := c.o.Now()
	collectCollateral(ch, c.o.Collateral, now)
	for name, ks := range c.o.Keys {
		counts := map[string]int{"active": 0, "published": 0, "retiring": 0}
		for _, k := range ks.Keys() {
			switch {
			case k.Active:
				counts["active"]++
				if k.Certificate != nil {
					ch <- prometheus.MustNewConstMetric(descKeyExp, prometheus.GaugeValue, float64(k.Certificate.NotAfter.Unix()), name)
				}
			case !k.RetireAt.IsZero() && !now.Before(k.RetireAt):
				counts["retiring"]++
			default:
				counts["published"]++
			}
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(n), name, state)
		}
	}
}
