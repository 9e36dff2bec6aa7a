package tdx_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/tdx/abi"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/testing/dcapfake"
)

func realQuote(t testing.TB, file string) []byte {
	b := testenv.ReadShared(t, file)
	if strings.HasSuffix(file, ".txt") {
		d, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return b
}

func realVerifier(t testing.TB, coll string, opts tdx.Options) *tdx.Verifier {
	c, err := bundle.ParseQVLJSON(testenv.ReadShared(t, coll))
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.FromCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	opts.Collateral = src
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	v, err := tdx.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const (
	d2Quote = "vectors/dcap-qvl/sample/tdx_quote"
	d2Coll  = "vectors/dcap-qvl/sample/tdx_quote_collateral.json"
	d2At    = "2025-07-01T00:00:00Z"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestRealQuotes verifies every real TD quote of the shared vectors with its
// real collateral at an instant inside its windows, against Intel's root
// only, and checks the TCB status Intel's rules give (platform level, TDX
// module identity, TD_QE, combined as QVL does) and the advisories.
func TestRealQuotes(t *testing.T) {
	cases := []struct {
		name, quote, coll, at string
		status, platform      pcs.TCBStatus
		module                pcs.TCBStatus
		advisories            []string // nil: not compared; empty: none
		fmspc                 string
		check                 string
	}{
		{"D2 dcap-qvl v4", d2Quote, d2Coll, d2At, pcs.UpToDate, pcs.UpToDate, pcs.UpToDate, []string{}, "b0c06f000000", ""},
		{"NEAR v4", "vectors/dcap-qvl/tests/near/contracts/gas-test/tests/quote/quote_hex.txt", "vectors/dcap-qvl/tests/near/contracts/gas-test/tests/quote/quote_collateral.json", "2025-09-10T00:00:00Z",
			pcs.UpToDate, pcs.UpToDate, pcs.UpToDate, []string{}, "20a06f000000", ""},
		// G1: every signature, chain and CRL verifies, but the PCK's SGX
		// components (3,3,2,2,2,1,0,2) are below both TCB levels of this
		// TCB info (5,5,2,2,3,1,0,3): Intel's level match finds none. (The
		// shared vectors README says "a TCB level verifies": it does not.)
		{"G1 go-tdx-guest v4", "vectors/go-tdx-guest/testing/testdata/tdx_prod_quote_SPR_E4.dat", "vectors/derived-dcapqvl-collateral/go-tdx-guest_50806f000000_2023-06.json", "2023-06-25T00:00:00Z",
			"", "", "", nil, "", dcap.CheckTCBNoLevel},
		{"automata v4", "vectors/automata-dcap-rs/data/quote_tdx_00806f050000.dat", "vectors/derived-dcapqvl-collateral/automata_00806f050000_2025-02.json", "2025-03-01T00:00:00Z",
			pcs.OutOfDate, pcs.OutOfDate, pcs.UpToDate, nil, "00806f050000", ""},
		{"GCP cos-113 v4", "vectors/go-tdx-guest/testing/testdata/ccel/cos-113-tdx-quote.dat", "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json", "2026-06-20T00:00:00Z",
			pcs.OutOfDate, pcs.OutOfDate, pcs.OutOfDate, nil, "00806f050000", ""},
		{"OE v5 TDX 1.5", "vectors/openenclave-tdx/tests/host_verify/data/tdx_quote_v5.bin", "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json", "2026-06-20T00:00:00Z",
			pcs.OutOfDate, pcs.OutOfDate, pcs.OutOfDate, nil, "00806f050000", ""},
		// The platform is up to date; the TD was launched on an out-of-date
		// module (TEE_TCB_SVN 04 01 03: TDX_01 level 4, OutOfDate, whose
		// advisories the token reports) but runs on an updated one now
		// (TEE_TCB_SVN2 07 01 03: level 6, UpToDate): Intel's QVL answers
		// TD_RELAUNCH_ADVISED, as OpenEnclave's test of this quote expects.
		{"OE v5 module update", "vectors/openenclave-tdx/tests/host_verify/data/tdx_quote-moduleupdate-seamldr5.dat", "vectors/derived-dcapqvl-collateral/openenclave_90c06f000000_2025-02.json", "2025-03-01T00:00:00Z",
			dcap.TDRelaunchAdvised, pcs.UpToDate, pcs.OutOfDate, []string{"INTEL-SA-01036", "INTEL-SA-01099"}, "90c06f000000", ""},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := realVerifier(t, c.coll, tdx.Options{})
			ev, err := tdx.Parse(realQuote(t, c.quote))
			if err != nil {
				t.Fatal(err)
			}
			r, err := v.VerifyEvidence(ctx, ev, at(c.at))
			if c.check != "" {
				if evidence.CheckOf(err) != c.check {
					t.Fatalf("got %v, want check %s", err, c.check)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != c.status || r.PlatformStatus != c.platform || r.TDXModuleStatus != c.module || r.FMSPC != c.fmspc {
				t.Errorf("got %v, want %s (platform %s, module %s) fmspc %s", r, c.status, c.platform, c.module, c.fmspc)
			}
			if c.advisories != nil && !slices.Equal(r.AdvisoryIDs, c.advisories) && !(len(c.advisories) == 0 && len(r.AdvisoryIDs) == 0) {
				t.Errorf("advisories %v, want %v", r.AdvisoryIDs, c.advisories)
			}
			if c.status != pcs.UpToDate && len(r.AdvisoryIDs) == 0 {
				t.Error("an OutOfDate TCB without advisory IDs")
			}
			// A year later the collateral has expired.
			if _, err := v.VerifyEvidence(ctx, ev, at(c.at).AddDate(1, 0, 0)); evidence.CheckOf(err) != dcap.CheckTCBInfoExpired {
				t.Errorf("a year later: %v", err)
			}
		})
	}
}

// TestRealRefusals: the D2 quote fails, naming the check, when its body is
// tampered with, its PCK chain is another platform's, its root is not
// trusted, or it is an SGX quote.
func TestRealRefusals(t *testing.T) {
	ctx := context.Background()
	good := realQuote(t, d2Quote)
	other, err := abi.ParseQuote(realQuote(t, "vectors/dcap-qvl/tests/near/contracts/gas-test/tests/quote/quote_hex.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fake, err := dcapfake.New(dcapfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	foreign := func() []byte {
		q, err := abi.ParseQuote(good)
		if err != nil {
			t.Fatal(err)
		}
		q.QE.CertData = other.QE.CertData
		b, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tamper := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 1
		return b
	}
	cases := []struct {
		name  string
		quote []byte
		opts  tdx.Options
		check string
	}{
		{"MRTD tampered", tamper(abi.HeaderSize + 136), tdx.Options{}, dcap.CheckQuoteSignature},
		{"REPORTDATA tampered", tamper(abi.HeaderSize + 520), tdx.Options{}, dcap.CheckQuoteSignature},
		{"header user data tampered", tamper(30), tdx.Options{}, dcap.CheckQuoteSignature},
		{"QE vendor", tamper(12), tdx.Options{}, dcap.CheckQEVendorID},
		{"foreign PCK chain", foreign(), tdx.Options{}, dcap.CheckQEReportSignature},
		{"test root only", good, tdx.Options{Roots: fake.Roots()}, dcap.CheckPCKChain},
		{"SGX quote", testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote"), tdx.Options{}, string(tdx.CheckQuoteNotTDX)},
		{"truncated", good[:700], tdx.Options{}, string(tdx.CheckQuoteParse)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := realVerifier(t, d2Coll, c.opts)
			p, err := v.Parse(ctx, &evidence.Request{Type: evidence.TdxVm, Evidence: c.quote, Now: at(d2At)})
			if err == nil {
				_, err = p.Verify(ctx, nil)
			}
			if evidence.CheckOf(err) != c.check {
				t.Fatalf("got %v, want check %s", err, c.check)
			}
		})
	}
}

// TestRealClaims: the claims of the D2 quote carry every claim of MAA's
// sample TdxVm token (../samples/docs/tdxvm_token_payload.json) that a
// verifier owns, with the same JSON type, and the values read from the quote.
func TestRealClaims(t *testing.T) {
	ctx := context.Background()
	v := realVerifier(t, d2Coll, tdx.Options{})
	raw := realQuote(t, d2Quote)
	p, err := v.Parse(ctx, &evidence.Request{Type: evidence.TdxVm, Evidence: raw, Now: at(d2At)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, c := range res.Claims {
		if !c.PolicyOnly {
			got[c.Type] = c.Value
		}
	}
	var sample map[string]any
	if err := json.Unmarshal(testenv.ReadShared(t, "samples/docs/tdxvm_token_payload.json"), &sample); err != nil {
		t.Fatal(err)
	}
	pipeline := map[string]bool{"exp": true, "iat": true, "iss": true, "jti": true, "nbf": true, "x-ms-policy-hash": true, "x-ms-runtime": true, "x-ms-ver": true,
		"x-ms-compliance-status": true} // compliance: Azure's unpublished rules, not produced
	for k, sv := range sample {
		if pipeline[k] {
			continue
		}
		gv, ok := got[k]
		if !ok {
			t.Errorf("claim %s missing", k)
			continue
		}
		switch sv.(type) {
		case string:
			s, ok := gv.(string)
			if !ok || (strings.Trim(sv.(string), "0123456789abcdef") == "" && len(s) != len(sv.(string))) {
				t.Errorf("claim %s = %v (%T), sample %v", k, gv, gv, sv)
			}
		case bool:
			if _, ok := gv.(bool); !ok {
				t.Errorf("claim %s = %T, sample bool", k, gv)
			}
		case float64:
			if _, ok := gv.(int64); !ok {
				t.Errorf("claim %s = %T, sample number", k, gv)
			}
		}
	}
	q, _ := abi.ParseQuote(raw)
	for k, want := range map[string]any{
		"x-ms-attestation-type": "tdxvm", "eat_profile": "https://aka.ms/maa-eat-profile-tdxvm", "attester_tcb_status": "UpToDate",
		"tdx_mrtd": hex.EncodeToString(q.Body.MRTD[:]), "tdx_rtmr2": hex.EncodeToString(q.Body.RTMR[2][:]),
		"tdx_report_data": hex.EncodeToString(q.Body.ReportData[:]), "tdx_seamsvn": int64(q.Body.TEETCBSVN[0]),
		"tdx_td_attributes_debug": false, "dbgstat": "disabled", "x-ms-tdx-fmspc": "b0c06f000000",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if !bytes.Equal(res.ReportData, q.Body.ReportData[:]) || !bytes.Equal(res.InitTimeBinding, q.Body.MRConfigID[:]) {
		t.Error("bindings are not REPORTDATA / MRCONFIGID")
	}
}
