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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
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

// Platform is one fake SGX machine with its CA hierarchy and collateral.
type Platform struct {
	opts Options

	rootKey, pckCAKey, pckKey, signKey, attKey *ecdsa.PrivateKey
	root, pckCA, pck, signer                   *x509.Certificate
	ext                                        pcs.PCKExtensions
	qeReport                                   abi.ReportBody
	qeAuth                                     []byte
	coll                                       *collateral.Collateral
}

// Fixed identity of the test quoting enclave (written into the QE identity).
const (
	QEISVProdID = uint16(1)
	QEISVSVN    = uint16(8)
)

// qeMRSigner is the test QE's MRSIGNER (the first half of Intel's QE MRSIGNER, so it looks familiar in dumps).
var qeMRSigner = [32]byte{0x8c, 0x4f, 0x57, 0x75, 0xd7, 0x96, 0x50, 0x3e, 0x96, 0x13, 0x7f, 0x77, 0xc6, 0x8a, 0x82, 0x9a}

// PCK TCB of the test platform: matched exactly by the second TCB level.
var pckCompSVN = [16]int{11, 11, 2, 2, 255, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0}

const pckPCESVN = 13

func genKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"attestd TEST (not Intel)"}, Locality: []string{"Nowhere"}, Country: []string{"XX"}}
}

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
	p := &Platform{opts: opts}
	var err error
	for _, k := range []**ecdsa.PrivateKey{&p.rootKey, &p.pckCAKey, &p.pckKey, &p.signKey, &p.attKey} {
		if *k, err = genKey(); err != nil {
			return nil, err
		}
	}
	nb, na := opts.Now.Add(-24*time.Hour), opts.Now.Add(365*24*time.Hour)
	rootTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: name("attestd TEST SGX Root CA"), NotBefore: nb, NotAfter: na.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
	}
	if p.root, err = mint(rootTmpl, rootTmpl, &p.rootKey.PublicKey, p.rootKey); err != nil {
		return nil, err
	}
	caName := "attestd TEST SGX PCK Processor CA"
	if opts.PlatformCA {
		caName = "attestd TEST SGX PCK Platform CA"
	}
	if p.pckCA, err = mint(&x509.Certificate{
		SerialNumber: serial(), Subject: name(caName), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLen: 0, MaxPathLenZero: true,
	}, p.root, &p.pckCAKey.PublicKey, p.rootKey); err != nil {
		return nil, err
	}
	if p.signer, err = mint(&x509.Certificate{
		SerialNumber: serial(), Subject: name("attestd TEST SGX TCB Signing"), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
	}, p.root, &p.signKey.PublicKey, p.rootKey); err != nil {
		return nil, err
	}
	p.ext = pcs.PCKExtensions{PPID: make([]byte, 16), FMSPC: opts.FMSPC, SGXType: pcs.SGXTypeStandard}
	if _, err := rand.Read(p.ext.PPID); err != nil {
		return nil, err
	}
	p.ext.TCB.CompSVN = pckCompSVN
	p.ext.TCB.PCESVN = pckPCESVN
	for i, s := range pckCompSVN {
		p.ext.TCB.CPUSVN[i] = byte(s)
	}
	if opts.PlatformCA {
		p.ext.PlatformInstanceID = make([]byte, 16)
	}
	extDER, err := pcs.MarshalSGXExtensionValue(&p.ext)
	if err != nil {
		return nil, err
	}
	pckName := "attestd TEST SGX PCK Certificate"
	if opts.PCKCommonName != "" {
		pckName = opts.PCKCommonName
	}
	if p.pck, err = mint(&x509.Certificate{
		SerialNumber: serial(), Subject: name(pckName), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
		ExtraExtensions: []pkix.Extension{{Id: pcs.OIDSGXExtensions(), Value: extDER}},
	}, p.pckCA, &p.pckKey.PublicKey, p.pckCAKey); err != nil {
		return nil, err
	}

	// The quoting enclave: its report binds the attestation key and auth data.
	p.qeAuth = make([]byte, 32)
	for i := range p.qeAuth {
		p.qeAuth[i] = byte(i)
	}
	p.qeReport = abi.ReportBody{MRSigner: qeMRSigner, ISVProdID: QEISVProdID, ISVSVN: QEISVSVN, MiscSelect: opts.QEMiscSelect}
	copy(p.qeReport.CPUSVN[:], p.ext.TCB.CPUSVN[:])
	p.qeReport.Attributes[0] = 0x11 // INIT | PROVISIONKEY
	p.qeReport.Attributes[8] = 0xe7 // XFRM
	p.qeReport.MREnclave = sha256.Sum256([]byte("attestd TEST quoting enclave"))
	binding := sha256.Sum256(append(p.attKeyRaw(), p.qeAuth...))
	copy(p.qeReport.ReportData[:32], binding[:])

	if p.coll, err = p.buildCollateral(); err != nil {
		return nil, err
	}
	return p, nil
}

func mint(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func pemOf(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func (p *Platform) attKeyRaw() []byte {
	b, err := p.attKey.PublicKey.Bytes()
	if err != nil {
		panic(err)
	}
	return b[1:] // drop the 0x04 uncompressed-point prefix
}

// signRaw returns a raw r||s ECDSA signature over SHA-256(msg).
func signRaw(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}

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
	tcbJSON, err := json.Marshal(info)
	if err != nil {
		return nil, err
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
	qeJSON, err := json.Marshal(qe)
	if err != nil {
		return nil, err
	}
	tcbKey, qeKey := p.signKey, p.signKey
	if o.TCBInfoSignedByPCKCA {
		tcbKey = p.pckCAKey
	}
	if o.QEIdentitySignedByPCKCA {
		qeKey = p.pckCAKey
	}
	tcbSig, err := signRaw(tcbKey, tcbJSON)
	if err != nil {
		return nil, err
	}
	qeSig, err := signRaw(qeKey, qeJSON)
	if err != nil {
		return nil, err
	}
	var rootRevoked []x509.RevocationListEntry
	if o.RevokePCKCA {
		rootRevoked = append(rootRevoked, x509.RevocationListEntry{SerialNumber: p.pckCA.SerialNumber, RevocationTime: issue})
	}
	if o.RevokeTCBSigner {
		rootRevoked = append(rootRevoked, x509.RevocationListEntry{SerialNumber: p.signer.SerialNumber, RevocationTime: issue})
	}
	rootCRL, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: issue, NextUpdate: next, RevokedCertificateEntries: rootRevoked,
	}, p.root, p.rootKey)
	if err != nil {
		return nil, err
	}
	var revoked []x509.RevocationListEntry
	if o.RevokePCK {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: p.pck.SerialNumber, RevocationTime: issue})
	}
	pckIssue, pckNext := issue, next
	if o.ExpiredPCKCRL {
		pckIssue, pckNext = o.Now.Add(-31*24*time.Hour), o.Now.Add(-time.Hour)
	}
	pckCRL, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: pckIssue, NextUpdate: pckNext, RevokedCertificateEntries: revoked,
	}, p.pckCA, p.pckCAKey)
	if err != nil {
		return nil, err
	}
	tcbChain, qeChain := pemOf(p.signer, p.root), pemOf(p.signer, p.root)
	if o.TCBInfoSignedByPCKCA {
		tcbChain = pemOf(p.pckCA, p.root)
	}
	if o.QEIdentitySignedByPCKCA {
		qeChain = pemOf(p.pckCA, p.root)
	}
	return &collateral.Collateral{
		PCKCRLIssuerChain: pemOf(p.pckCA, p.root), RootCACRL: rootCRL, PCKCRL: pckCRL,
		TCBInfoIssuerChain: tcbChain, TCBInfo: tcbJSON, TCBInfoSignature: tcbSig,
		QEIdentityIssuerChain: qeChain, QEIdentity: qeJSON, QEIdentitySignature: qeSig,
	}, nil
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
			QEAuthData:    append([]byte(nil), p.qeAuth...),
			Certification: abi.CertificationData{Type: abi.CertPCKChain, Data: append(p.PCKChainPEM(), 0)},
		},
	}
	var err error
	if q.QE.QEReportSignature, err = signRaw(p.pckKey, q.QE.QEReport.Marshal()); err != nil {
		return nil, err
	}
	if err := p.Sign(q); err != nil {
		return nil, err
	}
	return q, nil
}

// Sign (re-)signs q's header and report body with the attestation key.
func (p *Platform) Sign(q *abi.Quote) error {
	sig, err := signRaw(p.attKey, q.SignedBytes())
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
