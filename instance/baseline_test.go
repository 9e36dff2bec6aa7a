package instance

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// TestAttestTCBBaseline: the policy's x-ms-sgx-tcbidentifier decides which
// TCB baseline judges the quote. One test platform, two baselines that judge
// it differently (17, the standard: UpToDate; 15: OutOfDate); the token
// states the baseline used, the policy sees the status it produced, and a
// baseline the source cannot serve is InvalidParameter naming the check.
func TestAttestTCBBaseline(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c15, err := p.CollateralWith(func(o *sgxplatform.Options) {
		o.TCBEvaluationDataNumber, o.TCBStatus, o.AdvisoryIDs = 15, pcs.OutOfDate, []string{"INTEL-SA-00615"}
		o.Now = now.Add(-time.Minute)
	})
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.FromCollateral(p.Collateral(), c15)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sgx.NewVerifier(sgx.Options{Collateral: src, Roots: p.Roots(), Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	in, err := New(ctx, Config{Name: "default", Mode: ModeAAD, Issuer: "https://attestd.test"},
		Options{Store: db, Keys: keys, Logger: slog.New(slog.DiscardHandler),
			Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v}})
	if err != nil {
		t.Fatal(err)
	}
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	report, err := p.OEReport(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pol := func(id string) string {
		cfg := ""
		if id != "" {
			cfg = `configurationrules{ => issueproperty(type="x-ms-sgx-tcbidentifier", value="` + id + `"); };`
		}
		return `version=1.1;` + cfg + `authorizationrules{ c:[type=="x-ms-sgx-tcb-status", value=="Revoked"] => deny(); => permit(); };
issuancerules{ c:[type=="x-ms-sgx-tcb-status"] => issue(type="status", value=c.value); };`
	}
	upToDateOnly := `version=1.1; configurationrules{ => issueproperty(type="x-ms-sgx-tcbidentifier", value="15"); };
authorizationrules{ c:[type=="x-ms-sgx-tcb-status", value=="UpToDate"] => permit(); };`
	for _, typ := range []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave} {
		ev := quote
		if typ == evidence.OpenEnclave {
			ev = report
		}
		for _, c := range []struct {
			name     string
			policy   string
			status   string // success
			id       string
			advisory bool
			code     string // failure
			contains []string
		}{
			{name: "no configuration rule", policy: pol(""), status: "UpToDate", id: "azuredefault"},
			{name: "azuredefault", policy: pol("azuredefault"), status: "UpToDate", id: "azuredefault"},
			{name: "baseline 17", policy: pol("17"), status: "UpToDate", id: "17"},
			{name: "baseline 15", policy: pol("15"), status: "OutOfDate", id: "15", advisory: true},
			{name: "baseline 15 fails an UpToDate-only policy", policy: upToDateOnly, code: CodePolicyEvaluationError},
			{name: "unknown baseline", policy: pol("11"), code: CodeInvalidParameter, contains: []string{"11"}},
			{name: "not a baseline", policy: pol("latest"), code: CodeInvalidParameter, contains: []string{`"latest"`}},
		} {
			t.Run(string(typ)+"/"+c.name, func(t *testing.T) {
				if _, err := in.SetPolicy(ctx, string(typ), c.policy, Actor{Subject: "test"}); err != nil {
					t.Fatal(err)
				}
				tok, err := tokenOf(in.Attest(ctx, &AttestRequest{Type: typ, Evidence: ev}))
				if c.code != "" {
					wantCode(t, err, c.code)
					if c.code == CodeInvalidParameter && !errors.Is(err, evidence.CheckTCBBaseline) {
						t.Errorf("errors.Is(%v, CheckTCBBaseline) is false", err)
					}
					for _, s := range c.contains {
						if !strings.Contains(err.Error(), s) {
							t.Errorf("error %q lacks %q", err, s)
						}
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				cl := (&env{keys: keys}).claims(t, tok)
				if cl["x-ms-sgx-tcbidentifier"] != c.id || cl["x-ms-sgx-tcb-status"] != c.status || cl["status"] != c.status {
					t.Errorf("tcbidentifier %v, tcb-status %v, issued status %v; want %s, %s", cl["x-ms-sgx-tcbidentifier"], cl["x-ms-sgx-tcb-status"], cl["status"], c.id, c.status)
				}
				adv, _ := cl["x-ms-sgx-advisory-ids"].([]any)
				if has := len(adv) == 1 && adv[0] == "INTEL-SA-00615"; has != c.advisory {
					t.Errorf("x-ms-sgx-advisory-ids %v", cl["x-ms-sgx-advisory-ids"])
				}
			})
		}
	}
	if got := src.BaselineNumbers(collateral.SGX, p.FMSPC()); len(got) != 2 || got[0] != 15 || got[1] != 17 {
		t.Errorf("bundle baselines %v, want [15 17]", got)
	}
}

// TestPipelineInventsNoTEEClaims: the verifier owns its TEE's claims. The
// fake reports only the default baseline it applies; under a policy that
// selects another one the token has none: echoing the property would claim
// a baseline nobody applied. The fake's configuration defaults reach it.
func TestPipelineInventsNoTEEClaims(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	for _, id := range []string{"", "11"} {
		p := `version=1.1; authorizationrules{ => permit(); };`
		want := "azuredefault"
		if id != "" {
			p = `version=1.1; configurationrules{ => issueproperty(type="x-ms-sgx-tcbidentifier", value="` + id + `"); }; authorizationrules{ => permit(); };`
			want = id
		}
		tok, err := tokenOf(e.in.Attest(ctx, &AttestRequest{Type: evidence.SgxEnclave, Evidence: attestReq(t, nil, false).Evidence, DraftPolicy: &p}))
		if err != nil {
			t.Fatal(err)
		}
		_, c := unsignedClaims(t, tok)
		if v, ok := c["x-ms-sgx-tcbidentifier"]; id != "" && ok {
			t.Errorf("policy %q: the pipeline wrote x-ms-sgx-tcbidentifier %v for the verifier", id, v)
		} else if id == "" && v != "azuredefault" {
			t.Errorf("default policy: x-ms-sgx-tcbidentifier %v, want the fake's azuredefault", v)
		}
		if got := e.fake.lastRequest().Properties["x-ms-sgx-tcbidentifier"]; got != want {
			t.Errorf("policy %q: the verifier saw x-ms-sgx-tcbidentifier %v, want %q", id, got, want)
		}
	}
}
