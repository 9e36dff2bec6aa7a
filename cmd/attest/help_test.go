package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/attestd/attestd/internal/attestdtest"
)

// verbFlags are the flags only some commands take (dispatch refuses them
// elsewhere).
func verbFlags() []string {
	var all []string
	for _, c := range commands {
		for _, f := range c.flags {
			if !slices.Contains(all, f) {
				all = append(all, f)
			}
		}
	}
	return all
}

// TestCommandHelp: "attest VERB --help" (and "attest help VERB") prints
// that verb's synopsis, each of its flags, the global flags and an
// example; the flags it lists are exactly those dispatch accepts for it;
// every verb of the general usage has such help.
func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		for _, args := range [][]string{append(slices.Clone(words), "--help"), append([]string{"help"}, words...), append(slices.Clone(words), "-h")} {
			code, out, errs := cli(t, args...)
			if code != 0 || out != "" {
				t.Fatalf("%v: exit %d, stdout %q", args, code, out)
			}
			for _, want := range append([]string{"Usage: attest [global flags] " + c.synopsis, "Example:\n  attest ", c.about}, flagNames(append(slices.Clone(c.flags), globalFlags...))...) {
				if !strings.Contains(errs, want) {
					t.Errorf("%v: help lacks %q:\n%s", args, want, errs)
				}
			}
			if strings.Contains(errs, "Flags (anywhere on the line)") {
				t.Errorf("%v: printed the general usage", args)
			}
		}
		for _, f := range verbFlags() {
			_, _, errs := cli(t, append(slices.Clone(words), "--"+f, "x")...)
			refused := strings.Contains(errs, "--"+f+" does not apply")
			if refused == slices.Contains(c.flags, f) {
				t.Errorf("%s --%s: refused=%v, but its help lists %v", c.name, f, refused, c.flags)
			}
		}
	}

	// Every command line of the general usage has its own help.
	synopsis := regexp.MustCompile(`(?m)^  attest .*?\[flags\] ((?:[a-z][a-z|-]* ?)+)`)
	m := synopsis.FindAllStringSubmatch(usage, -1)
	if len(m) < 10 {
		t.Fatalf("found %d command lines in the usage", len(m))
	}
	for _, sm := range m {
		words := strings.Fields(sm[1])
		last := len(words) - 1
		for _, alt := range strings.Split(words[last], "|") {
			name := strings.Join(append(slices.Clone(words[:last]), alt), " ")
			if cmd, _ := lookupCommand(strings.Fields(name)); cmd == nil || cmd.name != name {
				t.Errorf("usage names %q, which has no command help", name)
			}
		}
	}

	// A group lists its commands; the general help stays the default.
	if code, _, errs := cli(t, "policy-certs", "--help"); code != 0 || !strings.Contains(errs, "policy-certs add CERT.pem") || !strings.Contains(errs, "policy-certs list") {
		t.Fatalf("group help: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "--help"); code != 0 || !strings.Contains(errs, "Flags (anywhere on the line)") {
		t.Fatalf("general help: %d %s", code, errs)
	}
	// A usage mistake points at the command's help.
	if code, _, errs := cli(t, "--endpoint", "https://x", "sgx"); code != 2 || !strings.Contains(errs, "Run 'attest sgx --help'") {
		t.Fatalf("usage error: %d %s", code, errs)
	}
}

func flagNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "\n  --" + n + " "
	}
	return out
}

// TestOutputJSON: with --output json every command prints one JSON
// document on stdout, success or failure (MAA's error envelope plus the
// status, request id, reason), and the exit status is unchanged.
func TestOutputJSON(t *testing.T) {
	dir := t.TempDir()
	s, err := attestdtest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := []string{"--output", "json", "--endpoint", s.URL, "--cacert", s.CAFile}
	admin := append(slices.Clone(base), "--token", s.Contributor)
	runtime := []byte("json output")
	quote, err := s.Quote(false, runtime, false)
	if err != nil {
		t.Fatal(err)
	}
	quoteFile, rtFile := write(t, dir, "q.bin", quote), write(t, dir, "rt.bin", runtime)
	policyFile := write(t, dir, "p.txt", []byte("version=1.0; authorizationrules{=> permit();}; issuancerules{};"))

	// sgx: the token (to pass on), unsigned=false and the claims.
	code, out, errs := cli(t, append(slices.Clone(base), "sgx", "--quote", quoteFile, "--runtime-data", rtFile)...)
	var att struct {
		Token    string         `json:"token"`
		Unsigned bool           `json:"unsigned"`
		Claims   map[string]any `json:"claims"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &att) != nil || strings.Count(att.Token, ".") != 2 || att.Unsigned || att.Claims["x-ms-attestation-type"] != "sgx" {
		t.Fatalf("sgx: %d %s %s", code, out, errs)
	}

	tests := []struct {
		name  string
		args  []string
		code  int
		check func(m map[string]any) bool
	}{
		{"policy get", append(slices.Clone(admin), "policy", "get", "SgxEnclave"), 0, func(m map[string]any) bool {
			return m["type"] == "SgxEnclave" && strings.Contains(m["policy"].(string), "version=") && m["signer"] == nil
		}},
		{"token verify valid", []string{"--output", "json", "--cacert", s.CAFile, "--issuer", s.URL, "token", "verify", att.Token}, 0, func(m map[string]any) bool {
			c, _ := m["claims"].(map[string]any)
			return m["valid"] == true && m["attestationType"] == "sgx" && m["issuer"] == s.URL && m["kid"] != "" && c["x-ms-sgx-mrenclave"] != nil
		}},
		{"token verify wrong issuer", []string{"--output", "json", "--cacert", s.CAFile, "--endpoint", s.URL, "--issuer", "https://elsewhere", "token", "verify", att.Token}, 1, func(m map[string]any) bool {
			e, _ := m["error"].(map[string]any)
			return e["code"] == "InvalidToken" && e["reason"] == "issuer"
		}},
		{"service error", append(append(slices.Clone(base), "--endpoint", s.URL+attestdtest.IsolatedPrefix, "--token", s.Contributor), "policy", "set", "SgxEnclave", policyFile), 1, func(m map[string]any) bool {
			e, _ := m["error"].(map[string]any)
			return e["code"] == "InvalidOperation" && e["status"] == 400.0 && e["message"] != "" && e["attempts"] == 1.0
		}},
		{"usage error", append(slices.Clone(base), "sgx"), 2, func(m map[string]any) bool {
			e, _ := m["error"].(map[string]any)
			return e["code"] == "Usage" && strings.Contains(e["message"].(string), "--quote")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := cli(t, tc.args...)
			var m map[string]any
			if code != tc.code || json.Unmarshal([]byte(out), &m) != nil || !tc.check(m) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
		})
	}
	if code, _, errs := cli(t, "--output", "yaml", "--endpoint", s.URL, "certs"); code != 2 || !strings.Contains(errs, "want text or json") {
		t.Fatalf("--output yaml: %d %s", code, errs)
	}
}

// TestRetriesFlag: --retries 0 sends a throttled call once and reports the
// service's Retry-After; by default the CLI repeats it (Retry-After 1 s,
// the shortest a server can ask for) and succeeds.
func TestRetriesFlag(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"code":"TooManyRequests","message":"slow down"}}`)
			return
		}
		io.WriteString(w, `{"issuer":"https://x","jwks_uri":"https://x/certs"}`)
	}))
	defer srv.Close()
	code, out, _ := cli(t, "--output", "json", "--retries", "0", "--endpoint", srv.URL, "metadata")
	var m struct {
		Error map[string]any `json:"error"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &m) != nil || m.Error["code"] != "TooManyRequests" || m.Error["retryAfterSeconds"] != 1.0 || m.Error["attempts"] != 1.0 || calls.Load() != 1 {
		t.Fatalf("--retries 0: %d %s (%d calls)", code, out, calls.Load())
	}
	code, out, errs := cli(t, "--endpoint", srv.URL, "metadata")
	if code != 0 || !strings.Contains(out, `"issuer": "https://x"`) || calls.Load() != 3 {
		t.Fatalf("default retries: %d %s %s (%d calls)", code, out, errs, calls.Load())
	}
}
