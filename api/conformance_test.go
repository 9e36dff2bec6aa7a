package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// This file checks the evidence-dependent items of maa-policy.md §12.1 (3)
// over HTTP through the whole instance pipeline: the real SGX verifier,
// runtime-data binding, policy evaluation and token issuance.
//
// The Azure SDK sample reports (2021) cannot be verified in full: their
// collateral was never published. TestConformanceSDKSamplesDiagnostic runs
// them with the verifier's DiagnosticSkipCollateral mode (signatures and
// PCK chain to Intel's root key verified; clock, CRLs, TCB info and QE
// identity not). TestConformanceSDKIdentityPlatform replays the same table
// with quotes of a test SGX platform (testing/sgxplatform) that carry the
// samples' enclave identity (MRSIGNER, MRENCLAVE, attributes, product id,
// SVN, report data), verified in full against the platform's collateral, so
// the non-diagnostic path proves the same outcomes.

const (
	sampleMRSigner    = "4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c"
	sampleMREnclave   = "292a1f4b519e46627eb2478a3d9851405653c5b4b0a6925de843834d9216850e"
	sampleNDMRSigner  = "2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"
	sampleNDMREnclave = "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2"
	msgNoPermit       = "Attestation Enclave operation failed with 65518: Exception(0) 83FFFFEE Policy Evaluation Error has occurred    Msg:[Policy Engine Exception: No Permit claim was issued in the authorizationrules section, authorization failed.] \n\r\nUnhandled Enclave Exception: \"Policy Evaluation Error has occurred\"\r\n"
	// attestd appends " Deciding rule: …" inside Msg:[…] after MAA's text.
	detailDeny           = "Policy Engine Exception: A Deny claim was issued, authorization failed."
	defaultPolicyHash    = "ViVGS4BYl70X8eUrgryHg0TtbEk9WtIc6DtTBEFxaWc"
	legacyDefaultHash    = "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw"
	draft07Hash          = "1wKUrF_E0X5CZUM9OMIF1PH3qn5iykWY_bWgBbiWJZ0"
	conformanceTypeSGX   = "SgxEnclave"
	conformanceTypeOE    = "OpenEnclave"
	conformanceDebug     = "debug"
	conformanceNonDebug  = "nondebug"
	conformanceDebug13ND = "nondebug-4aea" // only on the test platform: non-debug with the debug sample's MRSIGNER
)

// conformanceEvidence is the evidence of one run: base64url report/quote per
// (type, enclave) and the runtime data bound to it.
type conformanceEvidence struct {
	b64     map[string]string // type + "/" + enclave → base64url evidence
	runtime []byte
}

// newPipelineEnv serves one AAD instance "default" over TLS with verifier v
// for SgxEnclave and OpenEnclave.
func newPipelineEnv(t *testing.T, v evidence.Verifier) *apiEnv {
	t.Helper()
	return startEnv(t, nil, envInstance{name: "default", mode: instance.ModeAAD, verifier: v})
}

// TestConformanceSDKSamplesDiagnostic: the real Azure SDK sample reports,
// verified in DiagnosticSkipCollateral mode (their 2021 collateral is not
// public), through the full pipeline.
func TestConformanceSDKSamplesDiagnostic(t *testing.T) {
	ev := conformanceEvidence{b64: map[string]string{}}
	trim := func(b []byte) string { return strings.TrimSpace(string(b)) }
	ev.b64[conformanceTypeOE+"/"+conformanceDebug] = trim(testenv.ReadShared(t, "samples/sdk-cpp/openenclave_report.b64url"))
	ev.b64[conformanceTypeOE+"/"+conformanceNonDebug] = trim(testenv.ReadShared(t, "samples/sdk-cpp/openenclave_report_nondebug.b64url"))
	ev.b64[conformanceTypeSGX+"/"+conformanceDebug] = trim(testenv.ReadShared(t, "samples/sdk-cpp/sgx_quote.b64url"))
	rt, err := decodeBase64(trim(testenv.ReadShared(t, "samples/sdk-cpp/runtime_data.b64url")))
	if err != nil {
		t.Fatal(err)
	}
	ev.runtime = rt
	v, err := sgx.NewVerifier(sgx.Options{DiagnosticSkipCollateral: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := newPipelineEnv(t, v)
	runConformance(t, e, ev, true)

	// The real MAA token of a non-debug attestation of the same enclave
	// (JS SDK recording, policy 02 in force) carries the same identity and
	// policy claims as ours for the non-debug sample under policy 02.
	t.Run("matches a real MAA token under policy 02", func(t *testing.T) {
		var real map[string]any
		if err := json.Unmarshal(testenv.ReadShared(t, "samples/sdk-js/sgx_token_payload.decoded.json"), &real); err != nil {
			t.Fatal(err)
		}
		p02 := string(testenv.ReadShared(t, "spec/policies/02-sgx-oe-default-v1.0-2022.txt"))
		if r := e.do("PUT", "/policies/OpenEnclave"+api, e.tokens["contributor"], "text/plain", p02); r.status != 200 {
			t.Fatalf("PUT 02: %d %s", r.status, r.body)
		}
		defer e.do("POST", "/policies/OpenEnclave:reset"+api, e.tokens["contributor"], "", "eyJhbGciOiJub25lIn0..")
		got := e.claims("default", attestCall(e, conformanceTypeOE, ev.b64[conformanceTypeOE+"/"+conformanceNonDebug], ev.runtime, nil))
		for _, k := range []string{"is-debuggable", "product-id", "sgx-mrenclave", "sgx-mrsigner", "svn", "tee", "x-ms-attestation-type",
			"x-ms-policy", "x-ms-policy-hash", "x-ms-sgx-is-debuggable", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-sgx-product-id",
			"x-ms-sgx-svn", "x-ms-ver"} {
			if !reflect.DeepEqual(got[k], real[k]) {
				t.Errorf("%s = %v, real MAA token has %v", k, got[k], real[k])
			}
		}
		if got["x-ms-policy-hash"] != legacyDefaultHash {
			t.Errorf("x-ms-policy-hash %v", got["x-ms-policy-hash"])
		}
		// Diagnostic mode says so in the token.
		if dm, _ := got["x-ms-sgx-diagnostic-mode"].(string); got["x-ms-sgx-tcb-status"] != "CollateralNotVerified" || !strings.HasPrefix(dm, "collateral-skipped") {
			t.Errorf("diagnostic claims: tcb-status %v, diagnostic-mode %v", got["x-ms-sgx-tcb-status"], got["x-ms-sgx-diagnostic-mode"])
		}
	})
}

// TestConformanceSDKIdentityPlatform: the same table with full
// verification, using test-platform quotes that carry the SDK samples'
// enclave identity and report data.
func TestConformanceSDKIdentityPlatform(t *testing.T) {
	now := time.Now()
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rt := []byte("runtime data bound by the test platform's quotes")
	h := sha256.Sum256(rt)
	var rd [64]byte
	copy(rd[:], h[:])
	id := func(mrsigner, mrenclave string, debug bool) sgxplatform.QuoteOptions {
		o := sgxplatform.QuoteOptions{Debug: debug, ProductID: 1, SVN: 1, ReportData: rd}
		hex.Decode(o.MRSigner[:], []byte(mrsigner))
		hex.Decode(o.MREnclave[:], []byte(mrenclave))
		return o
	}
	ev := conformanceEvidence{b64: map[string]string{}, runtime: rt}
	for name, o := range map[string]sgxplatform.QuoteOptions{
		conformanceDebug:     id(sampleMRSigner, sampleMREnclave, true),
		conformanceNonDebug:  id(sampleNDMRSigner, sampleNDMREnclave, false),
		conformanceDebug13ND: id(sampleMRSigner, sampleMREnclave, false),
	} {
		q, err := p.Quote(o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.OEReport(o)
		if err != nil {
			t.Fatal(err)
		}
		ev.b64[conformanceTypeSGX+"/"+name] = b64u.EncodeToString(q)
		ev.b64[conformanceTypeOE+"/"+name] = b64u.EncodeToString(r)
	}
	// The platform's standard collateral (TCB evaluation data number 17)
	// and, issued a minute earlier, baseline 11 that policy 18 selects.
	c11, err := p.CollateralWith(func(o *sgxplatform.Options) {
		o.TCBEvaluationDataNumber, o.Now = 11, now.Add(-time.Minute)
	})
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.FromCollateral(p.Collateral(), c11)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sgx.NewVerifier(sgx.Options{Collateral: src, Roots: p.Roots(), Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := newPipelineEnv(t, v)
	runConformance(t, e, ev, false)

	// Policy 13 (docs custom policy) permits only a non-debug enclave with
	// product id 1 and MRSIGNER 4aea…: no SDK sample is one, this platform
	// quote is.
	t.Run("13 permits a non-debug 4aea enclave", func(t *testing.T) {
		p13 := string(testenv.ReadShared(t, "spec/policies/13-docs-sgx-custom-policy-instantiated.txt"))
		c := unsignedClaims(t, attestCall(e, conformanceTypeSGX, ev.b64[conformanceTypeSGX+"/"+conformanceDebug13ND], ev.runtime, &p13))
		if c["custom-name"] != sampleMRSigner || c["x-ms-sgx-tcb-status"] != "UpToDate" {
			t.Fatalf("claims %v", c)
		}
	})
}

// attestCall posts an attest request with runtime data and an optional draft policy.
func attestCall(e *apiEnv, typ, b64 string, runtime []byte, draft *string) resp {
	e.t.Helper()
	field := "quote"
	if typ == conformanceTypeOE {
		field = "report"
	}
	body := map[string]any{field: b64, "runtimeData": map[string]string{"data": b64u.EncodeToString(runtime), "dataType": "Binary"}}
	if draft != nil {
		body["draftPolicyForAttestation"] = *draft
	}
	b, _ := json.Marshal(body)
	return e.do("POST", "/attest/"+typ+api, "", "application/json", string(b))
}

// unsignedClaims returns the payload of a draft-policy token after checking
// that it is unsigned (alg "none", empty signature).
func unsignedClaims(t *testing.T, r resp) map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	tok, _ := r.json(t)["token"].(string)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("draft token is not unsigned: %q", tok)
	}
	hb, _ := b64u.DecodeString(parts[0])
	var hdr map[string]any
	json.Unmarshal(hb, &hdr)
	if hdr["alg"] != "none" {
		t.Fatalf("draft token header %s", hb)
	}
	pb, _ := b64u.DecodeString(parts[1])
	var c map[string]any
	if err := json.Unmarshal(pb, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func runConformance(t *testing.T, e *apiEnv, ev conformanceEvidence, diagnostic bool) {
	vec := func(name string) *string {
		s := string(testenv.ReadShared(t, "spec/policies/"+name))
		return &s
	}
	// The expected No-Permit message is the recorded one quoted in §10.
	spec := string(testenv.ReadShared(t, "spec/maa-policy.md"))
	i := strings.Index(spec, `{"error":{"code":"PolicyEvaluationError"`)
	if i < 0 {
		t.Fatal("maa-policy.md §10 example body not found")
	}
	var recorded struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(spec[i:i+strings.Index(spec[i:], "\n")]), &recorded); err != nil || recorded.Error.Message != msgNoPermit {
		t.Fatalf("§10 example message %q (%v) differs from msgNoPermit", recorded.Error.Message, err)
	}
	defaultIssued := map[string]any{"is-debuggable": true, "product-id": 1.0, "sgx-mrenclave": sampleMREnclave,
		"sgx-mrsigner": sampleMRSigner, "svn": 1.0, "tee": "sgx"}
	ndIssued := map[string]any{"NotDebuggable": false, "is-debuggable": false, "product-id": 1.0, "sgx-mrenclave": sampleNDMREnclave,
		"sgx-mrsigner": sampleNDMRSigner, "svn": 1.0, "tee": "sgx"}
	ehd := b64u.EncodeToString(ev.runtime)
	type tc struct {
		name    string
		typ     string
		enclave string
		draft   *string // nil: the policy in force (the default)
		// success: the token must be unsigned iff draft != nil; issued is
		// x-ms-policy and each member must also be at top level.
		issued map[string]any
		absent []string
		hash   string
		tcbID  string // x-ms-sgx-tcbidentifier; "" means "azuredefault"
		// failure
		code, message, detail string
		contains              string // the error message must contain it
	}
	var cases []tc
	for _, typ := range []string{conformanceTypeOE, conformanceTypeSGX} {
		cases = append(cases,
			tc{name: "default policy 01", typ: typ, enclave: conformanceDebug, issued: defaultIssued, hash: defaultPolicyHash},
			tc{name: "draft 07: custom-name", typ: typ, enclave: conformanceDebug, draft: vec("07-sdk-draft-debug-enclave-custom-name.txt"),
				issued: map[string]any{"custom-name": sampleMRSigner}, absent: []string{"tee", "is-debuggable", "sgx-mrsigner"}, hash: draft07Hash},
			tc{name: "draft 08: no permit", typ: typ, enclave: conformanceDebug, draft: vec("08-sdk-draft-nondebug-productid0.txt"),
				code: "PolicyEvaluationError", message: msgNoPermit},
			tc{name: "draft 19: deny all", typ: typ, enclave: conformanceDebug, draft: vec("19-signing-tool-deny-all.txt"), code: "PolicyEvaluationError", detail: detailDeny},
			tc{name: "draft 43: deny all", typ: typ, enclave: conformanceDebug, draft: vec("43-java-draft-deny-all.txt"), code: "PolicyEvaluationError", detail: detailDeny},
			tc{name: "draft 09: debug denied", typ: typ, enclave: conformanceDebug, draft: vec("09-dotnet-disallow-debugging-legacy.txt"), code: "PolicyEvaluationError", detail: detailDeny},
			tc{name: "draft 13: debug sample not permitted", typ: typ, enclave: conformanceDebug, draft: vec("13-docs-sgx-custom-policy-instantiated.txt"),
				code: "PolicyEvaluationError", message: msgNoPermit},
			tc{name: "draft 03: $ claims", typ: typ, enclave: conformanceDebug, draft: vec("03-sgx-default-v1.0-2020-dollar-claims.txt"),
				issued: defaultIssued, hash: "egjnANIzEpS2WgpE4Nk-QEwM69XRCgTs42_G0qLlbnk"},
			tc{name: "draft 02: legacy default", typ: typ, enclave: conformanceDebug, draft: vec("02-sgx-oe-default-v1.0-2022.txt"),
				issued: defaultIssued, hash: legacyDefaultHash},
			tc{name: "draft 18: TCB baseline 11", typ: typ, enclave: conformanceDebug, draft: vec("18-docs-sgx-custom-tcb-baseline-corrected.txt"),
				issued: defaultIssued, hash: "3SglMSZKi6Q0uB6OS9W7SmG4W6OSOG3x_k-n74EQJGM", tcbID: "11"},
			tc{name: "draft 12: constant claim", typ: typ, enclave: conformanceDebug, draft: vec("12-java-draft-constant-claim.txt"),
				issued: map[string]any{"ClaimType": "SgxClaim"}, absent: []string{"tee"}, hash: "DOqSqjhVX8BLxj0IzB_PukVdG6-hXmgtddcxSgvuA5c"},
			tc{name: "draft 14: placeholder MRSIGNERs never match", typ: typ, enclave: conformanceDebug, draft: vec("14-docs-sgx-multiple-enclaves.txt"),
				code: "PolicyEvaluationError", message: msgNoPermit},
			tc{name: "draft 20: Tpm claim on SGX", typ: typ, enclave: conformanceDebug, draft: vec("20-signing-tool-permit-secure-boot.txt"),
				code: "PolicyEvaluationError", message: msgNoPermit},
		)
	}
	// Only the OpenEnclave non-debug sample exists among the SDK files.
	cases = append(cases,
		tc{name: "draft 09: non-debug permitted", typ: conformanceTypeOE, enclave: conformanceNonDebug, draft: vec("09-dotnet-disallow-debugging-legacy.txt"),
			issued: ndIssued, hash: "U7RoQIN_-mINBOrf3U4kS2Agd6POXNoY8sxSgeVOuoI"},
		tc{name: "draft 13: non-debug sample has another MRSIGNER", typ: conformanceTypeOE, enclave: conformanceNonDebug,
			draft: vec("13-docs-sgx-custom-policy-instantiated.txt"), code: "PolicyEvaluationError", message: msgNoPermit},
	)
	for _, c := range cases {
		if diagnostic && c.tcbID != "" {
			// Without collateral no TCB baseline can be honoured: claiming
			// one would be the misleading echo.
			c.issued, c.code, c.contains = nil, "InvalidParameter", "check collateral.tcb_baseline"
		}
		t.Run(c.typ+"/"+c.name, func(t *testing.T) {
			b64, ok := ev.b64[c.typ+"/"+c.enclave]
			if !ok {
				t.Fatalf("no %s evidence for enclave %s", c.typ, c.enclave)
			}
			r := attestCall(e, c.typ, b64, ev.runtime, c.draft)
			if c.code != "" {
				if r.status != 400 {
					t.Fatalf("status %d, want 400: %s", r.status, r.body)
				}
				var body struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if err := json.Unmarshal(r.body, &body); err != nil {
					t.Fatal(err)
				}
				if body.Error.Code != c.code {
					t.Fatalf("code %q, want %q (%s)", body.Error.Code, c.code, r.body)
				}
				if c.message != "" {
					// maa-policy.md §10: the body, byte for byte, with its innererror copy.
					m, _ := json.Marshal(c.message)
					want := `{"error":{"code":"` + c.code + `","message":` + string(m) + `,"innererror":{"code":"` + c.code + `","message":` + string(m) + `}}}`
					if string(r.body) != want {
						t.Fatalf("body\n%s\nwant\n%s", r.body, want)
					}
					if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
						t.Fatalf("Content-Type %q", ct)
					}
				}
				if c.detail != "" && !strings.Contains(body.Error.Message, "Msg:["+c.detail) {
					t.Fatalf("message %q lacks %q", body.Error.Message, c.detail)
				}
				if c.contains != "" && !strings.Contains(body.Error.Message, c.contains) {
					t.Fatalf("message %q lacks %q", body.Error.Message, c.contains)
				}
				return
			}
			var cl map[string]any
			if c.draft != nil {
				cl = unsignedClaims(t, r)
			} else {
				cl = e.claims("default", r)
			}
			if !reflect.DeepEqual(cl["x-ms-policy"], c.issued) {
				t.Errorf("x-ms-policy %v, want %v", cl["x-ms-policy"], c.issued)
			}
			for k, want := range c.issued {
				if !reflect.DeepEqual(cl[k], want) {
					t.Errorf("top-level %s = %v, want %v", k, cl[k], want)
				}
			}
			for _, k := range c.absent {
				if _, ok := cl[k]; ok {
					t.Errorf("%s present: %v", k, cl[k])
				}
			}
			if cl["x-ms-policy-hash"] != c.hash {
				t.Errorf("x-ms-policy-hash %v, want %v", cl["x-ms-policy-hash"], c.hash)
			}
			tcbID := c.tcbID
			if tcbID == "" {
				tcbID = "azuredefault"
			}
			if cl["x-ms-sgx-tcbidentifier"] != tcbID || cl["x-ms-attestation-type"] != "sgx" || cl["x-ms-ver"] != "1.0" || cl["x-ms-sgx-ehd"] != ehd {
				t.Errorf("service claims: tcbidentifier %v, attestation-type %v, ver %v, ehd %v", cl["x-ms-sgx-tcbidentifier"], cl["x-ms-attestation-type"], cl["x-ms-ver"], cl["x-ms-sgx-ehd"])
			}
			dm, hasDM := cl["x-ms-sgx-diagnostic-mode"].(string)
			if hasDM != diagnostic || (diagnostic && !strings.HasPrefix(dm, "collateral-skipped")) {
				t.Errorf("x-ms-sgx-diagnostic-mode %q (diagnostic run: %v)", dm, diagnostic)
			}
			if ts := cl["x-ms-sgx-tcb-status"]; (diagnostic && ts != "CollateralNotVerified") || (!diagnostic && ts != "UpToDate") {
				t.Errorf("x-ms-sgx-tcb-status %v", ts)
			}
			if c.draft != nil && cl["x-ms-policy-hash"] != policy.Hash(*c.draft) {
				t.Errorf("hash of the draft text differs from the vector's listed hash")
			}
		})
	}
	// §12.1 (1, 2): every accepted vector works as draftPolicyForAttestation
	// (never PolicyParsingError), and a token produced under it carries the
	// x-ms-policy-hash listed in policies/README.md.
	t.Run("every vector as a draft policy", func(t *testing.T) {
		permitted := 0
		for _, line := range strings.Split(string(testenv.ReadShared(t, "spec/policies/README.md")), "\n") {
			if !strings.HasPrefix(line, "| `") || strings.HasPrefix(line, "| `bad-") {
				continue
			}
			cols := strings.Split(line, "|")
			file := strings.Trim(strings.TrimSpace(cols[1]), "`")
			hash := strings.Trim(strings.TrimSpace(cols[len(cols)-2]), "`")
			r := attestCall(e, conformanceTypeOE, ev.b64[conformanceTypeOE+"/"+conformanceDebug], ev.runtime, vec(file))
			if r.status != 200 {
				var body struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				json.Unmarshal(r.body, &body)
				if diagnostic && r.status == 400 && body.Error.Code == "InvalidParameter" && strings.Contains(body.Error.Message, "check collateral.tcb_baseline") {
					continue // a TCB baseline cannot be honoured without collateral
				}
				if r.status != 400 || body.Error.Code != "PolicyEvaluationError" {
					t.Errorf("%s: %d %s", file, r.status, r.body)
				}
				continue
			}
			permitted++
			if got := unsignedClaims(t, r)["x-ms-policy-hash"]; got != hash {
				t.Errorf("%s: x-ms-policy-hash %v, README lists %s", file, got, hash)
			}
		}
		if permitted < 10 {
			t.Fatalf("only %d vectors permitted the debug sample", permitted)
		}
		t.Logf("%d vectors permitted the debug sample with the listed hash", permitted)
	})
	// The dry run over the same evidence reaches the same decisions and
	// names MAA's error, without a token.
	t.Run("explain agrees with attest", func(t *testing.T) {
		for _, c := range []struct {
			draft     *string
			permitted bool
			message   string
		}{{vec("07-sdk-draft-debug-enclave-custom-name.txt"), true, ""}, {vec("08-sdk-draft-nondebug-productid0.txt"), false, msgNoPermit}} {
			b, _ := json.Marshal(map[string]any{"policy": *c.draft, "evidence": map[string]any{
				"report": ev.b64[conformanceTypeOE+"/"+conformanceDebug], "runtimeData": map[string]string{"data": ehd, "dataType": "Binary"}}})
			r := e.do("POST", "/attestd/policies/OpenEnclave:explain", e.tokens["reader"], "application/json", string(b))
			var x explainResp
			if err := json.Unmarshal(r.body, &x); r.status != 200 || err != nil {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if x.Permitted != c.permitted || (c.permitted && x.TokenClaims["custom-name"] != sampleMRSigner) ||
				(!c.permitted && (x.Error == nil || x.Error.Message != c.message)) {
				t.Fatalf("%s", r.body)
			}
		}
	})
	// Runtime data that the evidence does not bind is refused.
	t.Run("unbound runtime data", func(t *testing.T) {
		r := attestCall(e, conformanceTypeOE, ev.b64[conformanceTypeOE+"/"+conformanceDebug], []byte("other"), nil)
		if r.status != 400 || !strings.Contains(string(r.body), "runtimedata.binding") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}
