package sgx

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// TestCollateralErrorClasses: every collateral failure names the check
// collateral.unavailable; only a transient one (collateral.ErrUnavailable:
// the source is down or rate-limits) is marked evidence.ErrUnavailable, so
// the pipeline answers 503 for it and 400 for the others.
func TestCollateralErrorClasses(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		err       error
		transient bool
	}{
		{"PCS down", &collateral.UnavailableError{Source: "pcs test", Status: 503, Err: errors.New("maintenance")}, true},
		{"wrapped by a cache", fmt.Errorf("collateral cache: %w", &collateral.UnavailableError{Source: "pcs test", Err: errors.New("timeout")}), true},
		{"not found", fmt.Errorf("pcs: %w", collateral.ErrNotFound), false},
		{"other", errors.New("malformed TCB info"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := sourceFunc(func(context.Context, collateral.Request) (*collateral.Collateral, error) { return nil, c.err })
			v, err := NewVerifier(Options{Collateral: src, Roots: p.Roots(), Now: at(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote})
			if evidence.CheckOf(err) != string(evidence.CheckCollateralUnavailable) {
				t.Fatalf("got %v, want check %s", err, evidence.CheckCollateralUnavailable)
			}
			if got := errors.Is(err, evidence.ErrUnavailable); got != c.transient {
				t.Fatalf("errors.Is(%v, evidence.ErrUnavailable) = %v, want %v", err, got, c.transient)
			}
		})
	}
}
