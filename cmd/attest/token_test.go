package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/internal/testenv"
)

// TestTokenVerify: "attest token verify" exits 0 on a valid token and 1
// naming the check on each bad one, against a real attestd's /certs and
// offline against a real MAA JWKS.
func TestTokenVerify(t *testing.T) {
	dir := t.TempDir()
	s, err := attestdtest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c, err := client.New(s.URL, &client.Options{HTTPClient: s.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	runtime := []byte(`{"kty":"EC","crv":"P-256"}`)
	quote, err := s.Quote(false, runtime, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.AttestSgxEnclave(ctx, quote, &client.AttestOptions{RuntimeJSON: runtime})
	if err != nil {
		t.Fatal(err)
	}
	good := res.Token.Raw
	draft, err := c.AttestSgxEnclave(ctx, quote, &client.AttestOptions{RuntimeJSON: runtime,
		DraftPolicy: "version=1.0; authorizationrules{=> permit();}; issuancerules{};"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(body, &claims)
	claims["x-ms-sgx-mrenclave"] = strings.Repeat("00", 32)
	forged, _ := json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]

	base := []string{"--cacert", s.CAFile, "--issuer", s.URL}
	later := time.Now().Add(9 * time.Hour).UTC().Format(time.RFC3339)
	realJWKS := testenv.Shared(t, "samples/azure-samples/sgx.attest.sample.oe.sdk_validatequotes.net_samples_get.certs.response.body.json")
	snp := strings.TrimSpace(string(testenv.ReadShared(t, "samples/azure-samples/maa.jwt.verifier.dotnet_sev-snp-jwt.txt")))

	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"valid", append(base, "token", "verify", good), 0, "VALID sgx token of " + s.URL, ""},
		{"valid, expected type", append(base, "token", "verify", "--type", "sevsnpvm,sgx", good), 0, `"x-ms-sgx-mrenclave": "` + strings.Repeat("a1", 32), ""},
		{"valid, via endpoint", []string{"--cacert", s.CAFile, "--endpoint", s.URL, "--issuer", s.URL, "token", "verify", good}, 0, "VALID", ""},
		{"another issuer", []string{"--cacert", s.CAFile, "--issuer", s.URL + attestdtest.IsolatedPrefix, "token", "verify", good}, 1, "INVALID (issuer)", "(issuer)"},
		{"expired", append(base, "token", "verify", "--at", later, good), 1, "INVALID (expired)", "expired at"},
		{"tampered", append(base, "token", "verify", tampered), 1, "INVALID (signature)", "does not verify"},
		{"draft", append(base, "token", "verify", draft.Token.Raw), 1, "INVALID (unsigned)", "alg \"none\""},
		{"unexpected type", append(base, "token", "verify", "--type", "tdxvm", good), 1, "INVALID (attestation-type)", "tdxvm"},
		{"garbage", append(base, "token", "verify", "a.b"), 1, "INVALID (malformed)", ""},
		{"real MAA token, real JWKS of another instance", []string{"--issuer", "https://sharedweu.weu.test.attest.azure.net", "token", "verify",
			"--certs", realJWKS, "--at", "2025-04-08T05:00:00Z", snp}, 1, "INVALID (unknown-key)", "is not a signing key"},
		{"no issuer", []string{"token", "verify", good}, 2, "", "--issuer"},
		{"no token", append(base, "token", "verify"), 2, "", "takes 1 argument"},
		{"bad time", append(base, "token", "verify", "--at", "tomorrow", good), 2, "", "RFC 3339"},
		{"flag of another command", append(base, "token", "verify", "--quote", "q", good), 2, "", "--quote does not apply"},
		{"type flag elsewhere", append(base, "--endpoint", s.URL, "certs", "--type", "sgx"), 2, "", "--type does not apply"},
		{"unknown token verb", append(base, "token", "mint"), 2, "", "token needs verify"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := cli(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
		})
	}
}
