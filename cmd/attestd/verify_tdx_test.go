package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// TestVerifyTdxVm: "attestd verify --type TdxVm" over real TD quotes (binary
// and hex) with their real collateral, and its refusals naming the check.
func TestVerifyTdxVm(t *testing.T) {
	d2 := testenv.Shared(t, "vectors/dcap-qvl/sample/tdx_quote")
	d2c := testenv.Shared(t, "vectors/dcap-qvl/sample/tdx_quote_collateral.json")
	near := "vectors/dcap-qvl/tests/near/contracts/gas-test/tests/quote/"
	ccel := "vectors/go-tdx-guest/testing/testdata/ccel/"
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--evidence", d2, "--collateral", d2c, "--at", "2025-07-01T00:00:00Z"}, verifyExitOK, `"attester_tcb_status": "UpToDate"`, ""},
		{[]string{"--evidence", testenv.Shared(t, near+"quote_hex.txt"), "--collateral", testenv.Shared(t, near+"quote_collateral.json"), "--at", "2025-09-10T00:00:00Z"}, verifyExitOK, `"x-ms-tdx-fmspc": "20a06f000000"`, ""},
		{[]string{"--evidence", testenv.Shared(t, "vectors/openenclave-tdx/tests/host_verify/data/tdx_quote-moduleupdate-seamldr5.dat"), "--collateral", testenv.Shared(t, "vectors/derived-dcapqvl-collateral/openenclave_90c06f000000_2025-02.json"), "--at", "2025-03-01T00:00:00Z"}, verifyExitOK, `"attester_tcb_status": "TDRelaunchAdvised"`, ""},
		{[]string{"--evidence", d2, "--collateral", d2c, "--at", "2026-07-01T00:00:00Z"}, verifyExitRejected, "", "verification failed: tcb_info.expired:"},
		{[]string{"--evidence", d2, "--collateral", d2c, "--at", "2025-07-01T00:00:00Z", "--runtime-data", d2c}, verifyExitRejected, "", "verification failed: runtimedata.binding:"},
		{[]string{"--evidence", testenv.Shared(t, "vectors/go-tdx-guest/testing/testdata/tdx_prod_quote_SPR_E4.dat"), "--collateral", testenv.Shared(t, "vectors/derived-dcapqvl-collateral/go-tdx-guest_50806f000000_2023-06.json"), "--at", "2023-06-25T00:00:00Z"}, verifyExitRejected, "", "verification failed: tcb.no_matching_level:"},
		{[]string{"--evidence", testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote"), "--collateral", d2c}, verifyExitRejected, "", "verification failed: quote.not_tdx:"},
		{[]string{"--evidence", d2}, verifyExitUsage, "", "--collateral is required"},
		// GCP's TD with its CCEL: the log replays to the quote's RTMRs.
		{[]string{"--evidence", testenv.Shared(t, ccel+"cos-113-tdx-quote.dat"), "--event-log", testenv.Shared(t, ccel+"ccel_data.dat"), "--collateral", testenv.Shared(t, "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json"), "--at", "2026-06-20T00:00:00Z"}, verifyExitOK, `"x-ms-tdx-event-log-events": 43`, ""},
		{[]string{"--evidence", d2, "--event-log", testenv.Shared(t, ccel+"ccel_data.dat"), "--collateral", d2c, "--at", "2025-07-01T00:00:00Z"}, verifyExitRejected, "", "verification failed: tdx.event_log:"},
	}
	for _, c := range cases {
		args := append([]string{"--type", "TdxVm"}, c.args...)
		var out, errb bytes.Buffer
		code := verifyCmd(context.Background(), args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", c.args, code, out.String(), errb.String())
		}
	}
}

// TestPolicyExplainTdxVm dry-runs policies over a real TD quote (D2) with
// its real collateral.
func TestPolicyExplainTdxVm(t *testing.T) {
	quote := testenv.Shared(t, "vectors/dcap-qvl/sample/tdx_quote")
	coll := testenv.Shared(t, "vectors/dcap-qvl/sample/tdx_quote_collateral.json")
	deny := filepath.Join(t.TempDir(), "deny.txt")
	os.WriteFile(deny, []byte(`version=1.0; authorizationrules{ [type=="attester_tcb_status", value=="UpToDate"] => deny(); => permit(); };`), 0o600)
	const at = "2025-07-01T00:00:00Z"
	base := []string{"policy", "explain", "--type", "TdxVm", "--evidence", quote, "--collateral", coll}
	runCommand(t, append(base, "--at", at), 0, []string{"PERMITTED (policy: default)", `"attester_tcb_status": "UpToDate"`}, nil)
	runCommand(t, append(base, "--at", at, "--policy", deny), 1, []string{"DENIED"}, nil)
	runCommand(t, append(base, "--at", "2030-01-01T00:00:00Z"), 1, nil, []string{"evidence verification failed at check tcb_info.expired"})
}
