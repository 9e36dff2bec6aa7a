package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/testenv"
)

// exchange is one recorded MAA request and its answer, for a replay stub.
type exchange struct {
	method, path string // path without the query
	status       int
	body         []byte // the recorded answer
	// wantBody, when set, is the request body MAA received (the replayed
	// client must send exactly these bytes).
	wantBody []byte
}

// replay serves exchanges over TLS and records what the client sent; a
// request nobody recorded is answered 404 and fails the test.
type replay struct {
	t   *testing.T
	ex  []exchange
	mu  sync.Mutex
	got []*http.Request
}

func (rp *replay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rp.mu.Lock()
	rp.got = append(rp.got, r)
	rp.mu.Unlock()
	for _, e := range rp.ex {
		if r.Method != e.method || r.URL.Path != e.path {
			continue
		}
		if e.wantBody != nil && !bytes.Equal(b, e.wantBody) {
			rp.t.Errorf("%s %s: body %q, MAA received %q", r.Method, r.URL.Path, b, e.wantBody)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("x-ms-request-id", "replayed")
		w.WriteHeader(e.status)
		w.Write(e.body)
		return
	}
	rp.t.Errorf("unrecorded request %s %s", r.Method, r.URL)
	http.NotFound(w, r)
}

func replayClient(t *testing.T, val client.Validation, ex ...exchange) (*client.Client, *replay) {
	t.Helper()
	rp := &replay{t: t, ex: ex}
	srv := httptest.NewTLSServer(rp)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, &client.Options{HTTPClient: srv.Client(), Validation: val, Retry: client.Retry{MaxRetries: -1},
		Credential: func(context.Context) (string, error) { return "replay-token", nil }})
	if err != nil {
		t.Fatal(err)
	}
	return c, rp
}

func sharedJSON(t *testing.T, rel string, v any) {
	t.Helper()
	if err := json.Unmarshal(testenv.ReadShared(t, rel), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// TestReplaySetPolicy replays the real PUT /policies/Tpm of MAA (an AAD
// instance, unsigned policy): the client sends byte for byte the policy
// JWS the JS SDK sent, MAA's answer token names the SHA-256 of those bytes
// (the SHA-256 of what the client sent), and the resolution is Updated.
func TestReplaySetPolicy(t *testing.T) {
	var rec struct {
		Request struct {
			Method, URL string
			ContentType string `json:"content_type"`
			Body        string
		}
		Response struct {
			Token string
		} `json:"response_200"`
		PolicyText string `json:"policy_text"`
	}
	sharedJSON(t, "samples/recordings/set_policy_unsigned_exchange.json", &rec)
	path, query, _ := strings.Cut(rec.Request.URL, "?")
	answer, _ := json.Marshal(map[string]string{"token": rec.Response.Token})
	// The recorded token was signed by an instance whose /certs was not
	// recorded: its signature cannot be checked here.
	c, rp := replayClient(t, client.Validation{SkipValidation: true},
		exchange{method: rec.Request.Method, path: path, status: 200, body: answer, wantBody: []byte(rec.Request.Body)})
	r, err := c.SetPolicy(context.Background(), client.Tpm, rec.PolicyText, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(rec.Request.Body))
	if r.Resolution != "Updated" || !bytes.Equal(r.TokenHash, sum[:]) || r.Signer != nil {
		t.Fatalf("result %+v", r)
	}
	got := rp.got[0]
	if got.URL.RawQuery != query || got.Header.Get("Content-Type") != rec.Request.ContentType || got.Header.Get("Authorization") != "Bearer replay-token" {
		t.Fatalf("request %s?%s, content type %q, auth %q", got.URL.Path, got.URL.RawQuery, got.Header.Get("Content-Type"), got.Header.Get("Authorization"))
	}
	// (With validation off the client does not compare the hash itself;
	// TestResponseBinding checks that it refuses a mismatch from attestd.)
}

// TestReplayMetadataAndCerts replays MAA's OpenID metadata and /certs
// (keys with only kid, kty and x5c) through the client's own calls.
func TestReplayMetadataAndCerts(t *testing.T) {
	var md map[string]json.RawMessage
	sharedJSON(t, "samples/recordings/openid_configuration.json", &md)
	body := md["GET /.well-known/openid-configuration"]
	var want struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	json.Unmarshal(body, &want)
	c, rp := replayClient(t, client.Validation{},
		exchange{method: "GET", path: "/.well-known/openid-configuration", status: 200, body: body},
		exchange{method: "GET", path: "/certs", status: 200, body: testenv.ReadShared(t, realJWKS)})
	ctx := context.Background()
	got, err := c.GetOpenIDMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Issuer != want.Issuer || got.JWKSURI != want.JWKSURI || want.Issuer != "https://shareduks.uks.attest.azure.net" {
		t.Fatalf("metadata %+v, recorded %+v", got, want)
	}
	jwks, err := c.GetSigningCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 5 || jwks.Keys[1].KID == "" || len(jwks.Keys[1].Certificates) != 3 {
		t.Fatalf("JWKS %+v", jwks)
	}
	for _, r := range rp.got {
		// Neither call carries an api-version (maa-api.md §0.1), as MAA's
		// SDKs send them; the credential is not needed but sent.
		if r.URL.RawQuery != "" {
			t.Errorf("%s carries %q", r.URL.Path, r.URL.RawQuery)
		}
	}
}

// TestReplayErrors replays MAA's real error answers: the 400 of a TPM
// attestation without a policy (code "Bad request", with a space, as MAA
// sends it) and a 401 with an empty body (what MAA answers without a
// token): both become *client.Error with the recorded code and message.
func TestReplayErrors(t *testing.T) {
	var rec map[string]json.RawMessage
	sharedJSON(t, "samples/recordings/tpm_init_exchange.json", &rec)
	var errBody json.RawMessage
	for k, v := range rec {
		if strings.HasPrefix(k, "error_400") {
			errBody = v
		}
	}
	if errBody == nil {
		t.Fatal("no recorded 400 in tpm_init_exchange.json")
	}
	var want struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(errBody, &want)
	c, _ := replayClient(t, client.Validation{},
		exchange{method: "POST", path: "/attest/Tpm", status: 400, body: errBody},
		exchange{method: "GET", path: "/policies/SgxEnclave", status: 401, body: nil})
	_, err := c.AttestTpmProtocol(context.Background(), []byte(`{"payload":{"type":"aikcert"}}`))
	if e := wantError(t, err, 400, want.Error.Code); e.Message != want.Error.Message || e.RequestID != "replayed" || want.Error.Code != "Bad request" {
		t.Fatalf("error %+v, recorded %+v", e, want)
	}
	_, _, err = c.GetPolicy(context.Background(), client.SgxEnclave)
	if e := wantError(t, err, 401, ""); e.Message != "" {
		t.Fatalf("empty 401: %+v", e)
	}
}

// TestReplayTpmInit replays MAA's first TPM protocol exchange: the client
// sends {"data": base64url(message)} with the recorded bytes and returns
// MAA's decoded challenge message.
func TestReplayTpmInit(t *testing.T) {
	var rec struct {
		Request struct {
			Body struct{ Data string }
		}
		Response struct{ Data string } `json:"response_200"`
	}
	sharedJSON(t, "samples/recordings/tpm_init_exchange.json", &rec)
	msg, err := base64.RawURLEncoding.DecodeString(rec.Request.Body.Data)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(map[string]string{"data": rec.Response.Data})
	c, rp := replayClient(t, client.Validation{}, exchange{method: "POST", path: "/attest/Tpm", status: 200, body: answer})
	reply, err := c.AttestTpmProtocol(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Payload struct {
			Challenge      string `json:"challenge"`
			ServiceContext string `json:"service_context"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(reply, &m); err != nil || m.Payload.Challenge == "" || m.Payload.ServiceContext == "" {
		t.Fatalf("reply %s: %v", reply, err)
	}
	if rp.got[0].URL.Query().Get("api-version") != client.DefaultAPIVersion {
		t.Fatalf("query %q", rp.got[0].URL.RawQuery)
	}
}

// TestReplaySevSnpToken replays MAA's real SEV-SNP attestation answer: the
// client reads its typed claims. Its signer's /certs was not recorded, so
// with validation on it is refused as signed by an unknown key, never
// accepted on the strength of its own header.
func TestReplaySevSnpToken(t *testing.T) {
	tok := strings.TrimSpace(string(testenv.ReadShared(t, realSNPToken)))
	answer, _ := json.Marshal(map[string]string{"token": tok})
	ex := []exchange{{method: "POST", path: "/attest/SevSnpVm", status: 200, body: answer},
		{method: "GET", path: "/certs", status: 200, body: testenv.ReadShared(t, realJWKS)}}
	c, _ := replayClient(t, client.Validation{SkipValidation: true}, ex...)
	r, err := c.AttestSevSnpVm(context.Background(), []byte(`{"SnpReport":"AA"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.AttestationType != "sevsnpvm" || r.Token.Verified || len(r.PolicyHash) != 32 {
		t.Fatalf("result %+v", r)
	}
	c, _ = replayClient(t, client.Validation{SkipTimeValidation: true}, ex...)
	_, err = c.AttestSevSnpVm(context.Background(), []byte(`{"SnpReport":"AA"}`), nil)
	wantReason(t, err, client.ReasonUnknownKey)
}
