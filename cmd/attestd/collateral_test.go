package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	amdkds "github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/collateral/kds/kdstest"
	"github.com/attestd/attestd/evidence/snp"
	"github.com/attestd/attestd/testing/snpplatform"
)

// TestCollateralMetricsAndReadiness runs the real server with SEV-SNP
// collateral from a KDS stub, configured as required for readiness: the
// first attestation fetches the VCEK (a miss and a fetch in /metrics), the
// second is a cache hit; while KDS is down, an attestation for an unknown
// chip fails with 503 and /readyz answers 503 naming the source, its
// metrics saying not ready and one failing key.
func TestCollateralMetricsAndReadiness(t *testing.T) {
	dir := t.TempDir()
	p, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Sign(snpplatform.Report{Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := snp.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	key, err := amdkds.NewVCEKKey(amdkds.Milan, p.ChipID[:], ev.Report.GetReportedTcb())
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	h := &kdstest.Handler{VCEKs: map[amdkds.VCEKKey][]byte{key: p.VCEK()}, Override: func(w http.ResponseWriter, r *http.Request) bool {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return down.Load()
	}}
	kdsSrv := httptest.NewServer(h)
	defer kdsSrv.Close()
	if err := os.WriteFile(filepath.Join(dir, "snp-roots.pem"), p.RootsPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"data": "data", "sgx": {"disabled": true},
		"snp": {"roots": ["snp-roots.pem"], "kds": {"type": "kds", "url": "` + kdsSrv.URL + `", "readiness": {"required": true, "max_expired": "1h"}}}}`
	cfgPath := filepath.Join(dir, "attestd.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := startServerSplit(t, "--config", cfgPath)
	defer s.stop(t)

	attest := func(raw []byte) int {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"report": base64.RawURLEncoding.EncodeToString(snpplatform.MAAReport(raw, nil, nil))})
		res, err := s.client.Post(s.base+"/attest/SevSnpVm?api-version=2022-08-01", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	ready := func() (int, readyReport) {
		t.Helper()
		res, err := s.client.Get(s.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var rep readyReport
		if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, rep
	}
	const check = "collateral/snp/kds"
	vcek := func(more map[string]string) map[string]string {
		l := map[string]string{"plugin": "snp", "source": "kds", "family": amdkds.VCEKCodec.Family()}
		for k, v := range more {
			l[k] = v
		}
		return l
	}

	if st, rep := ready(); st != 200 || rep.Checks[check] != "ok" {
		t.Fatalf("/readyz before any attestation: %d %+v", st, rep)
	}
	if st := attest(raw); st != 200 {
		t.Fatalf("first attestation: %d", st)
	}
	if st := attest(raw); st != 200 {
		t.Fatalf("second attestation: %d", st)
	}
	m := scrape(t, s.client, s.base+"/metrics")
	for _, c := range []struct {
		labels map[string]string
		name   string
		want   float64
	}{
		{vcek(map[string]string{"result": "miss"}), "attestd_collateral_cache_lookups_total", 1},
		{vcek(map[string]string{"result": "hit"}), "attestd_collateral_cache_lookups_total", 1},
		{vcek(map[string]string{"outcome": "ok"}), "attestd_collateral_fetches_total", 1},
		{vcek(map[string]string{"outcome": "error"}), "attestd_collateral_fetches_total", 0},
		{vcek(map[string]string{"state": "valid"}), "attestd_collateral_documents", 1},
		{vcek(nil), "attestd_collateral_failing_keys", 0},
		{map[string]string{"plugin": "snp", "source": "kds"}, "attestd_collateral_ready", 1},
	} {
		if got := metricValue(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if age := metricValue(t, m, "attestd_collateral_oldest_age_seconds", vcek(nil)); age < 0 {
		t.Errorf("no age of the cached VCEK")
	}

	// KDS goes down; a chip the cache has never seen cannot be attested.
	down.Store(true)
	other, err := snpplatform.New(snpplatform.Options{ChipID: [64]byte{0xee, 0xee}}) // same (test) AMD keys, another chip
	if err != nil {
		t.Fatal(err)
	}
	raw2, err := other.Sign(snpplatform.Report{Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	if st := attest(raw2); st != 503 {
		t.Fatalf("attestation with KDS down: %d", st)
	}
	st, rep := ready()
	if st != 503 || rep.Status != "not ready" || !strings.Contains(rep.Checks[check], "collateral stale") || !strings.Contains(rep.Checks[check], "without collateral") {
		t.Fatalf("/readyz with KDS down: %d %+v", st, rep)
	}
	m = scrape(t, s.client, s.base+"/metrics")
	if got := metricValue(t, m, "attestd_collateral_ready", map[string]string{"plugin": "snp", "source": "kds"}); got != 0 {
		t.Errorf("attestd_collateral_ready = %v with KDS down", got)
	}
	if got := metricValue(t, m, "attestd_collateral_fetches_total", vcek(map[string]string{"outcome": "error"})); got < 1 {
		t.Errorf("failed fetches = %v", got)
	}
	// The VCEK of the first chip is still served from the cache.
	if st := attest(raw); st != 200 {
		t.Fatalf("cached chip with KDS down: %d", st)
	}
}
