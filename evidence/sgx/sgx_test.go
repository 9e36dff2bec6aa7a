package sgx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/evidence/sgx/verify"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/testing/sgxplatform"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

func claimMap(cs []evidence.Claim, includePolicyOnly bool) map[string][]any {
	m := map[string][]any{}
	for _, c := range cs {
		if c.PolicyOnly && !includePolicyOnly {
			continue
		}
		m[c.Type] = append(m[c.Type], c.Value)
	}
	return m
}

func one(t *testing.T, m map[string][]any, typ string) any {
	t.Helper()
	v := m[typ]
	if len(v) != 1 {
		t.Fatalf("claim %s: %d values %v, want 1", typ, len(v), v)
	}
	return v[0]
}

func TestD1Claims(t *testing.T) {
	quote := testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote")
	collJSON := testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	coll, err := bundle.ParseQVLJSON(collJSON)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.FromCollateral(coll)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Options{Collateral: b, Now: at(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	rt := &evidence.Data{Bytes: []byte("runtime")}
	res, err := v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := abi.ParseQuote(quote)
	m := claimMap(res.Claims, false)
	if one(t, m, "x-ms-attestation-type") != "sgx" {
		t.Error("attestation type")
	}
	if got := one(t, m, ClaimMREnclave); got != hex.EncodeToString(q.Body.MREnclave[:]) {
		t.Errorf("mrenclave %v", got)
	}
	if got := one(t, m, ClaimTCBStatus); got != "ConfigurationAndSWHardeningNeeded" {
		t.Errorf("tcb status %v", got)
	}
	if got := one(t, m, ClaimAdvisoryIDs); !slices.Equal(got.([]string), []string{"INTEL-SA-00289", "INTEL-SA-00615"}) {
		t.Errorf("advisories %v", got)
	}
	pm := claimMap(res.Claims, true)
	if got := pm[ClaimAdvisoryIDs]; len(got) != 3 { // 2 scalar policy claims + 1 token array
		t.Errorf("advisory claims %v", got)
	}
	coll2 := one(t, m, ClaimCollateral).(map[string]string)
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	want := map[string]string{
		"quotehash": sum(quote), "tcbinfohash": sum(coll.TCBInfo), "qeidhash": sum(coll.QEIdentity),
		"tcbinfocertshash": sum(coll.TCBInfoIssuerChain), "qeidcertshash": sum(coll.QEIdentityIssuerChain),
		"tcbinfocrlhash": sum(coll.RootCACRL), "qeidcrlhash": sum(coll.RootCACRL),
	}
	for k, w := range want {
		if coll2[k] != w {
			t.Errorf("%s = %s, want %s", k, coll2[k], w)
		}
	}
	if len(coll2) != 7 {
		t.Errorf("collateral claim has %d members", len(coll2))
	}
	if one(t, m, ClaimEHD) != base64.RawURLEncoding.EncodeToString(rt.Bytes) || one(t, m, "maa-ehd") != one(t, m, ClaimEHD) || one(t, m, "aas-ehd") != one(t, m, ClaimEHD) {
		t.Error("ehd claims")
	}
	if !bytes.Equal(res.ReportData, q.Body.ReportData[:]) || !bytes.Equal(res.InitTimeBinding, q.Body.ConfigID[:]) {
		t.Error("report data / init-time binding")
	}
}

func newPlatform(t testing.TB, o sgxplatform.Options) *sgxplatform.Platform {
	t.Helper()
	o.Now = testNow
	p, err := sgxplatform.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func platformVerifier(t testing.TB, p *sgxplatform.Platform) *Verifier {
	t.Helper()
	v, err := NewVerifier(Options{Collateral: p.Source(), Roots: p.Roots(), Now: at(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClaimsFromPlatform(t *testing.T) {
	mr := sha256.Sum256([]byte("enclave"))
	signer := sha256.Sum256([]byte("signer"))
	rt := []byte(`{"jwk":{"kty":"EC"}}`)
	var rd [64]byte
	h := sha256.Sum256(rt)
	copy(rd[:], h[:])
	for _, version := range []int{3, 4} {
		p := newPlatform(t, sgxplatform.Options{QuoteVersion: version, TCBStatus: pcs.SWHardeningNeeded, AdvisoryIDs: []string{"INTEL-SA-00615"}})
		v := platformVerifier(t, p)
		qo := sgxplatform.QuoteOptions{Debug: true, MREnclave: mr, MRSigner: signer, ProductID: 7, SVN: 3, ReportData: rd}
		quote, err := p.Quote(qo)
		if err != nil {
			t.Fatal(err)
		}
		oeReport, _ := p.OEReport(qo)
		oeEv, _ := p.OEEvidence(qo, []abi.CustomClaim{{Name: "key", Value: []byte("value")}})
		kss := qo
		kss.KSS, kss.ConfigSVN = true, 9
		kss.ConfigID[0], kss.ISVFamilyID[0], kss.ISVExtendedProductID[0] = 0xc0, 0xfa, 0xe0
		kssQuote, _ := p.Quote(kss)
		for _, c := range []struct {
			name    string
			typ     evidence.Type
			ev      []byte
			runtime *evidence.Data
			check   func(t *testing.T, m map[string][]any)
		}{
			{"SgxEnclave binary runtime", evidence.SgxEnclave, quote, &evidence.Data{Bytes: rt}, func(t *testing.T, m map[string][]any) {
				if one(t, m, ClaimEHD) != base64.RawURLEncoding.EncodeToString(rt) {
					t.Error("ehd")
				}
				if one(t, m, ClaimIsDebuggable) != true || one(t, m, ClaimProductID) != int64(7) || one(t, m, ClaimSVN) != int64(3) {
					t.Error("identity claims")
				}
				if one(t, m, ClaimMRSigner) != hex.EncodeToString(signer[:]) || one(t, m, ClaimReportData) != hex.EncodeToString(rd[:]) {
					t.Error("mrsigner/report data")
				}
				if one(t, m, ClaimTCBStatus) != "SWHardeningNeeded" {
					t.Error("status")
				}
				if _, ok := m[ClaimConfigID]; ok {
					t.Error("KSS claims without KSS")
				}
			}},
			{"SgxEnclave JSON runtime", evidence.SgxEnclave, quote, &evidence.Data{Bytes: rt, JSON: true}, func(t *testing.T, m map[string][]any) {
				for _, k := range []string{ClaimEHD, "maa-ehd", "aas-ehd"} {
					if _, ok := m[k]; ok {
						t.Errorf("%s with JSON runtime data", k)
					}
				}
			}},
			{"OpenEnclave report", evidence.OpenEnclave, oeReport, nil, func(t *testing.T, m map[string][]any) {
				if one(t, m, "x-ms-attestation-type") != "sgx" {
					t.Error("type")
				}
			}},
			{"OpenEnclave evidence", evidence.OpenEnclave, oeEv, nil, func(t *testing.T, m map[string][]any) {
				cc := one(t, m, ClaimOECustomClaims).(map[string]string)
				if cc["key"] != base64.RawURLEncoding.EncodeToString([]byte("value")) {
					t.Errorf("custom claims %v", cc)
				}
			}},
			{"KSS", evidence.SgxEnclave, kssQuote, nil, func(t *testing.T, m map[string][]any) {
				if one(t, m, ClaimConfigSVN) != int64(9) || !strings.HasPrefix(one(t, m, ClaimConfigID).(string), "c0") || len(one(t, m, ClaimConfigID).(string)) != 128 {
					t.Error("config id/svn")
				}
				if one(t, m, ClaimISVFamilyID) != "fa"+strings.Repeat("0", 30) || one(t, m, ClaimISVExtendedProductID) != "e0"+strings.Repeat("0", 30) {
					t.Error("family/ext product id")
				}
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				res, err := v.Verify(context.Background(), &evidence.Request{Type: c.typ, Evidence: c.ev, Runtime: c.runtime})
				if err != nil {
					t.Fatalf("v%d: %v", version, err)
				}
				c.check(t, claimMap(res.Claims, false))
				pm := claimMap(res.Claims, true)
				if one(t, pm, "$tee") != "sgx" || one(t, pm, "$is-debuggable") != true || one(t, pm, "$product-id") != int64(7) {
					t.Error("deprecated $ aliases")
				}
				for _, c := range res.Claims {
					if strings.HasPrefix(c.Type, "$") && !c.PolicyOnly {
						t.Errorf("%s must be policy-only", c.Type)
					}
					if c.Type == "is-debuggable" || c.Type == "tee" {
						t.Errorf("%s must come from the default policy, not the verifier", c.Type)
					}
				}
			})
		}
	}
}

func TestRejections(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	v := platformVerifier(t, p)
	quote, _ := p.Quote(sgxplatform.QuoteOptions{})
	oeEv, _ := p.OEEvidence(sgxplatform.QuoteOptions{}, []abi.CustomClaim{{Name: "a", Value: []byte("b")}})
	badClaims := slices.Clone(oeEv)
	badClaims[len(badClaims)-1] ^= 1
	tdx := slices.Clone(quote)
	tdx[4] = 0x81
	for _, c := range []struct {
		name  string
		typ   evidence.Type
		ev    []byte
		check string
	}{
		{"raw quote as OpenEnclave", evidence.OpenEnclave, quote, "oe_report.parse"},
		{"OE report as SgxEnclave", evidence.SgxEnclave, abi.NewOEReport(quote), "quote.parse"},
		{"custom claims tampered", evidence.OpenEnclave, badClaims, "oe_evidence.custom_claims_binding"},
		{"TDX quote", evidence.SgxEnclave, tdx, "quote.unsupported_tee"},
		{"truncated", evidence.SgxEnclave, quote[:500], "quote.parse"},
		{"Tpm type", evidence.Tpm, quote, "evidence.type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), &evidence.Request{Type: c.typ, Evidence: c.ev})
			if got := evidence.CheckOf(err); got != c.check {
				t.Fatalf("got %v (check %q), want %q", err, got, c.check)
			}
		})
	}
	// Unreachable collateral is named too.
	v2, _ := NewVerifier(Options{Collateral: &sgxplatform.Source{}, Roots: p.Roots(), Now: at(testNow)})
	_, err := v2.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote})
	if evidence.CheckOf(err) != "collateral.unavailable" {
		t.Fatalf("got %v", err)
	}
	// The test root is not trusted by default.
	v3, _ := NewVerifier(Options{Collateral: p.Source(), Now: at(testNow)})
	_, err = v3.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote})
	if evidence.CheckOf(err) != "pck_chain" {
		t.Fatalf("test root trusted by default: %v", err)
	}
}

func TestGraceIsAnnounced(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{ExpiredCollateral: true})
	quote, _ := p.Quote(sgxplatform.QuoteOptions{})
	v, _ := NewVerifier(Options{Collateral: p.Source(), Roots: p.Roots(), Now: at(testNow), Grace: 2 * time.Hour})
	res, err := v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote})
	if err != nil {
		t.Fatal(err)
	}
	if got := one(t, claimMap(res.Claims, false), ClaimGraceUsed); got != "tcb_info,qe_identity,root_crl,pck_crl" {
		t.Fatalf("grace claim %v", got)
	}
}

// TestAzureSDKSamples: the 2021 Azure SDK OE reports parse, bind the
// runtime data and carry the expected debug flag; their collateral is not
// public, so full verification is impossible — the diagnostic mode shows
// that their signatures and PCK chains (old root certificate, same pinned
// Intel key) verify, and says loudly that collateral was skipped.
func TestAzureSDKSamples(t *testing.T) {
	held := testenv.ReadShared(t, "vectors/azure-sdk-cpp-oe/SgxEnclaveHeldData.bin")
	h := sha256.Sum256(held)
	diag, err := NewVerifier(Options{DiagnosticSkipCollateral: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file  string
		debug bool
	}{{"OpenEnclaveQuote", true}, {"OpenEnclaveNonDebugQuote", false}} {
		t.Run(c.file, func(t *testing.T) {
			b64 := testenv.ReadShared(t, "vectors/azure-sdk-cpp-oe/"+c.file+".b64url")
			report := DecodeEvidence(b64)
			if !bytes.Equal(report, testenv.ReadShared(t, "vectors/azure-sdk-cpp-oe/"+c.file+".oe_report.bin")) {
				t.Fatal("b64url decode differs from .oe_report.bin")
			}
			ev, err := Parse(evidence.OpenEnclave, report)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ev.Quote.Body.ReportData[:32], h[:]) {
				t.Errorf("report data %x, want SHA-256(held data) %x", ev.Quote.Body.ReportData[:32], h)
			}
			if ev.Quote.Body.Debug() != c.debug {
				t.Errorf("debug %v, want %v", ev.Quote.Body.Debug(), c.debug)
			}
			// The sample embeds the older Intel root certificate (2018..2033);
			// it is accepted because the verifier pins Intel's root key.
			chainPEM, _ := ev.Quote.PCKChainPEM()
			certs, err := verify.ParseCertificates(chainPEM)
			if err != nil {
				t.Fatal(err)
			}
			root, intel := certs[len(certs)-1], verify.DefaultRoots()[0]
			if bytes.Equal(root.Raw, intel.Raw) || root.NotAfter.Year() != 2033 || !root.PublicKey.(*ecdsa.PublicKey).Equal(intel.PublicKey) {
				t.Errorf("sample root %s..%s: want the older certificate of Intel's root key", root.NotBefore, root.NotAfter)
			}
			raw := testenv.ReadShared(t, "vectors/azure-sdk-cpp-oe/"+c.file+".sgx_quote.bin")
			if _, err := Parse(evidence.SgxEnclave, raw); err != nil {
				t.Fatalf("raw quote: %v", err)
			}
			res, err := diag.Verify(context.Background(), &evidence.Request{Type: evidence.OpenEnclave, Evidence: report, Runtime: &evidence.Data{Bytes: held}})
			if err != nil {
				t.Fatalf("diagnostic verify: %v", err)
			}
			m := claimMap(res.Claims, false)
			if one(t, m, ClaimTCBStatus) != TCBStatusNotVerified || !strings.Contains(one(t, m, ClaimDiagnosticMode).(string), "NOT checked") {
				t.Error("diagnostic mode not announced in claims")
			}
			if _, ok := m[ClaimCollateral]; ok {
				t.Error("collateral hashes claimed without collateral")
			}
			if one(t, m, ClaimIsDebuggable) != c.debug {
				t.Error("is-debuggable claim")
			}
			// A flipped bit still fails in diagnostic mode.
			bad := slices.Clone(report)
			bad[16+100] ^= 1
			if _, err := diag.Verify(context.Background(), &evidence.Request{Type: evidence.OpenEnclave, Evidence: bad}); evidence.CheckOf(err) != "quote.signature" {
				t.Errorf("tampered sample: %v", err)
			}
		})
	}
	if _, err := NewVerifier(Options{}); err == nil {
		t.Error("a verifier without collateral must need the explicit diagnostic flag")
	}
}

// Compile-time check that the test platform's source is a collateral.Source.
var _ collateral.Source = (*sgxplatform.Source)(nil)

func TestConcurrentVerify(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	v := platformVerifier(t, p)
	quote, _ := p.Quote(sgxplatform.QuoteOptions{})
	bad := slices.Clone(quote)
	bad[100] ^= 1
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func(i int) {
			q := quote
			if i%4 == 0 {
				q = bad
			}
			_, err := v.Verify(context.Background(), &evidence.Request{Type: evidence.SgxEnclave, Evidence: q})
			if (err != nil) != (i%4 == 0) {
				errs <- fmt.Errorf("goroutine %d: %v", i, err)
				return
			}
			errs <- nil
		}(i)
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
