package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/testing/snpplatform"
	"github.com/attestd/attestd/testing/tdxplatform"
)

// cli runs the command in-process and returns exit code, stdout, stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLI drives every command against a real in-process attestd over TLS
// trusted through --cacert.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	s, err := attestdtest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tokenFile := write(t, dir, "token", []byte(s.Contributor+"\n"))
	base := []string{"--endpoint", s.URL, "--cacert", s.CAFile}
	// Clipped, so that appending to it never shares a backing array.
	admin := slices.Clip(append(slices.Clone(base), "--token-file", tokenFile))
	iso := []string{"--endpoint", s.URL + attestdtest.IsolatedPrefix, "--cacert", s.CAFile, "--token", s.Contributor, "--issuer", s.URL + attestdtest.IsolatedPrefix}
	pmKey, pmCert, err := s.PM.WritePEM(dir)
	if err != nil {
		t.Fatal(err)
	}
	newcomer, err := attestdtest.NewKey("newcomer", true)
	if err != nil {
		t.Fatal(err)
	}
	_, newCert, err := newcomer.WritePEM(dir)
	if err != nil {
		t.Fatal(err)
	}
	policyFile := write(t, dir, "policy.txt", []byte("version=1.0; authorizationrules{=> permit();}; issuancerules{};"))
	badFile := write(t, dir, "bad.txt", []byte("version=1.0; authorizationrules{=> permit()};"))
	def, _ := policy.Default("SgxEnclave")

	runtime := []byte("cli runtime data")
	quote, err := s.Quote(false, runtime, true)
	if err != nil {
		t.Fatal(err)
	}
	quoteFile, rtFile := write(t, dir, "quote.bin", quote), write(t, dir, "runtime.bin", runtime)
	report, err := s.Quote(true, runtime, false)
	if err != nil {
		t.Fatal(err)
	}
	reportFile := write(t, dir, "report.bin", report)
	snpRT := []byte(`{"keys":[]}`)
	snpRD := sha256.Sum256(snpRT)
	var rd [64]byte
	copy(rd[:], snpRD[:])
	hostPolicy := []byte("aci security policy")
	snpRaw, err := s.SNP.Sign(snpplatform.Report{Version: 3, ReportData: rd, HostData: sha256.Sum256(hostPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	snpFile, snpChain := write(t, dir, "snp.bin", snpRaw), write(t, dir, "chain.pem", s.SNP.ChainPEM(false))
	snpRTFile, hostFile := write(t, dir, "snp-rt.json", snpRT), write(t, dir, "host.rego", hostPolicy)
	tdxQ := tdxplatform.Quote{}
	tdxQ.BindRuntime(snpRT)
	tdxQ.BindInitTime(hostPolicy)
	tdxRaw, err := s.TDX.Mint(tdxQ)
	if err != nil {
		t.Fatal(err)
	}
	tdxFile, tdxHex := write(t, dir, "td.quote", tdxRaw), write(t, dir, "td.hex", []byte(hex.EncodeToString(tdxRaw)+"\n"))
	draftFile := write(t, dir, "draft.txt", []byte(`version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type="from-draft", value=true); };`))

	tests := []struct {
		name       string
		args       []string
		code       int
		out, err   string // substrings of stdout / stderr
		jsonChecks map[string]any
	}{
		{name: "help", args: []string{"--help"}, code: 0, err: "policy set TYPE FILE"},
		{name: "no command", args: base, code: 2, err: "no command"},
		{name: "unknown command", args: append(base, "frobnicate"), code: 2, err: "unknown command"},
		{name: "no endpoint", args: []string{"certs"}, code: 2, err: "--endpoint is required"},
		{name: "admin without token", args: append(base, "policy", "get", "SgxEnclave"), code: 2, err: "bearer token"},
		{name: "flag of another command", args: append(admin, "policy", "get", "SgxEnclave", "--quote", "x"), code: 2, err: "--quote does not apply"},
		{name: "policy get default", args: append(admin, "policy", "get", "SgxEnclave"), out: def, err: "unsigned"},
		{name: "policy set unsigned", args: append(admin, "policy", "set", "SgxEnclave", policyFile), jsonChecks: map[string]any{"result": "Updated"}},
		{name: "policy get after set", args: append(admin, "policy", "get", "SgxEnclave"), out: "permit()"},
		{name: "policy set signed", args: append(admin, "policy", "set", "OpenEnclave", policyFile, "--sign-key", pmKey, "--sign-cert", pmCert), jsonChecks: map[string]any{"result": "Updated", "signer": "CN=pm"}},
		{name: "policy get signed", args: append(admin, "policy", "get", "OpenEnclave"), out: "permit()", err: "signed by CN=pm"},
		{name: "policy reset", args: append(admin, "policy", "reset", "SgxEnclave"), jsonChecks: map[string]any{"result": "Removed"}},
		{name: "policy file missing", args: append(admin, "policy", "set", "Tpm", draftFile+"x"), code: 2, err: "no such file"},
		{name: "policy syntax error", args: append(admin, "policy", "set", "Tpm", badFile), code: 1, err: "PolicyParsingError"},
		{name: "policy set without file", args: append(admin, "policy", "set", "Tpm"), code: 2, err: "takes 3 arguments"},
		{name: "certs", args: append(base, "certs"), out: `"kid"`},
		{name: "metadata", args: append(base, "metadata"), out: `"jwks_uri": "` + s.URL + `/certs"`},
		{name: "isolated: unsigned set refused", args: append(iso, "policy", "set", "SgxEnclave", policyFile), code: 1, err: "InvalidOperation"},
		{name: "isolated: signed set", args: append(iso, "policy", "set", "SgxEnclave", policyFile, "--sign-key", pmKey, "--sign-cert", pmCert), jsonChecks: map[string]any{"result": "Updated"}},
		{name: "isolated: list", args: append(iso, "policy-certs", "list"), out: `"subject": "CN=pm"`},
		{name: "isolated: add", args: append(iso, "policy-certs", "add", newCert, "--sign-key", pmKey, "--sign-cert", pmCert), jsonChecks: map[string]any{"result": "IsPresent"}},
		{name: "isolated: list after add", args: append(iso, "policy-certs", "list"), out: `"subject": "CN=newcomer"`},
		{name: "isolated: remove", args: append(iso, "policy-certs", "remove", newCert, "--sign-key", pmKey, "--sign-cert", pmCert), jsonChecks: map[string]any{"result": "IsAbsent"}},
		{name: "isolated: remove unsigned", args: append(iso, "policy-certs", "remove", newCert), code: 2, err: "--sign-key"},
		{name: "wrong issuer", args: append(admin, "--issuer", "https://elsewhere", "policy", "get", "SgxEnclave"), code: 1, err: "(issuer)"},
		{name: "sgx", args: append(base, "sgx", "--quote", quoteFile, "--runtime-data", rtFile, "--nonce", "abc"),
			jsonChecks: map[string]any{"x-ms-sgx-mrenclave": strings.Repeat("a1", 32), "x-ms-sgx-is-debuggable": true, "nonce": "abc", "x-ms-sgx-product-id": 7.0}},
		{name: "oe", args: append(base, "oe", "--report", reportFile, "--runtime-data", rtFile), jsonChecks: map[string]any{"x-ms-sgx-is-debuggable": false}},
		{name: "snp", args: append(base, "snp", "--report", snpFile, "--vcek-chain", snpChain, "--runtime-json", snpRTFile, "--init-time-data", hostFile),
			jsonChecks: map[string]any{"x-ms-attestation-type": "sevsnpvm", "x-ms-sevsnpvm-is-debuggable": false}},
		{name: "snp without chain", args: append(base, "snp", "--report", snpFile), code: 1, err: "snp.endorsement.missing"},
		{name: "snp unbound host data", args: append(base, "snp", "--report", snpFile, "--vcek-chain", snpChain, "--init-time-data", snpRTFile), code: 1, err: "inittimedata.binding"},
		{name: "tdx hex quote", args: append(base, "tdx", "--quote", tdxHex, "--runtime-json", snpRTFile, "--init-time-data", hostFile, "--nonce", "t1"),
			jsonChecks: map[string]any{"x-ms-attestation-type": "tdxvm", "attester_tcb_status": "UpToDate", "tdx_td_attributes_debug": false, "nonce": "t1"}},
		{name: "tdx raw quote", args: append(base, "tdx", "--quote", tdxFile), jsonChecks: map[string]any{"eat_profile": "https://aka.ms/maa-eat-profile-tdxvm"}},
		{name: "tdx unbound init-time data", args: append(base, "tdx", "--quote", tdxFile, "--init-time-data", snpRTFile), code: 1, err: "inittimedata.binding"},
		{name: "tdx SGX quote", args: append(base, "tdx", "--quote", quoteFile), code: 1, err: "quote.not_tdx"},
		{name: "tdx without quote", args: append(base, "tdx"), code: 2, err: "--quote"},
		{name: "sgx draft", args: append(base, "sgx", "--quote", quoteFile, "--runtime-data", rtFile, "--draft-policy", draftFile), err: "UNSIGNED", out: `"from-draft": true`},
		{name: "sgx unbound runtime data", args: append(base, "sgx", "--quote", quoteFile, "--runtime-data", draftFile), code: 1, err: "InvalidParameter"},
		{name: "sgx without quote", args: append(base, "sgx"), code: 2, err: "--quote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := cli(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			if tc.jsonChecks != nil {
				var m map[string]any
				if err := json.Unmarshal([]byte(out), &m); err != nil {
					t.Fatalf("stdout is not a JSON object: %v\n%s", err, out)
				}
				for k, v := range tc.jsonChecks {
					if got, ok := m[k].(string); ok && strings.HasPrefix(k, "signer") {
						if !strings.Contains(got, v.(string)) {
							t.Errorf("%s = %v, want %v", k, got, v)
						}
					} else if m[k] != v {
						t.Errorf("%s = %v, want %v", k, m[k], v)
					}
				}
			}
		})
	}
}
