package policy

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// readmeHashes parses the table of spec/policies/README.md: file → hash.
func readmeHashes(t *testing.T) map[string]string {
	t.Helper()
	readme := string(testenv.ReadShared(t, "spec/policies/README.md"))
	row := regexp.MustCompile("(?m)^\\| `([^`]+\\.txt)` \\|.*\\| (`([A-Za-z0-9_-]{43})`|-) \\|\\s*$")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(readme, -1) {
		out[m[1]] = m[3]
	}
	if len(out) != 68 {
		t.Fatalf("README lists %d policies, want 68", len(out))
	}
	return out
}

func samplePaths(t *testing.T) []string {
	t.Helper()
	dir := testenv.Shared(t, "spec/policies")
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) != 68 {
		t.Fatalf("want 68 sample policies in %s, found %d (%v)", dir, len(files), err)
	}
	return files
}

func readSample(t testing.TB, name string) string {
	t.Helper()
	return string(testenv.ReadShared(t, "spec/policies/"+name))
}

// TestSamplePoliciesParseAndHash: every NN-*.txt is accepted and hashes to
// the x-ms-policy-hash of the README; every bad-*.txt is rejected.
func TestSamplePoliciesParseAndHash(t *testing.T) {
	hashes := readmeHashes(t)
	for _, f := range samplePaths(t) {
		name := filepath.Base(f)
		text := readSample(t, name)
		p, err := Parse(text)
		if strings.HasPrefix(name, "bad-") {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("%s: want *ParseError, got %v", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, ok := hashes[name]
		if !ok || want == "" {
			t.Errorf("%s: no hash in README", name)
			continue
		}
		if got := Hash(text); got != want {
			t.Errorf("%s: Hash = %s, want %s", name, got, want)
		}
		if p.Text() != text || p.Hash() != want {
			t.Errorf("%s: Text/Hash do not round-trip", name)
		}
	}
}

// TestBadSamplesErrors: each rejected vector fails for the reason its
// README row names, at the exact position.
func TestBadSamplesErrors(t *testing.T) {
	tests := []struct {
		file       string
		line, col  int
		offending  string
		msg        string // substring of Message
		rule, hint string // substrings
	}{
		{"bad-01-docs-author-top-sample.txt", 4, 12, "=", "mismatched input '=' expecting {'==', '!=', '<', '<=', '>', '>='}", "condition > claimCondition", "'=='"},
		{"bad-02-docs-authizationrules-typo.txt", 2, 1, "authizationrules", "mismatched input 'authizationrules' expecting 'authorizationrules'", "policy", ""},
		{"bad-03-docs-section-equals.txt", 2, 19, "=", "mismatched input '=' expecting '{'", "policy > authorizationRules", ""},
		{"bad-04-docs-issuer-single-equals.txt", 13, 38, "=", "mismatched input '=' expecting {'=='", "claimCondition", ""},
		{"bad-05-docs-issue-positional-type.txt", 23, 51, `"PlatformAttested"`, "expecting {'type', 'value', 'valueType', 'claim'}", "action > actionArguments", "named"},
		{"bad-06-docs-premit-typo.txt", 7, 5, "premit", "mismatched input 'premit' expecting {'permit', 'deny', 'add', 'issue', 'issueproperty'}", "action", "unknown action 'premit'"},
		{"bad-07-docs-missing-arrow.txt", 8, 11, "(", "mismatched input '(' expecting ':'", "condition", "=> permit"},
		{"bad-08-docs-missing-action-verb.txt", 16, 53, "(", "mismatched input '(' expecting {'permit'", "issuanceRules > rule > action", ""},
		{"bad-09-docs-condition-single-equals.txt", 10, 34, "=", "mismatched input '=' expecting {'=='", "claimCondition", ""},
		{"bad-10-docs-missing-section-semicolon.txt", 14, 1, "<EOF>", "mismatched input '<EOF>' expecting ';'", "policy > issuanceRules", ""},
		{"bad-11-docs-template-placeholders.txt", 5, 50, "<", "mismatched input '<' expecting {STRING", "claimCondition", "placeholder"},
		{"bad-12-docs-custom-tcb-smart-quote.txt", 15, 11, "x", "mismatched input 'x' expecting {',', ')'}", "configurationRules", "string starting at line 5, column 42 contains a typographic quote at line 5, column 45"},
		{"bad-13-docs-smart-quotes-2020-default.txt", 4, 11, "\u201d", "token recognition error at: '\u201d'", "claimCondition", "typographic"},
		{"bad-14-missing-version-semicolon.txt", 2, 1, "[", "mismatched input '[' expecting ';'", "policy > versionInfo", ""},
		{"bad-15-unsupported-version.txt", 1, 9, "2.0", "unsupported policy version '2.0'", "policy > versionInfo", ""},
		{"bad-16-function-in-v1.0.txt", 4, 65, "AppendString", "requires policy version 1.2", "functionCall", ""},
		{"bad-17-not-operator-in-v1.1.txt", 4, 5, "!", "'!' absence condition requires policy version 1.2", "condition", ""},
		{"bad-18-configurationrules-in-v1.0.txt", 2, 1, "configurationrules", "configurationrules requires policy version 1.1", "policy", ""},
		{"bad-19-empty-text.txt", 1, 1, "<EOF>", "mismatched input '<EOF>' expecting 'version'", "policy > versionInfo", ""},
		{"bad-20-sections-out-of-order.txt", 2, 1, "issuancerules", "mismatched input 'issuancerules' expecting 'authorizationrules'", "policy", "order"},
		{"bad-21-undefined-identifier.txt", 4, 63, "c", "tag 'c' is not bound", "actionArguments", ""},
		{"bad-22-regex-operator.txt", 3, 38, "=~", "unsupported operator '=~'", "claimCondition", ""},
		{"bad-23-unterminated-string.txt", 3, 12, `"`, "string literal is not terminated", "claimCondition", ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Parse(readSample(t, tc.file))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			if pe.Line != tc.line || pe.Column != tc.col || pe.Offending != tc.offending {
				t.Errorf("at %d:%d offending %q, want %d:%d %q (%v)", pe.Line, pe.Column, pe.Offending, tc.line, tc.col, tc.offending, pe)
			}
			if !strings.Contains(pe.Message, tc.msg) || !strings.Contains(pe.Rule, tc.rule) || !strings.Contains(pe.Hint, tc.hint) {
				t.Errorf("got message %q rule %q hint %q; want %q / %q / %q", pe.Message, pe.Rule, pe.Hint, tc.msg, tc.rule, tc.hint)
			}
			maa := pe.MAAMessage()
			if !strings.Contains(maa, "Policy Parser Exception Thrown: Offending symbol: '"+tc.offending+"'") ||
				!strings.HasPrefix(maa, "Attestation Enclave operation failed with 65526:") {
				t.Errorf("MAAMessage = %q", maa)
			}
		})
	}
}

// The troubleshooting guide's documented error (spec §10) for bad-14.
func TestMAAParseMessageBad14(t *testing.T) {
	_, err := Parse(readSample(t, "bad-14-missing-version-semicolon.txt"))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	want := "Policy Parser Exception Thrown: Offending symbol: '['\nLine: '2', Column: '1'\nFailure message: 'mismatched input '[' expecting ';''\nFailing rule: 'policy > versionInfo'"
	if got := pe.MAADetail(); got != want {
		t.Errorf("MAADetail =\n%q\nwant\n%q", got, want)
	}
}

const (
	debugSigner    = "4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c"
	debugEnclave   = "292a1f4b519e46627eb2478a3d9851405653c5b4b0a6925de843834d9216850e"
	nondebugSigner = "2c1a44952ae8207135c6c29b75b8c029372ee94b677e15c20bd42340f10d41aa"
)

// sgxClaims builds the incoming set the service derives from an SGX quote
// (spec §8.1), including the deprecated "$" aliases.
func sgxClaims(debug bool, productID, svn int64, signer, enclave string) []Claim {
	s := func(t string, v any) Claim { return Claim{Type: t, Value: v, Issuer: IssuerService} }
	return []Claim{
		s("x-ms-sgx-is-debuggable", debug), s("x-ms-sgx-product-id", productID), s("x-ms-sgx-svn", svn),
		s("x-ms-sgx-mrsigner", signer), s("x-ms-sgx-mrenclave", enclave), s("x-ms-attestation-type", "sgx"),
		s("$is-debuggable", debug), s("$product-id", productID), s("$svn", svn),
		s("$sgx-mrsigner", signer), s("$sgx-mrenclave", enclave), s("$tee", "sgx"),
	}
}

// The two samples of ../samples/sdk-cpp (values from policies/README.md).
var (
	debugQuote    = sgxClaims(true, 1, 1, debugSigner, debugEnclave)
	nondebugQuote = sgxClaims(false, 1, 1, nondebugSigner, debugEnclave)
)

func tpmClaims(kv ...any) []Claim {
	var out []Claim
	for i := 0; i < len(kv); i += 2 {
		out = append(out, Claim{Type: kv[i].(string), Value: kv[i+1], Issuer: IssuerService})
	}
	return out
}

var defaultIssued = map[string]any{
	"is-debuggable": true, "sgx-mrsigner": debugSigner, "sgx-mrenclave": debugEnclave,
	"product-id": int64(1), "svn": int64(1), "tee": "sgx",
}

// TestSampleEvaluation: every sample with a stated outcome, over claims
// built by hand from the values its README row states.
func TestSampleEvaluation(t *testing.T) {
	tests := []struct {
		file     string
		attType  string
		claims   []Claim
		decision Decision
		denyLine int            // for DecisionDeny
		issued   map[string]any // TokenClaims of the issued claims; nil = none
		props    map[string]any // subset of Result.Properties to check
	}{
		{"01-sgx-oe-default-v1.1-current.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, defaultIssued, map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}},
		{"01-sgx-oe-default-v1.1-current.txt", "OpenEnclave", debugQuote, DecisionPermit, 0, defaultIssued, map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}},
		{"02-sgx-oe-default-v1.0-2022.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, defaultIssued, map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}},
		{"03-sgx-default-v1.0-2020-dollar-claims.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, defaultIssued, nil},
		{"04-sgx-oe-default-v1.1-docs-formatting.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, defaultIssued, nil},
		{"05-cyrescomponent-default-2020.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, map[string]any{"expected_components": "component_0", "tee": "sgx"}, nil},
		{"06-sdk-minimal-permit-all.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, nil, nil},
		{"06-sdk-minimal-permit-all.txt", "Tpm", nil, DecisionPermit, 0, nil, map[string]any{"require_valid_aik_cert": true, "required_pcr_mask": int64(0xFFFFFF)}},
		{"07-sdk-draft-debug-enclave-custom-name.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, map[string]any{"custom-name": debugSigner}, nil},
		{"08-sdk-draft-nondebug-productid0.txt", "SgxEnclave", debugQuote, DecisionNoPermit, 0, nil, nil},
		{"08-sdk-draft-nondebug-productid0.txt", "SgxEnclave", sgxClaims(false, 0, 0, nondebugSigner, debugEnclave), DecisionPermit, 0, map[string]any{"custom-name": nondebugSigner}, nil},
		{"09-dotnet-disallow-debugging-legacy.txt", "OpenEnclave", debugQuote, DecisionDeny, 4, nil, nil},
		{"09-dotnet-disallow-debugging-legacy.txt", "OpenEnclave", nondebugQuote, DecisionPermit, 0, map[string]any{
			"NotDebuggable": false, "is-debuggable": false, "sgx-mrsigner": nondebugSigner, "sgx-mrenclave": debugEnclave,
			"product-id": int64(1), "svn": int64(1), "tee": "sgx"}, nil},
		{"10-restapi-example-leading-crlf.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, nil, nil},
		{"11-java-version-spacing.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, nil, nil},
		{"12-java-draft-constant-claim.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, map[string]any{"ClaimType": "SgxClaim"}, nil},
		{"13-docs-sgx-custom-policy-instantiated.txt", "SgxEnclave", debugQuote, DecisionNoPermit, 0, nil, nil},
		{"13-docs-sgx-custom-policy-instantiated.txt", "SgxEnclave", nondebugQuote, DecisionNoPermit, 0, nil, nil},
		{"13-docs-sgx-custom-policy-instantiated.txt", "SgxEnclave", sgxClaims(false, 1, 0, debugSigner, debugEnclave), DecisionPermit, 0, map[string]any{"custom-name": debugSigner}, nil},
		{"14-docs-sgx-multiple-enclaves.txt", "SgxEnclave", debugQuote, DecisionNoPermit, 0, nil, nil},
		{"14-docs-sgx-multiple-enclaves.txt", "SgxEnclave", sgxClaims(true, 1, 1, "mrsigner2", debugEnclave), DecisionPermit, 0, nil, nil},
		{"15-docs-sgx-key-rotation-before.txt", "SgxEnclave", sgxClaims(false, 1, 1, "mrsigner1", debugEnclave), DecisionPermit, 0, nil, nil},
		{"15-docs-sgx-key-rotation-before.txt", "SgxEnclave", sgxClaims(false, 1, 1, "mrsigner2", debugEnclave), DecisionNoPermit, 0, nil, nil},
		{"16-docs-sgx-key-rotation-during.txt", "SgxEnclave", sgxClaims(false, 1, 1, "mrsigner1", debugEnclave), DecisionPermit, 0, nil, nil},
		{"16-docs-sgx-key-rotation-during.txt", "SgxEnclave", sgxClaims(false, 1, 1, "mrsigner2", debugEnclave), DecisionPermit, 0, nil, nil},
		{"16-docs-sgx-key-rotation-during.txt", "SgxEnclave", sgxClaims(true, 1, 1, "mrsigner2", debugEnclave), DecisionNoPermit, 0, nil, nil},
		{"17-docs-sgx-key-rotation-after.txt", "SgxEnclave", sgxClaims(false, 1, 1, "mrsigner1", debugEnclave), DecisionNoPermit, 0, nil, nil},
		{"17-docs-sgx-key-rotation-after.txt", "SgxEnclave", sgxClaims(false, 1, 1, "mrsigner2", debugEnclave), DecisionPermit, 0, nil, nil},
		{"18-docs-sgx-custom-tcb-baseline-corrected.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, defaultIssued, map[string]any{"x-ms-sgx-tcbidentifier": "11"}},
		{"19-signing-tool-deny-all.txt", "SgxEnclave", debugQuote, DecisionDeny, 5, nil, nil},
		{"20-signing-tool-permit-secure-boot.txt", "SgxEnclave", debugQuote, DecisionNoPermit, 0, nil, nil},
		{"20-signing-tool-permit-secure-boot.txt", "Tpm", tpmClaims("secureBootEnabled", true), DecisionPermit, 0, nil, nil},
		{"20-signing-tool-permit-secure-boot.txt", "Tpm", tpmClaims("secureBootEnabled", false), DecisionNoPermit, 0, nil, nil},
		{"21-signing-tool-add-custom-claim.txt", "Tpm", tpmClaims("secureBootEnabled", true), DecisionPermit, 0, map[string]any{"SecurityLevelValue": int64(100)}, nil},
		{"22-cli-text-sgx-policy-legacy.txt", "SgxEnclave", sgxClaims(false, 4639, 1, strings.ToLower("E31C9E505F37A58DE09335075FC8591254313EB20BB1A27E5443CC450B6E33E5"), debugEnclave), DecisionNoPermit, 0, nil, nil},
		{"23-docs-tpm-v1.0-platformattested.txt", "Tpm", tpmClaims("aikValidated", true, "secureBootEnabled", true, "bootDebuggingDisabled", true, "notSafeMode", true), DecisionPermit, 0, map[string]any{"PlatformAttested": true}, nil},
		{"23-docs-tpm-v1.0-platformattested.txt", "Tpm", tpmClaims("aikValidated", true, "secureBootEnabled", false, "bootDebuggingDisabled", true, "notSafeMode", true), DecisionPermit, 0, nil, nil},
		{"24-docs-tpm-v1.0-sample.txt", "Tpm", tpmClaims("aikValidated", true, "secureBootEnabled", true, "bootDebuggingDisabled", true, "vbsEnabled", true, "notWinPE", true, "notSafeMode", true), DecisionPermit, 0, map[string]any{"PlatformAttested": true}, nil},
		{"25-docs-tpm-v1.0-concepts-simple.txt", "Tpm", tpmClaims("aikValidated", true, "secureBootEnabled", true), DecisionPermit, 0, map[string]any{"PlatformAttested": true}, nil},
		{"26-docs-tpm-v1.1-configuration.txt", "Tpm", tpmClaims("aikValidated", false, "secureBootEnabled", true, "bootDebuggingDisabled", true, "notSafeMode", true), DecisionPermit, 0,
			map[string]any{"PlatformAttested": false}, map[string]any{"required_pcr_mask": int64(15), "require_valid_aik_cert": false, "report_validity_in_minutes": int64(1440)}},
		{"27-docs-tpm-v1.2-tpmversion-config.txt", "Tpm", tpmClaims("tpmVersion", int64(2), "aikValidated", true, "events", windowsEvents), DecisionPermit, 0, map[string]any{
			"aikValidated": true, "SecureBootEnabled": true, "CodeIntegrityEnabled": true, "BitlockerStatus": true, "ELAMDriverLoaded": true},
			map[string]any{"required_pcr_mask": int64(131070), "require_valid_aik_cert": false}},
		{"27-docs-tpm-v1.2-tpmversion-config.txt", "Tpm", tpmClaims("tpmVersion", int64(1)), DecisionNoPermit, 0, nil, nil},
		{"28-docs-tpm-v1.2-boot-properties.txt", "Tpm", tpmClaims("aikValidated", true, "events", `{"Events":[]}`), DecisionPermit, 0, map[string]any{
			"aikValidated": true, "SecureBootEnabled": false, "CodeIntegrityEnabled": false, "BitlockerStatus": false, "ELAMDriverLoaded": true}, nil},
		{"29-docs-tpm-v1.2-pcr-authorization.txt", "Tpm", tpmClaims("pcrs", goodPCRs), DecisionPermit, 0, nil, nil},
		{"29-docs-tpm-v1.2-pcr-authorization.txt", "Tpm", tpmClaims("pcrs", strings.Replace(goodPCRs, "4c83", "0c83", 1)), DecisionNoPermit, 0, nil, nil},
		{"31-docs-tpm-v1.2-vbs-enclave.txt", "Tpm", tpmClaims("vsmReportPresent", true, "enclaveAuthorId", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "enclaveImageId", "AQEAAAAAAAAAAAAAAAAAAA", "enclaveSvn", int64(0)), DecisionPermit, 0, nil, nil},
		{"31-docs-tpm-v1.2-vbs-enclave.txt", "Tpm", tpmClaims("vsmReportPresent", true, "enclaveAuthorId", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "enclaveImageId", "AQEAAAAAAAAAAAAAAAAAAA", "enclaveSvn", int64(-1)), DecisionNoPermit, 0, nil, nil},
		{"32-docs-tpm-v1.2-issue-all-events.txt", "Tpm", tpmClaims("events", `{"Events":[]}`, "bootEvents", `{"Events":[1]}`), DecisionPermit, 0, map[string]any{"outputEvents": `{"Events":[]}`, "outputBootEvents": `{"Events":[1]}`}, nil},
		{"36-docs-tpm-v1.2-key-attestation-authz.txt", "Tpm", tpmClaims("x-ms-tpm-request-key", `{"jwk":{"kty":"RSA"},"info":{"tpm_certify":{"name_alg":11,"obj_attr":50,"auth_policy":"AQIDBA"}}}`), DecisionPermit, 0, nil, nil},
		{"36-docs-tpm-v1.2-key-attestation-authz.txt", "Tpm", tpmClaims("x-ms-tpm-request-key", `{"jwk":{"kty":"RSA"},"info":{"tpm_quote":{"hash_alg":"sha-256"}}}`), DecisionNoPermit, 0, nil, nil},
		{"39-docs-vbs-no-security.txt", "Tpm", []Claim{{Type: "aas-ehd", Value: "AQID", Issuer: IssuerCustom}}, DecisionPermit, 0, map[string]any{"aas-ehd": "AQID"}, map[string]any{"omit_x5c": true}},
		{"40-docs-vbs-optimum-security.txt", "Tpm", vbsClaims(int64(0)), DecisionPermit, 0, nil, nil},
		{"40-docs-vbs-optimum-security.txt", "Tpm", vbsClaims(int64(1)), DecisionNoPermit, 0, nil, nil},
		{"42-docs-functions-examples-as-policy.txt", "SgxEnclave", nil, DecisionPermit, 0, map[string]any{
			"JmesPathResult2": "2", "Result": []any{int64(0), "abc", true}, "IsSubset": true, "Appended": "abcxyz",
			"Negated": false, "OnlyHundred": false, "Claim3": int64(300)}, nil},
		{"43-java-draft-deny-all.txt", "SgxEnclave", debugQuote, DecisionDeny, 1, nil, nil},
		{"44-java-tpm-compact.txt", "Tpm", nil, DecisionPermit, 0, nil, nil},
		{"45-java-permit-inner-space.txt", "SgxEnclave", debugQuote, DecisionPermit, 0, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file[:2]+"-"+tc.decision.String(), func(t *testing.T) {
			p, err := Parse(readSample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			// The defaults the SGX verifier supplies (the policy package
			// knows no TEE's): the v1.0 samples have no configurationrules.
			var defaults map[string]any
			if tc.attType == "SgxEnclave" || tc.attType == "OpenEnclave" {
				defaults = map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}
			}
			res, err := p.Evaluate(context.Background(), tc.attType, tc.claims, EvalOptions{Trace: true, Defaults: defaults})
			if res == nil {
				t.Fatalf("nil result, err %v", err)
			}
			if res.Decision != tc.decision {
				t.Fatalf("decision %s, want %s (err %v)\n%s", res.Decision, tc.decision, err, res.Trace)
			}
			var ee *EvalError
			switch tc.decision {
			case DecisionPermit:
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
			case DecisionNoPermit:
				if !errors.As(err, &ee) || ee.Kind != NoPermit || ee.MAAMessage() != maaNoPermitMessage {
					t.Fatalf("want the exact NoPermit message, got %v", err)
				}
			case DecisionDeny:
				if !errors.As(err, &ee) || ee.Kind != Deny || ee.Line != tc.denyLine || ee.Section != "authorizationrules" {
					t.Fatalf("want Deny at line %d, got %#v", tc.denyLine, err)
				}
				if !strings.Contains(ee.MAAMessage(), "Msg:[Policy Engine Exception: A Deny claim was issued, authorization failed. Deciding rule: authorizationrules line ") {
					t.Errorf("MAAMessage = %q", ee.MAAMessage())
				}
			}
			if tc.decision != DecisionPermit {
				if len(res.Issued) != 0 {
					t.Errorf("denied evaluation issued %v", res.Issued)
				}
				return
			}
			got := TokenClaims(res.Issued)
			want := tc.issued
			if want == nil {
				want = map[string]any{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("issued %#v\nwant %#v\n%s", got, want, res.Trace)
			}
			for k, v := range tc.props {
				if res.Properties[k] != v {
					t.Errorf("property %s = %#v, want %#v", k, res.Properties[k], v)
				}
			}
		})
	}
}

// MAA's recorded body text for a policy without a matching permit (spec §10, policies/08).
const maaNoPermitMessage = "Attestation Enclave operation failed with 65518: Exception(0) 83FFFFEE Policy Evaluation Error has occurred    Msg:[Policy Engine Exception: No Permit claim was issued in the authorizationrules section, authorization failed.] \n\r\nUnhandled Enclave Exception: \"Policy Evaluation Error has occurred\"\r\n"

// windowsEvents is a small TCG log in the JSON shape of spec §8.3.
const windowsEvents = `{"Events":[
 {"EventSeq":1,"EventType":2147483650,"EventTypeString":"EV_EFI_VARIABLE_DRIVER_CONFIG","PcrIndex":7,"ProcessedData":{"VariableGuid":"8BE4DF61-93CA-11D2-AA0D-00E098032B8C","UnicodeName":"SecureBoot","VariableData":"AQ"}},
 {"EventSeq":2,"EventType":6,"EventTypeString":"EV_EVENT_TAG","PcrIndex":12,"ProcessedData":{"EVENT_TRUSTBOUNDARY":{
   "EVENT_CODEINTEGRITY":true,"EVENT_BITLOCKER_UNLOCK":{"String":"CACHED","Value":1},
   "EVENT_LOADEDMODULE_AGGREGATION":[{"EVENT_FILEPATH":"\\Windows\\System32\\Drivers\\WdBoot.sys","EVENT_IMAGEVALIDATED":true}]}}},
 {"EventSeq":3,"EventType":6,"EventTypeString":"EV_EVENT_TAG","PcrIndex":13,"ProcessedData":{"EVENT_TRUSTBOUNDARY":{"EVENT_CODEINTEGRITY":true}}}
]}`

const goodPCRs = `{"PCRs":[
 {"Index":0,"Digests":{"SHA1":"00","SHA256":"4c833b1c361fceffd8dc0f81eec76081b71e1a0eb2193caed0b6e1c7735ec33e"}},
 {"Index":1,"Digests":{"SHA256":"8c25e3be6ad6f5bd33c9ae40d5d5461e88c1a7366df0c9ee5c7e5ff40d3d1d0e"}},
 {"Index":2,"Digests":{"SHA256":"3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969"}},
 {"Index":3,"Digests":{"SHA256":"3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969"}}]}`

func vbsClaims(flags int64) []Claim {
	return tpmClaims("aikValidated", true, "tpmVersion", int64(2), "secureBootEnabled", true, "iommuEnabled", true,
		"bootDebuggingDisabled", true, "notSafeMode", true, "notWinPE", true, "vbsEnabled", true, "vbsReportPresent", true,
		"enclaveAuthorId", "BDfK4lN9i5sHdrYbEebO09Iy6TCPYOIa2rL9kePalZg", "enclaveImageId", "GRcSAAEFIBMABRQDEgEiBQ",
		"enclaveOwnerId", "ECAwQEExIREAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "enclaveFamilyId", "_v4AAAAAAAAAAAAAAAAAAA",
		"enclaveSvn", int64(0), "enclavePlatformSvn", int64(1), "enclaveFlags", flags)
}

// TestDefaultIsSample01: the SGX/OE default is byte-identical to the real
// service's policy (spec §11), and bad-14 reports ANTLR's expected set.
func TestDefaultIsSample01(t *testing.T) {
	text, ok := Default("OpenEnclave")
	if !ok || text != readSample(t, "01-sgx-oe-default-v1.1-current.txt") {
		t.Error("Default(OpenEnclave) differs from policies/01")
	}
	_, err := Parse(readSample(t, "bad-14-missing-version-semicolon.txt"))
	var pe *ParseError
	if !errors.As(err, &pe) || !reflect.DeepEqual(pe.Expected, []string{"';'"}) {
		t.Errorf("Expected = %#v", pe.Expected)
	}
}
