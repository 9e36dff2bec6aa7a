package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attestd/attestd/collateral/cache"
	"github.com/attestd/attestd/evidence"
)

// CollateralSource is one collateral source a plugin opened (what
// evidence.PluginEnv.Collateral hands over).
type CollateralSource struct {
	// Plugin is the plugin that opened it ("sgx", "snp").
	Plugin   string
	Reporter evidence.CollateralReporter
}

// statuser is what a reporter offers beyond readiness: cache.Stats does.
type statuser interface {
	Status(now time.Time) []cache.FamilyStatus
}

var (
	collLabels       = []string{"plugin", "source", "family"}
	descCollLookups  = prometheus.NewDesc(Namespace+"_collateral_cache_lookups_total", "Collateral cache lookups by plugin, source, document family and result: hit (served from the cache) or miss (waited for a fetch, or a remembered failure).", append(collLabels, "result"), nil)
	descCollFetches  = prometheus.NewDesc(Namespace+"_collateral_fetches_total", "Collateral fetches from the upstream service (misses, background refreshes, retries) by outcome: ok or error.", append(collLabels, "outcome"), nil)
	descCollDocs     = prometheus.NewDesc(Namespace+"_collateral_documents", "Collateral documents cached, by state: valid, expired (past the validity window, not refreshed yet) or stale (expired beyond the source's readiness tolerance with its refresh failing).", append(collLabels, "state"), nil)
	descCollFailing  = prometheus.NewDesc(Namespace+"_collateral_failing_keys", "Platforms (keys) with no collateral because the last fetch failed with the source unavailable, within the retry interval.", collLabels, nil)
	descCollAge      = prometheus.NewDesc(Namespace+"_collateral_oldest_age_seconds", "Age of the least recently fetched collateral document (absent without documents).", collLabels, nil)
	descCollExpiry   = prometheus.NewDesc(Namespace+"_collateral_next_expiry_seconds", "Seconds until the earliest validity window of a cached, unexpired document ends (absent when none has one).", collLabels, nil)
	descCollReady    = prometheus.NewDesc(Namespace+"_collateral_ready", "1 when the source's collateral is usable as its readiness configuration requires, else 0 (/readyz then fails if the source is required).", []string{"plugin", "source"}, nil)
	collateralDescri = []*prometheus.Desc{descCollLookups, descCollFetches, descCollDocs, descCollFailing, descCollAge, descCollExpiry, descCollReady}
)

// collectCollateral reports every source's state as of now.
func collectCollateral(ch chan<- prometheus.Metric, sources []CollateralSource, now time.Time) {
	for _, s := range sources {
		src := s.Reporter.Source()
		ready := 1.0
		if s.Reporter.Ready(now) != nil {
			ready = 0
		}
		ch <- prometheus.MustNewConstMetric(descCollReady, prometheus.GaugeValue, ready, s.Plugin, src)
		st, ok := s.Reporter.(statuser)
		if !ok {
			continue
		}
		for _, f := range st.Status(now) {
			l := []string{s.Plugin, src, f.Family}
			with := func(v string) []string { return append(append([]string{}, l...), v) }
			ch <- prometheus.MustNewConstMetric(descCollLookups, prometheus.CounterValue, float64(f.Hits), with("hit")...)
			ch <- prometheus.MustNewConstMetric(descCollLookups, prometheus.CounterValue, float64(f.Misses), with("miss")...)
			ch <- prometheus.MustNewConstMetric(descCollFetches, prometheus.CounterValue, float64(f.FetchesOK), with("ok")...)
			ch <- prometheus.MustNewConstMetric(descCollFetches, prometheus.CounterValue, float64(f.FetchFailures), with("error")...)
			ch <- prometheus.MustNewConstMetric(descCollDocs, prometheus.GaugeValue, float64(f.Documents-f.Expired), with("valid")...)
			ch <- prometheus.MustNewConstMetric(descCollDocs, prometheus.GaugeValue, float64(f.Expired-f.Stale), with("expired")...)
			ch <- prometheus.MustNewConstMetric(descCollDocs, prometheus.GaugeValue, float64(f.Stale), with("stale")...)
			ch <- prometheus.MustNewConstMetric(descCollFailing, prometheus.GaugeValue, float64(f.Failing), l...)
			if !f.OldestFetch.IsZero() {
				ch <- prometheus.MustNewConstMetric(descCollAge, prometheus.GaugeValue, now.Sub(f.OldestFetch).Seconds(), l...)
			}
			if !f.NextExpiry.IsZero() {
				ch <- prometheus.MustNewConstMetric(descCollExpiry, prometheus.GaugeValue, f.NextExpiry.Sub(now).Seconds(), l...)
			}
		}
	}
}
