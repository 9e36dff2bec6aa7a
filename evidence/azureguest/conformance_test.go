package azureguest_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	guest "github.com/attestd/attestd/client/azureguest"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/evidence/azureguest/hcl"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/snp"
	snpverify "github.com/attestd/attestd/evidence/snp/verify"
	tpmverify "github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/testing/cvmplatform"
	"github.com/attestd/attestd/testing/snpplatform"
	"github.com/attestd/attestd/testing/tdxplatform"
	"github.com/attestd/attestd/tpmclient"
)

// noRuntimeData is why AzureGuest results carry no Result.ReportData: the
// runtime data of an Azure CVM is the HCL runtime JSON inside the
// evidence, which the verifier binds itself (azureguest.runtime.binding)
// and reports as x-ms-runtime; MAA's AzureGuest request has no runtimeData
// beside the AttestationInfo.
const noRuntimeData = "AzureGuest's runtime data is the HCL runtime JSON inside the AttestationInfo, bound by the verifier itself"

// cvm is the vTPM of a test confidential VM: a software TPM with a
// measured Secure Boot log and an AK.
type cvm struct{ *cvmplatform.VTPM }

func newCVM(t *testing.T) *cvm {
	t.Helper()
	return &cvm{cvmplatform.StartVTPM(context.Background(), t, newCA(t, "db").cert.Raw)}
}

// collect is the AttestationInfo JSON of the vTPM with o's HCL report, AK
// certificate or log (the ephemeral key is flushed at once: the suite
// never opens a sealed token).
func (c *cvm) collect(t *testing.T, o guest.Options) []byte {
	t.Helper()
	tr := c.TPM
	o.AK = c.AK.Handle
	if o.TCGLog == nil {
		o.TCGLog = tpmclient.EncodeLog(c.Events)
	}
	o.OSType, o.OSDistro = "Linux", "Ubuntu"
	ev, err := guest.Collect(context.Background(), tr, o)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	b, err := ev.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit re-encodes the AttestationInfo b changed by f (a structurally valid
// document whose signed parts may no longer agree).
func edit(t *testing.T, b []byte, f func(*envelope.AttestationInfo)) []byte {
	t.Helper()
	ai, err := envelope.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	f(ai)
	out, err := envelope.Marshal(ai)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func agRequest(b []byte, at time.Time) *evidence.Request {
	return &evidence.Request{Type: evidence.AzureGuest, Evidence: append([]byte(nil), b...), Now: at}
}

// TestConformanceSNP runs the verifier conformance suite (issue 8) against
// the AzureGuest verifier for an SEV-SNP confidential VM: a software TPM
// answers as the vTPM, its AK named by the HCL runtime JSON that a test SNP
// platform's report binds. The VCEK (valid 2024-01-01 for 7 years) is the
// time-bounded collateral.
func TestConformanceSNP(t *testing.T) {
	c := newCVM(t)
	sp, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Another product line: snpplatform's keys are go-sev-guest's fixed
	// test keys, so only another product's roots are untrusted here.
	foreign, err := snpplatform.New(snpplatform.Options{ProductName: "Genoa-B1"})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := snpverify.RootsFromPEM(sp.ProductLine, sp.RootsPEM())
	if err != nil {
		t.Fatal(err)
	}
	sv, err := snp.New(snp.Options{Verify: snpverify.Options{Roots: []snpverify.ProductRoots{roots}}})
	if err != nil {
		t.Fatal(err)
	}
	v := azureguest.New(azureguest.Options{SNP: sv})
	akPub := c.AK.Pub.(*rsa.PublicKey)
	hclOf := func(p *snpplatform.Platform, ak *rsa.PublicKey) []byte {
		t.Helper()
		r, err := cvmplatform.HCLReport(p, ak)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	on := func(p *snpplatform.Platform, hclReport []byte) guest.Options {
		return guest.Options{HCLReport: hclReport, NoAKCert: true, VCEKChain: p.ChainPEM(false)}
	}
	good := c.collect(t, on(sp, hclOf(sp, akPub)))

	// An HCL report whose SNP report was changed after signing.
	rt, err := cvmplatform.RuntimeJSON(akPub)
	if err != nil {
		t.Fatal(err)
	}
	var rd [64]byte
	sum := sha256.Sum256(rt)
	copy(rd[:], sum[:])
	hw, err := sp.Sign(snpplatform.Report{ReportData: rd})
	if err != nil {
		t.Fatal(err)
	}
	hw[0x90] ^= 1 // MEASUREMENT, signed
	tamperedHCL, err := hcl.Marshal(&hcl.Report{Version: 2, Type: hcl.TypeSNP, HashType: hcl.HashSHA256, HWReport: hw, RuntimeData: rt})
	if err != nil {
		t.Fatal(err)
	}
	tamperedReport := c.collect(t, on(sp, tamperedHCL))
	untrusted := c.collect(t, on(foreign, hclOf(foreign, akPub)))
	otherAK, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherAKNamed := c.collect(t, on(sp, hclOf(sp, &otherAK.PublicKey)))
	otherLog, err := cvmplatform.BootEvents(newCA(t, "other db").cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	otherBoot := c.collect(t, func() guest.Options {
		o := on(sp, hclOf(sp, akPub))
		o.TCGLog = tpmclient.EncodeLog(otherLog)
		return o
	}())

	at := func(b []byte) func(testing.TB) *evidence.Request {
		return func(testing.TB) *evidence.Request { return agRequest(b, now) }
	}
	verifiertest.Run(t, verifiertest.Harness{
		Verifier:          v,
		Good:              at(good),
		Expired:           time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC),
		ExpiredChecks:     []evidence.Check{snpverify.CheckEndorsementExpired},
		NotYetValid:       time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC),
		NotYetValidChecks: []evidence.Check{snpverify.CheckEndorsementNotYetValid},
		NoRuntimeData:     noRuntimeData,
		Bad: []verifiertest.Case{
			{Name: "tampered SNP report", ParseOK: true, Checks: []evidence.Check{snpverify.CheckSignature}, Request: at(tamperedReport)},
			{Name: "SNP platform of an untrusted product root", ParseOK: true, Checks: []evidence.Check{snpverify.CheckEndorsementChain, snpverify.CheckProduct},
				Request: at(untrusted)},
			{Name: "HCL runtime JSON not the report's", ParseOK: true, Checks: []evidence.Check{azureguest.CheckRuntimeBinding},
				Request: at(edit(t, good, func(ai *envelope.AttestationInfo) {
					ai.Isolation.RuntimeData = append([]byte(nil), ai.Isolation.RuntimeData...)
					ai.Isolation.RuntimeData[len(ai.Isolation.RuntimeData)-2] ^= 1
				}))},
			{Name: "AikPub not the HCLAkPub", ParseOK: true, Checks: []evidence.Check{azureguest.CheckAKBinding}, Request: at(otherAKNamed)},
			{Name: "tampered quote", ParseOK: true, Checks: []evidence.Check{tpmverify.CheckQuoteSignature},
				Request: at(edit(t, good, func(ai *envelope.AttestationInfo) {
					ai.TPM.PcrQuote = append([]byte(nil), ai.TPM.PcrQuote...)
					ai.TPM.PcrQuote[len(ai.TPM.PcrQuote)-1] ^= 1 // the signed pcrDigest
				}))},
			{Name: "TCG log of another boot", ParseOK: true, Checks: []evidence.Check{tpmverify.CheckEventLogReplay}, Request: at(otherBoot)},
			// The log is unsigned: leaving out every Secure Boot event
			// (PCR 7) still replays the other PCRs.
			{Name: "TCG log without PCR 7's events", ParseOK: true, Checks: []evidence.Check{tpmverify.CheckEventLogReplay},
				Request: at(edit(t, good, func(ai *envelope.AttestationInfo) {
					l, err := tpmclient.FilterLog(ai.TcgLogs, tpmclient.AllPCRs&^(1<<7))
					if err != nil {
						t.Fatal(err)
					}
					ai.TcgLogs = l
				}))},
			{Name: "no TCG log", ParseOK: true, Checks: []evidence.Check{azureguest.CheckTCGLog},
				Request: at(edit(t, good, func(ai *envelope.AttestationInfo) { ai.TcgLogs = nil }))},
			{Name: "encryption key not certified by the AK", ParseOK: true, Checks: []evidence.Check{azureguest.CheckEncKey},
				Request: at(edit(t, good, func(ai *envelope.AttestationInfo) {
					s := append([]byte(nil), ai.TPM.EncKeyCertifyInfoSignature...)
					s[len(s)-1] ^= 1
					ai.TPM.EncKeyCertifyInfoSignature = s
				}))},
		},
	})
}

// TestConformanceTrustedLaunch runs the suite against the AzureGuest
// verifier for a Trusted Launch VM (no hardware isolation): the AK is
// trusted only through its certificate, which chains to a test root the
// verifier is configured with, so that certificate (valid an hour either
// side of now) is the time-bounded collateral.
func TestConformanceTrustedLaunch(t *testing.T) {
	c := newCVM(t)
	root, other := newCA(t, "vTPM AK root"), newCA(t, "other root")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	v := azureguest.New(azureguest.Options{AKRoots: roots})
	tl := func(cert []byte) guest.Options {
		return guest.Options{TrustedLaunch: true, AKCert: cert, NoAKCert: cert == nil}
	}
	good := c.collect(t, tl(root.issue(t, c.AK.Pub)))
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	at := func(b []byte) func(testing.TB) *evidence.Request {
		return func(testing.TB) *evidence.Request { return agRequest(b, now) }
	}
	verifiertest.Run(t, verifiertest.Harness{
		Verifier:          v,
		Good:              at(good),
		Expired:           now.Add(2 * time.Hour),
		ExpiredChecks:     []evidence.Check{azureguest.CheckAKCert},
		NotYetValid:       now.Add(-2 * time.Hour),
		NotYetValidChecks: []evidence.Check{azureguest.CheckAKCert},
		NoRuntimeData:     noRuntimeData,
		Bad: []verifiertest.Case{
			{Name: "AK certificate of an untrusted CA", ParseOK: true, Checks: []evidence.Check{azureguest.CheckAKCert},
				Request: at(c.collect(t, tl(other.issue(t, c.AK.Pub))))},
			{Name: "AK certificate of another key", ParseOK: true, Checks: []evidence.Check{azureguest.CheckAKBinding},
				Request: at(c.collect(t, tl(root.issue(t, &otherKey.PublicKey))))},
			{Name: "no AK certificate", ParseOK: true, Checks: []evidence.Check{azureguest.CheckAKCert}, Request: at(c.collect(t, tl(nil)))},
			{Name: "tampered quote", ParseOK: true, Checks: []evidence.Check{tpmverify.CheckQuoteSignature},
				Request: at(edit(t, good, func(ai *envelope.AttestationInfo) {
					ai.TPM.PcrQuote = append([]byte(nil), ai.TPM.PcrQuote...)
					ai.TPM.PcrQuote[len(ai.TPM.PcrQuote)-1] ^= 1
				}))},
			{Name: "encryption key not certified by the AK", ParseOK: true, Checks: []evidence.Check{azureguest.CheckEncKey},
				Request: at(edit(t, good, func(ai *envelope.AttestationInfo) {
					s := append([]byte(nil), ai.TPM.EncKeyCertifyInfoSignature...)
					s[len(s)-1] ^= 1
					ai.TPM.EncKeyCertifyInfoSignature = s
				}))},
		},
	})
}

// TestZeroInstantRefused: a caller that forgets Request.Now is refused at
// evidence.now (a typed check, as every refusal), for a Trusted Launch VM
// too, whose verification reaches no hardware verifier.
func TestZeroInstantRefused(t *testing.T) {
	c := newCVM(t)
	root := newCA(t, "vTPM AK root")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	v := azureguest.New(azureguest.Options{AKRoots: roots})
	b := c.collect(t, guest.Options{TrustedLaunch: true, AKCert: root.issue(t, c.AK.Pub)})
	if _, err := evidence.Verify(context.Background(), v, agRequest(b, time.Time{})); !errors.Is(err, evidence.CheckVerificationTime) {
		t.Fatalf("zero Now: %v, want check %s", err, evidence.CheckVerificationTime)
	}
	if _, err := evidence.Verify(context.Background(), v, agRequest(b, now)); err != nil {
		t.Fatal(err)
	}
}

// TestConformanceTDX runs the suite against the AzureGuest verifier for a
// TDX confidential VM: the HCL runtime JSON naming the swtpm's AK is bound
// by a test TDX platform's TD quote, whose DCAP collateral (TCB info, QE
// identity, CRLs: the time-bounded collateral) the verifier fetches at
// Verify from a counting source, so the suite also shows that Parse
// fetches nothing.
func TestConformanceTDX(t *testing.T) {
	c := newCVM(t)
	tdxNow := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h, err := tdxplatform.NewHarness(tdxNow)
	if err != nil {
		t.Fatal(err)
	}
	p, foreign := h.Platform, h.Foreign
	v := azureguest.New(azureguest.Options{TDX: h.Verifier})
	rt, err := cvmplatform.RuntimeJSON(c.AK.Pub.(*rsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	// The TD report inside the HCL report is what the guest's IMDS turns
	// into the quote; the verifier reads the quote (TDQuote) only.
	rep, err := hcl.Marshal(&hcl.Report{Version: 2, Type: hcl.TypeTDX, HashType: hcl.HashSHA256, HWReport: make([]byte, hcl.TDReportSize), RuntimeData: rt})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(pl *tdxplatform.Platform, runtime []byte) []byte {
		t.Helper()
		var q tdxplatform.Quote
		q.BindRuntime(runtime)
		b, err := pl.Mint(q)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	td := func(quote []byte) []byte {
		t.Helper()
		return c.collect(t, guest.Options{HCLReport: rep, TDQuote: quote, NoAKCert: true})
	}
	good := td(mint(p, rt))
	tampered := mint(p, rt)
	tampered[48+100] ^= 1 // inside the signed TD report body
	at := func(b []byte) func(testing.TB) *evidence.Request {
		return func(testing.TB) *evidence.Request { return agRequest(b, tdxNow) }
	}
	suite := h.Suite(v)
	suite.Good = at(good)
	suite.NoRuntimeData = noRuntimeData
	suite.Bad = []verifiertest.Case{
		{Name: "tampered TD quote", ParseOK: true, Checks: []evidence.Check{dcap.CheckQuoteSignature}, Request: at(td(tampered))},
		{Name: "TDX platform of an untrusted root", ParseOK: true, Checks: []evidence.Check{dcap.CheckPCKChain}, Request: at(td(mint(foreign, rt)))},
		{Name: "TD quote binding other runtime data", ParseOK: true, Checks: []evidence.Check{azureguest.CheckRuntimeBinding},
			Request: at(td(mint(p, []byte("other"))))},
		{Name: "tampered quote", ParseOK: true, Checks: []evidence.Check{tpmverify.CheckQuoteSignature},
			Request: at(edit(t, good, func(ai *envelope.AttestationInfo) {
				ai.TPM.PcrQuote = append([]byte(nil), ai.TPM.PcrQuote...)
				ai.TPM.PcrQuote[len(ai.TPM.PcrQuote)-1] ^= 1
			}))},
	}
	verifiertest.Run(t, suite)
}
