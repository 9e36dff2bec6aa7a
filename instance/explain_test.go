package instance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
)

func TestExplain(t *testing.T) {
	e := newEnv(t, ModeAAD)
	ctx := context.Background()
	rt := []byte("runtime")
	h := sha256.Sum256(rt)
	quote := fakeQuote(t, fakeEvidence{ReportData: hex.EncodeToString(h[:]), Debug: true})
	str := func(s string) *string { return &s }
	noDebug := `version=1.0; authorizationrules{ [type=="$is-debuggable", value==true] => deny(); => permit(); }; issuancerules{ => issue(type="ok", value=true); };`
	stored := `version=1.0; authorizationrules{ => permit(); }; issuancerules{ c:[type=="x-ms-attestation-type"] => issue(type="t", value=c.value); };`
	if _, err := e.in.SetPolicy(ctx, "OpenEnclave", stored, Actor{Subject: "test"}); err != nil {
		t.Fatal(err)
	}
	def, _ := policy.Default("SgxEnclave")
	badConfig := `version=1.1; configurationrules{ => issueproperty(type="x-ms-sgx-tcbidentifier", value=1); }; authorizationrules{=> permit();};`

	tests := []struct {
		name      string
		req       ExplainRequest
		code      string // error code, or "" for an explanation
		permitted bool
		source    string
		hash      string
		issued    map[string]any
		token     map[string]any  // members the token claims must have
		decision  policy.Decision // of a denial; 0 means DecisionDeny
	}{
		{name: "claims, default policy", req: ExplainRequest{Type: evidence.SgxEnclave, Claims: []byte(`{"x-ms-sgx-svn":3}`)},
			permitted: true, source: PolicySourceCurrent, hash: policy.Hash(def), issued: map[string]any{"svn": int64(3), "tee": "sgx"}},
		{name: "claims, stored policy", req: ExplainRequest{Type: evidence.OpenEnclave, Claims: []byte(`{}`)},
			permitted: true, source: PolicySourceCurrent, hash: policy.Hash(stored), issued: map[string]any{"t": "sgx"}},
		{name: "claims, given policy, deny", req: ExplainRequest{Type: evidence.SgxEnclave, Policy: str(noDebug), Claims: []byte(`{"$is-debuggable":true}`)},
			source: PolicySourceGiven, hash: policy.Hash(noDebug)},
		{name: "evidence, given policy, deny on a policy-only claim", req: ExplainRequest{Type: evidence.SgxEnclave, Policy: str(noDebug),
			Evidence: &AttestRequest{Evidence: quote, Runtime: &evidence.Data{Bytes: rt}}}, source: PolicySourceGiven, hash: policy.Hash(noDebug)},
		{name: "evidence, draft policy", req: ExplainRequest{Type: evidence.SgxEnclave,
			Evidence: &AttestRequest{Evidence: quote, Runtime: &evidence.Data{Bytes: rt}, DraftPolicy: str(stored)}},
			permitted: true, source: PolicySourceDraft, hash: policy.Hash(stored), issued: map[string]any{"t": "sgx"},
			token: map[string]any{"t": "sgx", "x-ms-sgx-ehd": b64u.EncodeToString(rt), "x-ms-policy-hash": policy.Hash(stored)}},
		{name: "evidence, configurationrules fail", req: ExplainRequest{Type: evidence.SgxEnclave, Policy: str(badConfig),
			Evidence: &AttestRequest{Evidence: quote, Runtime: &evidence.Data{Bytes: rt}}}, source: PolicySourceGiven, hash: policy.Hash(badConfig), decision: policy.DecisionError},
		{name: "evidence bound wrongly", req: ExplainRequest{Type: evidence.SgxEnclave, Evidence: &AttestRequest{Evidence: quote, Runtime: &evidence.Data{Bytes: []byte("x")}}},
			code: CodeInvalidParameter},
		{name: "evidence failing a check", req: ExplainRequest{Type: evidence.SgxEnclave, Evidence: &AttestRequest{Evidence: fakeQuote(t, fakeEvidence{FailCheck: "quote.signature"})}},
			code: CodeInvalidParameter},
		{name: "parse error", req: ExplainRequest{Type: evidence.SgxEnclave, Policy: str("version=1.0"), Claims: []byte(`{}`)}, code: CodePolicyParsingError},
		{name: "both inputs", req: ExplainRequest{Type: evidence.SgxEnclave, Claims: []byte(`{}`), Evidence: &AttestRequest{Evidence: quote}}, code: CodeInvalidParameter},
		{name: "no input", req: ExplainRequest{Type: evidence.SgxEnclave}, code: CodeInvalidParameter},
		{name: "bad claims", req: ExplainRequest{Type: evidence.SgxEnclave, Claims: []byte(`[1]`)}, code: CodeInvalidParameter},
		{name: "Tpm without policy", req: ExplainRequest{Type: evidence.Tpm, Claims: []byte(`{}`)}, code: CodeBadRequest},
		{name: "Tpm given policy over claims", req: ExplainRequest{Type: evidence.Tpm, Policy: str(stored), Claims: []byte(`{}`)},
			permitted: true, source: PolicySourceGiven, hash: policy.Hash(stored), issued: map[string]any{"t": "tpm"}},
		{name: "evidence without verifier", req: ExplainRequest{Type: evidence.TdxVm, Policy: str(stored), Evidence: &AttestRequest{Evidence: quote}}, code: CodeNotSupported},
		{name: "unknown type", req: ExplainRequest{Type: "Foo", Claims: []byte(`{}`)}, code: CodeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := e.in.Explain(ctx, &tc.req)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ex.Permitted != tc.permitted || ex.PolicySource != tc.source || ex.PolicyHash != tc.hash || ex.Trace == nil || ex.Trace.PolicyHash != tc.hash {
				t.Fatalf("%+v", ex)
			}
			if !tc.permitted {
				want := tc.decision
				if want == 0 {
					want = policy.DecisionDeny
				}
				if ex.Error == nil || ex.Error.Code != CodePolicyEvaluationError || ex.Decision != want || ex.TokenClaims != nil || len(ex.Issued) != 0 {
					t.Fatalf("denial %+v", ex)
				}
				return
			}
			for k, v := range tc.issued {
				if ex.Issued[k] != v {
					t.Errorf("issued %s = %#v, want %#v", k, ex.Issued[k], v)
				}
			}
			for k, v := range tc.token {
				if ex.TokenClaims[k] != v {
					t.Errorf("token claim %s = %#v, want %#v", k, ex.TokenClaims[k], v)
				}
			}
			if _, ok := ex.TokenClaims["jti"]; ok {
				t.Error("a dry run must not build a token (jti present)")
			}
		})
	}

	t.Run("ExplainWith needs a policy", func(t *testing.T) {
		_, err := ExplainWith(ctx, nil, &ExplainRequest{Type: evidence.SgxEnclave, Claims: []byte(`{}`)})
		wantCode(t, err, CodeInvalidParameter)
		_, err = ExplainWith(ctx, nil, &ExplainRequest{Type: evidence.SgxEnclave, Policy: str(stored), Evidence: &AttestRequest{Evidence: quote}})
		wantCode(t, err, CodeNotSupported)
		ex, err := ExplainWith(ctx, e.fake, &ExplainRequest{Type: evidence.OpenEnclave, Policy: str(stored), Evidence: &AttestRequest{Evidence: quote}})
		if err != nil || !ex.Permitted || ex.PolicySource != PolicySourceGiven {
			t.Fatalf("%+v %v", ex, err)
		}
	})
}

// BenchmarkExplain measures a dry run of the default SGX policy with a
// trace, over a claim set and over (fake) evidence through the pipeline.
func BenchmarkExplain(b *testing.B) {
	e := newEnv(b, ModeAAD)
	ctx := context.Background()
	quote := fakeQuote(b, fakeEvidence{ReportData: "00"})
	for _, bc := range []struct {
		name string
		req  ExplainRequest
	}{
		{"claims", ExplainRequest{Type: evidence.SgxEnclave, Claims: []byte(`{"x-ms-sgx-is-debuggable":true,"x-ms-sgx-product-id":1,"x-ms-sgx-svn":1,"x-ms-sgx-mrsigner":"4aea","x-ms-sgx-mrenclave":"292a"}`)}},
		{"evidence", ExplainRequest{Type: evidence.SgxEnclave, Evidence: &AttestRequest{Evidence: quote}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ex, err := e.in.Explain(ctx, &bc.req)
				if err != nil || !ex.Permitted {
					b.Fatal(ex, err)
				}
			}
		})
	}
}
