package tdx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/dcapfake"
	"github.com/attestd/attestd/testing/pcsstub"
	"github.com/attestd/attestd/testing/tdxplatform"
)

// e2e is attestd's HTTP API (SQLite, RS256 keys, one AAD instance whose
// TdxVm verifier is v, the TdxVm policy given or attestd's default).
func e2e(t testing.TB, v evidence.Verifier, policyText string) http.Handler {
	h, _ := e2eInstance(t, v, policyText)
	return h
}

func e2eInstance(t testing.TB, v evidence.Verifier, policyText string) (http.Handler, *instance.Instance) {
	t.Helper()
	o := attestdtest.InstanceOptions{Verifiers: map[evidence.Type]evidence.Verifier{evidence.TdxVm: v}}
	if policyText != "" {
		o.Policies = map[evidence.Type]string{evidence.TdxVm: policyText}
	}
	s := attestdtest.NewInstance(t, o)
	return s.Handler, s.Instance
}

// serve runs h over TLS and returns an SDK client for it; versions records
// the api-version of every attest call.
func serve(t *testing.T, h http.Handler) (*client.Client, *[]string) {
	var versions []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/attest/") {
			versions = append(versions, r.URL.Query().Get("api-version"))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, &client.Options{HTTPClient: srv.Client(), Validation: client.Validation{Issuer: "https://attestd.test", Leeway: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return c, &versions
}

const upToDateOnly = `version=1.0;
authorizationrules{
  c1:[type=="attester_tcb_status", value=="UpToDate"] && c2:[type=="tdx_td_attributes_debug", value==false] => permit();
};
issuancerules{
  c:[type=="tdx_mrtd"] => issue(type="mrtd", value=c.value);
};`

const eventsPolicy = `version=1.2;
authorizationrules{ => permit(); };
issuancerules{
  c:[type=="events", issuer=="AttestationService"] => issue(type="rtmr1-events", value=JsonToClaimValue(JmesPath(c.value, "length(Events[?PcrIndex == ` + "`2`" + `])")));
};`

func errCode(t *testing.T, err error) (int, string, string) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *client.Error", err)
	}
	return ce.StatusCode, ce.Code, ce.Message
}

// TestAttestTdxVmHTTPS attests test-platform TDs through attestd's HTTPS API
// and the Go SDK: policy on the TCB status and TD attributes, runtime and
// init-time bindings, the typed TDX claims; every refusal with its MAA
// status, code and check.
func TestAttestTdxVmHTTPS(t *testing.T) {
	p, err := tdxplatform.New(tdxplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := platformVerifier(t, p, dcapfake.Docs{}, tdx.Options{})
	c, versions := serve(t, e2e(t, v, upToDateOnly))
	ctx := context.Background()

	runtime := []byte(`{"keys":[{"kid":"HCLAkPub","kty":"RSA","n":"AQAB","e":"AQAB"}],"user-data":"abc"}`)
	initTime := []byte("td configuration v1")
	q := tdxplatform.Quote{Version: 5, Body15: true}
	q.Report.MRTD[0] = 0x5b
	q.BindRuntime(runtime)
	q.BindInitTime(initTime)
	raw, err := p.Mint(q)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.AttestTdxVm(ctx, raw, &client.AttestOptions{RuntimeJSON: runtime, InitTimeData: initTime, Nonce: "n-7"})
	if err != nil {
		t.Fatal(err)
	}
	if r.AttestationType != "tdxvm" || r.Tdx == nil || r.Tdx.TCBStatus != "UpToDate" || r.Tdx.EATProfile != tdx.EATProfile || r.Nonce != "n-7" {
		t.Fatalf("result %+v", r)
	}
	if !strings.HasPrefix(r.Tdx.MRTD, "5b00") || r.PolicyClaims["mrtd"] != r.Tdx.MRTD || r.Tdx.SeamSVN != 3 || r.Tdx.DbgStat != "disabled" {
		t.Fatalf("tdx claims %+v, policy claims %v", r.Tdx, r.PolicyClaims)
	}
	if r.RuntimeClaims["user-data"] != "abc" {
		t.Fatalf("x-ms-runtime %v", r.RuntimeClaims)
	}
	if (*versions)[0] != client.TdxAPIVersion {
		t.Fatalf("api-version %q", (*versions)[0])
	}

	// A TD with a CCEL: the policy reads its events with JmesPath.
	log, rtmr := ccelLog([]struct {
		mr   uint32
		data string
	}{{1, "firmware"}, {2, "kernel"}, {2, "initrd"}})
	lq := tdxplatform.Quote{}
	lq.Report.RTMR = rtmr
	logged, err := p.Mint(lq)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := serve(t, e2e(t, v, eventsPolicy))
	lr, err := cl.AttestTdxVm(ctx, logged, &client.AttestOptions{EventLog: log})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lr.PolicyClaims["rtmr1-events"]) != "2" || fmt.Sprint(lr.Claims[tdx.ClaimEventLogEvents]) != "3" {
		t.Fatalf("policy claims %v, events %v", lr.PolicyClaims, lr.Claims[tdx.ClaimEventLogEvents])
	}
	if _, err := cl.AttestTdxVm(ctx, raw, &client.AttestOptions{RuntimeJSON: runtime, EventLog: log}); err == nil || !strings.Contains(err.Error(), string(tdx.CheckEventLog)) {
		t.Fatalf("a log of another TD: %v", err)
	}

	dbg, _ := p.Mint(tdxplatform.Quote{Debug: true})
	stale := tdxplatform.Quote{}
	stale.Report.TEETCBSVN = tdxplatform.DefaultTEETCBSVN
	stale.Report.TEETCBSVN[0] = 1 // the module's OutOfDate level
	old, _ := p.Mint(stale)
	tampered := bytes.Clone(raw)
	tampered[48+6+200] ^= 1
	sgxQuote := sgxShapedQuote()
	for _, tc := range []struct {
		name   string
		quote  []byte
		opts   *client.AttestOptions
		status int
		code   string
		check  string
	}{
		{"debug TD denied by policy", dbg, nil, 400, "PolicyEvaluationError", ""},
		{"out-of-date module denied by policy", old, nil, 400, "PolicyEvaluationError", ""},
		{"runtime data not bound", raw, &client.AttestOptions{RuntimeJSON: []byte(`{"other":1}`)}, 400, "InvalidParameter", string(evidence.CheckRuntimeBinding)},
		{"init-time data not MRCONFIGID", raw, &client.AttestOptions{InitTimeData: []byte("another")}, 400, "InvalidParameter", string(evidence.CheckInitTimeBinding)},
		{"tampered body", tampered, nil, 400, "InvalidParameter", dcap.CheckQuoteSignature},
		{"garbage", []byte("not a quote at all, not even close to forty-eight bytes long"), nil, 400, "InvalidParameter", string(tdx.CheckQuoteParse)},
		{"SGX quote", sgxQuote, nil, 400, "InvalidParameter", string(tdx.CheckQuoteNotTDX)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AttestTdxVm(ctx, tc.quote, tc.opts)
			st, code, msg := errCode(t, err)
			if st != tc.status || code != tc.code || !strings.Contains(msg, tc.check) {
				t.Fatalf("%d %s %q, want %d %s naming %s", st, code, msg, tc.status, tc.code, tc.check)
			}
		})
	}
}

// sgxShapedQuote is an SGX quote's header (version 3, TEE type 0) and
// padding, so the SGX refusal needs no shared file.
func sgxShapedQuote() []byte {
	b := make([]byte, 1200)
	b[0], b[2] = 3, 2
	return b
}

// TestAttestTdxVmPCS: the server binary's plugin (blocks "tdx" and
// "collateral") fetches TDX TCB info and the TD_QE identity from a local
// PCS stub serving stored responses, caches them, and answers 503 (retry
// later) when PCS fails and nothing is cached.
func TestAttestTdxVmPCS(t *testing.T) {
	p, err := tdxplatform.New(tdxplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	coll, err := p.Collateral(dcapfake.Docs{})
	if err != nil {
		t.Fatal(err)
	}
	stub := pcsstub.New(t, coll)
	dir := t.TempDir()
	open := func(cacheDir string) evidence.Verifier {
		return stub.Open(t, tdx.Plugin(), dir, p.RootsPEM(), cacheDir)
	}
	raw, err := p.Mint(tdxplatform.Quote{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, _ := serve(t, e2e(t, open("cache"), ""))
	r, err := c.AttestTdxVm(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tdx.TCBStatus != "UpToDate" {
		t.Fatalf("%+v", r.Tdx)
	}
	var paths []string
	for _, s := range stub.Handler.Requests() {
		paths = append(paths, s.Path+"?"+s.Query)
	}
	joined := strings.Join(paths, " ")
	if !strings.Contains(joined, "/tdx/certification/v4/tcb?fmspc=90c06f000000") || !strings.Contains(joined, "/tdx/certification/v4/qe/identity") {
		t.Fatalf("PCS requests %v", paths)
	}
	// PCS down: the warm cache still answers; a cold one is a 503.
	stub.SetDown(true)
	if _, err := c.AttestTdxVm(ctx, raw, nil); err != nil {
		t.Fatalf("with a warm cache: %v", err)
	}
	cold, _ := serve(t, e2e(t, open("cold"), ""))
	_, err = cold.AttestTdxVm(ctx, raw, nil)
	st, code, msg := errCode(t, err)
	if st != 503 || code != "ServiceUnavailable" || !strings.Contains(msg, string(evidence.CheckCollateralUnavailable)) {
		t.Fatalf("cold cache, PCS down: %d %s %q", st, code, msg)
	}
}

// TestTCBBaselinesTdxVm: /tcbbaselines/TdxVm (instance.TCBBaselines) lists
// the bundle's TDX baselines, the standard one selected.
func TestTCBBaselinesTdxVm(t *testing.T) {
	p, err := tdxplatform.New(tdxplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c17, _ := p.Collateral(dcapfake.Docs{})
	c18, _ := p.Collateral(dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBEvaluationDataNumber = 18 }, QEIdentity: func(j *pcs.EnclaveIdentityJSON) { j.TCBEvaluationDataNumber = 18 }})
	src, err := bundle.FromCollateral(c17, c18)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tdx.New(tdx.Options{Collateral: src, Roots: p.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	_, in := e2eInstance(t, v, "")
	out, err := in.TCBBaselines(context.Background(), "TdxVm")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range out.TCBBaselines {
		s := b.TCBIdentifier + "=" + b.TCBEvaluationDataNumber
		if b.IsSelectedTCB {
			s += "*"
		}
		got = append(got, s)
	}
	// The bundle serves its first set for the standard request: 17.
	if strings.Join(got, ",") != "azuredefault=17*,18=18,17=17" {
		t.Fatalf("baselines %v", got)
	}
	// And "azuredefault" is what a quote is judged against.
	raw, _ := p.Mint(tdxplatform.Quote{})
	res, err := evidence.Verify(context.Background(), v, &evidence.Request{Type: evidence.TdxVm, Evidence: raw, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if n := claimsOf(res)[tdx.ClaimTCBEvalNumber]; n != int64(17) {
		t.Fatalf("judged against TCB evaluation data number %v", n)
	}
}
