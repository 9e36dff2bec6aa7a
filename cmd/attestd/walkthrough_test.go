package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeWalkthrough extracts the shell lines between the walkthrough markers
// of README.md (outside the code fences).
func readmeWalkthrough(t *testing.T, readme string) string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- walkthrough:begin -->")
	body, _, ok2 := strings.Cut(rest, "<!-- walkthrough:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no walkthrough markers")
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "```") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestREADMEWalkthrough runs the README's walk-through, verbatim, in a copy
// of the repository's tracked files (a fresh clone, as far as the build is
// concerned) and checks what it printed: the binaries build, the server
// becomes ready, the policy is set, both attestations succeed, the metrics
// count them and the audit trail lists the change.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs a server")
	}
	for _, tool := range []string{"bash", "git", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := readmeWalkthrough(t, filepath.Join(root, "README.md"))
	files, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	clone := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		src := filepath.Join(root, f)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(clone, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = clone
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(clone, "examples/local/server.log"))
		t.Fatalf("walk-through failed: %v\n%s\nserver log:\n%s", err, out.String(), log)
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^attestd \S+ go1\.`),                      // version
		regexp.MustCompile(`(?m)^ok: version 1\.0, x-ms-policy-hash \S+`), // policy check
		regexp.MustCompile(`(?m)^https://127\.0\.0\.1:18443$`),            // ready file
		regexp.MustCompile(`"x-ms-sgx-tcb-status": "UpToDate"`),           // attestation
		regexp.MustCompile(`"example": "attestd walk-through"`),           // the policy set
		regexp.MustCompile(`\{"status":"ready"`),                          // /readyz
		regexp.MustCompile(`attestd_attestations_total\{check="none",instance="default",outcome="ok",type="SgxEnclave"\} 1`),
		regexp.MustCompile(`attestd_attestations_total\{check="none",instance="shared",outcome="ok",type="SgxEnclave"\} 1`),
		regexp.MustCompile(`(?m)default +\d+ +sub:attestd-dev +policy\.set +SgxEnclave`), // audit list
		regexp.MustCompile(`(?m)t1 +\d+ +config +certificate\.seed`),
		regexp.MustCompile(`(?m)t1 +1 +attestd +keys\.create`), // the first signing key, in the database
	} {
		if !want.MatchString(got) {
			t.Errorf("walk-through output lacks %s:\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Join(clone, "examples/local/ready")); err == nil {
		t.Error("ready file left behind after the server stopped")
	}
}
