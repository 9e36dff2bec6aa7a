package dcap_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/testing/dcapfake"
)

// testNow is the fixed instant the fixtures are built around.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture is one PKI, a quote under it and a verifier trusting its root.
type fixture struct {
	pki *dcapfake.PKI
	q   *dcap.Quote
	v   *dcap.Verifier
}

func newFixture(t testing.TB, o dcapfake.Options, tee dcap.TEE) *fixture {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = testNow
	}
	p, err := dcapfake.New(o)
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.Quote(tee, []byte("header || report body of the test quote"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := dcap.New(dcap.Options{Roots: p.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pki: p, q: q, v: v}
}

func (f *fixture) coll(t testing.TB, d dcapfake.Docs) *collateral.Collateral {
	t.Helper()
	c, err := f.pki.Collateral(d)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tdxModule is the TD report module of the fixtures' TDX platform: module
// major version 1 (TDX_01), ISVSVN 3, TEE_TCB_SVN[2:] all 3 (the second
// default TCB level).
func tdxModule() *dcap.TDXModuleReport {
	m := &dcap.TDXModuleReport{}
	for i := range m.TEETCBSVN {
		m.TEETCBSVN[i] = 3
	}
	m.TEETCBSVN[1] = 1
	return m
}

// checkOf returns the Check of err's *evidence.Error, failing when err is
// another kind of error.
func checkOf(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var e *evidence.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *evidence.Error", err)
	}
	return string(e.Check)
}

func ptr[T any](v T) *T { return &v }

func TestVerifyAccepts(t *testing.T) {
	for _, tee := range []dcap.TEE{dcap.SGX, dcap.TDX} {
		t.Run(string(tee), func(t *testing.T) {
			f := newFixture(t, dcapfake.Options{}, tee)
			ev := &dcap.Evidence{Quote: f.q, TEE: tee}
			if tee == dcap.TDX {
				ev.TDX = tdxModule()
			}
			r, err := f.v.Verify(testNow, ev, f.coll(t, dcapfake.Docs{TEE: tee}))
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != pcs.UpToDate || r.FMSPC != "00906ed50000" || r.PCKCA != "processor" || r.TCBEvaluationDataNumber != 17 {
				t.Fatalf("got %+v", r)
			}
			if tee == dcap.TDX && r.TDXModuleStatus != pcs.UpToDate {
				t.Errorf("TDX module status %q", r.TDXModuleStatus)
			}
		})
	}
}

// TestVerifyRefuses: every refusal names its check. One table for SGX and
// TDX; each row breaks one thing through the fixture's overrides.
func TestVerifyRefuses(t *testing.T) {
	hour := time.Hour
	type tc struct {
		name  string
		opts  dcapfake.Options
		docs  func(p *dcapfake.PKI) dcapfake.Docs
		quote func(q *dcap.Quote)
		mod   func(m *dcap.TDXModuleReport) // TDX only
		now   time.Time
		check string
		only  dcap.TEE // run for this TEE only
	}
	otherRoot, err := dcapfake.New(dcapfake.Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := dcapfake.GenKey()
	if err != nil {
		t.Fatal(err)
	}
	cases := []tc{
		// Tampered evidence.
		{name: "quote signature", quote: func(q *dcap.Quote) { q.SignedBytes = append([]byte("x"), q.SignedBytes...) }, check: dcap.CheckQuoteSignature},
		{name: "QE report signature", quote: func(q *dcap.Quote) { q.QEReportBytes[0] ^= 1 }, check: dcap.CheckQEReportSignature},
		{name: "QE auth data", quote: func(q *dcap.Quote) { q.QEAuthData = []byte("other") }, check: dcap.CheckQEReportBinding},
		{name: "QE vendor", quote: func(q *dcap.Quote) { q.QEVendorID[0] ^= 1 }, check: dcap.CheckQEVendorID},
		{name: "attestation key off the curve", quote: func(q *dcap.Quote) { q.AttestationKey = make([]byte, 64) }, check: dcap.CheckQEReportBinding},
		// Wrong root.
		{name: "chain under another root", quote: func(q *dcap.Quote) { q.PCKChainPEM = otherRoot.PCKChainPEM() }, check: dcap.CheckPCKChain},
		{name: "PCK signed by a key that is not its CA's", opts: dcapfake.Options{PCK: dcapfake.CertOverride{SignerKey: wrongKey}}, check: dcap.CheckPCKChain},
		{name: "PCK CA without CA flag", opts: dcapfake.Options{PCKCA: dcapfake.CertOverride{IsCA: ptr(false)}}, check: dcap.CheckPCKChain},
		{name: "PCK leaf not named a PCK certificate", opts: dcapfake.Options{PCK: dcapfake.CertOverride{CommonName: "attestd TEST something"}}, check: dcap.CheckPCKChain},
		{name: "TCB info signed under another root", docs: func(p *dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TCBInfoSigner: &dcapfake.Issuer{Cert: otherRoot.Signer, Key: otherRoot.SignerKey}}
		}, check: dcap.CheckTCBInfoIssuerChain},
		// Wrong TCB signer role.
		{name: "TCB info signed by the PCK CA", docs: func(p *dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TCBInfoSigner: &dcapfake.Issuer{Cert: p.PCKCA, Key: p.PCKCAKey}}
		}, check: dcap.CheckTCBInfoIssuerChain},
		{name: "QE identity signed by the PCK CA", docs: func(p *dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{QEIdentitySigner: &dcapfake.Issuer{Cert: p.PCKCA, Key: p.PCKCAKey}}
		}, check: dcap.CheckQEIdentityIssuerChain},
		{name: "TCB signer without digital signature usage", opts: dcapfake.Options{TCBSigner: dcapfake.CertOverride{KeyUsage: ptr(x509.KeyUsageCertSign)}}, check: dcap.CheckTCBInfoIssuerChain},
		{name: "TCB signer as a CA", opts: dcapfake.Options{TCBSigner: dcapfake.CertOverride{IsCA: ptr(true)}}, check: dcap.CheckTCBInfoIssuerChain},
		// Tampered collateral.
		{name: "TCB info bytes", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{Mutate: func(c *collateral.Collateral) { c.TCBInfo = append(c.TCBInfo, ' ') }}
		}, check: dcap.CheckTCBInfoSignature},
		{name: "QE identity signature", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{Mutate: func(c *collateral.Collateral) { c.QEIdentitySignature[5] ^= 1 }}
		}, check: dcap.CheckQEIdentitySignature},
		{name: "root CRL signed by the PCK CA", docs: func(p *dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{RootCRLSigner: &dcapfake.Issuer{Cert: p.PCKCA, Key: p.PCKCAKey}}
		}, check: dcap.CheckRootCRLIssuer},
		{name: "PCK CRL missing", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{Mutate: func(c *collateral.Collateral) { c.PCKCRL = nil }}
		}, check: dcap.CheckPCKCRLMissing},
		{name: "SGX TCB info for TDX", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TEE: dcap.SGX}
		}, check: dcap.CheckTCBInfoParse, only: dcap.TDX},
		// Expired and not-yet-valid collateral.
		{name: "TCB info expired", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.NextUpdate = testNow.Add(-hour).Format(time.RFC3339) }}
		}, check: dcap.CheckTCBInfoExpired},
		{name: "QE identity not yet valid", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{QEIdentity: func(j *pcs.EnclaveIdentityJSON) { j.IssueDate = testNow.Add(hour).Format(time.RFC3339) }}
		}, check: dcap.CheckQEIdentityNotYetValid},
		{name: "root CRL expired", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{RootCRL: func(l *x509.RevocationList) { l.ThisUpdate, l.NextUpdate = testNow.Add(-48*hour), testNow.Add(-hour) }}
		}, check: dcap.CheckRootCRLExpired},
		{name: "PCK CRL not yet valid", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{PCKCRL: func(l *x509.RevocationList) { l.ThisUpdate = testNow.Add(hour) }}
		}, check: dcap.CheckPCKCRLNotYetValid},
		{name: "everything expired a year later", now: testNow.Add(400 * 24 * hour), check: dcap.CheckTCBInfoExpired},
		// Expired and not-yet-valid certificates.
		{name: "PCK certificate expired", opts: dcapfake.Options{PCK: dcapfake.CertOverride{NotAfter: testNow.Add(-hour)}}, check: dcap.CheckPCKChainExpired},
		{name: "PCK CA not yet valid", opts: dcapfake.Options{PCKCA: dcapfake.CertOverride{NotBefore: testNow.Add(hour)}}, check: dcap.CheckPCKChainNotYetValid},
		{name: "root expired", opts: dcapfake.Options{Root: dcapfake.CertOverride{NotAfter: testNow.Add(-hour)}}, check: dcap.CheckPCKChainExpired},
		{name: "TCB signer expired", opts: dcapfake.Options{TCBSigner: dcapfake.CertOverride{NotAfter: testNow.Add(-hour)}}, check: dcap.CheckCollateralSigningCertExpired},
		// Revoked certificates: every certificate below the root.
		{name: "PCK revoked", docs: func(p *dcapfake.PKI) dcapfake.Docs { return dcapfake.Docs{PCKCRL: dcapfake.Revoke(p.PCK)} }, check: dcap.CheckPCKRevoked},
		{name: "PCK CA revoked", docs: func(p *dcapfake.PKI) dcapfake.Docs { return dcapfake.Docs{RootCRL: dcapfake.Revoke(p.PCKCA)} }, check: dcap.CheckPCKCARevoked},
		{name: "TCB signer revoked", docs: func(p *dcapfake.PKI) dcapfake.Docs { return dcapfake.Docs{RootCRL: dcapfake.Revoke(p.Signer)} }, check: dcap.CheckTCBSigningRevoked},
		// Platform and TCB.
		{name: "TCB info for another FMSPC", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.FMSPC = "00A067110000" }}
		}, check: dcap.CheckTCBInfoFMSPC},
		{name: "QE MRSIGNER", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{QEIdentity: func(j *pcs.EnclaveIdentityJSON) { j.MRSigner = "00" + j.MRSigner[2:] }}
		}, check: dcap.CheckQEIdentityMRSigner},
		{name: "QE level revoked", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{QEIdentity: func(j *pcs.EnclaveIdentityJSON) { j.TCBLevels[0].TCBStatus = string(pcs.Revoked) }}
		}, check: dcap.CheckQEIdentityRevoked},
		{name: "platform below every level", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBLevels = j.TCBLevels[:1] }}
		}, check: dcap.CheckTCBNoLevel},
		{name: "platform level revoked", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBLevels[1].TCBStatus = string(pcs.Revoked) }}
		}, check: dcap.CheckTCBRevoked},
		// TDX only: TEE_TCB_SVN and module identities.
		{name: "TEE_TCB_SVN below the levels", mod: func(m *dcap.TDXModuleReport) { m.TEETCBSVN[15] = 0 }, docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TEE: dcap.TDX, TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBLevels = j.TCBLevels[:2] }}
		}, check: dcap.CheckTCBNoLevel, only: dcap.TDX},
		{name: "TEE_TCB_SVN bytes 0 and 1 are the module's", mod: func(m *dcap.TDXModuleReport) { m.TEETCBSVN[0] = 200 }, docs: func(*dcapfake.PKI) dcapfake.Docs {
			// With a module version set, a low byte 0/1 of a level is not compared with TEE_TCB_SVN[0..1].
			return dcapfake.Docs{TEE: dcap.TDX, TCBInfo: func(j *pcs.TCBInfoJSON) { j.TCBLevels[1].TCB.TDXComponents[1].SVN = 99 }}
		}, check: "", only: dcap.TDX},
		{name: "unknown module version", mod: func(m *dcap.TDXModuleReport) { m.TEETCBSVN[1] = 7 }, check: dcap.CheckTDXModuleIdentity, only: dcap.TDX},
		{name: "module MRSIGNER_SEAM", mod: func(m *dcap.TDXModuleReport) { m.MRSignerSeam[0] = 1 }, check: dcap.CheckTDXModuleMRSigner, only: dcap.TDX},
		{name: "module attributes", mod: func(m *dcap.TDXModuleReport) { m.SEAMAttributes[0] = 1 }, check: dcap.CheckTDXModuleAttributes, only: dcap.TDX},
		{name: "module ISVSVN below its levels", mod: func(m *dcap.TDXModuleReport) { m.TEETCBSVN[0] = 0 }, check: dcap.CheckTDXModuleNoLevel, only: dcap.TDX},
		{name: "module level revoked", docs: func(*dcapfake.PKI) dcapfake.Docs {
			return dcapfake.Docs{TEE: dcap.TDX, TCBInfo: func(j *pcs.TCBInfoJSON) { j.TDXModuleIdentities[0].TCBLevels[0].TCBStatus = string(pcs.Revoked) }}
		}, check: dcap.CheckTDXModuleRevoked, only: dcap.TDX},
		{name: "module 1.0 MRSIGNER_SEAM", mod: func(m *dcap.TDXModuleReport) { m.TEETCBSVN[1] = 0; m.MRSignerSeam[47] = 1 }, check: dcap.CheckTDXModuleMRSigner, only: dcap.TDX},
	}
	for _, tee := range []dcap.TEE{dcap.SGX, dcap.TDX} {
		for _, c := range cases {
			if c.only != "" && c.only != tee {
				continue
			}
			t.Run(string(tee)+"/"+c.name, func(t *testing.T) {
				f := newFixture(t, c.opts, tee)
				d := dcapfake.Docs{TEE: tee}
				if c.docs != nil {
					d = c.docs(f.pki)
					if d.TEE == "" {
						d.TEE = tee
					}
				}
				ev := &dcap.Evidence{Quote: f.q, TEE: tee}
				if tee == dcap.TDX {
					ev.TDX = tdxModule()
					if c.mod != nil {
						c.mod(ev.TDX)
					}
				}
				if c.quote != nil {
					c.quote(f.q)
				}
				now := testNow
				if !c.now.IsZero() {
					now = c.now
				}
				_, err := f.v.Verify(now, ev, f.coll(t, d))
				got := checkOf(t, err)
				if !slices.Contains(splitChecks(c.check), got) {
					t.Fatalf("got check %q (%v), want %s", got, err, c.check)
				}
			})
		}
	}
}

func splitChecks(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '|' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// TestRootMatchedByCertificate (issue 9): a chain whose root certificate
// carries the trusted root's key but is another certificate (re-issued by
// whoever holds the key, with its own validity and serial) is not a trusted
// root: Intel's QVL compares the whole certificate, so must we. Before the
// fix, the root was matched by public key alone and this chain verified.
func TestRootMatchedByCertificate(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.SGX)
	p := f.pki
	twin, _, err := dcapfake.Mint(&x509.Certificate{
		Subject: p.Root.Subject, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}, nil, nil, dcapfake.CertOverride{Key: p.RootKey})
	if err != nil {
		t.Fatal(err)
	}
	if !twin.PublicKey.(*ecdsa.PublicKey).Equal(p.Root.PublicKey) || string(twin.Raw) == string(p.Root.Raw) {
		t.Fatal("fixture: the twin must have the root's key and other bytes")
	}
	f.q.PCKChainPEM = dcapfake.PEM(p.PCK, p.PCKCA, twin)
	_, err = f.v.Verify(testNow, &dcap.Evidence{Quote: f.q}, f.coll(t, dcapfake.Docs{}))
	if got := checkOf(t, err); got != dcap.CheckPCKChain {
		t.Fatalf("got check %q (%v), want %s", got, err, dcap.CheckPCKChain)
	}
	// Trusting the twin explicitly makes it a root (and the collateral,
	// whose chains end at the original certificate of the same key, still
	// verifies: one key, one Root CA CRL).
	v, err := dcap.New(dcap.Options{Roots: []*x509.Certificate{p.Root, twin}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(testNow, &dcap.Evidence{Quote: f.q}, f.coll(t, dcapfake.Docs{})); err != nil {
		t.Fatalf("explicitly trusted twin: %v", err)
	}
}

// TestGrace: documents past nextUpdate by less than Options.Grace verify and are named.
func TestGrace(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.SGX)
	v, err := dcap.New(dcap.Options{Roots: f.pki.Roots(), Grace: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	coll := f.coll(t, dcapfake.Docs{Issue: testNow.Add(-30 * 24 * time.Hour), Next: testNow.Add(-time.Hour)})
	r, err := v.Verify(testNow, &dcap.Evidence{Quote: f.q}, coll)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.GraceUsed, []string{"tcb_info", "qe_identity", "root_crl", "pck_crl"}) {
		t.Errorf("GraceUsed %v", r.GraceUsed)
	}
	if _, err := v.Verify(testNow.Add(48*time.Hour), &dcap.Evidence{Quote: f.q}, coll); checkOf(t, err) != dcap.CheckTCBInfoExpired {
		t.Errorf("past the grace period: %v", err)
	}
}

func TestConverge(t *testing.T) {
	cases := []struct{ platform, component, want pcs.TCBStatus }{
		{pcs.UpToDate, pcs.UpToDate, pcs.UpToDate},
		{pcs.UpToDate, pcs.OutOfDate, pcs.OutOfDate},
		{pcs.SWHardeningNeeded, pcs.OutOfDate, pcs.OutOfDate},
		{pcs.ConfigurationNeeded, pcs.OutOfDate, pcs.OutOfDateConfigurationNeeded},
		{pcs.ConfigurationAndSWHardeningNeeded, pcs.OutOfDate, pcs.OutOfDateConfigurationNeeded},
		{pcs.OutOfDate, pcs.OutOfDate, pcs.OutOfDate},
		{pcs.SWHardeningNeeded, pcs.Revoked, pcs.Revoked},
		{pcs.ConfigurationNeeded, pcs.UpToDate, pcs.ConfigurationNeeded},
	}
	for _, c := range cases {
		if got := dcap.Converge(c.platform, c.component); got != c.want {
			t.Errorf("Converge(%s, %s) = %s, want %s", c.platform, c.component, got, c.want)
		}
	}
}

// TestTDXStatusConvergence: the module's and the QE's statuses both fold
// into the result, with their advisories after the platform's.
func TestTDXStatusConvergence(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.TDX)
	m := tdxModule()
	m.TEETCBSVN[0] = 2 // below the module's UpToDate level (3), at its OutOfDate one (1)
	coll := f.coll(t, dcapfake.Docs{TEE: dcap.TDX, TCBInfo: func(j *pcs.TCBInfoJSON) {
		j.TCBLevels[1].TCBStatus, j.TCBLevels[1].AdvisoryIDs = string(pcs.ConfigurationNeeded), []string{"INTEL-SA-00001"}
	}})
	r, err := f.v.Verify(testNow, &dcap.Evidence{Quote: f.q, TEE: dcap.TDX, TDX: m}, coll)
	if err != nil {
		t.Fatal(err)
	}
	if r.PlatformStatus != pcs.ConfigurationNeeded || r.TDXModuleStatus != pcs.OutOfDate || r.Status != pcs.OutOfDateConfigurationNeeded {
		t.Errorf("statuses %s / module %s / merged %s", r.PlatformStatus, r.TDXModuleStatus, r.Status)
	}
	if !slices.Equal(r.AdvisoryIDs, []string{"INTEL-SA-00001", "INTEL-SA-00888"}) {
		t.Errorf("advisories %v", r.AdvisoryIDs)
	}
}

// TestCacheStillChecksTime: verified collateral is cached, but the clock
// checks run on every call.
func TestCacheStillChecksTime(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.SGX)
	coll := f.coll(t, dcapfake.Docs{})
	ev := &dcap.Evidence{Quote: f.q}
	if _, err := f.v.Verify(testNow, ev, coll); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(testNow.Add(31*24*time.Hour), ev, coll); checkOf(t, err) != dcap.CheckTCBInfoExpired {
		t.Fatalf("warm cache, later instant: %v", err)
	}
}
