package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/testenv"
)

const (
	realJWKS          = "samples/azure-samples/sgx.attest.sample.oe.sdk_validatequotes.net_samples_get.certs.response.body.json"
	realResponseJWT   = "samples/azure-samples/sgx.attest.sample.oe.sdk_validatequotes.net_samples_post.attest.response.jwt.body.json"
	realPolicyToken   = "samples/sdk-js/get_policy_sgx_response_token.jwt"
	realDefaultPolicy = "samples/sdk-js/default_sgx_policy.txt"
	realSGXPayload    = "samples/sdk-js/sgx_token_payload.b64url"
	realSNPToken      = "samples/azure-samples/maa.jwt.verifier.dotnet_sev-snp-jwt.txt"
)

// TestRealMAAJWKS parses a real MAA /certs (keys with only kid, kty, x5c,
// which go-jose refuses) and matches the kid of the real token the same
// instance issued: its key's certificate names that instance.
func TestRealMAAJWKS(t *testing.T) {
	jwks, err := client.ParseJWKS(testenv.ReadShared(t, realJWKS))
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 5 {
		t.Fatalf("%d keys", len(jwks.Keys))
	}
	for _, k := range jwks.Keys[1:] {
		if len(k.Certificates) != 3 {
			t.Errorf("key %s: %d certificates, want a chain of 3", k.KID, len(k.Certificates))
		}
	}
	// The recorded response is "header\n\nbody" as decoded JSON.
	dec := json.NewDecoder(bytes.NewReader(testenv.ReadShared(t, realResponseJWT)))
	var hdr client.Header
	var body struct {
		Iss string `json:"iss"`
	}
	if err := dec.Decode(&hdr); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	var signer *client.SigningKey
	for i := range jwks.Keys {
		if jwks.Keys[i].KID == hdr.Kid {
			signer = &jwks.Keys[i]
		}
	}
	if signer == nil {
		t.Fatalf("kid %s of the real token is not in the real JWKS", hdr.Kid)
	}
	if cn := signer.Certificates[0].Subject.CommonName; cn != body.Iss || hdr.Jku != body.Iss+"/certs" {
		t.Fatalf("signing certificate %q, issuer %q, jku %q", cn, body.Iss, hdr.Jku)
	}
}

// serveRecorded answers /certs with the real JWKS and everything else
// with a recorded token.
func serveRecorded(t *testing.T, tok string, jwks []byte) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.URL.Path == "/certs" {
			w.Write(jwks)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"token": tok})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRealMAAPolicyToken replays a real GET /policies/SgxEnclave answer:
// the client reads the default policy out of its x-ms-policy JWS; with
// validation it refuses the token, whose kid (sharedwus) is not in the
// recorded JWKS (gnkuks001) — even with the times check off.
func TestRealMAAPolicyToken(t *testing.T) {
	tok := strings.TrimSpace(string(testenv.ReadShared(t, realPolicyToken)))
	parsed, err := client.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header.Alg != "RS256" || parsed.Header.Kid == "" || parsed.Issuer != "https://sharedwus.wus.attest.azure.net" ||
		parsed.Expires.Sub(parsed.IssuedAt) != time.Hour {
		t.Fatalf("parsed %+v", parsed)
	}
	srv := serveRecorded(t, tok, testenv.ReadShared(t, realJWKS))
	ctx := context.Background()
	c, _ := client.New(srv.URL, &client.Options{HTTPClient: srv.Client(), Validation: client.Validation{SkipValidation: true}})
	text, signer, err := c.GetPolicy(ctx, client.SgxEnclave)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(testenv.ReadShared(t, realDefaultPolicy)); text != want || signer != nil {
		t.Fatalf("policy %q, want %q", text, want)
	}
	c, _ = client.New(srv.URL, &client.Options{HTTPClient: srv.Client(), Validation: client.Validation{SkipTimeValidation: true}})
	_, _, err = c.GetPolicy(ctx, client.SgxEnclave)
	wantReason(t, err, client.ReasonUnknownKey)
	// With the times checked, the same token is refused as well (it
	// expired in 2022); which check fires first does not matter.
	c, _ = client.New(srv.URL, &client.Options{HTTPClient: srv.Client()})
	if _, _, err := c.GetPolicy(ctx, client.SgxEnclave); err == nil {
		t.Fatal("a 2022 token from another instance was accepted")
	}
}

// TestRealMAAAttestationClaims reads the typed claims of real MAA tokens:
// an SGX attestation payload and a SEV-SNP token.
func TestRealMAAAttestationClaims(t *testing.T) {
	payload := strings.TrimSpace(string(testenv.ReadShared(t, realSGXPayload)))
	tok, err := client.ParseToken("eyJhbGciOiJub25lIn0." + payload + ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.NewAttestationResult(tok)
	if err != nil {
		t.Fatal(err)
	}
	if r.MREnclave != "b779202618becb636768e5d902f28d524222735fafb539ea9ba07c3fc171a1c2" || r.ProductID != 1 || r.SVN != 1 ||
		r.IsDebuggable || r.AttestationType != "sgx" || len(r.PolicyHash) != 32 || r.PolicyClaims["tee"] != "sgx" ||
		len(r.EnclaveHeldData) == 0 || len(r.Collateral) != 7 || r.Version != "1.0" {
		t.Fatalf("SGX result %+v", r)
	}

	snp := strings.TrimSpace(string(testenv.ReadShared(t, realSNPToken)))
	tok, err = client.ParseToken(snp)
	if err != nil {
		t.Fatal(err)
	}
	r, err = client.NewAttestationResult(tok)
	if err != nil {
		t.Fatal(err)
	}
	if r.AttestationType != "sevsnpvm" || r.Claims["x-ms-sevsnpvm-microcode-svn"] != json.Number("115") || r.JTI == "" ||
		r.MREnclave != "" || len(r.PolicyHash) != 32 || r.Expires.Sub(r.IssuedAt) != 8*time.Hour {
		t.Fatalf("SEV-SNP result %+v", r)
	}
}
