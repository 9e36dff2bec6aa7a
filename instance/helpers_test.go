package instance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// testSigner is a policy-management key and its self-signed certificate.
type testSigner struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// signers memoises test keys by name: RSA key generation dominates the
// run time of these tests on a busy 2-core machine.
var signers sync.Map // "cn|ec" → *testSigner

func newSigner(t testing.TB, cn string, ec bool) *testSigner {
	t.Helper()
	key := fmt.Sprintf("%s|%v", cn, ec)
	if s, ok := signers.Load(key); ok {
		return s.(*testSigner)
	}
	s := makeSigner(t, cn, ec)
	signers.Store(key, s)
	return s
}

func makeSigner(t testing.TB, cn string, ec bool) *testSigner {
	t.Helper()
	var key crypto.Signer
	var err error
	if ec {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{key: key, cert: certWithKey(t, cn, key)}
}

var b64u = base64.RawURLEncoding

// joseSign signs payload the way the JS SDK does: header
// {"alg":"RS256"|"ES256","x5c":[…]}, using go-jose (an independent JWS
// implementation, so the server's hand-written reader is checked against it).
func (s *testSigner) joseSign(t testing.TB, payload []byte) string {
	t.Helper()
	alg := jose.RS256
	if _, ok := s.key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: s.key},
		(&jose.SignerOptions{}).WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(s.cert.Raw)}))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawSign signs with an arbitrary header text (for the non-standard header
// variants go-jose cannot produce: "RSA256", x5c under jwk).
func (s *testSigner) rawSign(t testing.TB, header string, payload []byte) string {
	t.Helper()
	in := b64u.EncodeToString([]byte(header)) + "." + b64u.EncodeToString(payload)
	d := sha256.Sum256([]byte(in))
	sig, err := s.key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64u.EncodeToString(sig)
}

func (s *testSigner) x5c() string { return base64.StdEncoding.EncodeToString(s.cert.Raw) }

// policyPayload is StoredAttestationPolicy (maa-api.md §1.4), for decoding
// in tests.
type policyPayload struct {
	AttestationPolicy *string `json:"AttestationPolicy"`
}

func policyPayloadFor(text string) []byte {
	b, _ := json.Marshal(map[string]string{"AttestationPolicy": b64u.EncodeToString([]byte(text))})
	return b
}

func certPayloadFor(c *x509.Certificate) []byte {
	b, _ := json.Marshal(map[string]any{"policyCertificate": map[string]any{"kty": "RSA", "x5c": []string{base64.StdEncoding.EncodeToString(c.Raw)}}})
	return b
}

// unsignedJWS is what JS 1.0.0 sends for an unsigned policy.
func unsignedJWS(payload []byte) string {
	return "eyJhbGciOiJub25lIn0." + b64u.EncodeToString(payload) + "."
}

// jsonString is how the SDKs wrap certificates:add/remove bodies.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fakeEvidence is the test-only evidence format of fakeVerifier.
type fakeEvidence struct {
	ReportData string `json:"report_data"` // hex
	InitTime   string `json:"init_time"`   // hex; "" = no init-time binding field
	Debug      bool   `json:"debug"`
	FailCheck  string `json:"fail_check"`
}

// fakeVerifier stands in for evidence/sgx: it "verifies" fakeEvidence and
// returns SGX-shaped claims, so the pipeline's binding, claim conversion,
// policy and token code run for real.
type fakeVerifier struct {
	mu   sync.Mutex
	last *evidence.Request
}

func (f *fakeVerifier) lastRequest() *evidence.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// fakeParsed is fake evidence that passed Parse.
type fakeParsed struct {
	req *evidence.Request
	e   fakeEvidence
}

func (f *fakeVerifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	var e fakeEvidence
	if err := json.Unmarshal(req.Evidence, &e); err != nil {
		return nil, &evidence.Error{Check: "fake.parse", Err: err}
	}
	return &fakeParsed{req: req, e: e}, nil
}

// ConfigurationDefaults: the fake stands in for SGX, so it has SGX's default.
func (f *fakeVerifier) ConfigurationDefaults(t evidence.Type) map[string]any {
	return map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}
}

func (p *fakeParsed) Verify(ctx context.Context, props map[string]any) (*evidence.Result, error) {
	e, req := p.e, p.req
	req.Properties = props
	if e.FailCheck != "" {
		return nil, evidence.Errorf(e.FailCheck, "the fake evidence asked to fail")
	}
	rd, err := hex.DecodeString(e.ReportData)
	if err != nil {
		return nil, &evidence.Error{Check: "fake.reportdata", Err: err}
	}
	res := &evidence.Result{ReportData: rd, Claims: []evidence.Claim{
		{Type: "x-ms-attestation-type", Value: "sgx"},
		{Type: "x-ms-sgx-is-debuggable", Value: e.Debug},
		{Type: "x-ms-sgx-product-id", Value: int64(1)},
		{Type: "x-ms-sgx-svn", Value: 1},
		{Type: "x-ms-sgx-mrsigner", Value: strings.Repeat("ab", 32)},
		{Type: "x-ms-sgx-mrenclave", Value: strings.Repeat("cd", 32)},
		{Type: "x-ms-sgx-collateral", Value: map[string]string{"quotehash": "00"}, TokenOnly: true},
		{Type: "$is-debuggable", Value: e.Debug, PolicyOnly: true},
	}}
	if req.Runtime != nil && !req.Runtime.JSON {
		res.Claims = append(res.Claims, evidence.Claim{Type: "x-ms-sgx-ehd", Value: base64.RawURLEncoding.EncodeToString(req.Runtime.Bytes)})
	}
	if props["x-ms-sgx-tcbidentifier"] == "azuredefault" {
		// The fake applies the default baseline only, and says so.
		res.Claims = append(res.Claims, evidence.Claim{Type: "x-ms-sgx-tcbidentifier", Value: "azuredefault", TokenOnly: true})
	}
	if e.InitTime != "" {
		if res.InitTimeBinding, err = hex.DecodeString(e.InitTime); err != nil {
			return nil, &evidence.Error{Check: "fake.inittime", Err: err}
		}
	}
	return res, nil
}

func fakeQuote(t testing.TB, e fakeEvidence) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// env is one instance over a real SQLite store and a real key set in a
// temporary data directory.
type env struct {
	dir   string
	in    *Instance
	keys  *token.KeySet
	db    *sqlite.DB
	fake  *fakeVerifier
	clock time.Time
}

func newEnv(t testing.TB, mode Mode, seed ...*x509.Certificate) *env {
	t.Helper()
	return openEnv(t, t.TempDir(), mode, seed...)
}

func openEnv(t testing.TB, dir string, mode Mode, seed ...*x509.Certificate) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{dir: dir, fake: &fakeVerifier{}, clock: time.Now()}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	if e.keys, err = token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", time.Now); err != nil {
		t.Fatal(err)
	}
	e.in, err = New(ctx, Config{Name: "t", Mode: mode, Issuer: "https://attestd.test/tenants/t", PolicyCertificates: seed},
		Options{Store: db, Keys: e.keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: e.fake, evidence.OpenEnclave: e.fake},
			Now: func() time.Time { return e.clock }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// claims verifies a signed token with the env's keys and returns its claims.
func (e *env) claims(t testing.TB, tok string) map[string]any {
	t.Helper()
	p, err := e.keys.Verify(tok)
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// unsignedClaims decodes an alg-none token and checks its header.
func unsignedClaims(t testing.TB, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("not an unsigned compact JWT: %q", tok)
	}
	var h, c map[string]any
	hb, _ := b64u.DecodeString(parts[0])
	cb, _ := b64u.DecodeString(parts[1])
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cb, &c); err != nil {
		t.Fatal(err)
	}
	return h, c
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got success", code)
	}
	if got := CodeOf(err); got != code {
		t.Fatalf("want code %s, got %s (%v)", code, got, err)
	}
}

// tokenOf is the token of a single-shot attestation's response.
func tokenOf(r *AttestResponse, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if r.Token == "" {
		return "", errors.New("the response carries no token")
	}
	return r.Token, nil
}
