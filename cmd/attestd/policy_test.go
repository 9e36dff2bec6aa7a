package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/testing/sgxplatform"
)

func TestPolicyCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const custom13 = `version= 1.0;
authorizationrules
{
       [ type=="x-ms-sgx-is-debuggable", value==false ]
        && [ type=="x-ms-sgx-product-id", value==1 ]
    => permit();
};
issuancerules {
c:[type=="x-ms-sgx-mrsigner"] => issue(type="custom-name", value=c.value);
};
`
	good := write("good.txt", custom13)
	bad := write("bad.txt", "version=1.0\nauthorizationrules{=> permit();};")
	debug := write("debug.json", `{"x-ms-sgx-is-debuggable":true,"x-ms-sgx-product-id":1,"x-ms-sgx-mrsigner":"4aea"}`)
	release := write("release.json", `{"x-ms-sgx-is-debuggable":false,"x-ms-sgx-product-id":1,"x-ms-sgx-mrsigner":"4aea"}`)
	badClaims := write("bad.json", `{"x":1.5}`)

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings
		stderr     []string
		jsonPermit *bool // --json: decode stdout and check "permitted"
	}{
		{name: "check ok", args: []string{"policy", "check", good}, code: 0, stdout: []string{"ok: version 1.0, x-ms-policy-hash " + policy.Hash(custom13)}},
		{name: "check parse error", args: []string{"policy", "check", bad}, code: 1,
			stderr: []string{bad + ":2:1: mismatched input 'authorizationrules' expecting ';' (rule policy > versionInfo)", "Line: '2', Column: '1'"}},
		{name: "check missing file", args: []string{"policy", "check", filepath.Join(dir, "nope")}, code: 2},
		{name: "check without file", args: []string{"policy", "check"}, code: 2},
		{name: "no subcommand", args: []string{"policy"}, code: 2},
		{name: "help", args: []string{"policy", "--help"}, code: 0, stdout: []string{"attestd policy check FILE", "attestd policy explain --type TYPE"}},
		{name: "unknown subcommand", args: []string{"policy", "lint"}, code: 2, stderr: []string{"unknown subcommand \"lint\""}},
		{name: "explain claims: permitted", args: []string{"policy", "explain", "--policy", good, "--claims", release}, code: 0,
			stdout: []string{"PERMITTED (policy: given)", "decision: permit", "issued claims: custom-name = \"4aea\""}},
		{name: "explain claims: denied", args: []string{"policy", "explain", "--policy", good, "--claims", debug}, code: 1,
			stdout: []string{"DENIED", "attest would answer: 400 PolicyEvaluationError", "why not: condition 1"}},
		{name: "explain default policy", args: []string{"policy", "explain", "--type", "OpenEnclave", "--claims", debug}, code: 0,
			stdout: []string{"PERMITTED (policy: default)", "is-debuggable = true"}},
		{name: "explain --json", args: []string{"policy", "explain", "--policy", good, "--claims", debug, "--json"}, code: 1, jsonPermit: new(bool)},
		{name: "explain parse error", args: []string{"policy", "explain", "--policy", bad, "--claims", debug}, code: 1,
			stderr: []string{"policy:2:1: mismatched input", "PolicyParsingError"}},
		{name: "explain bad claims", args: []string{"policy", "explain", "--claims", badClaims}, code: 1, stderr: []string{"InvalidParameter", "not a 64-bit integer"}},
		{name: "explain neither claims nor evidence", args: []string{"policy", "explain"}, code: 2},
		{name: "explain evidence without collateral", args: []string{"policy", "explain", "--evidence", debug}, code: 2, stderr: []string{"--collateral"}},
		{name: "explain evidence for Tpm", args: []string{"policy", "explain", "--type", "Tpm", "--evidence", debug}, code: 2},
		{name: "explain Tpm claims without policy", args: []string{"policy", "explain", "--type", "Tpm", "--claims", debug}, code: 2, stderr: []string{"no default policy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := runCommand(t, tc.args, tc.code, tc.stdout, tc.stderr)
			if tc.jsonPermit != nil {
				var x struct {
					Permitted bool   `json:"permitted"`
					Decision  string `json:"decision"`
					Trace     *policy.Trace
				}
				if err := json.Unmarshal([]byte(out), &x); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				if x.Permitted != *tc.jsonPermit || x.Decision != "no-permit" || x.Trace == nil || len(x.Trace.Sections) != 1 || x.Trace.Sections[0].Name != "authorizationrules" {
					t.Fatalf("%+v", x)
				}
			}
		})
	}
}

// TestPolicyExplainEvidence dry-runs policies over a real SGX quote (vector
// D1, dcap-qvl sample) verified against its real collateral.
func TestPolicyExplainEvidence(t *testing.T) {
	quote := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote")
	coll := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	dir := t.TempDir()
	deny := filepath.Join(dir, "deny.txt")
	os.WriteFile(deny, []byte(`version=1.0; authorizationrules{ [type=="x-ms-sgx-is-debuggable", value==false] => deny(); => permit(); };`), 0o600)
	req := filepath.Join(dir, "req.json")
	q, _ := os.ReadFile(quote)
	b, _ := json.Marshal(map[string]any{"quote": base64.RawURLEncoding.EncodeToString(q), "draftPolicyForAttestation": "version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"x\", value=1);};"})
	os.WriteFile(req, b, 0o600)
	rt := filepath.Join(dir, "rt.bin")
	os.WriteFile(rt, []byte("not bound"), 0o600)
	const at = "2025-07-01T00:00:00Z"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"default policy permits", []string{"--evidence", quote, "--collateral", coll, "--at", at}, 0,
			[]string{"PERMITTED (policy: default)", "\"x-ms-sgx-tcb-status\": \"ConfigurationAndSWHardeningNeeded\"", "\"sgx-mrsigner\": \"815f42f1"}, nil},
		{"deny non-debug", []string{"--evidence", quote, "--collateral", coll, "--at", at, "--policy", deny}, 1,
			[]string{"DENIED", "A Deny claim was issued"}, nil},
		{"JSON attest request with draft policy", []string{"--evidence", req, "--collateral", coll, "--at", at}, 0,
			[]string{"PERMITTED (policy: draft)", "issued claims: x = 1"}, nil},
		{"runtime data not bound", []string{"--evidence", quote, "--collateral", coll, "--at", at, "--runtime-data", rt}, 1,
			nil, []string{"InvalidParameter", "runtimedata.binding"}},
		{"collateral expired", []string{"--evidence", quote, "--collateral", coll, "--at", "2030-01-01T00:00:00Z"}, 1,
			nil, []string{"attest would answer: InvalidParameter: evidence verification failed at check"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runCommand(t, append([]string{"policy", "explain"}, tc.args...), tc.code, tc.stdout, tc.stderr)
		})
	}
}

// TestPolicyExplainRemote: "policy explain --server" asks a running attestd,
// whose policy in force is the default unless one is given.
// TestRuntimeDataFileIsBoundAsIs: --runtime-data binds the file's bytes as
// they are, in "policy explain" (local and --server) exactly as in
// "attestd verify" — even when the file's text would decode as hex.
func TestRuntimeDataFileIsBoundAsIs(t *testing.T) {
	dir := t.TempDir()
	p, err := sgxplatform.New(sgxplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	coll, err := bundle.MarshalQVLJSON(p.Collateral())
	if err != nil {
		t.Fatal(err)
	}
	runtime := []byte("deadbeef") // also valid hex and base64
	qo := sgxplatform.QuoteOptions{}
	h := sha256.Sum256(runtime)
	copy(qo.ReportData[:], h[:])
	quote, err := p.Quote(qo)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"root.pem":        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Roots()[0].Raw}),
		"collateral.json": coll, "quote.bin": quote, "rt.txt": runtime,
		"config.json": []byte(`{"collateral": {"type": "bundle", "path": "collateral.json"}, "sgx": {"roots": ["root.pem"]}}`),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	evidenceArgs := []string{"--type", "SgxEnclave", "--evidence", f("quote.bin"), "--runtime-data", f("rt.txt")}
	local := append([]string{"--collateral", f("collateral.json"), "--roots", f("root.pem")}, evidenceArgs...)

	data := filepath.Join(dir, "data")
	s := startServer(t, "--config", f("config.json"), "--data", data)
	defer s.stop(t)
	var tokOut, tokErr bytes.Buffer
	if code := run(context.Background(), []string{"token", "--data", data, "--role", "reader"}, &tokOut, &tokErr); code != 0 {
		t.Fatalf("token: %d %s", code, tokErr.String())
	}
	remote := append([]string{"--server", s.base, "--cacert", filepath.Join(data, "tls", "cert.pem"), "--token", lastLine(tokOut.String())}, evidenceArgs...)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"verify", append([]string{"verify"}, local...), `"x-ms-sgx-ehd"`},
		{"policy explain", append([]string{"policy", "explain"}, local...), "PERMITTED"},
		{"policy explain --server", append([]string{"policy", "explain"}, remote...), "PERMITTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runCommand(t, tc.args, 0, []string{tc.want}, nil)
		})
	}
}

func TestPolicyExplainRemote(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, "--data", data)
	defer s.stop(t)
	mint := func(role string) string {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"token", "--data", data, "--role", role}, &out, &errb); code != 0 {
			t.Fatalf("token: %d %s", code, errb.String())
		}
		return lastLine(out.String())
	}
	reader, contributor := mint("reader"), mint("contributor")
	dir := t.TempDir()
	claims := filepath.Join(dir, "claims.json")
	os.WriteFile(claims, []byte(`{"x-ms-sgx-is-debuggable":true,"x-ms-sgx-svn":4}`), 0o600)
	deny := filepath.Join(dir, "deny.txt")
	os.WriteFile(deny, []byte(`version=1.0; authorizationrules{ [type=="x-ms-sgx-is-debuggable", value==true] => deny(); => permit(); };`), 0o600)
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte(`version=1.0 authorizationrules{};`), 0o600)
	stored := "version=1.0; authorizationrules{=> permit();}; issuancerules{ c:[type==\"x-ms-sgx-svn\"] => issue(type=\"stored-svn\", value=c.value); };"
	if code, b := s.do(t, "PUT", "/policies/SgxEnclave?api-version=2020-10-01", contributor, stored); code != 200 {
		t.Fatalf("PUT %d %s", code, b)
	}
	ca := filepath.Join(data, "tls", "cert.pem")
	base := []string{"policy", "explain", "--server", s.base, "--cacert", ca, "--claims", claims}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"policy in force", []string{"--token", reader}, 0, []string{"PERMITTED (policy: current)", "issued claims: stored-svn = 4"}, nil},
		{"given policy denies", []string{"--token", reader, "--policy", deny}, 1, []string{"DENIED (policy: given)", "A Deny claim was issued"}, nil},
		{"JSON", []string{"--token", reader, "--json"}, 0, []string{`"policySource": "current"`, `"stored-svn": 4`}, nil},
		{"parse error", []string{"--token", reader, "--policy", bad}, 1, nil, []string{"400 PolicyParsingError"}},
		{"no token", nil, 2, nil, []string{"401 Unauthorized"}},
		{"collateral is the server's", []string{"--token", reader, "--at", "2025-01-01T00:00:00Z"}, 2, nil, []string{"the server's business"}},
		{"evidence the server rejects", []string{"--token", reader, "--claims", "", "--evidence", claims}, 1, nil, []string{"400 InvalidParameter"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runCommand(t, append(append([]string(nil), base...), tc.args...), tc.code, tc.stdout, tc.stderr)
		})
	}
}

// runCommand runs attestd with args and checks its exit code and that
// stdout and stderr contain the given strings; it returns stdout.
func runCommand(t *testing.T, args []string, code int, stdout, stderr []string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if got := run(context.Background(), args, &out, &errb); got != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", got, code, out.String(), errb.String())
	}
	for _, s := range stdout {
		if !strings.Contains(out.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, out.String())
		}
	}
	for _, s := range stderr {
		if !strings.Contains(errb.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, errb.String())
		}
	}
	return out.String()
}
