package sgx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// baselinePlatform is a test platform whose collateral exists in three TCB
// baselines that judge the same platform differently: 17 (the standard,
// newest) UpToDate, 16 SWHardeningNeeded, 15 OutOfDate with an advisory.
func baselinePlatform(t *testing.T) (*sgxplatform.Platform, *bundle.Bundle, map[int]*collateral.Collateral) {
	t.Helper()
	p := newPlatform(t, sgxplatform.Options{})
	sets := map[int]*collateral.Collateral{17: p.Collateral()}
	for n, o := range map[int]sgxplatform.Options{
		16: {TCBStatus: pcs.SWHardeningNeeded, AdvisoryIDs: []string{"INTEL-SA-00334"}},
		15: {TCBStatus: pcs.OutOfDate, AdvisoryIDs: []string{"INTEL-SA-00615"}},
	} {
		c, err := p.CollateralWith(func(opts *sgxplatform.Options) {
			opts.TCBStatus, opts.AdvisoryIDs = o.TCBStatus, o.AdvisoryIDs
			opts.TCBEvaluationDataNumber = n
			opts.Now = testNow.Add(-time.Duration(18-n) * time.Minute) // older baselines were issued earlier
		})
		if err != nil {
			t.Fatal(err)
		}
		sets[n] = c
	}
	b, err := bundle.FromCollateral(sets[15], sets[17], sets[16])
	if err != nil {
		t.Fatal(err)
	}
	return p, b, sets
}

func TestTCBBaselineSelection(t *testing.T) {
	p, b, _ := baselinePlatform(t)
	v, err := NewVerifier(Options{Collateral: b, Roots: p.Roots(), Now: at(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oe, err := p.OEReport(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		property   any
		status     pcs.TCBStatus
		id         string
		advisories []string
		check      string // failure
	}{
		{name: "absent", property: nil, status: pcs.UpToDate, id: "azuredefault", advisories: []string{}},
		{name: "azuredefault", property: "azuredefault", status: pcs.UpToDate, id: "azuredefault", advisories: []string{}},
		{name: "azuredefault, any case", property: "AzureDefault", status: pcs.UpToDate, id: "azuredefault", advisories: []string{}},
		{name: "17 (the standard one, by number)", property: "17", status: pcs.UpToDate, id: "17", advisories: []string{}},
		{name: "16", property: "16", status: pcs.SWHardeningNeeded, id: "16", advisories: []string{"INTEL-SA-00334"}},
		{name: "15", property: "15", status: pcs.OutOfDate, id: "15", advisories: []string{"INTEL-SA-00615"}},
		{name: "015 names 15", property: "015", status: pcs.OutOfDate, id: "15", advisories: []string{"INTEL-SA-00615"}},
		{name: "integer property", property: int64(16), status: pcs.SWHardeningNeeded, id: "16", advisories: []string{"INTEL-SA-00334"}},
		{name: "unknown number", property: "11", check: CheckTCBBaseline},
		{name: "not a number", property: "latest", check: CheckTCBBaseline},
		{name: "zero", property: "0", check: CheckTCBBaseline},
		{name: "negative", property: "-15", check: CheckTCBBaseline},
		{name: "huge", property: "99999999999999999999", check: CheckTCBBaseline},
		{name: "boolean", property: true, check: CheckTCBBaseline},
	} {
		for _, ev := range []struct {
			typ evidence.Type
			b   []byte
		}{{evidence.SgxEnclave, quote}, {evidence.OpenEnclave, oe}} {
			t.Run(string(ev.typ)+"/"+c.name, func(t *testing.T) {
				req := &evidence.Request{Type: ev.typ, Evidence: ev.b, Properties: map[string]any{}}
				if c.property != nil {
					req.Properties[PropertyTCBIdentifier] = c.property
				}
				res, err := v.Verify(context.Background(), req)
				if c.check != "" {
					if got := evidence.CheckOf(err); got != c.check {
						t.Fatalf("got %v (check %q), want check %q", err, got, c.check)
					}
					if !strings.Contains(err.Error(), fmt.Sprint(c.property)) {
						t.Errorf("error %q does not name the identifier %v", err, c.property)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				m := claimMap(res.Claims, false)
				if got := one(t, m, ClaimTCBStatus); got != string(c.status) {
					t.Errorf("%s = %v, want %s", ClaimTCBStatus, got, c.status)
				}
				if got := one(t, m, ClaimTCBIdentifier); got != c.id {
					t.Errorf("%s = %v, want %s", ClaimTCBIdentifier, got, c.id)
				}
				if got := one(t, m, ClaimAdvisoryIDs); strings.Join(got.([]string), ",") != strings.Join(c.advisories, ",") {
					t.Errorf("advisories %v, want %v", got, c.advisories)
				}
				for _, cl := range res.Claims {
					if cl.Type == ClaimTCBIdentifier && !cl.TokenOnly {
						t.Errorf("%s must be token-only: policies read the property, not a claim", ClaimTCBIdentifier)
					}
				}
			})
		}
	}
}

// sourceFunc adapts a function to collateral.Source.
type sourceFunc func(context.Context, collateral.Request) (*collateral.Collateral, error)

func (f sourceFunc) Get(ctx context.Context, r collateral.Request) (*collateral.Collateral, error) {
	return f(ctx, r)
}

// TestTCBBaselineNeverTrustsTheSource: a source that answers a baseline
// request with documents of another number is rejected, whichever of the two
// documents is wrong; a source error that is not "not found" stays
// collateral.unavailable.
func TestTCBBaselineNeverTrustsTheSource(t *testing.T) {
	p, _, sets := baselinePlatform(t)
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mixed := *sets[15]
	mixed.QEIdentity, mixed.QEIdentitySignature, mixed.QEIdentityIssuerChain = sets[17].QEIdentity, sets[17].QEIdentitySignature, sets[17].QEIdentityIssuerChain
	for _, c := range []struct {
		name  string
		src   sourceFunc
		check string
		msg   string
	}{
		{"ignores the number", func(context.Context, collateral.Request) (*collateral.Collateral, error) { return sets[17], nil },
			CheckTCBBaseline, "served a TCB info with tcbEvaluationDataNumber 17"},
		{"wrong QE identity", func(context.Context, collateral.Request) (*collateral.Collateral, error) { return &mixed, nil },
			CheckTCBBaseline, "served a QE identity with tcbEvaluationDataNumber 17"},
		{"not found", func(_ context.Context, r collateral.Request) (*collateral.Collateral, error) {
			if r.TCBEvaluationDataNumber != 15 {
				t.Errorf("request %v does not carry the baseline", r)
			}
			return nil, collateral.ErrNotFound
		}, CheckTCBBaseline, "tcbEvaluationDataNumber 15"},
		{"unavailable", func(context.Context, collateral.Request) (*collateral.Collateral, error) {
			return nil, &collateral.UnavailableError{Source: "test", Err: errors.New("down")}
		}, "collateral.unavailable", "TCB baseline 15"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := NewVerifier(Options{Collateral: c.src, Roots: p.Roots(), Now: at(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote,
				Properties: map[string]any{PropertyTCBIdentifier: "15"}})
			if got := evidence.CheckOf(err); got != c.check || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v (check %q), want check %q mentioning %q", err, got, c.check, c.msg)
			}
		})
	}
	// The same lying source is fine for the default baseline: nothing was
	// asked that it could get wrong.
	v, _ := NewVerifier(Options{Collateral: sourceFunc(func(context.Context, collateral.Request) (*collateral.Collateral, error) { return sets[17], nil }),
		Roots: p.Roots(), Now: at(testNow)})
	if _, err := v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote}); err != nil {
		t.Fatal(err)
	}
}

func TestTCBBaselineDiagnosticMode(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	quote, _ := p.Quote(sgxplatform.QuoteOptions{})
	v, err := NewVerifier(Options{DiagnosticSkipCollateral: true, Roots: p.Roots(), Now: at(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote, Properties: map[string]any{PropertyTCBIdentifier: "15"}})
	if evidence.CheckOf(err) != CheckTCBBaseline {
		t.Fatalf("baseline in diagnostic mode: %v", err)
	}
	res, err := v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote, Properties: map[string]any{PropertyTCBIdentifier: "azuredefault"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := one(t, claimMap(res.Claims, false), ClaimTCBIdentifier); got != "azuredefault" {
		t.Fatalf("%s = %v", ClaimTCBIdentifier, got)
	}
}

func FuzzParseTCBIdentifier(f *testing.F) {
	for _, s := range []string{"azuredefault", "AZUREDEFAULT", "11", "011", "0", "-1", "", " 17 ", "1e3", "99999999999999999999", "١٧", "17\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseTCBIdentifier(s)
		if err != nil {
			if evidence.CheckOf(err) != CheckTCBBaseline {
				t.Fatalf("%q: error %v names check %q", s, err, evidence.CheckOf(err))
			}
			return
		}
		if b < 0 || b > maxTCBEvaluationDataNumber {
			t.Fatalf("%q parsed to %d", s, b)
		}
		// The identifier stated in the token parses back to the same baseline.
		if b2, err := ParseTCBIdentifier(b.String()); err != nil || b2 != b {
			t.Fatalf("%q → %d → %q → %d, %v", s, b, b.String(), b2, err)
		}
	})
}
