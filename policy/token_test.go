package policy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// TestRealSGXToken replays a real MAA SGX token (samples/sdk-js, Jan 2022):
// its service claims are the incoming set, the policy whose hash the token
// carries is evaluated, and the issued claims must equal the token's
// x-ms-policy object and its top-level members (spec §9).
func TestRealSGXToken(t *testing.T) {
	var token map[string]any
	if err := json.Unmarshal(testenv.ReadShared(t, "samples/sdk-js/sgx_token_payload.decoded.json"), &token); err != nil {
		t.Fatal(err)
	}
	text := string(testenv.ReadShared(t, "spec/policies/02-sgx-oe-default-v1.0-2022.txt"))
	if Hash(text) != token["x-ms-policy-hash"] {
		t.Fatalf("policy 02 hash %s, token carries %v", Hash(text), token["x-ms-policy-hash"])
	}
	if js := string(testenv.ReadShared(t, "samples/sdk-js/default_sgx_policy.txt")); js != text {
		t.Fatal("samples/sdk-js/default_sgx_policy.txt differs from policies/02")
	}
	// Incoming claims (spec §8.1): the service's x-ms-* scalars.
	var incoming []Claim
	service := map[string]any{}
	for _, name := range []string{"x-ms-sgx-is-debuggable", "x-ms-sgx-product-id", "x-ms-sgx-svn", "x-ms-sgx-mrsigner",
		"x-ms-sgx-mrenclave", "x-ms-attestation-type", "x-ms-sgx-ehd", "x-ms-sgx-report-data"} {
		v := token[name]
		if f, ok := v.(float64); ok {
			v = int64(f)
		}
		incoming = append(incoming, svc(name, v))
		service[name] = v
	}
	for _, name := range []string{"iss", "exp", "iat", "nbf", "jti", "x-ms-ver", "x-ms-policy-hash"} {
		service[name] = token[name]
	}
	p := mustParse(t, text)
	res, err := p.Evaluate(context.Background(), "SgxEnclave", incoming, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	AddToToken(service, "SgxEnclave", res.Issued)
	for _, name := range []string{"x-ms-policy", "is-debuggable", "product-id", "sgx-mrenclave", "sgx-mrsigner", "svn", "tee"} {
		got, _ := json.Marshal(service[name])
		want, _ := json.Marshal(token[name])
		if string(got) != string(want) {
			t.Errorf("%s = %s, real token has %s", name, got, want)
		}
	}
}

// TestMAAEvaluationErrorBody: the NoPermit message equals, byte for byte,
// the recorded response body quoted in spec §10.
func TestMAAEvaluationErrorBody(t *testing.T) {
	spec := string(testenv.ReadShared(t, "spec/maa-policy.md"))
	const prefix = `{"error":{"code":"PolicyEvaluationError"`
	i := strings.Index(spec, prefix)
	if i < 0 {
		t.Fatal("spec §10 example not found")
	}
	line := spec[i : i+strings.Index(spec[i:], "\n")]
	var body struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				Message string `json:"message"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &body); err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, readSample(t, "08-sdk-draft-nondebug-productid0.txt"))
	_, err := p.Evaluate(context.Background(), "SgxEnclave", debugQuote, EvalOptions{})
	var ee *EvalError
	if !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if ee.MAAMessage() != body.Error.Message {
		t.Errorf("MAAMessage\n%q\nspec\n%q", ee.MAAMessage(), body.Error.Message)
	}
}

// TestNoTpmPolicyMessage: the recorded 400 body for /attest/Tpm before any
// Tpm policy is set (samples/recordings/tpm_init_exchange.json).
func TestNoTpmPolicyMessage(t *testing.T) {
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(testenv.ReadShared(t, "samples/recordings/tpm_init_exchange.json"), &rec); err != nil {
		t.Fatal(err)
	}
	for k, v := range rec {
		if !strings.HasPrefix(k, "error_400_when_no_tpm_policy") {
			continue
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(v, &body); err != nil {
			t.Fatal(err)
		}
		if body.Error.Message != NoTpmPolicyMessage || body.Error.Code != "Bad request" {
			t.Errorf("recorded %+v, NoTpmPolicyMessage %q", body.Error, NoTpmPolicyMessage)
		}
		if _, ok := Default("Tpm"); ok {
			t.Error("Tpm has a default policy")
		}
		return
	}
	t.Fatal("recording has no error_400_when_no_tpm_policy entry")
}
