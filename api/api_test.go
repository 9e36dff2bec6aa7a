package api

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

var b64u = base64.RawURLEncoding

// fakeVerifier (test only) treats the evidence bytes as the 64-byte report
// data of a debuggable SGX enclave, so the HTTP path of the attest pipeline
// runs end to end without hardware evidence.
type fakeVerifier struct{}

func (fakeVerifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	if len(req.Evidence) != 64 {
		return nil, evidence.Errorf("fake.length", "evidence is %d bytes, want 64", len(req.Evidence))
	}
	return fakeParsed{req}, nil
}

type fakeParsed struct{ req *evidence.Request }

func (p fakeParsed) Verify(ctx context.Context, props map[string]any) (*evidence.Result, error) {
	req := p.req
	res := &evidence.Result{ReportData: req.Evidence, Claims: []evidence.Claim{
		{Type: "x-ms-attestation-type", Value: "sgx"},
		{Type: "x-ms-sgx-is-debuggable", Value: true},
		{Type: "x-ms-sgx-mrsigner", Value: strings.Repeat("ab", 32)},
		{Type: "x-ms-sgx-mrenclave", Value: strings.Repeat("cd", 32)},
		{Type: "x-ms-sgx-product-id", Value: int64(1)},
		{Type: "x-ms-sgx-svn", Value: int64(2)},
	}}
	// What the SGX verifier adds (ehd, the baseline applied), so wire
	// tests see SGX-shaped tokens.
	if req.Runtime != nil && !req.Runtime.JSON {
		res.Claims = append(res.Claims, evidence.Claim{Type: "x-ms-sgx-ehd", Value: b64u.EncodeToString(req.Runtime.Bytes)})
	}
	if id, _ := props["x-ms-sgx-tcbidentifier"].(string); id == "azuredefault" {
		res.Claims = append(res.Claims, evidence.Claim{Type: "x-ms-sgx-tcbidentifier", Value: id, TokenOnly: true})
	}
	return res, nil
}

// ConfigurationDefaults: SGX's default baseline.
func (fakeVerifier) ConfigurationDefaults(evidence.Type) map[string]any {
	return map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}
}

type signer struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// signers memoises test keys by name: RSA key generation dominates the
// run time of these tests on a busy 2-core machine.
var signers sync.Map // cn → *signer

func newSigner(t testing.TB, cn string) *signer {
	t.Helper()
	if s, ok := signers.Load(cn); ok {
		return s.(*signer)
	}
	s := makeSigner(t, cn)
	signers.Store(cn, s)
	return s
}

func makeSigner(t testing.TB, cn string) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &signer{key: k, cert: c}
}

// sign builds the JWS the JS SDK sends: {"alg":"RS256","x5c":[…]}.
func (s *signer) sign(payload []byte) string {
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(s.cert.Raw)}})
	in := b64u.EncodeToString(h) + "." + b64u.EncodeToString(payload)
	d := sha256.Sum256([]byte(in))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	return in + "." + b64u.EncodeToString(sig)
}

func policyJWS(text string) string {
	p, _ := json.Marshal(map[string]string{"AttestationPolicy": b64u.EncodeToString([]byte(text))})
	return "eyJhbGciOiJub25lIn0." + b64u.EncodeToString(p) + "."
}

func certBody(s *signer, c *x509.Certificate) string {
	p, _ := json.Marshal(map[string]any{"policyCertificate": map[string]any{"kty": "RSA", "x5c": []string{base64.StdEncoding.EncodeToString(c.Raw)}}})
	b, _ := json.Marshal(s.sign(p))
	return string(b)
}

// apiEnv is a TLS test server with three instances: "default" (AAD, root),
// "iso" (Isolated, /tenants/iso) and "shared" (Shared, /shared), all over
// one SQLite store and trusting one development identity.
type apiEnv struct {
	t      testing.TB
	srv    *httptest.Server
	base   string
	dev    *auth.DevIdentity
	pm     *signer
	keys   map[string]*token.KeySet
	tokens map[string]string
}

func newAPIEnv(t *testing.T) *apiEnv { return newAPIEnvTB(t, nil) }

// newAPIEnvTB builds the env; seed, when non-nil, is added to the generated
// policy-management certificate of the Isolated instance.
func newAPIEnvTB(t testing.TB, seed *x509.Certificate) *apiEnv {
	t.Helper()
	pm := newSigner(t, "pm")
	certs := []*x509.Certificate{pm.cert}
	if seed != nil {
		certs = append(certs, seed)
	}
	return startEnv(t, pm,
		envInstance{name: "default", mode: instance.ModeAAD, verifier: fakeVerifier{}},
		envInstance{name: "iso", prefix: "/tenants/iso", mode: instance.ModeIsolated, certs: certs, verifier: fakeVerifier{}},
		envInstance{name: "shared", prefix: "/shared", mode: instance.ModeShared, verifier: fakeVerifier{}})
}

// envInstance is one instance of a test env.
type envInstance struct {
	name, prefix string
	mode         instance.Mode
	certs        []*x509.Certificate // Isolated: the first policy-management certificates
	verifier     evidence.Verifier   // serves SgxEnclave and OpenEnclave
	noPlayground bool                // Mount.DisablePlayground
}

// startEnv serves the instances over TLS from one SQLite store, with the
// development identity as the admin authority (not for Shared instances),
// and mints a contributor and a reader token.
func startEnv(t testing.TB, pm *signer, instances ...envInstance) *apiEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dev, err := auth.OpenDevIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{Issuers: []auth.Issuer{dev.Issuer()}, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{t: t, dev: dev, pm: pm, keys: map[string]*token.KeySet{}, tokens: map[string]string{}}
	e.srv = httptest.NewUnstartedServer(nil)
	e.base = "https://" + e.srv.Listener.Addr().String()
	quiet := slog.New(slog.DiscardHandler)
	var mounts []Mount
	for _, m := range instances {
		ks, err := token.OpenKeySet(filepath.Join(dir, "keys", m.name), e.base+m.prefix, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[m.name] = ks
		cfg := instance.Config{Name: m.name, Mode: m.mode, Issuer: e.base + m.prefix, PolicyCertificates: m.certs}
		in, err := instance.New(ctx, cfg, instance.Options{Store: db, Keys: ks, Logger: quiet,
			Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: m.verifier, evidence.OpenEnclave: m.verifier}})
		if err != nil {
			t.Fatal(err)
		}
		mt := Mount{Prefix: m.prefix, Instance: in, DisablePlayground: m.noPlayground}
		if m.mode != instance.ModeShared {
			mt.Auth = authn
		}
		mounts = append(mounts, mt)
	}
	h, err := New(Options{Mounts: mounts, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = h
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.tokens["contributor"] = e.mint(time.Now(), auth.RoleContributor, "", time.Hour)
	e.tokens["reader"] = e.mint(time.Now(), auth.RoleReader, "", time.Hour)
	return e
}

func (e *apiEnv) mint(now time.Time, r auth.Role, inst string, ttl time.Duration) string {
	tok, err := e.dev.Mint(now, r, inst, ttl)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// errCode returns error.code of an MAA error response (and checks the shape).
func (r resp) errCode(t testing.TB) string {
	t.Helper()
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("error Content-Type %q", r.header.Get("Content-Type"))
	}
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("not an MAA error body: %q (%v)", r.body, err)
	}
	return b.Error.Code
}

func (e *apiEnv) do(method, path, bearer, contentType, body string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// claims verifies a token from instance name and returns its claims.
func (e *apiEnv) claims(name string, r resp) map[string]any {
	e.t.Helper()
	if r.status != 200 {
		e.t.Fatalf("status %d: %s", r.status, r.body)
	}
	tok, _ := r.json(e.t)["token"].(string)
	p, err := e.keys[name].Verify(tok)
	if err != nil {
		e.t.Fatalf("token does not verify with instance %s's keys: %v", name, err)
	}
	var m map[string]any
	json.Unmarshal(p, &m)
	return m
}

const api = "?api-version=2020-10-01"
const permitAll = "version=1.0; authorizationrules{=> permit();}; issuancerules{};"

func TestRoutesAndErrors(t *testing.T) {
	e := newAPIEnv(t)
	c := e.tokens["contributor"]
	tests := []struct {
		name, method, path, bearer, body string
		status                           int
		code                             string // "" = success
	}{
		{"certs without api-version", "GET", "/certs", "", "", 200, ""},
		{"tenant certs", "GET", "/tenants/iso/certs", "", "", 200, ""},
		{"openid", "GET", "/.well-known/openid-configuration", "", "", 200, ""},
		{"healthz", "GET", "/healthz", "", "", 200, ""},
		{"any api-version", "GET", "/policies/SgxEnclave?api-version=2025-06-01", c, "", 200, ""},
		{"no api-version", "GET", "/policies/Tpm", c, "", 200, ""},
		{"unknown path", "GET", "/nope", "", "", 404, "NotFound"},
		{"unknown prefix", "GET", "/tenants/nobody/certs", "", "", 404, "NotFound"},
		{"wrong method on certs", "POST", "/certs", "", "", 405, "MethodNotAllowed"},
		{"wrong method on policy", "DELETE", "/policies/SgxEnclave" + api, c, "", 405, "MethodNotAllowed"},
		{"GET on reset", "GET", "/policies/SgxEnclave:reset" + api, c, "", 405, "MethodNotAllowed"},
		{"GET on certificates:add", "GET", "/certificates:add" + api, c, "", 405, "MethodNotAllowed"},
		{"GET attest", "GET", "/attest/SgxEnclave" + api, "", "", 405, "MethodNotAllowed"},
		{"unknown policy type", "GET", "/policies/sgxenclave" + api, c, "", 400, "InvalidParameter"},
		{"unknown attest type", "POST", "/attest/Sgx" + api, "", "{}", 400, "InvalidParameter"},
		{"bad policy", "PUT", "/policies/SgxEnclave" + api, c, "version=1.0; authorizationrules{=> permit()};", 400, "PolicyParsingError"},
		{"shared write", "PUT", "/shared/policies/SgxEnclave" + api, "", policyJWS(permitAll), 400, "InvalidOperation"},
		{"shared reset", "POST", "/shared/policies/SgxEnclave:reset" + api, "", "", 400, "InvalidOperation"},
		{"shared certificate add", "POST", "/shared/certificates:add" + api, "", `"x"`, 400, "InvalidOperation"},
		{"shared read is public", "GET", "/shared/policies/SgxEnclave" + api, "", "", 200, ""},
		{"AAD certificate add", "POST", "/certificates:add" + api, c, certBody(e.pm, e.pm.cert), 400, "InvalidOperation"},
		{"isolated unsigned policy", "PUT", "/tenants/iso/policies/SgxEnclave" + api, c, policyJWS(permitAll), 400, "InvalidOperation"},
		{"isolated raw text", "PUT", "/tenants/iso/policies/SgxEnclave" + api, c, permitAll, 400, "InvalidOperation"},
		{"isolated malformed JWS", "PUT", "/tenants/iso/policies/SgxEnclave" + api, c, "eyJhbGciOiJSUzI1NiJ9.e30", 400, "InvalidOperation"},
		{"isolated alg none where a signature is required", "POST", "/tenants/iso/policies/SgxEnclave:reset" + api, c, "eyJhbGciOiJub25lIn0..", 400, "InvalidOperation"},
		{"isolated signed by unknown cert", "PUT", "/tenants/iso/policies/SgxEnclave" + api, c, newSigner(t, "x").sign([]byte(`{"AttestationPolicy":"` + b64u.EncodeToString([]byte(permitAll)) + `"}`)), 400, "InvalidOperation"},
		{"isolated remove last certificate", "POST", "/tenants/iso/certificates:remove" + api, c, certBody(e.pm, e.pm.cert), 400, "InvalidOperation"},
		{"attest bad JSON", "POST", "/attest/SgxEnclave" + api, "", "{", 400, "InvalidParameter"},
		{"attest without quote", "POST", "/attest/SgxEnclave" + api, "", `{"report":"AAAA"}`, 400, "InvalidParameter"},
		{"attest bad base64", "POST", "/attest/SgxEnclave" + api, "", `{"quote":"!!"}`, 400, "InvalidParameter"},
		{"attest bad dataType", "POST", "/attest/SgxEnclave" + api, "", `{"quote":"AAAA","runtimeData":{"data":"AA","dataType":"Text"}}`, 400, "InvalidParameter"},
		{"attest evidence rejected", "POST", "/attest/SgxEnclave" + api, "", `{"quote":"AAAA"}`, 400, "InvalidParameter"},
		{"attest unsupported type", "POST", "/attest/SevSnpVm" + api, "", `{"report":"AAAA"}`, 501, "NotSupported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.bearer, "", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
			}
			if r.header.Get("x-ms-request-id") == "" {
				t.Fatal("no x-ms-request-id")
			}
			if tc.code != "" {
				if got := r.errCode(t); got != tc.code {
					t.Fatalf("code %q, want %q: %s", got, tc.code, r.body)
				}
			}
		})
	}
	// The evidence error names the failed check; parse errors give a position.
	if r := e.do("POST", "/attest/SgxEnclave"+api, "", "", `{"quote":"AAAA"}`); !strings.Contains(string(r.body), "fake.length") {
		t.Errorf("evidence error does not name the check: %s", r.body)
	}
	if r := e.do("PUT", "/policies/SgxEnclave"+api, c, "", "version=1.0;\nauthorizationrules{=> permit()};"); !strings.Contains(string(r.body), "Line: '2'") {
		t.Errorf("parse error without line: %s", r.body)
	}
}

func TestAuth(t *testing.T) {
	e := newAPIEnv(t)
	other, err := auth.OpenDevIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Mint(time.Now(), auth.RoleContributor, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, bearer string
		status                     int
	}{
		{"missing token", "GET", "/policies/SgxEnclave", "", 401},
		{"garbage token", "GET", "/policies/SgxEnclave", "garbage", 401},
		{"token of another identity", "GET", "/policies/SgxEnclave", foreign, 401},
		{"expired token", "GET", "/policies/SgxEnclave", e.mint(time.Now().Add(-3*time.Hour), auth.RoleReader, "", time.Hour), 401},
		{"not yet valid token", "GET", "/policies/SgxEnclave", e.mint(time.Now().Add(time.Hour), auth.RoleReader, "", time.Hour), 401},
		{"reader may read", "GET", "/policies/SgxEnclave", e.tokens["reader"], 200},
		{"reader may list certificates", "GET", "/tenants/iso/certificates", e.tokens["reader"], 200},
		{"reader may not write", "PUT", "/policies/SgxEnclave", e.tokens["reader"], 401},
		{"reader may not reset", "POST", "/policies/SgxEnclave:reset", e.tokens["reader"], 401},
		{"reader may not add certificates", "POST", "/tenants/iso/certificates:add", e.tokens["reader"], 401},
		{"token scoped to another instance", "GET", "/tenants/iso/policies/SgxEnclave", e.mint(time.Now(), auth.RoleContributor, "default", time.Hour), 401},
		{"token scoped to this instance", "GET", "/tenants/iso/policies/SgxEnclave", e.mint(time.Now(), auth.RoleReader, "iso", time.Hour), 200},
		{"attest needs no token", "POST", "/attest/SgxEnclave", "", 400},
		{"attest ignores a token", "POST", "/attest/SgxEnclave", "garbage", 400},
		{"certs need no token", "GET", "/tenants/iso/certs", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method != "GET" {
				body = `{"quote":"AAAA"}`
			}
			r := e.do(tc.method, tc.path+api, tc.bearer, "", body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status == 401 {
				if r.errCode(t) != "Unauthorized" || r.header.Get("WWW-Authenticate") == "" {
					t.Fatalf("401 body/header: %s %v", r.body, r.header)
				}
				if tc.bearer != "" && strings.Contains(string(r.body), tc.bearer) {
					t.Fatal("the error echoes the bearer token")
				}
			}
		})
	}
}

func TestPolicyAndCertificateFlow(t *testing.T) {
	e := newAPIEnv(t)
	c := e.tokens["contributor"]
	// AAD: unsigned JWS, hash of the exact body, GET returns the exact JWS.
	body := policyJWS(permitAll)
	cl := e.claims("default", e.do("PUT", "/policies/SgxEnclave"+api, c, "text/plain", body))
	h := sha256.Sum256([]byte(body))
	if cl["x-ms-policy-result"] != "Updated" || cl["x-ms-policy-token-hash"] != b64u.EncodeToString(h[:]) || cl["iss"] != e.base {
		t.Fatalf("set claims %v", cl)
	}
	if _, ok := cl["x-ms-policy-signer"]; ok {
		t.Fatal("signer on unsigned set")
	}
	if got := e.claims("default", e.do("GET", "/policies/SgxEnclave"+api, c, "", ""))["x-ms-policy"]; got != body {
		t.Fatalf("GET %v", got)
	}
	// Isolated: signed by the policy-management certificate.
	signed := e.pm.sign([]byte(`{"AttestationPolicy":"` + b64u.EncodeToString([]byte(permitAll)) + `"}`))
	cl = e.claims("iso", e.do("PUT", "/tenants/iso/policies/OpenEnclave"+api, c, "text/plain", signed))
	if cl["iss"] != e.base+"/tenants/iso" || cl["x-ms-policy-signer"] == nil {
		t.Fatalf("iso set claims %v", cl)
	}
	pm2 := newSigner(t, "pm2")
	cl = e.claims("iso", e.do("POST", "/tenants/iso/certificates:add"+api, c, "application/json", certBody(e.pm, pm2.cert)))
	if cl["x-ms-policycertificates-result"] != "IsPresent" {
		t.Fatalf("add %v", cl)
	}
	keys := e.claims("iso", e.do("GET", "/tenants/iso/certificates"+api, c, "", ""))["x-ms-policy-certificates"].(map[string]any)["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("keys %v", keys)
	}
	cl = e.claims("iso", e.do("POST", "/tenants/iso/certificates:remove"+api, c, "application/json", certBody(pm2, pm2.cert)))
	if cl["x-ms-policycertificates-result"] != "IsAbsent" {
		t.Fatalf("remove %v", cl)
	}
	cl = e.claims("iso", e.do("POST", "/tenants/iso/policies/OpenEnclave:reset"+api, c, "text/plain", e.pm.sign(nil)))
	if cl["x-ms-policy-result"] != "Removed" {
		t.Fatalf("reset %v", cl)
	}
	// Each instance signs with its own key: a default-instance token does not
	// verify with the iso keys.
	r := e.do("GET", "/policies/SgxEnclave"+api, c, "", "")
	if _, err := e.keys["iso"].Verify(r.json(t)["token"].(string)); err == nil {
		t.Fatal("instances share a signing key")
	}
}

func TestAttestOverHTTP(t *testing.T) {
	e := newAPIEnv(t)
	rt := []byte(`{"k":"v"}`)
	h := sha256.Sum256(rt)
	quote := append(h[:], make([]byte, 32)...)
	encodings := map[string]string{
		"base64url unpadded": b64u.EncodeToString(quote),
		"base64url padded":   base64.URLEncoding.EncodeToString(quote),
		"std base64":         base64.StdEncoding.EncodeToString(quote),
	}
	for name, q := range encodings {
		t.Run(name, func(t *testing.T) {
			body := `{"quote":"` + q + `","runtimeData":{"data":"` + b64u.EncodeToString(rt) + `","dataType":"JSON"},"initTimeData":{"dataType":"JSON"},"nonce":"abc"}`
			cl := e.claims("default", e.do("POST", "/attest/SgxEnclave"+api, "", "application/json", body))
			if cl["nonce"] != "abc" || cl["x-ms-runtime"].(map[string]any)["k"] != "v" || cl["x-ms-attestation-type"] != "sgx" || cl["tee"] != "sgx" {
				t.Fatalf("claims %v", cl)
			}
			if _, ok := cl["x-ms-inittime"]; ok {
				t.Fatal("initTimeData without data must count as absent")
			}
			if cl["exp"].(float64)-cl["iat"].(float64) != 28800 {
				t.Fatal("lifetime")
			}
		})
	}
	t.Run("tenant instance signs with its own key and issuer", func(t *testing.T) {
		body := `{"quote":"` + b64u.EncodeToString(quote) + `"}`
		cl := e.claims("iso", e.do("POST", "/tenants/iso/attest/SgxEnclave"+api, "", "application/json", body))
		if cl["iss"] != e.base+"/tenants/iso" {
			t.Fatalf("iss %v", cl["iss"])
		}
	})
	t.Run("binary runtime data mismatch", func(t *testing.T) {
		body := `{"quote":"` + b64u.EncodeToString(quote) + `","runtimeData":{"data":"AQID","dataType":"Binary"}}`
		if r := e.do("POST", "/attest/SgxEnclave"+api, "", "", body); r.status != 400 || !strings.Contains(string(r.body), "runtimedata.binding") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("draft policy", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"report": b64u.EncodeToString(quote), "runtimeData": map[string]string{"data": b64u.EncodeToString(rt)},
			"draftPolicyForAttestation": `version=1.0; authorizationrules{=> permit();}; issuancerules{ c:[type=="x-ms-sgx-mrsigner"] => issue(type="custom-name", value=c.value);};`})
		r := e.do("POST", "/attest/OpenEnclave"+api, "", "application/json", string(body))
		tok, _ := r.json(t)["token"].(string)
		parts := strings.Split(tok, ".")
		if r.status != 200 || len(parts) != 3 || parts[2] != "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		hb, _ := b64u.DecodeString(parts[0])
		if !strings.Contains(string(hb), `"alg":"none"`) {
			t.Fatalf("header %s", hb)
		}
	})
	t.Run("policy deny", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"quote": b64u.EncodeToString(quote), "draftPolicyForAttestation": `version=1.0; authorizationrules{=> deny();};`})
		if r := e.do("POST", "/attest/SgxEnclave"+api, "", "", string(body)); r.status != 400 || r.errCode(t) != "PolicyEvaluationError" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("Tpm without policy: real MAA's exact body", func(t *testing.T) {
		r := e.do("POST", "/attest/Tpm"+api, "", "application/json", `{"data":"eyJwYXlsb2FkIjp7InR5cGUiOiJhaWtjZXJ0In19"}`)
		want := `{"error":{"code":"Bad request","message":"A VBS attestation policy has not been set on the attestation provider."}}`
		if r.status != 400 || string(r.body) != want {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestBodyLimits(t *testing.T) {
	e := newAPIEnv(t)
	c := e.tokens["contributor"]
	big := strings.Repeat("a", MaxPolicyBody+1)
	if r := e.do("PUT", "/policies/SgxEnclave"+api, c, "text/plain", big); r.status != 413 || r.errCode(t) != "RequestEntityTooLarge" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	huge := `{"quote":"` + strings.Repeat("A", MaxAttestBody) + `"}`
	if r := e.do("POST", "/attest/SgxEnclave"+api, "", "application/json", huge); r.status != 413 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// Chunked (no Content-Length) bodies are cut off too.
	req, _ := http.NewRequest("PUT", e.base+"/policies/SgxEnclave"+api, io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+c)
	req.ContentLength = -1
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("chunked: %d", res.StatusCode)
	}
}

func TestRecoverPanics(t *testing.T) {
	h := logRequests(slog.New(slog.DiscardHandler), nil, recoverPanics(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]int
		m["boom"]++ // nil map write panics
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if r.status != 500 || r.errCode(t) != "InternalError" || strings.Contains(string(r.body), "nil map") {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// TestPolicyVectors PUTs every accepted vector of spec/policies and GETs it
// back byte for byte, and PUTs every bad-* vector expecting
// PolicyParsingError — both as raw text and as the JS SDK's unsigned JWS.
func TestPolicyVectors(t *testing.T) {
	dir := testenv.Shared(t, "spec/policies")
	e := newAPIEnv(t)
	c := e.tokens["contributor"]
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range ents {
		name := ent.Name()
		if !strings.HasSuffix(name, ".txt") {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n++
		t.Run(name, func(t *testing.T) {
			bad := strings.HasPrefix(name, "bad-")
			for _, body := range []string{policyJWS(string(text)), string(text)} {
				r := e.do("PUT", "/policies/SgxEnclave"+api, c, "text/plain", body)
				if bad {
					if r.status != 400 || r.errCode(t) != "PolicyParsingError" {
						t.Fatalf("bad vector accepted or wrong error: %d %s", r.status, r.body)
					}
					continue
				}
				if r.status != 200 {
					t.Fatalf("PUT %d %s", r.status, r.body)
				}
				pol := e.claims("default", e.do("GET", "/policies/SgxEnclave"+api, c, "", ""))["x-ms-policy"].(string)
				parts := strings.Split(pol, ".")
				pb, _ := b64u.DecodeString(parts[1])
				var p struct{ AttestationPolicy string }
				json.Unmarshal(pb, &p)
				got, _ := b64u.DecodeString(p.AttestationPolicy)
				if string(got) != string(text) {
					t.Fatalf("GET returned different bytes:\n%q\n%q", got, text)
				}
			}
		})
	}
	if n < 60 {
		t.Fatalf("only %d policy vectors found", n)
	}
}

// TestIdentityProviderDown: when the issuer's keys cannot be fetched the
// admin call fails with 503 (retryable), not 401.
func TestIdentityProviderDown(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ks, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://x", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	in, err := instance.New(ctx, instance.Config{Name: "default", Mode: instance.ModeAAD, Issuer: "https://x"}, instance.Options{Store: db, Keys: ks, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := auth.New(auth.Config{Issuers: []auth.Issuer{{Issuer: auth.DevIssuer, JWKSURL: "http://127.0.0.1:1/jwks"}}, AllowInsecureHTTP: true,
		FetchTimeout: time.Second, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Mounts: []Mount{{Instance: in, Auth: dead}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := auth.OpenDevIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := dev.Mint(time.Now(), auth.RoleReader, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/policies/SgxEnclave", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if r.status != 503 || r.errCode(t) != "ServiceUnavailable" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}
