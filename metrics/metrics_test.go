package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/attestd/attestd/api"
)

// TestObserve: attest events count by instance, bounded type, outcome and
// check; admin actions count separately; unknown types share one label.
func TestObserve(t *testing.T) {
	m, err := New(Options{Version: "test", Admission: func() api.AdmissionStats { return api.AdmissionStats{ShedRate: 4} }})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []api.RequestEvent{
		{Operation: api.OpAttest, Instance: "a", Type: "sgxenclave", Status: 200, Duration: time.Millisecond},
		{Operation: api.OpAttest, Instance: "a", Type: "SgxEnclave", Status: 400, Code: "InvalidParameter", Check: "pck_chain"},
		{Operation: api.OpAttest, Instance: "a", Type: "Bogus" + string(rune('x')), Status: 404, Code: "NotFound"},
		{Operation: api.OpPolicy, Action: "policy.set", Instance: "a", Status: 200},
	} {
		m.Observe(e)
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"a", "SgxEnclave", "ok", "none"}, 1},
		{[]string{"a", "SgxEnclave", "InvalidParameter", "pck_chain"}, 1},
		{[]string{"a", "other", "NotFound", "none"}, 1},
	} {
		if got := testutil.ToFloat64(m.attestations.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("attestations%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(m.changes.WithLabelValues("a", "policy.set", "ok")); got != 1 {
		t.Errorf("admin changes = %v", got)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "attestd_attest_shed_total"); err != nil || n != 3 {
		t.Errorf("shed series = %d, %v; want 3 (one per reason)", n, err)
	}
}
