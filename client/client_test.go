package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/testing/sgxplatform"
)

const permitAll = "version=1.0; authorizationrules{=> permit();}; issuancerules{};"

// wantError checks that err is a *client.Error with status and code.
func wantError(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *client.Error %d %s", err, err, status, code)
	}
	if e.StatusCode != status || e.Code != code {
		t.Fatalf("error %d %q (%s), want %d %s", e.StatusCode, e.Code, e.Message, status, code)
	}
	return e
}

// wantReason checks that err is a *client.ValidationError with reason.
func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var ve *client.ValidationError
	if !errors.As(err, &ve) || ve.Reason != reason {
		t.Fatalf("error %v, want a token validation error %q", err, reason)
	}
}

// TestPolicyLifecycleAAD: get (default), set unsigned, set signed (RSA and
// ECDSA), reset, against the AAD instance.
func TestPolicyLifecycleAAD(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(t, "", e.Contributor, client.Validation{Issuer: e.URL})

	def, signer, err := c.GetPolicy(ctx, client.SgxEnclave)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := policy.Default("SgxEnclave"); def != want || signer != nil {
		t.Fatalf("default policy %q signer %v", def, signer)
	}

	r, err := c.SetPolicy(ctx, client.SgxEnclave, permitAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Resolution != "Updated" || r.Signer != nil || !r.Token.Verified || len(r.TokenHash) != 32 {
		t.Fatalf("unsigned set: %+v", r)
	}
	if got, signer, err := c.GetPolicy(ctx, client.SgxEnclave); err != nil || got != permitAll || signer != nil {
		t.Fatalf("after unsigned set: %q %v %v", got, signer, err)
	}

	for _, ec := range []bool{false, true} {
		k := newKey(t, "aad-signer", ec)
		text := permitAll + " // signed, ec=" + map[bool]string{false: "no", true: "yes"}[ec]
		r, err := c.SetPolicy(ctx, client.OpenEnclave, text, signerOf(t, k))
		if err != nil {
			t.Fatalf("signed set (ec=%v): %v", ec, err)
		}
		if r.Signer == nil || !r.Signer.Equal(k.Cert) {
			t.Fatalf("signed set (ec=%v): signer %v", ec, r.Signer)
		}
		got, signer, err := c.GetPolicy(ctx, client.OpenEnclave)
		if err != nil || got != text || signer == nil || !signer.Equal(k.Cert) {
			t.Fatalf("after signed set (ec=%v): %q %v %v", ec, got, signer, err)
		}
	}

	r, err = c.ResetPolicy(ctx, client.SgxEnclave, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Resolution != "Removed" {
		t.Fatalf("reset: %+v", r)
	}
	if got, _, err := c.GetPolicy(ctx, client.SgxEnclave); err != nil || got != def {
		t.Fatalf("after reset: %q %v", got, err)
	}
	// A signed reset works too.
	if _, err := c.ResetPolicy(ctx, client.OpenEnclave, signerOf(t, newKey(t, "aad-signer", true))); err != nil {
		t.Fatal(err)
	}
	// Tpm has no default policy: GET answers an empty policy.
	if got, signer, err := c.GetPolicy(ctx, client.Tpm); err != nil || got != "" || signer != nil {
		t.Fatalf("Tpm: %q %v %v", got, signer, err)
	}
}

// TestIsolatedCertificates: a base-path endpoint, signed-only policy
// changes, and certificate add/remove on the Isolated instance.
func TestIsolatedCertificates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(t, "/tenants/iso/", e.Contributor, client.Validation{Issuer: e.URL + "/tenants/iso"})
	if c.Endpoint() != e.URL+"/tenants/iso" {
		t.Fatalf("endpoint %s", c.Endpoint())
	}
	pm := signerOf(t, e.PM)

	certs, err := c.GetPolicyCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || !certs[0].Equal(e.PM.Cert) {
		t.Fatalf("certificates %v", certs)
	}

	_, err = c.SetPolicy(ctx, client.SgxEnclave, permitAll, nil)
	wantError(t, err, 400, "InvalidOperation")
	outsider := newKey(t, "outsider", true)
	_, err = c.SetPolicy(ctx, client.SgxEnclave, permitAll, signerOf(t, outsider))
	wantError(t, err, 400, "InvalidOperation")
	if r, err := c.SetPolicy(ctx, client.SgxEnclave, permitAll, pm); err != nil || !r.Signer.Equal(e.PM.Cert) {
		t.Fatalf("signed set: %+v %v", r, err)
	}

	// Add the outsider (an ECDSA certificate), which may then sign.
	r, err := c.AddPolicyCertificate(ctx, outsider.Cert, pm)
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != "IsPresent" || len(r.Thumbprint) != 40 || r.Thumbprint != strings.ToUpper(r.Thumbprint) {
		t.Fatalf("add: %+v", r)
	}
	if certs, err := c.GetPolicyCertificates(ctx); err != nil || len(certs) != 2 {
		t.Fatalf("after add: %d certificates, %v", len(certs), err)
	}
	if _, err := c.SetPolicy(ctx, client.OpenEnclave, permitAll, signerOf(t, outsider)); err != nil {
		t.Fatalf("set signed by the added certificate: %v", err)
	}
	if _, err := c.ResetPolicy(ctx, client.OpenEnclave, signerOf(t, outsider)); err != nil {
		t.Fatal(err)
	}

	// Remove it again (signed by pm); it may no longer sign.
	r, err = c.RemovePolicyCertificate(ctx, outsider.Cert, pm)
	if err != nil || r.Result != "IsAbsent" {
		t.Fatalf("remove: %+v %v", r, err)
	}
	if certs, err := c.GetPolicyCertificates(ctx); err != nil || len(certs) != 1 {
		t.Fatalf("after remove: %d certificates, %v", len(certs), err)
	}
	_, err = c.SetPolicy(ctx, client.OpenEnclave, permitAll, signerOf(t, outsider))
	wantError(t, err, 400, "InvalidOperation")
	// Certificate changes must be signed: the client refuses before sending.
	if _, err := c.AddPolicyCertificate(ctx, outsider.Cert, nil); err == nil {
		t.Fatal("unsigned add accepted")
	}
	// The last certificate cannot be removed.
	_, err = c.RemovePolicyCertificate(ctx, e.PM.Cert, pm)
	if err == nil {
		t.Fatal("removing the last certificate succeeded")
	}
}

// TestAttestSGX: quotes and OE reports of a test SGX platform, verified by
// attestd's real SGX verifier, and their typed claims.
func TestAttestSGX(t *testing.T) {
	e := sharedEnv(t)
	ctx := context.Background()
	c := e.client(t, "", "", client.Validation{Issuer: e.URL})
	runtime := []byte("runtime data: a public key, say")

	r, err := c.AttestSgxEnclave(ctx, e.quote(t, false, runtime, true), &client.AttestOptions{RuntimeData: runtime, Nonce: "n-123"})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := policy.Default("SgxEnclave")
	h := sha256.Sum256([]byte(runtime))
	ph := policy.Hash(def)
	switch {
	case r.Unsigned || !r.Token.Verified || r.Token.Signer == nil:
		t.Fatalf("signed result expected: %+v", r.Token)
	case r.MREnclave != strings.Repeat("a1", 32) || r.MRSigner != strings.Repeat("b2", 32):
		t.Fatalf("mr: %s %s", r.MREnclave, r.MRSigner)
	case r.ProductID != 7 || r.SVN != 3 || !r.IsDebuggable:
		t.Fatalf("identity: %d %d %v", r.ProductID, r.SVN, r.IsDebuggable)
	case !bytes.Equal(r.EnclaveHeldData, runtime) || !strings.HasPrefix(r.ReportData, hex.EncodeToString(h[:])):
		t.Fatalf("runtime binding: %q %s", r.EnclaveHeldData, r.ReportData)
	case r.AttestationType != "sgx" || r.Nonce != "n-123" || r.Issuer != e.URL || r.TCBStatus != "UpToDate":
		t.Fatalf("claims: type %q nonce %q iss %q tcb %q", r.AttestationType, r.Nonce, r.Issuer, r.TCBStatus)
	case hashB64(r.PolicyHash) != ph || r.PolicyClaims["product-id"] == nil || len(r.Collateral) == 0:
		t.Fatalf("policy: %x %v", r.PolicyHash, r.PolicyClaims)
	case r.Expires.Sub(r.IssuedAt).Hours() != 8:
		t.Fatalf("lifetime %v", r.Expires.Sub(r.IssuedAt))
	}

	// OpenEnclave with JSON runtime data: its members land in x-ms-runtime.
	js := []byte(`{"jwk":{"kty":"EC","crv":"P-256"},"n":1}`)
	r, err = c.AttestOpenEnclave(ctx, e.quote(t, true, js, false), &client.AttestOptions{RuntimeJSON: js})
	if err != nil {
		t.Fatal(err)
	}
	if r.IsDebuggable || r.RuntimeClaims["jwk"] == nil || r.EnclaveHeldData != nil {
		t.Fatalf("OE: debug %v runtime %v ehd %q", r.IsDebuggable, r.RuntimeClaims, r.EnclaveHeldData)
	}

	// A KSS enclave whose CONFIGID binds JSON init-time data.
	it := []byte(`{"config":"x"}`)
	o := sgxplatform.QuoteOptions{ProductID: 1, ISVFamilyID: [16]byte{9}}
	o.BindInitTime(it)
	kss, err := e.Platform.Quote(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err = c.AttestSgxEnclave(ctx, kss, &client.AttestOptions{InitTimeJSON: it})
	if err != nil {
		t.Fatal(err)
	}
	if r.InitTimeClaims["config"] != "x" || r.Claims["x-ms-sgx-config-id"] == nil {
		t.Fatalf("KSS: inittime %v claims %v", r.InitTimeClaims, r.Claims)
	}
	_, err = c.AttestSgxEnclave(ctx, kss, &client.AttestOptions{InitTimeData: []byte("other")})
	wantError(t, err, 400, "InvalidParameter")

	// A draft policy gives an unsigned result, which is reported as such.
	draft := `version=1.0; authorizationrules{=> permit();}; issuancerules{ c:[type=="x-ms-sgx-mrsigner"] => issue(type="custom-name", value=c.value); };`
	r, err = c.AttestSgxEnclave(ctx, e.quote(t, false, runtime, true), &client.AttestOptions{RuntimeData: runtime, DraftPolicy: draft})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Unsigned || r.Token.Signed || r.Token.Signer != nil || r.PolicyClaims["custom-name"] != strings.Repeat("b2", 32) ||
		hashB64(r.PolicyHash) != policy.Hash(draft) {
		t.Fatalf("draft: unsigned %v claims %v", r.Unsigned, r.PolicyClaims)
	}

	// A denying draft policy, unbound runtime data and a flipped bit are
	// the service's errors.
	deny := `version=1.0; authorizationrules{[type=="x-ms-sgx-is-debuggable", value==true] => deny(); => permit();};`
	_, err = c.AttestSgxEnclave(ctx, e.quote(t, false, runtime, true), &client.AttestOptions{RuntimeData: runtime, DraftPolicy: deny})
	wantError(t, err, 400, "PolicyEvaluationError")
	_, err = c.AttestSgxEnclave(ctx, e.quote(t, false, runtime, true), &client.AttestOptions{RuntimeData: []byte("other")})
	wantError(t, err, 400, "InvalidParameter")
	q := e.quote(t, false, runtime, true)
	q[48+64] ^= 1
	er := wantError(t, err2(c.AttestSgxEnclave(ctx, q, nil)), 400, "InvalidParameter")
	if er.RequestID == "" || !strings.Contains(er.Error(), "InvalidParameter") {
		t.Fatalf("error %v", er)
	}
	// The client refuses inconsistent options before sending.
	if _, err := c.AttestSgxEnclave(ctx, q, &client.AttestOptions{RuntimeData: []byte{1}, RuntimeJSON: []byte("{}")}); err == nil {
		t.Fatal("both runtime data kinds accepted")
	}
	if _, err := c.AttestSgxEnclave(ctx, q, &client.AttestOptions{InitTimeJSON: []byte("{")}); err == nil {
		t.Fatal("invalid init-time JSON accepted")
	}
}

func err2[T any](_ T, err error) error { return err }

func hashB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestErrorMapping: MAA error envelopes become *client.Error.
func TestErrorMapping(t *testing.T) {
	e := sharedEnv(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		status int
		code   string
	}{
		{"no credential", func() error {
			_, _, err := e.client(t, "", "", client.Validation{}).GetPolicy(ctx, client.SgxEnclave)
			return err
		}, 401, "Unauthorized"},
		{"reader may not set", func() error {
			_, err := e.client(t, "", e.Reader, client.Validation{}).SetPolicy(ctx, client.Tpm, permitAll, nil)
			return err
		}, 401, "Unauthorized"},
		{"policy syntax", func() error {
			_, err := e.client(t, "", e.Contributor, client.Validation{}).SetPolicy(ctx, client.Tpm, "version=1.0; authorizationrules{=> permit()};", nil)
			return err
		}, 400, "PolicyParsingError"},
		{"unknown instance path", func() error {
			_, _, err := e.client(t, "/tenants/nope", e.Reader, client.Validation{}).GetPolicy(ctx, client.SgxEnclave)
			return err
		}, 404, "NotFound"},
		{"not a quote", func() error {
			_, err := e.client(t, "", "", client.Validation{}).AttestSgxEnclave(ctx, []byte("not a quote"), nil)
			return err
		}, 400, "InvalidParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := wantError(t, tc.call(), tc.status, tc.code)
			if e.Message == "" {
				t.Fatal("no message")
			}
		})
	}
	// A reader may read.
	if _, _, err := e.client(t, "", e.Reader, client.Validation{}).GetPolicy(ctx, client.SgxEnclave); err != nil {
		t.Fatal(err)
	}
}

// TestSigningCertificatesAndMetadata: /certs and OpenID metadata of
// attestd, and the issuer check against the real issuer.
func TestSigningCertificatesAndMetadata(t *testing.T) {
	e := sharedEnv(t)
	ctx := context.Background()
	c := e.client(t, "/tenants/iso", "", client.Validation{})
	jwks, err := c.GetSigningCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) == 0 || jwks.Keys[0].KID == "" || len(jwks.Keys[0].Certificates) == 0 {
		t.Fatalf("JWKS %+v", jwks)
	}
	md, err := c.GetOpenIDMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != e.URL+"/tenants/iso" || md.JWKSURI != md.Issuer+"/certs" || md.Raw["issuer"] != md.Issuer {
		t.Fatalf("metadata %+v", md)
	}
	// Issuer check: the right issuer passes, another instance's fails.
	good := e.client(t, "/tenants/iso", e.Reader, client.Validation{Issuer: e.URL + "/tenants/iso"})
	if _, err := good.GetPolicyCertificates(ctx); err != nil {
		t.Fatal(err)
	}
	bad := e.client(t, "/tenants/iso", e.Reader, client.Validation{Issuer: e.URL})
	_, err = bad.GetPolicyCertificates(ctx)
	wantReason(t, err, client.ReasonIssuer)
}

// TestAttestSGXES256: an instance with token_algorithm ES256 issues
// attestation tokens signed ES256 with a P-256 key published in /certs
// (as an x5c JWK beside its RSA management key) and named in the OpenID
// metadata; the SDK validates them like RS256 ones, and refuses one whose
// signature was altered.
func TestAttestSGXES256(t *testing.T) {
	e := sharedEnv(t)
	ctx := context.Background()
	iss := e.URL + attestdtest.ES256Prefix
	c := e.client(t, attestdtest.ES256Prefix, "", client.Validation{Issuer: iss})
	runtime := []byte("runtime data for an ES256 token")
	r, err := c.AttestSgxEnclave(ctx, e.quote(t, false, runtime, true), &client.AttestOptions{RuntimeData: runtime})
	if err != nil {
		t.Fatal(err)
	}
	if r.Unsigned || !r.Token.Verified || r.Token.Header.Alg != "ES256" || r.Issuer != iss || r.MREnclave != strings.Repeat("a1", 32) {
		t.Fatalf("token: alg %q verified %v issuer %q", r.Token.Header.Alg, r.Token.Verified, r.Issuer)
	}
	if _, ok := r.Token.Signer.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("signer key %T, want ECDSA", r.Token.Signer.PublicKey)
	}
	jwks, err := c.GetSigningCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range jwks.Keys {
		kinds[fmt.Sprintf("%T", k.Certificates[0].PublicKey)] = true
	}
	if !kinds["*rsa.PublicKey"] || !kinds["*ecdsa.PublicKey"] {
		t.Fatalf("/certs keys %v, want the RSA management and the EC attestation key", kinds)
	}
	md, err := c.GetOpenIDMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(md.IDTokenSigningAlgValuesSupported); got != "[RS256 ES256]" {
		t.Fatalf("id_token_signing_alg_values_supported %s", got)
	}
	// A tampered ES256 signature is refused.
	parts := strings.Split(r.Token.Raw, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[3] ^= 1
	// A relying party's client/verifier accepts the token and refuses it
	// with its signature altered.
	rp, err := verifier.New(verifier.Options{Issuer: iss, HTTPClient: e.HTTPClient(), Now: time.Now, AttestationTypes: []string{verifier.TypeSGX}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Verify(ctx, r.Token.Raw); err != nil {
		t.Fatalf("client/verifier refused the ES256 token: %v", err)
	}
	var ve *verifier.ValidationError
	if _, err := rp.Verify(ctx, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig)); !errors.As(err, &ve) || ve.Reason != verifier.ReasonSignature {
		t.Fatalf("tampered ES256 token: %v", err)
	}
	// The RS256 instances are unchanged.
	md, err = e.client(t, "", "", client.Validation{}).GetOpenIDMetadata(ctx)
	if err != nil || fmt.Sprint(md.IDTokenSigningAlgValuesSupported) != "[RS256]" {
		t.Fatalf("default instance metadata %v %v", md, err)
	}
}
