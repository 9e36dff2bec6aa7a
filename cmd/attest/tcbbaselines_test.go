package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/attestdtest"
)

// TestTCBBaselinesCLI: "attest tcb-baselines TYPE" against a real attestd
// prints the table (text) or MAA's body (json) for SgxEnclave and TdxVm,
// needs a bearer token, and names the service's refusal otherwise.
func TestTCBBaselinesCLI(t *testing.T) {
	s, err := attestdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := []string{"--endpoint", s.URL, "--cacert", s.CAFile, "--token", s.Reader}

	for _, typ := range []string{"SgxEnclave", "TdxVm"} {
		code, out, errs := cli(t, append(base, "tcb-baselines", typ)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", typ, code, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "SELECTED") {
			t.Fatalf("%s: table %q", typ, out)
		}
		// The test platforms' standard documents are evaluation data
		// number 17; azuredefault is the selected baseline.
		if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != "*" || f[1] != "azuredefault" || f[2] != "17" {
			t.Errorf("%s: first row %q", typ, lines[1])
		}
		if f := strings.Fields(lines[2]); len(f) < 2 || f[0] != "17" || f[1] != "17" {
			t.Errorf("%s: second row %q (want unselected 17)", typ, lines[2])
		}

		code, out, errs = cli(t, append(base, "--output", "json", "tcb-baselines", typ)...)
		if code != 0 {
			t.Fatalf("%s json: exit %d: %s", typ, code, errs)
		}
		var body struct {
			TCBBaselines []struct {
				TCBIdentifier           string `json:"tcbIdentifier"`
				TCBEvaluationDataNumber string `json:"tcbEvaluationDataNumber"`
				TCBReleaseDate          string `json:"tcbReleaseDate"`
				IsSelectedTCB           bool   `json:"isSelectedTcb"`
			} `json:"tcbBaselines"`
		}
		if err := json.Unmarshal([]byte(out), &body); err != nil {
			t.Fatalf("%s json: %v: %s", typ, err, out)
		}
		if b := body.TCBBaselines; len(b) != 2 || b[0].TCBIdentifier != "azuredefault" || !b[0].IsSelectedTCB ||
			b[1].TCBIdentifier != "17" || b[1].TCBEvaluationDataNumber != "17" || b[1].IsSelectedTCB || b[0].TCBReleaseDate == "" {
			t.Errorf("%s json: %s", typ, out)
		}
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no token", []string{"--endpoint", s.URL, "--cacert", s.CAFile, "tcb-baselines", "SgxEnclave"}, 2, "needs a bearer token"},
		{"no type", append(base, "tcb-baselines"), 2, `"tcb-baselines" takes 1 arguments`},
		{"Tpm", append(base, "tcb-baselines", "Tpm"), 1, "400 InvalidParameter"},
		{"flag of another verb", append(base, "tcb-baselines", "SgxEnclave", "--quote", "q"), 2, "--quote does not apply"},
	} {
		code, out, errs := cli(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d naming %q", c.name, code, out, errs, c.code, c.want)
		}
	}
	code, out, _ := cli(t, append(base, "--output", "json", "tcb-baselines", "Tpm")...)
	var env struct {
		Error struct {
			Code   string `json:"code"`
			Status int    `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &env); code != 1 || err != nil || env.Error.Code != "InvalidParameter" || env.Error.Status != 400 {
		t.Errorf("json error: exit %d %s (%v)", code, out, err)
	}
}
