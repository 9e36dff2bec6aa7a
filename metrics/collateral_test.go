package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/attestd/attestd/collateral/cache"
)

// fakeSource is a collateral reporter with fixed state.
type fakeSource struct {
	name   string
	ready  error
	status []cache.FamilyStatus
}

func (f *fakeSource) Source() string                        { return f.name }
func (f *fakeSource) Ready(time.Time) error                 { return f.ready }
func (f *fakeSource) Status(time.Time) []cache.FamilyStatus { return f.status }

// readyOnly reports readiness but no cache statistics (a source that is
// not a cache): only attestd_collateral_ready.
type readyOnly struct{}

func (readyOnly) Source() string        { return "bundle" }
func (readyOnly) Ready(time.Time) error { return nil }

// TestCollateralMetrics: each source's families are reported with their
// counters, documents by state, failing keys, age and time to expiry, and
// the source's readiness; absent ages and expiries are absent series.
func TestCollateralMetrics(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	pcs := &fakeSource{name: "pcs", status: []cache.FamilyStatus{{
		Holding: cache.Holding{Family: "intel-dcap", Documents: 5, Expired: 2, Stale: 1, Failing: 3,
			OldestFetch: now.Add(-90 * time.Second), NextExpiry: now.Add(time.Hour)},
		Hits: 40, Misses: 6, FetchesOK: 7, FetchFailures: 2,
	}}}
	kds := &fakeSource{name: "kds", ready: errors.New("stale"), status: []cache.FamilyStatus{{Holding: cache.Holding{Family: "amd-kds-vcek"}}}}
	m, err := New(Options{Now: func() time.Time { return now }, Collateral: []CollateralSource{{"sgx", pcs}, {"snp", kds}, {"tdx", readyOnly{}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP attestd_collateral_cache_lookups_total Collateral cache lookups by plugin, source, document family and result: hit (served from the cache) or miss (waited for a fetch, or a remembered failure).
# TYPE attestd_collateral_cache_lookups_total counter
attestd_collateral_cache_lookups_total{family="amd-kds-vcek",plugin="snp",result="hit",source="kds"} 0
attestd_collateral_cache_lookups_total{family="amd-kds-vcek",plugin="snp",result="miss",source="kds"} 0
attestd_collateral_cache_lookups_total{family="intel-dcap",plugin="sgx",result="hit",source="pcs"} 40
attestd_collateral_cache_lookups_total{family="intel-dcap",plugin="sgx",result="miss",source="pcs"} 6
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "attestd_collateral_cache_lookups_total"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		metric string
		labels []string
		want   float64
	}{
		{"attestd_collateral_fetches_total", []string{"plugin=sgx", "outcome=ok"}, 7},
		{"attestd_collateral_fetches_total", []string{"plugin=sgx", "outcome=error"}, 2},
		{"attestd_collateral_documents", []string{"plugin=sgx", "state=valid"}, 3},
		{"attestd_collateral_documents", []string{"plugin=sgx", "state=expired"}, 1},
		{"attestd_collateral_documents", []string{"plugin=sgx", "state=stale"}, 1},
		{"attestd_collateral_failing_keys", []string{"plugin=sgx"}, 3},
		{"attestd_collateral_oldest_age_seconds", []string{"plugin=sgx"}, 90},
		{"attestd_collateral_next_expiry_seconds", []string{"plugin=sgx"}, 3600},
		{"attestd_collateral_ready", []string{"plugin=sgx"}, 1},
		{"attestd_collateral_ready", []string{"plugin=snp"}, 0},
		{"attestd_collateral_ready", []string{"plugin=tdx", "source=bundle"}, 1},
	} {
		got, n := sample(t, m, tc.metric, tc.labels)
		if n != 1 || got != tc.want {
			t.Errorf("%s%v = %v (%d series), want %v", tc.metric, tc.labels, got, n, tc.want)
		}
	}
	// The empty KDS family has no age or expiry series.
	for _, metric := range []string{"attestd_collateral_oldest_age_seconds", "attestd_collateral_next_expiry_seconds"} {
		if _, n := sample(t, m, metric, []string{"plugin=snp"}); n != 0 {
			t.Errorf("%s for an empty family: %d series", metric, n)
		}
	}
}

// sample returns the value of the one series of metric matching every
// label=value, and how many matched.
func sample(t *testing.T, m *Metrics, metric string, labels []string) (float64, int) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range s.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for _, l := range labels {
				k, val, _ := strings.Cut(l, "=")
				if have[k] != val {
					continue series
				}
			}
			n++
			switch {
			case s.GetCounter() != nil:
				v = s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				v = s.GetGauge().GetValue()
			}
		}
	}
	return v, n
}
