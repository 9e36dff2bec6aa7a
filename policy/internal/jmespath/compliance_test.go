package jmespath

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goJMESPathDir locates the pinned github.com/jmespath/go-jmespath module,
// whose compliance/ directory holds the official JMESPath compliance suite.
// This test package imports go-jmespath (fuzz_test.go), so the module is in
// the module cache whenever the test compiled; only a missing go command
// (a test binary run on its own) may skip, and never under CI.
func goJMESPathDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/jmespath/go-jmespath").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("go-jmespath module directory not available (CI must run the compliance suite): %v", err)
		}
		t.Skipf("go-jmespath module directory not available: %v", err)
	}
	return dir
}

type complianceCase struct {
	Expression string          `json:"expression"`
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error"`
	Bench      string          `json:"bench"`
}

type complianceGroup struct {
	Given json.RawMessage  `json:"given"`
	Cases []complianceCase `json:"cases"`
}

// TestCompliance runs the JMESPath compliance suite. Results are compared as
// canonical JSON (key order ignored: the suite is written for unordered
// objects).
func TestCompliance(t *testing.T) {
	dir := filepath.Join(goJMESPathDir(t), "compliance")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no compliance files in %s (glob: %v)", dir, err)
	}
	total := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var groups []complianceGroup
		if err := json.Unmarshal(raw, &groups); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for gi, g := range groups {
			data, err := ParseJSON(string(g.Given), maxDataDepth)
			if err != nil {
				t.Fatalf("%s group %d: given: %v", f, gi, err)
			}
			for _, c := range g.Cases {
				if c.Bench != "" {
					continue
				}
				total++
				name := filepath.Base(f) + ": " + c.Expression
				q, err := Compile(c.Expression)
				if c.Error != "" {
					if err == nil {
						_, err = q.Search(data, &Budget{Steps: 1 << 20})
					}
					if err == nil {
						t.Errorf("%s: want error %q, got none", name, c.Error)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: compile: %v", name, err)
					continue
				}
				got, err := q.Search(data, &Budget{Steps: 1 << 20})
				if err != nil {
					t.Errorf("%s: search: %v", name, err)
					continue
				}
				gotJSON, err := AppendJSON(nil, got, 1<<20)
				if err != nil {
					t.Errorf("%s: encode: %v", name, err)
					continue
				}
				if canon(t, string(gotJSON)) != canon(t, string(c.Result)) {
					t.Errorf("%s: got %s, want %s", name, gotJSON, c.Result)
				}
			}
		}
	}
	// go-jmespath v0.4.0 ships 862 non-benchmark cases; far fewer means the
	// suite was not found or not read, not that it passed.
	if total < 800 {
		t.Fatalf("only %d compliance cases run, want the whole suite (862 in v0.4.0)", total)
	}
	t.Logf("%d compliance cases", total)
}

func canon(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("canon %q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
