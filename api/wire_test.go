package api

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// TestReplayJSWire replays the HTTP requests the published
// @azure/attestation@1.0.0 package emitted (samples/wire-js-1.0.0, signed by
// jsrsasign with a throwaway key) against attestd: every body must be
// understood, and the signed ones must verify.
func TestReplayJSWire(t *testing.T) {
	var reqs []struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	if err := json.Unmarshal(testenv.ReadShared(t, "samples/wire-js-1.0.0/requests.json"), &reqs); err != nil {
		t.Fatal(err)
	}
	// The certificates:add JWS is signed by the recording's policy signer:
	// seed the Isolated instance with it, as its operator would have.
	var seed *x509.Certificate
	for _, r := range reqs {
		if strings.HasPrefix(r.URL, "/certificates:add") {
			var jws string
			json.Unmarshal([]byte(r.Body), &jws)
			hb, _ := b64u.DecodeString(strings.Split(jws, ".")[0])
			var h struct{ X5c []string }
			json.Unmarshal(hb, &h)
			der, _ := base64.StdEncoding.DecodeString(h.X5c[0])
			var err error
			if seed, err = x509.ParseCertificate(der); err != nil {
				t.Fatal(err)
			}
		}
	}
	if seed == nil {
		t.Fatal("recording has no certificates:add")
	}
	e := newAPIEnvTB(t, seed)
	c := e.tokens["contributor"]
	for i, r := range reqs {
		path := r.URL
		inst := "default"
		if strings.HasPrefix(path, "/certificates") {
			path, inst = "/tenants/iso"+path, "iso"
		}
		bearer := ""
		if r.Headers["authorization"] != "" || strings.HasPrefix(path, "/tenants/iso/certificates") || strings.HasPrefix(path, "/policies") {
			bearer = c
		}
		res := e.do(r.Method, path, bearer, r.Headers["content-type"], r.Body)
		name := r.Method + " " + path
		switch {
		case strings.HasPrefix(path, "/attest/Tpm"):
			if res.status != 400 || res.errCode(t) != "Bad request" {
				t.Errorf("%d %s: %d %s", i, name, res.status, res.body)
			}
		case strings.HasPrefix(path, "/attest/"):
			// The recorded quotes are placeholders ("AQIDBAU"); the test
			// verifier rejects their length, which proves the body decoded.
			if res.status != 400 || !strings.Contains(string(res.body), "fake.length") {
				t.Errorf("%d %s: %d %s", i, name, res.status, res.body)
			}
		case res.status != 200:
			t.Errorf("%d %s: %d %s", i, name, res.status, res.body)
		case strings.HasPrefix(path, "/policies/") || strings.HasPrefix(path, "/tenants/iso/certificates"):
			cl := e.claims(inst, res)
			signed := strings.Contains(r.Body, "eyJhbGciOiJSUzI1NiIs") // {"alg":"RS256",
			if strings.Contains(path, ":add") || strings.Contains(path, ":remove") {
				if cl["x-ms-certificate-thumbprint"] == nil {
					t.Errorf("%d %s: %v", i, name, cl)
				}
			} else if r.Method != "GET" {
				if _, ok := cl["x-ms-policy-signer"]; ok != signed {
					t.Errorf("%d %s: signer present=%v, signed=%v", i, name, ok, signed)
				}
			}
		}
	}
}
