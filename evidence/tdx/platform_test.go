package tdx_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/tdx/abi"
	"github.com/attestd/attestd/testing/dcapfake"
	"github.com/attestd/attestd/testing/tdxplatform"
)

func platformVerifier(t testing.TB, p *tdxplatform.Platform, d dcapfake.Docs, opts tdx.Options) *tdx.Verifier {
	t.Helper()
	c, err := p.Collateral(d)
	if err != nil {
		t.Fatal(err)
	}
	opts.Collateral = fixedSource{c}
	if opts.Roots == nil {
		opts.Roots = p.Roots()
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	v, err := tdx.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fixedSource serves one collateral set for every request, unchecked (a
// bundle refuses inconsistent sets; the verifier must refuse them itself).
type fixedSource struct{ c *collateral.Collateral }

func (f fixedSource) Get(context.Context, collateral.Request) (*collateral.Collateral, error) {
	return f.c, nil
}

func claimsOf(res *evidence.Result) map[string]any {
	m := map[string]any{}
	for _, c := range res.Claims {
		if !c.PolicyOnly {
			m[c.Type] = c.Value
		}
	}
	return m
}

// TestPlatform runs the verifier over test-platform quotes: every accepted
// variant with the claims and statuses Intel's rules give, every refusal
// naming its check.
func TestPlatform(t *testing.T) {
	now := time.Now()
	p, err := tdxplatform.New(tdxplatform.Options{PKI: dcapfake.Options{Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	withSVN := func(f func(*[16]byte)) tdxplatform.Quote {
		q := tdxplatform.Quote{}
		q.Report.TEETCBSVN = tdxplatform.DefaultTEETCBSVN
		f(&q.Report.TEETCBSVN)
		return q
	}
	relaunch := func(launched, now byte, body15 bool) tdxplatform.Quote {
		q := tdxplatform.Quote{Version: 5, Body15: body15}
		q.Report.TEETCBSVN, q.Report.TEETCBSVN2 = tdxplatform.DefaultTEETCBSVN, tdxplatform.DefaultTEETCBSVN
		q.Report.TEETCBSVN[0], q.Report.TEETCBSVN2[0] = launched, now
		return q
	}
	cases := []struct {
		name   string
		quote  tdxplatform.Quote
		docs   dcapfake.Docs
		opts   tdx.Options
		at     time.Time
		check  string
		claims map[string]any
		adv    []string
	}{
		{name: "v4 up to date", claims: map[string]any{"attester_tcb_status": "UpToDate", "x-ms-tdx-module-tcb-status": "UpToDate", "dbgstat": "disabled", "tdx_seamsvn": int64(3), "x-ms-tdx-quote-version": int64(4)}},
		{name: "v5 TDX 1.0 body", quote: tdxplatform.Quote{Version: 5}, claims: map[string]any{"attester_tcb_status": "UpToDate", "x-ms-tdx-quote-version": int64(5)}},
		{name: "v5 TDX 1.5 body", quote: tdxplatform.Quote{Version: 5, Body15: true}, claims: map[string]any{"x-ms-tdx-mrservicetd": "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"}},
		{name: "debug TD", quote: tdxplatform.Quote{Debug: true}, claims: map[string]any{"dbgstat": "enabled", "tdx_td_attributes_debug": true, "tdx_td_attributes": "0100000000000000"}},
		{name: "module out of date", quote: withSVN(func(s *[16]byte) { s[0] = 1 }),
			claims: map[string]any{"attester_tcb_status": "OutOfDate", "x-ms-tdx-platform-tcb-status": "UpToDate", "x-ms-tdx-module-tcb-status": "OutOfDate"}, adv: []string{"INTEL-SA-00888"}},
		{name: "platform SWHardeningNeeded", docs: dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) {
			j.TCBLevels[1].TCBStatus, j.TCBLevels[1].AdvisoryIDs = string(pcs.SWHardeningNeeded), []string{"INTEL-SA-00615"}
		}}, claims: map[string]any{"attester_tcb_status": "SWHardeningNeeded"}, adv: []string{"INTEL-SA-00615"}},
		{name: "SWHardening platform, module out of date", quote: withSVN(func(s *[16]byte) { s[0] = 1 }), docs: dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) {
			j.TCBLevels[1].TCBStatus, j.TCBLevels[1].AdvisoryIDs = string(pcs.SWHardeningNeeded), []string{"INTEL-SA-00615"}
		}}, claims: map[string]any{"attester_tcb_status": "OutOfDate"}, adv: []string{"INTEL-SA-00615", "INTEL-SA-00888"}},
		// A TDX 1.0 module (major version 0) has no module identity level: it
		// is judged by tdxModule, and all 16 TEE_TCB_SVN bytes go into the
		// platform level match (byte 1 = 0 < 3 leaves only the bottom level).
		{name: "TDX 1.0 module (major 0)", quote: withSVN(func(s *[16]byte) { s[1] = 0 }), claims: map[string]any{"attester_tcb_status": "OutOfDate", "x-ms-tdx-module-tcb-status": nil}},
		{name: "higher TEE TCB SVN matches the top level", quote: withSVN(func(s *[16]byte) {
			for i := 2; i < 16; i++ {
				s[i] = 4
			}
		}), check: ""},
		// TDX 1.5: launched on the module's OutOfDate level, running on an
		// UpToDate one (TEE_TCB_SVN2): relaunch advised, as Intel's QVL says.
		{name: "relaunch advised", quote: relaunch(1, 3, true), claims: map[string]any{"attester_tcb_status": "TDRelaunchAdvised", "x-ms-tdx-module-tcb-status": "OutOfDate"}, adv: []string{"INTEL-SA-00888"}},
		{name: "relaunch advised, configuration needed", quote: relaunch(1, 3, true), docs: dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBLevels[1].TCBStatus = string(pcs.ConfigurationNeeded) }},
			claims: map[string]any{"attester_tcb_status": "TDRelaunchAdvisedConfigurationNeeded"}},
		{name: "updated module still out of date", quote: relaunch(1, 2, true), claims: map[string]any{"attester_tcb_status": "OutOfDate"}},
		{name: "relaunch needs TEE_TCB_SVN2: v5 with a 1.0 body", quote: relaunch(1, 3, false), claims: map[string]any{"attester_tcb_status": "OutOfDate"}},
		{name: "TEE TCB SVN below every level", quote: withSVN(func(s *[16]byte) { s[5] = 0 }),
			docs: dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBLevels[2].TCB.TDXComponents[5].SVN = 1 }}, check: dcap.CheckTCBNoLevel},
		{name: "unknown module version", quote: withSVN(func(s *[16]byte) { s[1] = 3 }), check: dcap.CheckTDXModuleIdentity},
		{name: "module SVN below every level", quote: withSVN(func(s *[16]byte) { s[0] = 0 }), check: dcap.CheckTDXModuleNoLevel},
		{name: "module MRSIGNER", quote: tdxplatform.Quote{Report: func() (r abi.TDReport) { r.MRSignerSeam[0] = 1; r.TEETCBSVN = tdxplatform.DefaultTEETCBSVN; return }()}, check: dcap.CheckTDXModuleMRSigner},
		{name: "revoked module level", docs: dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.TDXModuleIdentities[0].TCBLevels[0].TCBStatus = string(pcs.Revoked) }}, check: dcap.CheckTDXModuleRevoked},
		{name: "revoked platform level", docs: dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBLevels[1].TCBStatus = string(pcs.Revoked) }}, check: dcap.CheckTCBRevoked},
		{name: "SGX TCB info served", docs: dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.ID, j.TDXModule, j.TDXModuleIdentities = pcs.IDSGX, nil, nil }}, check: dcap.CheckTCBInfoParse},
		{name: "SGX QE identity served", docs: dcapfake.Docs{QEIdentity: func(j *pcs.EnclaveIdentityJSON) { j.ID = pcs.IDQE }}, check: dcap.CheckQEIdentityParse},
		{name: "expired collateral", at: now.Add(40 * 24 * time.Hour), check: dcap.CheckTCBInfoExpired},
		{name: "grace", at: now.Add(31 * 24 * time.Hour), opts: tdx.Options{Grace: 48 * time.Hour}, claims: map[string]any{"x-ms-tdx-collateral-grace-used": "tcb_info,qe_identity,root_crl,pck_crl"}},
		{name: "verify_at", at: now.Add(40 * 24 * time.Hour), opts: tdx.Options{VerifyAt: now}, claims: map[string]any{"x-ms-tdx-verified-at": now.UTC().Format(time.RFC3339)}},
		{name: "revoked PCK", docs: dcapfake.Docs{PCKCRL: dcapfake.Revoke(p.PKI.PCK)}, check: dcap.CheckPCKRevoked},
		{name: "tampered TCB info", docs: dcapfake.Docs{Mutate: func(c *collateral.Collateral) { c.TCBInfo[10] ^= 1 }}, check: dcap.CheckTCBInfoSignature},
		{name: "Intel roots only", opts: tdx.Options{Roots: dcap.DefaultRoots()}, check: dcap.CheckPCKChain},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := p.Mint(c.quote)
			if err != nil {
				t.Fatal(err)
			}
			v := platformVerifier(t, p, c.docs, c.opts)
			when := c.at
			if when.IsZero() {
				when = now
			}
			pr, err := v.Parse(ctx, &evidence.Request{Type: evidence.TdxVm, Evidence: raw, Now: when})
			if err != nil {
				t.Fatal(err)
			}
			res, err := pr.Verify(ctx, nil)
			if c.check != "" {
				if evidence.CheckOf(err) != c.check {
					t.Fatalf("got %v, want check %s", err, c.check)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := claimsOf(res)
			for k, want := range c.claims {
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
			if c.adv != nil && !slices.Equal(advOf(got), c.adv) {
				t.Errorf("advisories %v, want %v", got["attester_advisory_ids"], c.adv)
			}
		})
	}
}

func advOf(m map[string]any) []string {
	a, _ := m["attester_advisory_ids"].([]string)
	return a
}
