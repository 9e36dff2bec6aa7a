package instance

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
)

const permitAll = "version=1.0; authorizationrules{=> permit();}; issuancerules{};"

func TestParseJWS(t *testing.T) {
	rsaS := newSigner(t, "rsa signer", false)
	ecS := newSigner(t, "ec signer", true)
	other := newSigner(t, "other", false)
	payload := policyPayloadFor(permitAll)
	good := rsaS.joseSign(t, payload)
	parts := strings.Split(good, ".")

	tests := []struct {
		name    string
		jws     string
		alg     string // "" = want error
		wantErr string
	}{
		{"unsigned", unsignedJWS(payload), "none", ""},
		{"unsigned empty payload", "eyJhbGciOiJub25lIn0..", "none", ""},
		{"js RS256 x5c", good, "RS256", ""},
		{"js ES256 x5c", ecS.joseSign(t, payload), "ES256", ""},
		{"dotnet RSA256 x5c", rsaS.rawSign(t, `{"alg":"RSA256","x5c":["`+rsaS.x5c()+`"]}`, payload), "RS256", ""},
		{"python RSA256 jwk.x5c", rsaS.rawSign(t, `{"alg": "RSA256", "jwk": {"x5c": ["`+rsaS.x5c()+`"]}}`, payload), "RS256", ""},
		{"signed reset (empty payload)", rsaS.rawSign(t, `{"alg":"RS256","x5c":["`+rsaS.x5c()+`"]}`, nil), "RS256", ""},
		{"padded base64url parts", parts[0] + "." + parts[1] + "=." + parts[2], "", "signature does not verify"},
		{"wrong signer: header cert is not the signing key", rsaS.rawSign(t, `{"alg":"RS256","x5c":["`+other.x5c()+`"]}`, payload), "", "signature does not verify"},
		{"tampered payload", parts[0] + "." + b64u.EncodeToString(policyPayloadFor("version=1.0; authorizationrules{=> deny();};")) + "." + parts[2], "", "signature does not verify"},
		{"two parts", parts[0] + "." + parts[1], "", "3 dot-separated parts"},
		{"four parts", good + ".x", "", "3 dot-separated parts"},
		{"header not base64", "e@J." + parts[1] + "." + parts[2], "", "header"},
		{"header not JSON", b64u.EncodeToString([]byte("{alg")) + "." + parts[1] + "." + parts[2], "", "header JSON"},
		{"none with signature", "eyJhbGciOiJub25lIn0." + parts[1] + "." + parts[2], "", "empty signature"},
		{"HS256 refused", rsaS.rawSign(t, `{"alg":"HS256","x5c":["`+rsaS.x5c()+`"]}`, payload), "", "unsupported JWS alg"},
		{"signed without certificate", rsaS.rawSign(t, `{"alg":"RS256"}`, payload), "", "no signing certificate"},
		{"x5c not a certificate", rsaS.rawSign(t, `{"alg":"RS256","x5c":["AAAA"]}`, payload), "", "x5c[0]"},
		{"RSA alg with EC key", ecS.rawSign(t, `{"alg":"RS256","x5c":["`+ecS.x5c()+`"]}`, payload), "", "needs RSA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := parseJWS(tc.jws)
			if tc.alg == "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.Alg != tc.alg {
				t.Fatalf("alg %s, want %s", j.Alg, tc.alg)
			}
			if j.Signed() != (tc.alg != "none") {
				t.Fatal("Signed() wrong")
			}
		})
	}
}

func TestPolicySetGetAAD(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	s := newSigner(t, "aad signer", false)
	text := "version=1.0;\r\nauthorizationrules{=> permit();};\r\nissuancerules{};"
	pythonUnsigned := "eyJhbGciOiJub25lIn0." + b64u.EncodeToString([]byte(`{"AttestationPolicy": "`+b64u.EncodeToString([]byte(text))+`"}`)) + "."
	tests := []struct {
		name   string
		body   string
		signed bool
	}{
		{"js unsigned", unsignedJWS(policyPayloadFor(text)), false},
		{"python unsigned (spaced JSON)", pythonUnsigned, false},
		{"raw text", text, false},
		{"js signed RS256 x5c", s.joseSign(t, policyPayloadFor(text)), true},
		{"python signed RSA256 jwk", s.rawSign(t, `{"alg": "RSA256", "jwk": {"x5c": ["`+s.x5c()+`"]}}`, policyPayloadFor(text)), true},
		{"dotnet signed RSA256 x5c", s.rawSign(t, `{"alg":"RSA256","x5c":["`+s.x5c()+`"]}`, policyPayloadFor(text)), true},
		{"JSON-quoted signed JWS", jsonString(s.joseSign(t, policyPayloadFor(text))), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := e.in.SetPolicy(ctx, "SgxEnclave", tc.body, Actor{Subject: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			c := e.claims(t, tok)
			h := sha256.Sum256([]byte(tc.body))
			if c["x-ms-policy-result"] != "Updated" || c["x-ms-policy-token-hash"] != b64u.EncodeToString(h[:]) {
				t.Fatalf("result claims %v", c)
			}
			if c["exp"].(float64)-c["iat"].(float64) != 3600 || c["nbf"] != c["iat"] || c["iss"] != "https://attestd.test/tenants/t" {
				t.Fatalf("times/iss %v", c)
			}
			if _, ok := c["jti"]; ok {
				t.Fatal("policy result tokens carry no jti")
			}
			signer, hasSigner := c["x-ms-policy-signer"].(map[string]any)
			if hasSigner != tc.signed {
				t.Fatalf("x-ms-policy-signer present=%v, want %v", hasSigner, tc.signed)
			}
			if tc.signed && signer["x5c"].([]any)[0] != s.x5c() {
				t.Fatal("signer x5c is not the signing certificate")
			}
			g := e.claims(t, must(e.in.GetPolicy(ctx, "SgxEnclave")))
			pol := g["x-ms-policy"].(string)
			if looksLikeJWS(unquoteJWS(tc.body)) && pol != unquoteJWS(tc.body) {
				t.Fatalf("GET x-ms-policy is not the exact JWS that was set:\n%s\n%s", pol, tc.body)
			}
			j, err := parseJWS(pol)
			if err != nil {
				t.Fatal(err)
			}
			var p policyPayload
			if err := json.Unmarshal(j.Payload, &p); err != nil {
				t.Fatal(err)
			}
			got, _ := b64u.DecodeString(*p.AttestationPolicy)
			if string(got) != text {
				t.Fatalf("GET returned %q, want %q", got, text)
			}
		})
	}
	audit, err := e.db.Audit(ctx, "t", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != len(tests) || audit[0].Action != "policy.set" || audit[0].Actor != "alice" || audit[0].Hash == "" {
		t.Fatalf("audit %+v", audit)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func TestPolicyDefaultsAndReset(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	def, _ := policy.Default("SgxEnclave")
	want := unsignedPolicyJWS(def)
	if got := e.claims(t, must(e.in.GetPolicy(ctx, "SgxEnclave")))["x-ms-policy"]; got != want {
		t.Fatalf("default GET %v, want %v", got, want)
	}
	if got := e.claims(t, must(e.in.GetPolicy(ctx, "Tpm")))["x-ms-policy"]; got != NoPolicyJWS {
		t.Fatalf("Tpm default GET %v", got)
	}
	for _, typ := range []string{"SgxEnclave", "Tpm"} {
		if _, err := e.in.SetPolicy(ctx, typ, unsignedJWS(policyPayloadFor(permitAll)), Actor{}); err != nil {
			t.Fatal(err)
		}
	}
	s := newSigner(t, "resetter", false)
	resets := []struct {
		typ, body string
		signed    bool
	}{
		{"SgxEnclave", s.joseSign(t, nil), true},
		{"Tpm", "eyJhbGciOiJub25lIn0..", false},
	}
	for _, r := range resets {
		c := e.claims(t, must(e.in.ResetPolicy(ctx, r.typ, r.body, Actor{})))
		h := sha256.Sum256([]byte(r.body))
		if c["x-ms-policy-result"] != "Removed" || c["x-ms-policy-token-hash"] != b64u.EncodeToString(h[:]) {
			t.Fatalf("%s reset claims %v", r.typ, c)
		}
		if _, ok := c["x-ms-policy-signer"]; ok != r.signed {
			t.Fatalf("%s reset signer present=%v", r.typ, ok)
		}
	}
	if got := e.claims(t, must(e.in.GetPolicy(ctx, "SgxEnclave")))["x-ms-policy"]; got != want {
		t.Fatal("reset did not restore the default")
	}
	if got := e.claims(t, must(e.in.GetPolicy(ctx, "Tpm")))["x-ms-policy"]; got != NoPolicyJWS {
		t.Fatal("Tpm reset did not return to no policy")
	}
	// An empty reset body counts as an unsigned reset (curl convenience).
	if _, err := e.in.ResetPolicy(ctx, "OpenEnclave", "", Actor{}); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyErrors(t *testing.T) {
	ctx := context.Background()
	pm := newSigner(t, "pm", false)
	stranger := newSigner(t, "stranger", false)
	aad := newEnv(t, ModeAAD)
	iso := newEnv(t, ModeIsolated, pm.cert)
	shared := newEnv(t, ModeShared)
	good := policyPayloadFor(permitAll)
	tests := []struct {
		name string
		e    *env
		typ  string
		body string
		code string
	}{
		{"bad policy text", aad, "SgxEnclave", unsignedJWS(policyPayloadFor("version=1.0; authorizationrules{=> permit()};")), CodePolicyParsingError},
		{"bad raw text", aad, "SgxEnclave", "version=1.0 authorizationrules{=> permit();};", CodePolicyParsingError},
		{"empty policy", aad, "SgxEnclave", unsignedJWS(policyPayloadFor("")), CodePolicyParsingError},
		{"unknown type", aad, "Sgx", unsignedJWS(good), CodeInvalidParameter},
		{"malformed JWS", aad, "SgxEnclave", "eyJhbGciOiJub25lIn0.e30", CodeInvalidOperation},
		{"payload without AttestationPolicy", aad, "SgxEnclave", unsignedJWS([]byte(`{"policy":"x"}`)), CodeInvalidOperation},
		{"bad signature", aad, "SgxEnclave", stranger.rawSign(t, `{"alg":"RS256","x5c":["`+pm.x5c()+`"]}`, good), CodeInvalidOperation},
		{"isolated: unsigned", iso, "SgxEnclave", unsignedJWS(good), CodeInvalidOperation},
		{"isolated: raw text", iso, "SgxEnclave", permitAll, CodeInvalidOperation},
		{"isolated: unknown signer", iso, "SgxEnclave", stranger.joseSign(t, good), CodeInvalidOperation},
		{"isolated: wrong signer for header cert", iso, "SgxEnclave", stranger.rawSign(t, `{"alg":"RS256","x5c":["`+pm.x5c()+`"]}`, good), CodeInvalidOperation},
		{"isolated: bad policy signed right", iso, "SgxEnclave", pm.joseSign(t, policyPayloadFor("version=9.9;")), CodePolicyParsingError},
		{"shared: any set", shared, "SgxEnclave", unsignedJWS(good), CodeInvalidOperation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.e.in.SetPolicy(ctx, tc.typ, tc.body, Actor{})
			wantCode(t, err, tc.code)
		})
	}
	wantCode(t, func() error {
		_, err := iso.in.ResetPolicy(ctx, "SgxEnclave", "eyJhbGciOiJub25lIn0..", Actor{})
		return err
	}(), CodeInvalidOperation)
	wantCode(t, func() error { _, err := shared.in.ResetPolicy(ctx, "SgxEnclave", "", Actor{}); return err }(), CodeInvalidOperation)
	wantCode(t, func() error { _, err := aad.in.ResetPolicy(ctx, "SgxEnclave", "reset please", Actor{}); return err }(), CodeInvalidOperation)
	// Parse errors carry the line and column.
	_, err := aad.in.SetPolicy(ctx, "SgxEnclave", "version=1.0;\nauthorizationrules{=> permit()};", Actor{})
	if !strings.Contains(err.Error(), "Line") && !strings.Contains(err.Error(), "line") {
		t.Fatalf("parse error without a line: %v", err)
	}
	// Isolated: a correctly signed policy is accepted; shared GET is the default.
	if _, err := iso.in.SetPolicy(ctx, "SgxEnclave", pm.joseSign(t, good), Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, err := iso.in.ResetPolicy(ctx, "SgxEnclave", pm.joseSign(t, nil), Actor{}); err != nil {
		t.Fatal(err)
	}
	def, _ := policy.Default("SgxEnclave")
	if got := shared.claims(t, must(shared.in.GetPolicy(ctx, "SgxEnclave")))["x-ms-policy"]; got != unsignedPolicyJWS(def) {
		t.Fatal("shared GET is not the default")
	}
}

func TestCertificates(t *testing.T) {
	ctx := context.Background()
	pm1 := newSigner(t, "pm1", false)
	pm2 := newSigner(t, "pm2", true)
	stranger := newSigner(t, "stranger", false)
	e := newEnv(t, ModeIsolated, pm1.cert)

	list := func() []any {
		c := e.claims(t, must(e.in.Certificates(ctx)))
		return c["x-ms-policy-certificates"].(map[string]any)["keys"].([]any)
	}
	if k := list(); len(k) != 1 || k[0].(map[string]any)["x5c"].([]any)[0] != pm1.x5c() || k[0].(map[string]any)["kty"] != "RSA" {
		t.Fatalf("seeded list %v", k)
	}
	add := jsonString(pm1.joseSign(t, certPayloadFor(pm2.cert)))
	for i := 0; i < 2; i++ { // idempotent
		c := e.claims(t, must(e.in.AddCertificate(ctx, add, Actor{Subject: "bob"})))
		if c["x-ms-certificate-thumbprint"] != Thumbprint(pm2.cert) || c["x-ms-policycertificates-result"] != "IsPresent" {
			t.Fatalf("add result %v", c)
		}
	}
	if tp := Thumbprint(pm2.cert); tp != strings.ToUpper(tp) || len(tp) != 40 {
		t.Fatalf("thumbprint %q", tp)
	}
	if k := list(); len(k) != 2 || k[1].(map[string]any)["kty"] != "EC" {
		t.Fatalf("after add %v", k)
	}
	// The new (EC) certificate can now sign policies and certificate changes.
	if _, err := e.in.SetPolicy(ctx, "SgxEnclave", pm2.joseSign(t, policyPayloadFor(permitAll)), Actor{}); err != nil {
		t.Fatal(err)
	}
	// Python form: header jwk.x5c, alg RSA256, JSON-string body.
	rm := jsonString(pm1.rawSign(t, `{"alg": "RSA256", "jwk": {"x5c": ["`+pm1.x5c()+`"]}}`, certPayloadFor(pm2.cert)))
	for i := 0; i < 2; i++ {
		c := e.claims(t, must(e.in.RemoveCertificate(ctx, rm, Actor{})))
		if c["x-ms-certificate-thumbprint"] != Thumbprint(pm2.cert) || c["x-ms-policycertificates-result"] != "IsAbsent" {
			t.Fatalf("remove result %v", c)
		}
	}
	if len(list()) != 1 {
		t.Fatal("remove did not remove")
	}
	errs := []struct {
		name string
		body string
		code string
	}{
		{"last certificate", jsonString(pm1.joseSign(t, certPayloadFor(pm1.cert))), CodeInvalidOperation},
		{"unsigned", jsonString(unsignedJWS(certPayloadFor(pm2.cert))), CodeInvalidOperation},
		{"unknown signer", jsonString(stranger.joseSign(t, certPayloadFor(stranger.cert))), CodeInvalidOperation},
		{"removed signer", jsonString(pm2.joseSign(t, certPayloadFor(pm2.cert))), CodeInvalidOperation},
		{"not JSON string", `"eyJ`, CodeInvalidOperation},
		{"no policyCertificate", jsonString(pm1.joseSign(t, []byte(`{"x":1}`))), CodeInvalidOperation},
		{"not a certificate", jsonString(pm1.joseSign(t, []byte(`{"policyCertificate":{"kty":"RSA","x5c":["AAAA"]}}`))), CodeInvalidParameter},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.in.RemoveCertificate(ctx, tc.body, Actor{})
			wantCode(t, err, tc.code)
		})
	}
	// Preview-era payload name and a bare (not JSON-quoted) JWS body.
	prev, _ := json.Marshal(map[string]any{"maa-policyCertificate": map[string]any{"kty": "RSA", "x5c": []string{base64.StdEncoding.EncodeToString(stranger.cert.Raw)}}})
	if _, err := e.in.AddCertificate(ctx, pm1.joseSign(t, prev), Actor{}); err != nil {
		t.Fatal(err)
	}
	// AAD and Shared instances have no policy-management certificates.
	aad := newEnv(t, ModeAAD)
	if c := aad.claims(t, must(aad.in.Certificates(ctx))); len(c["x-ms-policy-certificates"].(map[string]any)["keys"].([]any)) != 0 {
		t.Fatal("AAD certificates not empty")
	}
	_, err := aad.in.AddCertificate(ctx, add, Actor{})
	wantCode(t, err, CodeInvalidOperation)
	audit, _ := e.db.Audit(ctx, "t", 100)
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action+":"+a.Actor)
	}
	if !strings.Contains(strings.Join(actions, " "), "certificate.add:bob") || !strings.Contains(strings.Join(actions, " "), "certificate.seed:config") {
		t.Fatalf("audit %v", actions)
	}
}

func TestIsolatedNeedsSeed(t *testing.T) {
	if _, err := New(context.Background(), Config{Name: "x", Mode: ModeIsolated, Issuer: "https://x"}, Options{Store: newEnv(t, ModeAAD).db, Keys: newEnv(t, ModeAAD).keys}); err == nil {
		t.Fatal("Isolated instance without certificates accepted")
	}
}

func TestRestartPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pm1 := newSigner(t, "pm1", false)
	pm2 := newSigner(t, "pm2", false)
	e := openEnv(t, dir, ModeIsolated, pm1.cert)
	body := pm1.joseSign(t, policyPayloadFor(permitAll))
	must(e.in.SetPolicy(ctx, "OpenEnclave", body, Actor{}))
	must(e.in.AddCertificate(ctx, jsonString(pm1.joseSign(t, certPayloadFor(pm2.cert))), Actor{}))
	jwks := string(e.keys.JWKS())
	before := must(e.in.GetPolicy(ctx, "OpenEnclave"))
	e.db.Close()

	// Restart with a different seed in the config: the stored set wins.
	e2 := openEnv(t, dir, ModeIsolated, pm2.cert)
	if got := e2.claims(t, must(e2.in.GetPolicy(ctx, "OpenEnclave")))["x-ms-policy"]; got != body {
		t.Fatal("policy JWS not persisted")
	}
	keys := e2.claims(t, must(e2.in.Certificates(ctx)))["x-ms-policy-certificates"].(map[string]any)["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("certificates after restart: %d", len(keys))
	}
	if string(e2.keys.JWKS()) != jwks {
		t.Fatal("signing key changed across restart")
	}
	// Tokens the first process issued still verify with the reopened keys.
	if _, err := e2.keys.Verify(before); err != nil {
		t.Fatal(err)
	}
}

// attestReq builds an attest request whose fake evidence binds runtime data.
func attestReq(t testing.TB, runtime []byte, jsonRuntime bool) *AttestRequest {
	h := sha256.Sum256(runtime)
	rd := hex.EncodeToString(h[:]) + strings.Repeat("00", 32)
	return &AttestRequest{Type: evidence.SgxEnclave, Evidence: fakeQuote(t, fakeEvidence{ReportData: rd, Debug: true}),
		Runtime: &evidence.Data{Bytes: runtime, JSON: jsonRuntime}}
}

func TestAttestDefaultPolicy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	nonce := "n-1"
	req := attestReq(t, []byte(`{"jwk":{"kty":"EC"}}`), true)
	req.Nonce = &nonce
	init := []byte("init-time")
	ih := sha256.Sum256(init)
	var fe fakeEvidence
	json.Unmarshal(req.Evidence, &fe)
	fe.InitTime = hex.EncodeToString(ih[:])
	req.Evidence = fakeQuote(t, fe)
	req.InitTime = &evidence.Data{Bytes: []byte(`{"cfg":1}`), JSON: true}
	// Init-time data that does not match the binding is refused...
	_, err := e.in.Attest(ctx, req)
	wantCode(t, err, CodeInvalidParameter)
	if !errors.Is(err, evidence.CheckInitTimeBinding) {
		t.Fatal(err)
	}
	// ...and matching data is accepted.
	req.InitTime = &evidence.Data{Bytes: init}
	tok, err := tokenOf(e.in.Attest(ctx, req))
	if err != nil {
		t.Fatal(err)
	}
	c := e.claims(t, tok)
	def, _ := policy.Default("SgxEnclave")
	want := map[string]any{
		"x-ms-ver": "1.0", "x-ms-attestation-type": "sgx", "x-ms-policy-hash": policy.Hash(def), "nonce": "n-1",
		"x-ms-sgx-tcbidentifier": "azuredefault", "x-ms-sgx-is-debuggable": true, "x-ms-sgx-product-id": float64(1),
		"is-debuggable": true, "tee": "sgx", "product-id": float64(1), "svn": float64(1), "sgx-mrsigner": strings.Repeat("ab", 32),
		"iss": "https://attestd.test/tenants/t",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if c["exp"].(float64)-c["iat"].(float64) != 28800 || c["nbf"] != c["iat"] {
		t.Error("attestation token lifetime is not 8 h")
	}
	if jti, _ := c["jti"].(string); len(jti) != 64 {
		t.Errorf("jti %q", jti)
	}
	if rt, _ := c["x-ms-runtime"].(map[string]any); rt["jwk"] == nil {
		t.Errorf("x-ms-runtime %v", c["x-ms-runtime"])
	}
	if _, ok := c["x-ms-sgx-ehd"]; ok {
		t.Error("x-ms-sgx-ehd present for JSON runtime data")
	}
	if _, ok := c["$is-debuggable"]; ok {
		t.Error("policy-only claim leaked into the token")
	}
	if _, ok := c["x-ms-sgx-collateral"].(map[string]any); !ok {
		t.Error("token-only object claim missing")
	}
	if _, ok := c["x-ms-policy-signer"]; ok {
		t.Error("x-ms-policy-signer for an unsigned default policy")
	}
	pol, _ := c["x-ms-policy"].(map[string]any)
	if pol["tee"] != "sgx" || pol["sgx-mrenclave"] != strings.Repeat("cd", 32) {
		t.Errorf("x-ms-policy %v", pol)
	}
	if e.fake.lastRequest().Properties["x-ms-sgx-tcbidentifier"] != "azuredefault" {
		t.Errorf("verifier properties %v", e.fake.lastRequest().Properties)
	}
}

func TestAttestPipeline(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	s := newSigner(t, "signer", false)
	const issuing = `version=1.0; authorizationrules{ [type=="x-ms-sgx-is-debuggable", value==true] => permit(); }; issuancerules{ c:[type=="x-ms-sgx-mrsigner"] => issue(type="custom-name", value=c.value); };`
	strp := func(s string) *string { return &s }

	t.Run("binary runtime data and signed policy", func(t *testing.T) {
		must(e.in.SetPolicy(ctx, "SgxEnclave", s.joseSign(t, policyPayloadFor(issuing)), Actor{}))
		defer e.in.ResetPolicy(ctx, "SgxEnclave", "", Actor{})
		c := e.claims(t, must(tokenOf(e.in.Attest(ctx, attestReq(t, []byte{1, 2, 3}, false)))))
		if c["x-ms-sgx-ehd"] != "AQID" {
			t.Errorf("x-ms-sgx-ehd %v", c["x-ms-sgx-ehd"])
		}
		if c["custom-name"] != strings.Repeat("ab", 32) || c["x-ms-policy"].(map[string]any)["custom-name"] == nil {
			t.Errorf("issued claims missing: %v", c)
		}
		if _, ok := c["tee"]; ok {
			t.Error("default-policy claim under a custom policy")
		}
		if signer, _ := c["x-ms-policy-signer"].(map[string]any); signer["x5c"].([]any)[0] != s.x5c() {
			t.Errorf("x-ms-policy-signer %v", c["x-ms-policy-signer"])
		}
		if c["x-ms-policy-hash"] != policy.Hash(issuing) {
			t.Error("policy hash")
		}
	})
	t.Run("draft policy gives an unsigned token", func(t *testing.T) {
		req := attestReq(t, []byte("rt"), false)
		req.DraftPolicy = strp(issuing)
		h, c := unsignedClaims(t, must(tokenOf(e.in.Attest(ctx, req))))
		if h["alg"] != "none" || h["kid"] == "" || h["jku"] != "https://attestd.test/tenants/t/certs" {
			t.Errorf("header %v", h)
		}
		if c["x-ms-policy-hash"] != policy.Hash(issuing) || c["custom-name"] == nil || c["iss"] != "https://attestd.test/tenants/t" {
			t.Errorf("claims %v", c)
		}
	})
	t.Run("drafts are not cached", func(t *testing.T) {
		// Attest needs no token: caching drafts by text would let anyone pin
		// memory with distinct large drafts.
		for i := range 3 {
			req := attestReq(t, []byte("rt"), false)
			req.DraftPolicy = strp(fmt.Sprintf("version=1.0; authorizationrules{ => permit(); }; // %d", i))
			must(tokenOf(e.in.Attest(ctx, req)))
		}
		e.in.mu.Lock()
		defer e.in.mu.Unlock()
		for text := range e.in.compiled {
			if strings.Contains(text, "// ") {
				t.Errorf("draft cached: %q", text)
			}
		}
	})
	t.Run("policy cannot forge service claims at top level", func(t *testing.T) {
		// An unsigned policy, no nonce, binary runtime data: the service sets
		// none of these names itself for this token.
		const forging = `version=1.0; authorizationrules{ => permit(); }; issuancerules{
			=> issue(type="x-ms-policy-signer", value="forged");
			=> issue(type="nonce", value="n");
			=> issue(type="x-ms-runtime", value="{}");
			=> issue(type="x-ms-sgx-config-id", value="00");
			=> issue(type="own-claim", value="kept"); };`
		must(e.in.SetPolicy(ctx, "SgxEnclave", forging, Actor{}))
		defer e.in.ResetPolicy(ctx, "SgxEnclave", "", Actor{})
		c := e.claims(t, must(tokenOf(e.in.Attest(ctx, attestReq(t, []byte{1}, false)))))
		for _, name := range []string{"x-ms-policy-signer", "nonce", "x-ms-runtime", "x-ms-sgx-config-id"} {
			if v, ok := c[name]; ok {
				t.Errorf("policy-issued %s reached the top level: %v", name, v)
			}
			if c["x-ms-policy"].(map[string]any)[name] == nil {
				t.Errorf("policy-issued %s missing from x-ms-policy", name)
			}
		}
		if c["own-claim"] != "kept" {
			t.Errorf("own-claim %v", c["own-claim"])
		}
	})
	errs := []struct {
		name  string
		req   func() *AttestRequest
		code  string
		check string         // in the message
		is    evidence.Check // errors.Is target, for evidence refusals
	}{
		{"runtime data not bound", func() *AttestRequest {
			r := attestReq(t, []byte("a"), false)
			r.Runtime.Bytes = []byte("b")
			return r
		}, CodeInvalidParameter, "runtimedata.binding", evidence.CheckRuntimeBinding},
		{"init-time data without binding field", func() *AttestRequest {
			r := attestReq(t, []byte("a"), false)
			r.InitTime = &evidence.Data{Bytes: []byte("i")}
			return r
		}, CodeInvalidParameter, "inittimedata.binding", evidence.CheckInitTimeBinding},
		{"verifier rejects", func() *AttestRequest {
			return &AttestRequest{Type: evidence.SgxEnclave, Evidence: fakeQuote(t, fakeEvidence{FailCheck: "quote.signature"})}
		}, CodeInvalidParameter, "quote.signature", "quote.signature"},
		{"policy denies", func() *AttestRequest {
			r := attestReq(t, []byte("a"), false)
			r.DraftPolicy = strp(`version=1.0; authorizationrules{ => deny(); };`)
			return r
		}, CodePolicyEvaluationError, "Deny", ""},
		{"no permit", func() *AttestRequest {
			r := attestReq(t, []byte("a"), false)
			r.DraftPolicy = strp(`version=1.0; authorizationrules{ [type=="x-ms-sgx-is-debuggable", value==false] => permit(); };`)
			return r
		}, CodePolicyEvaluationError, "No Permit", ""},
		{"draft does not parse", func() *AttestRequest {
			r := attestReq(t, []byte("a"), false)
			r.DraftPolicy = strp(`version=1.0; authorizationrules{ => permit() };`)
			return r
		}, CodePolicyParsingError, "", ""},
		{"bad JSON runtime data", func() *AttestRequest { return attestReq(t, []byte("{"), true) }, CodeInvalidParameter, "not valid JSON", evidence.CheckRuntimeJSON},
		{"no verifier for the type", func() *AttestRequest {
			return &AttestRequest{Type: evidence.SevSnpVm, Evidence: []byte("x")}
		}, CodeNotSupported, "SevSnpVm", ""},
		{"empty evidence", func() *AttestRequest { return &AttestRequest{Type: evidence.SgxEnclave} }, CodeInvalidParameter, "no evidence", evidence.CheckEvidenceMissing},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.in.Attest(ctx, tc.req())
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.check) {
				t.Fatalf("error %q does not mention %q", err, tc.check)
			}
			if tc.is != "" && !errors.Is(err, tc.is) {
				t.Fatalf("errors.Is(%v, %s) is false", err, tc.is)
			}
		})
	}
	t.Run("Tpm without a policy", func(t *testing.T) {
		_, err := e.in.Attest(ctx, &AttestRequest{Type: evidence.Tpm, Evidence: []byte(`{"payload":{"type":"aikcert"}}`)})
		wantCode(t, err, CodeBadRequest)
		if err.(*Error).Message != TpmNoPolicyMessage {
			t.Fatal(err)
		}
		must(e.in.SetPolicy(ctx, "Tpm", permitAll, Actor{}))
		_, err = e.in.Attest(ctx, &AttestRequest{Type: evidence.Tpm, Evidence: []byte(`{"payload":{"type":"aikcert"}}`)})
		wantCode(t, err, CodeNotSupported)
	})
}

// BenchmarkAttest measures the in-process pipeline (fake verifier, default
// policy, RS256 signing) without HTTP.
func BenchmarkAttest(b *testing.B) {
	e := newEnv(b, ModeAAD)
	req := attestReq(b, []byte("runtime data"), false)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.in.Attest(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentAttestAndPolicyChanges attests from several goroutines while
// the policy changes underneath (run with -race to check the cache).
func TestConcurrentAttestAndPolicyChanges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAAD)
	req := attestReq(t, []byte("rt"), false)
	done := make(chan error, 9)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 10; i++ {
				if _, err := e.in.Attest(ctx, req); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	go func() {
		for i := 0; i < 10; i++ {
			text := permitAll + strings.Repeat(" ", i) // a new text each time
			if _, err := e.in.SetPolicy(ctx, "SgxEnclave", text, Actor{}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 9; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
