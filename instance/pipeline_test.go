package instance

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/attestd/attestd/evidence"
)

// TestInstanceImportsNoTEE: the pipeline is TEE-agnostic. Nothing under
// evidence/ except the contract itself may be in instance's dependencies.
func TestInstanceImportsNoTEE(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/attestd/attestd/evidence/") {
			t.Errorf("instance depends on %s: TEE knowledge belongs in the verifier", pkg)
		}
	}
}

// TestGarbageCostsNoPolicyWork: evidence is parsed before any policy work.
// A garbage quote under a draft whose configuration rules fail loudly is
// refused at the parse check (not PolicyEvaluationError), and the verifier
// never gets to verify it.
func TestGarbageCostsNoPolicyWork(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	loud := `version=1.1; configurationrules{ => issueproperty(type="omit_x5c", value="not a boolean"); }; authorizationrules{ => permit(); };`
	_, err := e.in.Attest(ctx, &AttestRequest{Type: evidence.SgxEnclave, Evidence: []byte("garbage"), DraftPolicy: &loud})
	wantCode(t, err, CodeInvalidParameter)
	if !errors.Is(err, evidence.Check("fake.parse")) {
		t.Fatalf("err = %v, want the parse check", err)
	}
	// The same draft with parsable evidence does reach the configuration rules.
	_, err = e.in.Attest(ctx, &AttestRequest{Type: evidence.SgxEnclave, Evidence: attestReq(t, nil, false).Evidence, DraftPolicy: &loud})
	wantCode(t, err, CodePolicyEvaluationError)
	// Explain follows the same order.
	_, err = e.in.Explain(ctx, &ExplainRequest{Type: evidence.SgxEnclave, Policy: &loud, Evidence: &AttestRequest{Evidence: []byte("garbage")}})
	if !errors.Is(err, evidence.Check("fake.parse")) {
		t.Fatalf("explain: err = %v, want the parse check", err)
	}
}

// TestPipelineChecks: refusals the pipeline itself names are typed checks
// (errors.Is through *Error), with the messages clients have always seen.
func TestPipelineChecks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	good := attestReq(t, []byte("rt"), false)
	for _, tc := range []struct {
		name  string
		req   *AttestRequest
		check evidence.Check
		msg   string
	}{
		{"missing evidence", &AttestRequest{Type: evidence.SgxEnclave}, evidence.CheckEvidenceMissing, "the request carries no evidence (quote/report) for SgxEnclave"},
		{"runtime binding", &AttestRequest{Type: evidence.SgxEnclave, Evidence: good.Evidence, Runtime: &evidence.Data{Bytes: []byte("other")}}, evidence.CheckRuntimeBinding,
			"evidence verification failed at check runtimedata.binding: SHA-256 of runtimeData"},
		{"init-time binding", &AttestRequest{Type: evidence.SgxEnclave, Evidence: good.Evidence, InitTime: &evidence.Data{Bytes: []byte("x")}}, evidence.CheckInitTimeBinding,
			"evidence verification failed at check inittimedata.binding: this evidence has no field that binds initTimeData"},
		{"runtime JSON", &AttestRequest{Type: evidence.SgxEnclave, Evidence: attestReq(t, []byte("{"), true).Evidence, Runtime: &evidence.Data{Bytes: []byte("{"), JSON: true}}, evidence.CheckRuntimeJSON,
			"runtimeData has dataType JSON but is not valid JSON"},
		{"verifier check", &AttestRequest{Type: evidence.SgxEnclave, Evidence: fakeQuote(t, fakeEvidence{FailCheck: "quote.signature"})}, evidence.Check("quote.signature"),
			"evidence verification failed at check quote.signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.in.Attest(ctx, tc.req)
			wantCode(t, err, CodeInvalidParameter)
			if !errors.Is(err, tc.check) {
				t.Errorf("errors.Is(%v, %s) is false", err, tc.check)
			}
			var ie *Error
			if !errors.As(err, &ie) || !strings.HasPrefix(ie.Message, tc.msg) {
				t.Errorf("message %q, want prefix %q", ie.Message, tc.msg)
			}
		})
	}
}

// TestNoVerifier: a type without a verifier is NotSupported for attest and
// explain alike; Tpm without a policy is MAA's "Bad request" first.
func TestNoVerifier(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	_, err := e.in.Attest(ctx, &AttestRequest{Type: evidence.SevSnpVm, Evidence: []byte("x")})
	wantCode(t, err, CodeNotSupported)
	_, err = e.in.Explain(ctx, &ExplainRequest{Type: evidence.SevSnpVm, Evidence: &AttestRequest{Evidence: []byte("x")}})
	wantCode(t, err, CodeNotSupported)
	_, err = e.in.Attest(ctx, &AttestRequest{Type: evidence.Tpm, Evidence: []byte("x")})
	wantCode(t, err, CodeBadRequest)
}

// TestClaimsSupportedFromVerifiers: claims_supported is the shared list
// plus what the registered verifiers advertise.
func TestClaimsSupportedFromVerifiers(t *testing.T) {
	e := newEnv(t, ModeAAD)
	got := e.in.ClaimsSupported()
	want := []string{"cnf", "nonce", "x-ms-ver", "x-ms-attestation-type", "x-ms-policy-hash", "x-ms-policy-signer"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("without advertising verifiers: %v, want %v", got, want)
	}
	e.in.verif[evidence.Tpm] = advertiser{"aikValidated", "x-ms-ver"}
	if got := e.in.ClaimsSupported(); strings.Join(got, ",") != strings.Join(append(want, "aikValidated"), ",") {
		t.Errorf("with an advertiser: %v", got)
	}
}

type advertiser []string

func (a advertiser) ClaimsSupported() []string { return a }
func (advertiser) Parse(context.Context, *evidence.Request) (evidence.Parsed, error) {
	return nil, errors.New("not used")
}
