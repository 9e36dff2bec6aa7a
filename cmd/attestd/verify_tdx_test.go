package main

import (
	"bytes"
	"context"
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
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--evidence", d2, "--collateral", d2c, "--at", "2025-07-01T00:00:00Z"}, verifyExitOK, `"attester_tcb_status": "UpToDate"`, ""},
		{[]string{"--evidence", testenv.Shared(t, near+"quote_hex.txt"), "--collateral", testenv.Shared(t, near+"quote_collateral.json"), "--at", "2025-09-10T00:00:00Z"}, verifyExitOK, `"x-ms-tdx-fmspc": "20a06f000000"`, ""},
		{[]string{"--evidence", testenv.Shared(t, "vectors/openenclave-tdx/tests/host_verify/data/tdx_quote-moduleupdate-seamldr5.dat"), "--collateral", testenv.Shared(t, "vectors/derived-dcapqvl-collateral/openenclave_90c06f000000_2025-02.json"), "--at", "2025-03-01T00:00:00Z"}, verifyExitOK, `"x-ms-tdx-module-tcb-status": "OutOfDate"`, ""},
		{[]string{"--evidence", d2, "--collateral", d2c, "--at", "2026-07-01T00:00:00Z"}, verifyExitRejected, "", "verification failed: tcb_info.expired:"},
		{[]string{"--evidence", d2, "--collateral", d2c, "--at", "2025-07-01T00:00:00Z", "--runtime-data", d2c}, verifyExitRejected, "", "verification failed: runtimedata.binding:"},
		{[]string{"--evidence", testenv.Shared(t, "vectors/go-tdx-guest/testing/testdata/tdx_prod_quote_SPR_E4.dat"), "--collateral", testenv.Shared(t, "vectors/derived-dcapqvl-collateral/go-tdx-guest_50806f000000_2023-06.json"), "--at", "2023-06-25T00:00:00Z"}, verifyExitRejected, "", "verification failed: tcb.no_matching_level:"},
		{[]string{"--evidence", testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote"), "--collateral", d2c}, verifyExitRejected, "", "verification failed: quote.not_tdx:"},
		{[]string{"--evidence", d2}, verifyExitUsage, "", "--collateral is required"},
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
