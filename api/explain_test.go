package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/policy"
)

// explainResp is the JSON answer of the explain endpoint.
type explainResp struct {
	PolicySource string `json:"policySource"`
	PolicyHash   string `json:"policyHash"`
	Decision     string `json:"decision"`
	Permitted    bool   `json:"permitted"`
	Error        *struct{ Code, Message string }
	Incoming     []policy.Claim `json:"incomingClaims"`
	Issued       map[string]any `json:"issuedClaims"`
	TokenClaims  map[string]any `json:"tokenClaims"`
	Trace        *policy.Trace  `json:"trace"`
}

func TestExplainEndpoint(t *testing.T) {
	e := newAPIEnv(t)
	const path = "/attestd/policies/SgxEnclave:explain" + api
	quote := b64u.EncodeToString(make([]byte, 64)) // fakeVerifier: debuggable, mrsigner abab…, product 1
	noDebug := `version=1.0; authorizationrules{ [type=="x-ms-sgx-is-debuggable", value==true] => deny(); => permit(); }; issuancerules{ c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value); };`
	custom := `version=1.0; authorizationrules{=> permit();}; issuancerules{ c:[type=="x-ms-sgx-mrsigner"] => issue(type="custom-name", value=c.value); };`
	body := func(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }
	def, _ := policy.Default("SgxEnclave")

	// The stored policy of the default instance becomes custom; the iso
	// instance keeps the default policy.
	if r := e.do("PUT", "/policies/SgxEnclave"+api, e.tokens["contributor"], "text/plain", custom); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}

	tests := []struct {
		name, path, bearer, body string
		status                   int
		code                     string // error code of a non-200 answer
		check                    func(t *testing.T, x explainResp)
	}{
		{name: "no token", path: path, body: body(map[string]any{"claims": map[string]any{}}), status: 401, code: "Unauthorized"},
		{name: "token scoped to another instance", path: path, bearer: e.mint(time.Now(), auth.RoleReader, "iso", time.Hour),
			body: body(map[string]any{"claims": map[string]any{}}), status: 401, code: "Unauthorized"},
		{name: "expired token", path: path, bearer: e.mint(time.Now().Add(-2*time.Hour), auth.RoleReader, "", time.Hour),
			body: body(map[string]any{"claims": map[string]any{}}), status: 401, code: "Unauthorized"},
		{name: "reader may explain; current policy over claims", path: path, bearer: e.tokens["reader"],
			body: body(map[string]any{"claims": map[string]any{"x-ms-sgx-mrsigner": "00ff"}}), status: 200,
			check: func(t *testing.T, x explainResp) {
				if x.PolicySource != "current" || x.PolicyHash != policy.Hash(custom) || !x.Permitted || x.Decision != "permit" ||
					x.Issued["custom-name"] != "00ff" || x.TokenClaims != nil || x.Error != nil {
					t.Fatalf("%+v", x)
				}
			}},
		{name: "given policy over claims: deny", path: path, bearer: e.tokens["reader"],
			body: body(map[string]any{"policy": noDebug, "claims": map[string]any{"x-ms-sgx-is-debuggable": true}}), status: 200,
			check: func(t *testing.T, x explainResp) {
				if x.PolicySource != "given" || x.Permitted || x.Decision != "deny" || x.Error == nil || x.Error.Code != "PolicyEvaluationError" ||
					!strings.Contains(x.Error.Message, "A Deny claim was issued, authorization failed.") || len(x.Issued) != 0 {
					t.Fatalf("%+v", x)
				}
				if r := x.Trace.Sections[0].Rules[0]; !r.Matched || x.Trace.Decision != policy.DecisionDeny {
					t.Fatalf("trace %+v", x.Trace)
				}
			}},
		{name: "given policy over evidence: permit with token claims", path: path, bearer: e.tokens["reader"],
			body: body(map[string]any{"policy": custom, "evidence": map[string]any{"quote": quote, "nonce": "n"}}), status: 200,
			check: func(t *testing.T, x explainResp) {
				mr := strings.Repeat("ab", 32)
				if !x.Permitted || x.Issued["custom-name"] != mr || x.TokenClaims["custom-name"] != mr ||
					x.TokenClaims["x-ms-sgx-mrsigner"] != mr || x.TokenClaims["x-ms-policy-hash"] != policy.Hash(custom) || x.TokenClaims["iss"] != nil {
					t.Fatalf("%+v", x)
				}
				if len(x.Incoming) == 0 {
					t.Fatal("no incoming claims")
				}
			}},
		{name: "evidence draft policy is used when no policy is given", path: path, bearer: e.tokens["reader"],
			body: body(map[string]any{"evidence": map[string]any{"quote": quote, "draftPolicyForAttestation": noDebug}}), status: 200,
			check: func(t *testing.T, x explainResp) {
				if x.PolicySource != "draft" || x.Permitted || x.Decision != "deny" || x.TokenClaims != nil {
					t.Fatalf("%+v", x)
				}
			}},
		{name: "tenant instance: current default policy over evidence", path: "/tenants/iso" + path, bearer: e.tokens["reader"],
			body: body(map[string]any{"evidence": map[string]any{"quote": quote}}), status: 200,
			check: func(t *testing.T, x explainResp) {
				if x.PolicySource != "current" || x.PolicyHash != policy.Hash(def) || x.TokenClaims["tee"] != "sgx" || x.TokenClaims["is-debuggable"] != true {
					t.Fatalf("%+v", x)
				}
			}},
		{name: "evidence that fails verification: attest's error", path: path, bearer: e.tokens["reader"],
			body: body(map[string]any{"evidence": map[string]any{"quote": "AQID"}}), status: 400, code: "InvalidParameter"},
		{name: "parse error", path: path, bearer: e.tokens["reader"],
			body: body(map[string]any{"policy": "version=1.0 authorizationrules{=> permit();};", "claims": map[string]any{}}), status: 400, code: "PolicyParsingError"},
		{name: "both claims and evidence", path: path, bearer: e.tokens["reader"],
			body: body(map[string]any{"claims": map[string]any{}, "evidence": map[string]any{"quote": quote}}), status: 400, code: "InvalidParameter"},
		{name: "malformed claims", path: path, bearer: e.tokens["reader"], body: `{"claims":{"a":1.5}}`, status: 400, code: "InvalidParameter"},
		{name: "unknown member", path: path, bearer: e.tokens["reader"], body: `{"claim":{}}`, status: 400, code: "InvalidParameter"},
		{name: "unknown type", path: "/attestd/policies/Foo:explain", bearer: e.tokens["reader"], body: `{"claims":{}}`, status: 400, code: "InvalidParameter"},
		{name: "Tpm without a policy", path: "/attestd/policies/Tpm:explain", bearer: e.tokens["reader"], body: `{"claims":{}}`, status: 400, code: "Bad request"},
		{name: "Shared instance: public like its GET /policies", path: "/shared" + path,
			body: body(map[string]any{"claims": map[string]any{"x-ms-sgx-svn": 2}}), status: 200,
			check: func(t *testing.T, x explainResp) {
				if x.PolicySource != "current" || !x.Permitted || x.Issued["svn"] != 2.0 || x.Issued["tee"] != "sgx" {
					t.Fatalf("%+v", x)
				}
			}},
		{name: "no :explain", path: "/attestd/policies/SgxEnclave", bearer: e.tokens["reader"], body: `{"claims":{}}`, status: 404, code: "NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", tc.path, tc.bearer, "application/json", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != "" {
				if got := r.errCode(t); got != tc.code {
					t.Fatalf("code %q, want %q: %s", got, tc.code, r.body)
				}
				return
			}
			var x explainResp
			if err := json.Unmarshal(r.body, &x); err != nil {
				t.Fatal(err)
			}
			tc.check(t, x)
		})
	}

	t.Run("GET is refused", func(t *testing.T) {
		if r := e.do("GET", path, e.tokens["reader"], "", ""); r.status != 405 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("text rendering", func(t *testing.T) {
		r := e.do("POST", "/attestd/policies/SgxEnclave:explain?format=text", e.tokens["reader"], "application/json",
			body(map[string]any{"policy": noDebug, "claims": map[string]any{"x-ms-sgx-is-debuggable": true}}))
		s := string(r.body)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.HasPrefix(s, "DENIED (policy: given)\n") ||
			!strings.Contains(s, "decision: deny") || !strings.Contains(s, "MATCHED") {
			t.Fatalf("%d %s", r.status, s)
		}
	})
	t.Run("explain never changes the stored policy", func(t *testing.T) {
		r := e.do("GET", "/policies/SgxEnclave"+api, e.tokens["reader"], "", "")
		if r.status != 200 {
			t.Fatal(r.status)
		}
		var jws string
		if c := e.claims("default", r); c != nil {
			jws, _ = c["x-ms-policy"].(string)
		}
		parts := strings.Split(jws, ".")
		p, _ := b64u.DecodeString(parts[1])
		var m map[string]string
		json.Unmarshal(p, &m)
		txt, _ := b64u.DecodeString(m["AttestationPolicy"])
		if string(txt) != custom {
			t.Fatalf("stored policy %q", txt)
		}
	})
}
