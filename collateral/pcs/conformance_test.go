package pcs

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/pcs/pcstest"
	"github.com/attestd/attestd/collateral/sourcetest"
)

// TestConformance runs the collateral source suite against the PCS client
// talking to a fake PCS on loopback: up, answering 503, and hanging.
func TestConformance(t *testing.T) {
	fx := sourcetest.NewDCAPFixture(t, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	// The served set first: PCK and root CRLs come from the first set.
	sets := []*collateral.Collateral{fx.Sets[fx.Served], fx.Sets[fx.Expired], fx.Sets[fx.NotYetValid]}
	sourcetest.Exercise(t, fx.Family(func(t testing.TB, u sourcetest.Upstream) sourcetest.Get[collateral.Request, *collateral.Collateral] {
		h := &pcstest.Handler{Sets: sets}
		switch u {
		case sourcetest.Down:
			h.Override = func(w http.ResponseWriter, r *http.Request) bool {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
				return true
			}
		case sourcetest.Hang:
			h.Override = func(w http.ResponseWriter, r *http.Request) bool {
				<-r.Context().Done()
				return true
			}
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		c, err := New(Config{BaseURL: srv.URL, RootCACRLURL: srv.URL + pcstest.RootCACRLPath})
		if err != nil {
			t.Fatal(err)
		}
		return c.Get
	}))
}

// TestUnavailableCarriesStatus: a 429 from PCS is transient, rate limited,
// and carries the status and Retry-After.
func TestUnavailableCarriesStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, RootCACRLURL: srv.URL + pcstest.RootCACRLPath})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.TCBInfo(t.Context(), collateral.SGX, "00a067110000")
	ue, ok := err.(*collateral.UnavailableError)
	if !ok || ue.Status != http.StatusTooManyRequests || ue.RetryAfter != 30*time.Second || !ue.RateLimited() || !collateral.Transient(err) {
		t.Fatalf("TCBInfo on 429 = %#v", err)
	}
}
