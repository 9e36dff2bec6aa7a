// Package sgxplatform is a fake SGX platform for tests: it mints structurally
// real ECDSA quotes (v3 and v4) and OpenEnclave reports/evidence under a TEST
// root CA, together with the complete DCAP collateral (PCK chain with real
// SGX extensions, CRLs, signed TCB info and QE identity) that verifies them.
//
// Nothing here is trusted by default: a verifier accepts these quotes only
// when it is given Platform.Roots() explicitly.
package sgxplatform

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/testing/dcapfake"
)

// Options describe the platform and its collateral.
type Options struct {
	// Now is the instant the collateral is built around: TCB info, QE
	// identity and CRLs are valid from Now-1h to Now+30 days (see
	// ExpiredCollateral); certificates from Now-24h to Now+1 year.
	// Zero means time.Now().
	Now time.Time
	// QuoteVersion is 3 (default) or 4.
	QuoteVersion int
	// FMSPC of the PCK certificate; zero means 00906ED50000.
	FMSPC [6]byte
	// TCBFMSPC, when non-zero, is the FMSPC written into the TCB info
	// (to build collateral for the wrong platform).
	TCBFMSPC [6]byte
	// PlatformCA issues the PCK certificate from a "PCK Platform CA"
	// (otherwise a "PCK Processor CA").
	PlatformCA bool
	// TCBStatus is the status of the TCB level the platform matches
	// (default UpToDate); AdvisoryIDs are that level's advisories.
	TCBStatus   pcs.TCBStatus
	AdvisoryIDs []string
	// QEStatus is the status of the QE TCB level the QE matches (default UpToDate).
	QEStatus pcs.TCBStatus
	// TCBEvaluationDataNumber is written into the TCB info and the QE
	// identity (default 17). Minting collateral twice with different numbers
	// and statuses (CollateralWith) gives one platform several TCB baselines.
	TCBEvaluationDataNumber int
	// RevokePCK lists the PCK certificate in the PCK CA CRL.
	RevokePCK bool
	// RevokePCKCA / RevokeTCBSigner list the PCK CA / the TCB signing
	// certificate in the Root CA CRL.
	RevokePCKCA, RevokeTCBSigner bool
	// ExpiredCollateral makes TCB info, QE identity and both CRLs end one
	// hour before Now (they were issued 31 days earlier).
	ExpiredCollateral bool
	// ExpiredPCKCRL makes only the PCK CA CRL end one hour before Now.
	ExpiredPCKCRL bool

	// Negative-test knobs for the signed collateral (zero values: consistent).
	TCBPCEID             *[2]byte  // PCE ID written into the TCB info
	NoMatchingTCBLevel   bool      // every TCB level is above the PCK certificate's TCB
	QEIdentityMRSigner   *[32]byte // MRSIGNER written into the QE identity
	QEIdentityISVProdID  *uint16
	QEIdentityMiscSelect *uint32
	QEIdentityAttributes *[16]byte
	QEIdentityMinISVSVN  int // > QEISVSVN: the QE matches no QE identity level
	// QEMiscSelect is the MISCSELECT of the QE's own report (default 0).
	QEMiscSelect uint32
	// PCKCommonName replaces the PCK certificate's common name
	// (default "attestd TEST SGX PCK Certificate").
	PCKCommonName string
	// TCBInfoSignedByPCKCA / QEIdentitySignedByPCKCA sign the TCB info / QE
	// identity with the PCK CA's key and deliver the PCK CA chain as its
	// issuer chain: a certificate under the right root, but not a TCB
	// signing certificate.
	TCBInfoSignedByPCKCA, QEIdentitySignedByPCKCA bool
}

// QuoteOptions describe the enclave a quote is made for.
type QuoteOptions struct {
	// Version is the quote format, 3 or 4; zero means Options.QuoteVersion.
	// One platform (one PCK chain and collateral) can mint both.
	Version    int
	Debug      bool
	MREnclave  [32]byte
	MRSigner   [32]byte
	ProductID  uint16
	SVN        uint16
	ReportData [64]byte
	// KSS sets ATTRIBUTES.KSS and fills the KSS fields below.
	KSS                  bool
	ConfigID             [64]byte
	ConfigSVN            uint16
	ISVExtendedProductID [16]byte
	ISVFamilyID          [16]byte
}

// BindInitTime makes o a KSS enclave whose CONFIGID binds init-time data the
// way MAA checks it: SHA-256(data) is the lower 32 bytes of CONFIGID. The
// upper 32 bytes are left as they are (a verifier must ignore them).
func (o *QuoteOptions) BindInitTime(data []byte) {
	o.KSS = true
	h := sha256.Sum256(data)
	copy(o.ConfigID[:32], h[:])
}

// Platform is one fake SGX machine with its CA hierarchy and collateral,
// built on the shared DCAP fixture (testing/dcapfake).
type Platform struct {
	opts Options
	pki  *dcapfake.PKI

	root, pckCA, pck *x509.Certificate
	ext              pcs.PCKExtensions
	qeReport         abi.ReportBody
	coll             *collateral.Collateral
}

// Fixed identity of the test quoting enclave (written into the QE identity).
const (
	QEISVProdID = dcapfake.QEISVProdID
	QEISVSVN    = dcapfake.QEISVSVN
)

// qeMRSigner is the test QE's MRSIGNER.
var qeMRSigner = dcapfake.QEMRSigner

// PCK TCB of the test platform: matched exactly by the second TCB level.
var pckCompSVN = dcapfake.DefaultPCKCompSVN

const pckPCESVN = dcapfake.DefaultPCESVN

// New builds a platform: keys, certificates, a QE and the collateral.
func New(opts Options) (*Platform, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	opts.Now = opts.Now.UTC().Truncate(time.Second)
	if opts.QuoteVersion == 0 {
		opts.QuoteVersion = abi.QuoteVersion3
	}
	if opts.QuoteVersion != abi.QuoteVersion3 && opts.QuoteVersion != abi.QuoteVersion4 {
		return nil, fmt.Errorf("sgxplatform: quote version %d (want 3 or 4)", opts.QuoteVersion)
	}
	if opts.FMSPC == ([6]byte{}) {
		opts.FMSPC = [6]byte{0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00}
	}
	if opts.TCBFMSPC == ([6]byte{}) {
		opts.TCBFMSPC = opts.FMSPC
	}
	if opts.TCBStatus == "" {
		opts.TCBStatus = pcs.UpToDate
	}
	if opts.QEStatus == "" {
		opts.QEStatus = pcs.UpToDate
	}
	pki, err := dcapfake.New(dcapfake.Options{Now: opts.Now, PlatformCA: opts.PlatformCA, FMSPC: opts.FMSPC,
		PCK: dcapfake.CertOverride{CommonName: opts.PCKCommonName}})
	if err != nil {
		return nil, fmt.Errorf("sgxplatform: %w", err)
	}
	p := &Platform{opts: opts, pki: pki, root: pki.Root, pckCA: pki.PCKCA, pck: pki.PCK, ext: pki.Ext}
	// The quoting enclave: its report binds the attestation key and auth data.
	p.qeReport = pki.QEReport(dcap.SGX)
	p.qeReport.MiscSelect = opts.QEMiscSelect
	if p.coll, err = p.buildCollateral(); err != nil {
		return nil, err
	}
	return p, nil
}

func pemOf(certs ...*x509.Certificate) []byte { return dcapfake.PEM(certs...) }

func (p *Platform) attKeyRaw() []byte { return p.pki.AttestationKeyRaw() }

func level(comps [16]int, pcesvn int, date time.Time, status pcs.TCBStatus, adv []string) pcs.TCBLevelJSON {
	l := pcs.TCBLevelJSON{TCB: pcs.TCBJSON{PCESVN: pcesvn}, TCBDate: date.Format(time.RFC3339), TCBStatus: string(status), AdvisoryIDs: adv}
	for _, c := range comps {
		l.TCB.SGXComponents = append(l.TCB.SGXComponents, pcs.TCBComponentJSON{SVN: c})
	}
	return l
}

func (p *Platform) buildCollateral() (*collateral.Collateral, error) {
	o := p.opts
	issue, next := o.Now.Add(-time.Hour), o.Now.Add(30*24*time.Hour)
	if o.ExpiredCollateral {
		issue, next = o.Now.Add(-31*24*time.Hour), o.Now.Add(-time.Hour)
	}
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	above := pckCompSVN
	for i := range above {
		if above[i] < 255 {
			above[i]++
		}
	}
	below := [16]int{1, 1, 1, 1, 1, 1, 1}
	tcbDate := o.Now.Add(-90 * 24 * time.Hour)
	evalNum := o.TCBEvaluationDataNumber
	if evalNum == 0 {
		evalNum = 17
	}
	info := pcs.TCBInfoJSON{
		ID: "SGX", Version: 3, IssueDate: ts(issue), NextUpdate: ts(next),
		FMSPC: strings.ToUpper(hex.EncodeToString(o.TCBFMSPC[:])), PCEID: "0000", TCBEvaluationDataNumber: evalNum,
		TCBLevels: []pcs.TCBLevelJSON{
			level(above, pckPCESVN+1, tcbDate, pcs.UpToDate, nil),
			level(pckCompSVN, pckPCESVN, tcbDate.Add(-30*24*time.Hour), o.TCBStatus, o.AdvisoryIDs),
			level(below, 5, tcbDate.Add(-365*24*time.Hour), pcs.OutOfDate, []string{"INTEL-SA-00000"}),
		},
	}
	if o.TCBPCEID != nil {
		info.PCEID = strings.ToUpper(hex.EncodeToString(o.TCBPCEID[:]))
	}
	if o.NoMatchingTCBLevel {
		info.TCBLevels = info.TCBLevels[:1]
	}
	qe := pcs.EnclaveIdentityJSON{
		ID: "QE", Version: 2, IssueDate: ts(issue), NextUpdate: ts(next), TCBEvaluationDataNumber: evalNum,
		MiscSelect: "00000000", MiscSelectMask: "FFFFFFFF",
		Attributes: "11000000000000000000000000000000", AttributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
		MRSigner: strings.ToUpper(hex.EncodeToString(qeMRSigner[:])), ISVProdID: int(QEISVProdID),
	}
	if o.QEIdentityMRSigner != nil {
		qe.MRSigner = strings.ToUpper(hex.EncodeToString(o.QEIdentityMRSigner[:]))
	}
	if o.QEIdentityISVProdID != nil {
		qe.ISVProdID = int(*o.QEIdentityISVProdID)
	}
	if o.QEIdentityMiscSelect != nil {
		// MISCSELECT's bytes in report (little-endian) order, as Intel writes them.
		qe.MiscSelect = strings.ToUpper(hex.EncodeToString(binary.LittleEndian.AppendUint32(nil, *o.QEIdentityMiscSelect)))
	}
	if o.QEIdentityAttributes != nil {
		qe.Attributes = strings.ToUpper(hex.EncodeToString(o.QEIdentityAttributes[:]))
	}
	qeSVN := int(QEISVSVN)
	if o.QEIdentityMinISVSVN > 0 {
		qeSVN = o.QEIdentityMinISVSVN
	}
	var qeAdv []string
	if o.QEStatus == pcs.OutOfDate {
		qeAdv = []string{"INTEL-SA-00999"}
	}
	ql := pcs.NewIdentityLevel(qeSVN, tcbDate, o.QEStatus, qeAdv)
	ql0 := pcs.NewIdentityLevel(0, tcbDate.Add(-365*24*time.Hour), pcs.OutOfDate, nil)
	qe.TCBLevels = []pcs.IdentityLevelJSON{ql, ql0}
	if o.QEIdentityMinISVSVN > 0 {
		qe.TCBLevels = qe.TCBLevels[:1]
	}
	var d dcapfake.Docs
	caIssuer := &dcapfake.Issuer{Cert: p.pki.PCKCA, Key: p.pki.PCKCAKey}
	if o.TCBInfoSignedByPCKCA {
		d.TCBInfoSigner = caIssuer
	}
	if o.QEIdentitySignedByPCKCA {
		d.QEIdentitySigner = caIssuer
	}
	var rootRevoked []*x509.Certificate
	if o.RevokePCKCA {
		rootRevoked = append(rootRevoked, p.pki.PCKCA)
	}
	if o.RevokeTCBSigner {
		rootRevoked = append(rootRevoked, p.pki.Signer)
	}
	d.RootCRL = dcapfake.Revoke(rootRevoked...)
	revokePCK := dcapfake.Revoke()
	if o.RevokePCK {
		revokePCK = dcapfake.Revoke(p.pki.PCK)
	}
	d.PCKCRL = func(l *x509.RevocationList) {
		revokePCK(l)
		if o.ExpiredPCKCRL {
			l.ThisUpdate, l.NextUpdate = o.Now.Add(-31*24*time.Hour), o.Now.Add(-time.Hour)
		}
	}
	return p.pki.SignCollateral(info, qe, d, issue, next)
}

// CollateralWith builds a fresh collateral set for the same keys and
// certificates with the collateral options changed by mod (e.g. a later CRL
// that revokes the PCK certificate). Options that shape the certificates or
// the QE (FMSPC, PlatformCA, PCKCommonName, QEMiscSelect, QuoteVersion) are
// ignored: the platform keeps them.
func (p *Platform) CollateralWith(mod func(o *Options)) (*collateral.Collateral, error) {
	q := *p
	mod(&q.opts)
	q.opts.FMSPC, q.opts.PlatformCA, q.opts.PCKCommonName = p.opts.FMSPC, p.opts.PlatformCA, p.opts.PCKCommonName
	q.opts.QEMiscSelect, q.opts.QuoteVersion = p.opts.QEMiscSelect, p.opts.QuoteVersion
	if q.opts.Now.IsZero() {
		q.opts.Now = p.opts.Now
	}
	q.opts.Now = q.opts.Now.UTC().Truncate(time.Second)
	return q.buildCollateral()
}

// Roots returns the test root CA certificate, for verify Options.Roots.
func (p *Platform) Roots() []*x509.Certificate { return []*x509.Certificate{p.root} }

// PCKChainPEM returns the PCK certificate chain (leaf, CA, root) as PEM.
func (p *Platform) PCKChainPEM() []byte { return pemOf(p.pck, p.pckCA, p.root) }

// Collateral returns a copy of the platform's collateral.
func (p *Platform) Collateral() *collateral.Collateral { return cloneCollateral(p.coll) }

// FMSPC returns the PCK certificate's FMSPC as lower-case hex.
func (p *Platform) FMSPC() string { return hex.EncodeToString(p.opts.FMSPC[:]) }

func cloneCollateral(c *collateral.Collateral) *collateral.Collateral {
	cp := func(b []byte) []byte { return append([]byte(nil), b...) }
	return &collateral.Collateral{
		PCKCRLIssuerChain: cp(c.PCKCRLIssuerChain), RootCACRL: cp(c.RootCACRL), PCKCRL: cp(c.PCKCRL),
		TCBInfoIssuerChain: cp(c.TCBInfoIssuerChain), TCBInfo: cp(c.TCBInfo), TCBInfoSignature: cp(c.TCBInfoSignature),
		QEIdentityIssuerChain: cp(c.QEIdentityIssuerChain), QEIdentity: cp(c.QEIdentity), QEIdentitySignature: cp(c.QEIdentitySignature),
	}
}

// Source serves one Collateral for SGX requests; it implements collateral.Source.
type Source struct {
	Collateral *collateral.Collateral
}

// Source returns a collateral.Source serving this platform's collateral.
func (p *Platform) Source() *Source { return &Source{Collateral: p.Collateral()} }

// Get returns a copy of the collateral for SGX requests.
func (s *Source) Get(ctx context.Context, req collateral.Request) (*collateral.Collateral, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req.TEE != collateral.SGX {
		return nil, fmt.Errorf("sgxplatform: no %s collateral", req.TEE)
	}
	if s.Collateral == nil {
		return nil, errors.New("sgxplatform: no collateral")
	}
	return cloneCollateral(s.Collateral), nil
}

// QuoteStruct builds and signs the parsed form of a quote (useful for tests
// that modify fields and re-marshal).
func (p *Platform) QuoteStruct(o QuoteOptions) (*abi.Quote, error) {
	body := abi.ReportBody{
		MREnclave: o.MREnclave, MRSigner: o.MRSigner, ISVProdID: o.ProductID, ISVSVN: o.SVN, ReportData: o.ReportData,
	}
	copy(body.CPUSVN[:], p.ext.TCB.CPUSVN[:])
	flags := byte(abi.FlagInit | abi.FlagMode64)
	if o.Debug {
		flags |= abi.FlagDebug
	}
	if o.KSS {
		flags |= abi.FlagKSS
		body.ConfigID, body.ConfigSVN = o.ConfigID, o.ConfigSVN
		body.ISVExtendedProductID, body.ISVFamilyID = o.ISVExtendedProductID, o.ISVFamilyID
	}
	body.Attributes[0] = flags
	body.Attributes[8] = 0x07 // XFRM: x87, SSE, AVX
	version := p.opts.QuoteVersion
	if o.Version != 0 {
		version = o.Version
	}
	if version != abi.QuoteVersion3 && version != abi.QuoteVersion4 {
		return nil, fmt.Errorf("sgxplatform: quote version %d (want 3 or 4)", version)
	}
	q := &abi.Quote{
		Header: abi.Header{
			Version: uint16(version), AttestationKeyType: abi.AttestationKeyECDSAP256,
			QESVN: QEISVSVN, PCESVN: pckPCESVN,
			QEVendorID: [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07},
		},
		Body:           body,
		AttestationKey: p.attKeyRaw(),
		QE: abi.QEReportCertificationData{
			QEReport:      p.qeReport,
			QEAuthData:    append([]byte(nil), p.pki.QEAuthData...),
			Certification: abi.CertificationData{Type: abi.CertPCKChain, Data: append(p.PCKChainPEM(), 0)},
		},
	}
	var err error
	if q.QE.QEReportSignature, err = dcapfake.SignRaw(p.pki.PCKKey, q.QE.QEReport.Marshal()); err != nil {
		return nil, err
	}
	if err := p.Sign(q); err != nil {
		return nil, err
	}
	return q, nil
}

// Sign (re-)signs q's header and report body with the attestation key.
func (p *Platform) Sign(q *abi.Quote) error {
	sig, err := dcapfake.SignRaw(p.pki.AttestationKey, q.SignedBytes())
	if err != nil {
		return err
	}
	q.Signature = sig
	return nil
}

// Quote mints a quote for the enclave described by o.
func (p *Platform) Quote(o QuoteOptions) ([]byte, error) {
	q, err := p.QuoteStruct(o)
	if err != nil {
		return nil, err
	}
	return q.Marshal()
}

// OEReport mints an OpenEnclave remote report (16-byte header + quote).
func (p *Platform) OEReport(o QuoteOptions) ([]byte, error) {
	q, err := p.Quote(o)
	if err != nil {
		return nil, err
	}
	return abi.NewOEReport(q), nil
}

// OEEvidence mints OpenEnclave SGX_ECDSA evidence carrying claims; the
// quote's report data is SHA-256 of the serialized claims (o.ReportData is
// overwritten, as oe_get_evidence does).
func (p *Platform) OEEvidence(o QuoteOptions, claims []abi.CustomClaim) ([]byte, error) {
	buf := abi.MarshalCustomClaims(claims)
	h := sha256.Sum256(buf)
	o.ReportData = [64]byte{}
	copy(o.ReportData[:], h[:])
	q, err := p.Quote(o)
	if err != nil {
		return nil, err
	}
	return abi.NewOEEvidence(q, buf), nil
}
