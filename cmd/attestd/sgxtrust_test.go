package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// writePlatform writes a test platform's root (PEM) and collateral
// (dcap-qvl JSON) into dir and returns a quote from it.
func writePlatform(t *testing.T, dir string, opts sgxplatform.Options) []byte {
	t.Helper()
	p, err := sgxplatform.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := bundle.MarshalQVLJSON(p.Collateral())
	if err != nil {
		t.Fatal(err)
	}
	root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Roots()[0].Raw})
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), root, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "collateral.json"), coll, 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := p.Quote(sgxplatform.QuoteOptions{ProductID: 1, SVN: 2, MREnclave: [32]byte{0xee}})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func jwtClaims(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var r struct{ Token string }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	parts := strings.Split(r.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", r.Token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSGXTrustConfig: the server trusts Intel's SGX root only, unless the
// configuration names other roots; "verify_at" and "grace" are marked in
// the token and logged.
func TestSGXTrustConfig(t *testing.T) {
	now := time.Now().UTC()
	tests := []struct {
		name     string
		platform sgxplatform.Options
		sgx      string // the "sgx" section
		status   int
		check    string            // in the error message (rejections)
		claims   map[string]string // exact string claims (acceptances)
		absent   []string          // claims that must not be in the token
		log      []string          // in the server log (level warn)
	}{
		{name: "test root not trusted by default", sgx: `{}`, status: 400, check: "check pck_chain:"},
		{name: "extra root beside Intel's", sgx: `{"extra_roots": ["root.pem"]}`, status: 200,
			absent: []string{sgx.ClaimVerifiedAt, "x-ms-sgx-collateral-grace-used"}, log: []string{"SGX trusted root configured"}},
		{name: "replacement root", sgx: `{"roots": ["root.pem"]}`, status: 200,
			claims: map[string]string{"x-ms-sgx-tcb-status": "UpToDate"}, absent: []string{sgx.ClaimVerifiedAt}},
		{name: "verify_at inside the windows", sgx: `{"roots": ["root.pem"], "verify_at": "` + now.Add(-30*time.Minute).Format(time.RFC3339) + `"}`, status: 200,
			claims: map[string]string{sgx.ClaimVerifiedAt: now.Add(-30 * time.Minute).Format(time.RFC3339)},
			log:    []string{"FIXED instant", "verified as of the configured sgx.verify_at"}},
		{name: "verify_at after the collateral expired", sgx: `{"roots": ["root.pem"], "verify_at": "` + now.Add(40*24*time.Hour).Format(time.RFC3339) + `"}`, status: 400, check: ".expired"},
		{name: "expired collateral without grace", platform: sgxplatform.Options{ExpiredCollateral: true}, sgx: `{"roots": ["root.pem"]}`, status: 400, check: "tcb_info.expired"},
		{name: "expired collateral within grace", platform: sgxplatform.Options{ExpiredCollateral: true}, sgx: `{"roots": ["root.pem"], "grace": "2h"}`, status: 200,
			claims: map[string]string{"x-ms-sgx-collateral-grace-used": "tcb_info,qe_identity,root_crl,pck_crl"},
			log:    []string{"grace period enabled", "accepted after its nextUpdate"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			quote := writePlatform(t, dir, tc.platform)
			cfg := `{"collateral": {"type": "bundle", "path": "collateral.json"}, "sgx": ` + tc.sgx + `}`
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			s := startServer(t, "--config", filepath.Join(dir, "config.json"), "--data", filepath.Join(dir, "data"))
			defer s.stop(t)
			body := `{"quote": "` + base64.RawURLEncoding.EncodeToString(quote) + `"}`
			code, b := s.do(t, "POST", "/attest/SgxEnclave?api-version=2020-10-01", "", body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, b)
			}
			if tc.status != 200 {
				if !strings.Contains(string(b), `"InvalidParameter"`) || !strings.Contains(string(b), tc.check) {
					t.Fatalf("error %s does not name %q", b, tc.check)
				}
				return
			}
			c := jwtClaims(t, b)
			if c["x-ms-sgx-mrenclave"] != "ee"+strings.Repeat("0", 62) {
				t.Errorf("x-ms-sgx-mrenclave = %v", c["x-ms-sgx-mrenclave"])
			}
			for k, want := range tc.claims {
				if c[k] != want {
					t.Errorf("%s = %v, want %q", k, c[k], want)
				}
			}
			for _, k := range tc.absent {
				if _, ok := c[k]; ok {
					t.Errorf("claim %s present: %v", k, c[k])
				}
			}
			for _, l := range tc.log {
				if !strings.Contains(s.out.String(), l) {
					t.Errorf("log lacks %q:\n%s", l, s.out)
				}
			}
		})
	}
}

func TestSGXConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writePlatform(t, dir, sgxplatform.Options{})
	if err := os.WriteFile(filepath.Join(dir, "notca.pem"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Config{dir: dir}
	for _, block := range []string{`{"grace": "soon"}`, `{"grace": "-1h"}`, `{"verify_at": "yesterday"}`, `{"roots": ["missing.pem"]}`, `{"roots": ["notca.pem"]}`} {
		var sc sgx.Config
		if err := json.Unmarshal([]byte(block), &sc); err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Resolve(c.path); err == nil {
			t.Errorf("%s accepted", block)
		}
	}
}

// TestTCBBaselinesWithMarkedVerification is the regression test of a
// decorator that hid the verifier's optional capabilities: with sgx.grace
// or sgx.verify_at configured, GET /tcbbaselines/SgxEnclave answered 501.
// It must list the bundle's baseline like the unconfigured server does.
func TestTCBBaselinesWithMarkedVerification(t *testing.T) {
	at := time.Now().UTC().Add(-30 * time.Minute).Format(time.RFC3339)
	for _, block := range []string{`{"roots": ["root.pem"]}`, `{"roots": ["root.pem"], "grace": "2h"}`, `{"roots": ["root.pem"], "verify_at": "` + at + `"}`} {
		t.Run(block, func(t *testing.T) {
			dir := t.TempDir()
			writePlatform(t, dir, sgxplatform.Options{})
			cfg := `{"collateral": {"type": "bundle", "path": "collateral.json"}, "sgx": ` + block + `}`
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data")
			s := startServer(t, "--config", filepath.Join(dir, "config.json"), "--data", data)
			defer s.stop(t)
			var tok bytes.Buffer
			if code := run(context.Background(), []string{"token", "--data", data, "--role", "reader"}, &tok, io.Discard); code != 0 {
				t.Fatalf("token: exit %d", code)
			}
			code, b := s.do(t, "GET", "/tcbbaselines/SgxEnclave?api-version=2025-06-01", lastLine(tok.String()), "")
			if code != 200 {
				t.Fatalf("status %d, want 200: %s", code, b)
			}
			var body struct {
				TCBBaselines []struct {
					TCBIdentifier string `json:"tcbIdentifier"`
					IsSelectedTCB bool   `json:"isSelectedTcb"`
				} `json:"tcbBaselines"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.TCBBaselines) == 0 || body.TCBBaselines[0].TCBIdentifier != "azuredefault" || !body.TCBBaselines[0].IsSelectedTCB {
				t.Fatalf("baselines %s: want azuredefault first and selected", b)
			}
		})
	}
}
