package verifier_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/internal/testenv"
)

const (
	realJWKS       = "samples/azure-samples/sgx.attest.sample.oe.sdk_validatequotes.net_samples_get.certs.response.body.json"
	realSNPToken   = "samples/azure-samples/maa.jwt.verifier.dotnet_sev-snp-jwt.txt"
	realPolicyTok  = "samples/sdk-js/get_policy_sgx_response_token.jwt"
	realSGXPayload = "samples/sdk-js/sgx_token_payload.b64url"
	docsTDXPayload = "samples/docs/tdxvm_token_payload.json"
)

// TestRealMAAOffline verifies real MAA tokens offline against a real MAA
// /certs. The recorded JWKS is of another instance than any recorded
// signed token, so each is refused — for the right reason at its own
// time, and for its issuer when the verifier expects another instance.
func TestRealMAAOffline(t *testing.T) {
	ctx := context.Background()
	jwks, err := verifier.ParseJWKS(testenv.ReadShared(t, realJWKS))
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 5 || jwks.Lookup("KQFAHrk1xALKHBD4b4u7TCvCJ1Mw0MlYZe+rxdePOtg=") == nil {
		t.Fatalf("real JWKS: %d keys", len(jwks.Keys))
	}
	offline := func(context.Context) (*verifier.JWKS, error) { return jwks, nil }
	for _, tc := range []struct {
		file, issuer, reason string
	}{
		{realSNPToken, "https://sharedweu.weu.test.attest.azure.net", verifier.ReasonUnknownKey},
		{realSNPToken, "https://gnkuks001.uks.attest.azure.net", verifier.ReasonIssuer},
		{realPolicyTok, "https://sharedwus.wus.attest.azure.net", verifier.ReasonUnknownKey},
	} {
		raw := strings.TrimSpace(string(testenv.ReadShared(t, tc.file)))
		tok, err := verifier.ParseToken(raw)
		if err != nil {
			t.Fatal(err)
		}
		at := tok.IssuedAt.Add(time.Minute)
		v, err := verifier.New(verifier.Options{Issuer: tc.issuer, Keys: offline, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(ctx, raw)
		wantReason(t, err, tc.reason)
	}
}

// TestRealClaims reads the typed claims of real MAA payloads: SGX,
// SEV-SNP and the documentation's TDX token.
func TestRealClaims(t *testing.T) {
	parse := func(payload string) *verifier.Result {
		t.Helper()
		tok, err := verifier.ParseToken("eyJhbGciOiJub25lIn0." + payload + ".")
		if err != nil {
			t.Fatal(err)
		}
		r, err := verifier.NewResult(tok)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sgx := parse(strings.TrimSpace(string(testenv.ReadShared(t, realSGXPayload))))
	if sgx.MREnclave != "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2" || sgx.ProductID != 1 || sgx.SVN != 1 ||
		sgx.IsDebuggable || len(sgx.EnclaveHeldData) == 0 || sgx.SevSnp != nil || sgx.Tdx != nil || sgx.Tpm != nil {
		t.Fatalf("SGX %+v", sgx)
	}

	snpTok := strings.Split(strings.TrimSpace(string(testenv.ReadShared(t, realSNPToken))), ".")[1]
	snp := parse(snpTok)
	s := snp.SevSnp
	if snp.AttestationType != verifier.TypeSevSnpVM || s == nil || s.MicrocodeSVN != 115 || s.SNPFwSVN != 8 || s.BootloaderSVN != 3 ||
		s.GuestSVN != 2 || s.IsDebuggable || !s.SMTAllowed || s.MigrationAllowed || s.VMPL != 0 ||
		s.LaunchMeasurement != "02c3b0d5bf1d256fa4e3b5deefc07b55ff2f7029085ed350f60959140a1a51f1310753ba5ab2c03a0536b1c0c193af47" ||
		s.HostData != "73973b78d70cc68353426de188db5dfc57e5b766e399935fb73a61127ea26d20" || len(s.IDKeyDigest) != 96 ||
		s.FamilyID != "01000000000000000000000000000000" || s.ImageID != "02000000000000000000000000000000" || len(s.ReportData) != 128 {
		t.Fatalf("SEV-SNP %+v", s)
	}

	var payload map[string]any
	if err := json.Unmarshal(testenv.ReadShared(t, docsTDXPayload), &payload); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(payload)
	tdx := parse(b64u.EncodeToString(b))
	x := tdx.Tdx
	if tdx.AttestationType != verifier.TypeTdxVM || tdx.ComplianceStatus != "azure-compliant-cvm" || x == nil ||
		x.TCBStatus != "UpToDate" || x.DbgStat != "disabled" || x.EATProfile != "https://aka.ms/maa-eat-profile-tdxvm" || x.SeamSVN != 3 ||
		x.MRTD != "5be56d418d33661a6c21da77c9503a07e430b35eb92a0bd042a6b3c4e79b3c82bb1c594e770d0d129a0724669f1e953f" ||
		len(x.RTMR[3]) != 96 || x.Debug || x.XFAM != "e718060000000000" || x.TeeTCBSVN != "03000600000000000000000000000000" ||
		tdx.RuntimeClaims["test-claim-name"] != "test-claim-value" || tdx.SevSnp != nil {
		t.Fatalf("TDX %+v", x)
	}
	if v, ok := tdx.Bool("tdx_td_attributes_perfmon"); !ok || v {
		t.Fatalf("Bool(tdx_td_attributes_perfmon) = %v, %v", v, ok)
	}
	if _, ok := tdx.Int("absent"); ok {
		t.Fatal("Int of an absent claim is ok")
	}
}

// TestTPMClaims: a TPM report's cnf and issued claims, and cnf without jwk.
func TestTPMClaims(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"x-ms-attestation-type":"tpm","cnf":{"jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}},"rp_data":"cnA","aikValidated":true,"secureBootEnabled":true,"tpmVersion":2}`, true},
		{`{"cnf":{"kid":"x"}}`, false},
		{`{"x-ms-attestation-type":"tpm","aikValidated":"yes"}`, false},
	} {
		tok, err := verifier.ParseToken("eyJhbGciOiJub25lIn0." + b64u.EncodeToString([]byte(tc.body)) + ".")
		if err != nil {
			t.Fatal(err)
		}
		r, err := verifier.NewResult(tok)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if tc.ok && (r.Tpm == nil || r.Tpm.ConfirmationJWK["kty"] != "RSA" || !r.Tpm.AIKValidated || !r.Tpm.SecureBootEnabled ||
			r.Tpm.TPMVersion != 2 || r.Tpm.RPData != "cnA") {
			t.Fatalf("TPM %+v", r.Tpm)
		}
	}
}
