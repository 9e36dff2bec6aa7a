package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/attestd/attestd/api/playground"
	"github.com/attestd/attestd/instance"
)

// TestPlaygroundRoutes: the playground is served below every instance's
// prefix unless the mount turns it off, its files are public, and the
// routes it calls keep their roles.
func TestPlaygroundRoutes(t *testing.T) {
	e := startEnv(t, newSigner(t, "pm"),
		envInstance{name: "default", mode: instance.ModeAAD, verifier: fakeVerifier{}},
		envInstance{name: "shared", prefix: "/shared", mode: instance.ModeShared, verifier: fakeVerifier{}},
		envInstance{name: "off", prefix: "/tenants/off", mode: instance.ModeAAD, verifier: fakeVerifier{}, noPlayground: true})
	tests := []struct {
		name, method, path string
		status             int
		code               string // MAA error code of an error answer
		csp                bool
	}{
		{name: "page at the root instance", method: "GET", path: "/attestd/playground", status: 200, csp: true},
		{name: "page below a prefix", method: "GET", path: "/shared/attestd/playground", status: 200, csp: true},
		{name: "file", method: "GET", path: "/attestd/playground/app.js", status: 200, csp: true},
		{name: "missing file: MAA 404", method: "GET", path: "/attestd/playground/nope.js", status: 404, code: "NotFound", csp: true},
		{name: "write method: MAA 405", method: "POST", path: "/attestd/playground", status: 405, code: "MethodNotAllowed", csp: true},
		{name: "turned off", method: "GET", path: "/tenants/off/attestd/playground", status: 404, code: "NotFound"},
		{name: "turned off, files too", method: "GET", path: "/tenants/off/attestd/playground/app.js", status: 404, code: "NotFound"},
		// What the page calls: the dry run needs a reader token where the
		// instance has an identity, and the playground adds no way around it.
		{name: "explain without a token", method: "POST", path: "/attestd/policies/SgxEnclave:explain", status: 401, code: "Unauthorized"},
		{name: "policy read without a token", method: "GET", path: "/policies/SgxEnclave" + api, status: 401, code: "Unauthorized"},
		{name: "Shared: explain is public", method: "POST", path: "/shared/attestd/policies/SgxEnclave:explain", status: 200},
		{name: "turned off: explain still served", method: "POST", path: "/tenants/off/attestd/policies/SgxEnclave:explain", status: 401, code: "Unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = `{"claims":{}}`
			}
			r := e.do(tc.method, tc.path, "", "application/json", body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != "" {
				if got := r.errCode(t); got != tc.code {
					t.Fatalf("code %s, want %s", got, tc.code)
				}
			}
			if got := r.header.Get("Content-Security-Policy"); (got == playground.ContentSecurityPolicy) != tc.csp {
				t.Fatalf("CSP %q (want it: %v)", got, tc.csp)
			}
		})
	}
}

// TestPlaygroundExplainLeaksNothing: what the playground shows of a dry run
// over evidence carries neither the caller's bearer token nor key material,
// nor the claims the token signer adds (nonce, x-ms-policy-signer).
func TestPlaygroundExplainLeaksNothing(t *testing.T) {
	e := newAPIEnv(t)
	quote := b64u.EncodeToString(make([]byte, 64))
	b, _ := json.Marshal(map[string]any{"policy": permitAll, "evidence": map[string]any{"quote": quote, "nonce": "the-nonce"}})
	r := e.do("POST", "/attestd/policies/SgxEnclave:explain", e.tokens["reader"], "application/json", string(b))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	s := string(r.body)
	for _, bad := range []string{e.tokens["reader"], "PRIVATE KEY", `"d":`, "the-nonce", "x-ms-policy-signer", `"jti"`} {
		if strings.Contains(s, bad) {
			t.Errorf("explain answer contains %q", bad)
		}
	}
}
