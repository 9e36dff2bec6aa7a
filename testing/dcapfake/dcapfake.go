// Package dcapfake builds an Intel-like DCAP PKI for tests: a root CA, a PCK
// CA and a PCK certificate with real SGX extensions, a TCB signing
// certificate, CRLs, signed TCB info (SGX or TDX) and QE identity (QE or
// TD_QE), and quotes whose QE report and signature verify under them.
//
// Every certificate has a CertOverride (issuer key, validity, key usage, CA
// flag, extensions, key, name) and every document a mutator, so a negative
// test states the one thing it breaks instead of adding one boolean per case
// to a fixture. SGX (testing/sgxplatform) and TDX tests share it.
//
// Nothing here is trusted by default: a verifier accepts this material only
// when it is given PKI.Roots() explicitly.
package dcapfake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
)

// CertOverride changes one certificate of the PKI. Zero fields keep the
// default. Overrides apply to the template before signing, so the result is
// a real certificate with the changed property.
type CertOverride struct {
	CommonName string // replaces the subject's common name
	NotBefore  time.Time
	NotAfter   time.Time
	KeyUsage   *x509.KeyUsage
	IsCA       *bool
	// ExtraExtensions are added to the certificate (after the PCK's SGX extension).
	ExtraExtensions []pkix.Extension
	// Key is the certificate's key pair (default: a fresh P-256 key).
	Key *ecdsa.PrivateKey
	// SignerKey signs the certificate instead of its issuer's key (a
	// certificate that names its issuer but was not signed by it).
	SignerKey *ecdsa.PrivateKey
	// Issuer is the certificate that issues this one instead of the default
	// (subject name and key are taken from it; SignerKey, when set, wins).
	Issuer *Issuer
	// Serial replaces the serial number.
	Serial *big.Int
}

// Issuer is a certificate and its key, to issue certificates outside the PKI's tree.
type Issuer struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Options describe the PKI and the platform.
type Options struct {
	// Now is the instant the material is built around: certificates are
	// valid from Now-24h to Now+1 year, documents from Now-1h to Now+30 days.
	// Zero means time.Now().
	Now time.Time
	// PlatformCA issues the PCK certificate from a "PCK Platform CA"
	// (otherwise a "PCK Processor CA").
	PlatformCA bool
	// FMSPC of the PCK certificate; zero means 00906ED50000.
	FMSPC [6]byte
	// PCKTCB is the TCB of the PCK certificate (default: DefaultPCKTCB).
	PCKTCB *pcs.PCKTCB
	// Per-certificate overrides.
	Root, PCKCA, PCK, TCBSigner CertOverride
}

// Names of the test hierarchy (they contain the words the verifier's role
// checks look for, as Intel's names do).
const (
	RootCN         = "attestd TEST SGX Root CA"
	ProcessorCACN  = "attestd TEST SGX PCK Processor CA"
	PlatformCACN   = "attestd TEST SGX PCK Platform CA"
	PCKCN          = "attestd TEST SGX PCK Certificate"
	TCBSignerCN    = "attestd TEST SGX TCB Signing"
	DefaultPCESVN  = 13
	QEISVProdID    = uint16(1)
	TDQEISVProdID  = uint16(2)
	QEISVSVN       = uint16(8)
	defaultEvalNum = 17
)

// DefaultPCKCompSVN are the SGX TCB component SVNs of the default PCK TCB.
var DefaultPCKCompSVN = [16]int{11, 11, 2, 2, 255, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// QEMRSigner is the test QE's MRSIGNER (the first half of Intel's QE
// MRSIGNER, so it looks familiar in dumps).
var QEMRSigner = [32]byte{0x8c, 0x4f, 0x57, 0x75, 0xd7, 0x96, 0x50, 0x3e, 0x96, 0x13, 0x7f, 0x77, 0xc6, 0x8a, 0x82, 0x9a}

// PKI is one fake DCAP platform's certificate hierarchy and keys.
type PKI struct {
	Now time.Time

	RootKey, PCKCAKey, PCKKey, SignerKey *ecdsa.PrivateKey
	Root, PCKCA, PCK, Signer             *x509.Certificate
	Ext                                  pcs.PCKExtensions
	// AttestationKey signs quotes; QEAuthData is bound into the QE report.
	AttestationKey *ecdsa.PrivateKey
	QEAuthData     []byte
}

// GenKey returns a fresh P-256 key.
func GenKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

// Name returns the test distinguished name with common name cn.
func Name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"attestd TEST (not Intel)"}, Locality: []string{"Nowhere"}, Country: []string{"XX"}}
}

// Mint signs tmpl for key with parent/parentKey after applying o, and
// returns the parsed certificate and its key.
func Mint(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, o CertOverride) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key := o.Key
	if key == nil {
		var err error
		if key, err = GenKey(); err != nil {
			return nil, nil, err
		}
	}
	if tmpl.SerialNumber == nil {
		s, err := serial()
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = s
	}
	if o.Serial != nil {
		tmpl.SerialNumber = o.Serial
	}
	if o.CommonName != "" {
		tmpl.Subject.CommonName = o.CommonName
	}
	if !o.NotBefore.IsZero() {
		tmpl.NotBefore = o.NotBefore
	}
	if !o.NotAfter.IsZero() {
		tmpl.NotAfter = o.NotAfter
	}
	if o.KeyUsage != nil {
		tmpl.KeyUsage = *o.KeyUsage
	}
	if o.IsCA != nil {
		tmpl.IsCA = *o.IsCA
		tmpl.BasicConstraintsValid = true
		if !tmpl.IsCA {
			tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, false
		}
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, o.ExtraExtensions...)
	if len(tmpl.SubjectKeyId) == 0 {
		// Set for every certificate (x509 does it for CAs only), so a
		// certificate overridden into a non-CA can still sign a CRL.
		pub, err := key.PublicKey.Bytes()
		if err != nil {
			return nil, nil, err
		}
		h := sha256.Sum256(pub)
		tmpl.SubjectKeyId = h[:20]
	}
	if o.Issuer != nil {
		parent, parentKey = o.Issuer.Cert, o.Issuer.Key
	}
	if parent == nil { // self-signed
		parent, parentKey = tmpl, key
	}
	if o.SignerKey != nil {
		// The issuer's name with another key's signature: x509 insists the
		// signing key matches the parent, so give it a parent that says so.
		forged := *parent
		forged.PublicKey = &o.SignerKey.PublicKey
		parent, parentKey = &forged, o.SignerKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

// New builds the hierarchy.
func New(opts Options) (*PKI, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	now := opts.Now.UTC().Truncate(time.Second)
	if opts.FMSPC == ([6]byte{}) {
		opts.FMSPC = [6]byte{0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00}
	}
	p := &PKI{Now: now}
	nb, na := now.Add(-24*time.Hour), now.Add(365*24*time.Hour)
	var err error
	if p.Root, p.RootKey, err = Mint(&x509.Certificate{
		Subject: Name(RootCN), NotBefore: nb, NotAfter: na.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
	}, nil, nil, opts.Root); err != nil {
		return nil, fmt.Errorf("dcapfake: root: %w", err)
	}
	caName := ProcessorCACN
	if opts.PlatformCA {
		caName = PlatformCACN
	}
	if p.PCKCA, p.PCKCAKey, err = Mint(&x509.Certificate{
		Subject: Name(caName), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLen: 0, MaxPathLenZero: true,
	}, p.Root, p.RootKey, opts.PCKCA); err != nil {
		return nil, fmt.Errorf("dcapfake: PCK CA: %w", err)
	}
	if p.Signer, p.SignerKey, err = Mint(&x509.Certificate{
		Subject: Name(TCBSignerCN), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
	}, p.Root, p.RootKey, opts.TCBSigner); err != nil {
		return nil, fmt.Errorf("dcapfake: TCB signer: %w", err)
	}
	p.Ext = pcs.PCKExtensions{PPID: make([]byte, 16), FMSPC: opts.FMSPC, SGXType: pcs.SGXTypeStandard}
	if _, err := rand.Read(p.Ext.PPID); err != nil {
		return nil, err
	}
	if opts.PCKTCB != nil {
		p.Ext.TCB = *opts.PCKTCB
	} else {
		p.Ext.TCB.CompSVN, p.Ext.TCB.PCESVN = DefaultPCKCompSVN, DefaultPCESVN
		for i, s := range DefaultPCKCompSVN {
			p.Ext.TCB.CPUSVN[i] = byte(s)
		}
	}
	if opts.PlatformCA {
		p.Ext.PlatformInstanceID = make([]byte, 16)
	}
	extDER, err := pcs.MarshalSGXExtensionValue(&p.Ext)
	if err != nil {
		return nil, err
	}
	if p.PCK, p.PCKKey, err = Mint(&x509.Certificate{
		Subject: Name(PCKCN), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
		ExtraExtensions: []pkix.Extension{{Id: pcs.OIDSGXExtensions(), Value: extDER}},
	}, p.PCKCA, p.PCKCAKey, opts.PCK); err != nil {
		return nil, fmt.Errorf("dcapfake: PCK: %w", err)
	}
	if p.AttestationKey, err = GenKey(); err != nil {
		return nil, err
	}
	p.QEAuthData = make([]byte, 32)
	for i := range p.QEAuthData {
		p.QEAuthData[i] = byte(i)
	}
	return p, nil
}

// Roots returns the test root, for verifier Options.Roots.
func (p *PKI) Roots() []*x509.Certificate { return []*x509.Certificate{p.Root} }

// PEM encodes certificates as a PEM chain, in the order given.
func PEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// PCKChainPEM returns leaf, PCK CA, root as PEM.
func (p *PKI) PCKChainPEM() []byte { return PEM(p.PCK, p.PCKCA, p.Root) }

// SignRaw returns a raw r||s ECDSA signature over SHA-256(msg), the form of
// every DCAP signature.
func SignRaw(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
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

// AttestationKeyRaw returns the attestation public key x||y as quotes carry it.
func (p *PKI) AttestationKeyRaw() []byte {
	b, err := p.AttestationKey.PublicKey.Bytes()
	if err != nil {
		panic(err) // a P-256 key always encodes
	}
	return b[1:]
}

// QEReport returns the report of the test quoting enclave for tee: its
// report data binds the attestation key and QE auth data.
func (p *PKI) QEReport(tee dcap.TEE) abi.ReportBody {
	r := abi.ReportBody{MRSigner: QEMRSigner, ISVProdID: QEISVProdID, ISVSVN: QEISVSVN}
	if tee == dcap.TDX {
		r.ISVProdID = TDQEISVProdID
	}
	copy(r.CPUSVN[:], p.Ext.TCB.CPUSVN[:])
	r.Attributes[0] = 0x11 // INIT | PROVISIONKEY
	r.Attributes[8] = 0xe7 // XFRM
	r.MREnclave = sha256.Sum256([]byte("attestd TEST quoting enclave"))
	binding := sha256.Sum256(append(p.AttestationKeyRaw(), p.QEAuthData...))
	copy(r.ReportData[:32], binding[:])
	return r
}

// Quote returns a DCAP quote whose signed part (header || body) is signed:
// the QE report of tee signed by the PCK key, the quote by the attestation key.
func (p *PKI) Quote(tee dcap.TEE, signed []byte) (*dcap.Quote, error) {
	r := p.QEReport(tee)
	rb := r.Marshal()
	qeSig, err := SignRaw(p.PCKKey, rb)
	if err != nil {
		return nil, err
	}
	sig, err := SignRaw(p.AttestationKey, signed)
	if err != nil {
		return nil, err
	}
	return &dcap.Quote{
		Raw: signed, QEVendorID: [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07},
		SignedBytes: signed, Signature: sig, AttestationKey: p.AttestationKeyRaw(),
		QEReportBytes: rb, QEReport: dcap.QEReport{MiscSelect: r.MiscSelect, Attributes: r.Attributes, MRSigner: r.MRSigner,
			ISVProdID: r.ISVProdID, ISVSVN: r.ISVSVN, ReportData: r.ReportData},
		QEReportSignature: qeSig, QEAuthData: append([]byte(nil), p.QEAuthData...), PCKChainPEM: p.PCKChainPEM(),
	}, nil
}

// Docs describe one collateral set. Zero fields take defaults built around
// PKI.Now; the mutators run on the default documents before they are signed.
type Docs struct {
	TEE dcap.TEE // SGX (default) or TDX
	// Issue and Next bound every document (default Now-1h .. Now+30 days);
	// the per-document mutators can change each one.
	Issue, Next time.Time
	TCBInfo     func(*pcs.TCBInfoJSON)
	QEIdentity  func(*pcs.EnclaveIdentityJSON)
	RootCRL     func(*x509.RevocationList)
	PCKCRL      func(*x509.RevocationList)
	// TCBInfoSigner / QEIdentitySigner sign the document and form its issuer
	// chain (with the root) instead of the TCB signing certificate.
	TCBInfoSigner, QEIdentitySigner *Issuer
	// RootCRLSigner / PCKCRLSigner sign the CRLs instead of the root / PCK CA.
	RootCRLSigner, PCKCRLSigner *Issuer
	// Mutate edits the finished collateral (e.g. to tamper with signed bytes).
	Mutate func(*collateral.Collateral)
}

// DefaultTCBInfo returns the TCB info this PKI's platform matches: three
// levels, the PCK TCB matching the second (status given), one above it
// (UpToDate) and one below it (OutOfDate). TDX levels carry tdxtcbcomponents
// of all 3 (a TEE_TCB_SVN of 3s matches the second level) and a module identity TDX_01.
func (p *PKI) DefaultTCBInfo(tee dcap.TEE, issue, next time.Time, status pcs.TCBStatus, advisories []string) pcs.TCBInfoJSON {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	comps := func(svn [16]int) []pcs.TCBComponentJSON {
		c := make([]pcs.TCBComponentJSON, 16)
		for i := range c {
			c[i].SVN = svn[i]
		}
		return c
	}
	pck := p.Ext.TCB.CompSVN
	above := pck
	for i := range above {
		if above[i] < 255 {
			above[i]++
		}
	}
	below := [16]int{1, 1, 1, 1, 1, 1, 1}
	tcbDate := p.Now.Add(-90 * 24 * time.Hour)
	level := func(c [16]int, pcesvn int, tdx int, date time.Time, s pcs.TCBStatus, adv []string) pcs.TCBLevelJSON {
		l := pcs.TCBLevelJSON{TCB: pcs.TCBJSON{SGXComponents: comps(c), PCESVN: pcesvn}, TCBDate: ts(date), TCBStatus: string(s), AdvisoryIDs: adv}
		if tee == dcap.TDX {
			var t [16]int
			for i := range t {
				t[i] = tdx
			}
			l.TCB.TDXComponents = comps(t)
		}
		return l
	}
	j := pcs.TCBInfoJSON{
		ID: pcs.IDSGX, Version: 3, IssueDate: ts(issue), NextUpdate: ts(next),
		FMSPC: strings.ToUpper(hex.EncodeToString(p.Ext.FMSPC[:])), PCEID: strings.ToUpper(hex.EncodeToString(p.Ext.PCEID[:])),
		TCBEvaluationDataNumber: defaultEvalNum,
		TCBLevels: []pcs.TCBLevelJSON{
			level(above, p.Ext.TCB.PCESVN+1, 4, tcbDate, pcs.UpToDate, nil),
			level(pck, p.Ext.TCB.PCESVN, 3, tcbDate.Add(-30*24*time.Hour), status, advisories),
			level(below, 5, 0, tcbDate.Add(-365*24*time.Hour), pcs.OutOfDate, []string{"INTEL-SA-00000"}),
		},
	}
	if tee == dcap.TDX {
		j.ID = pcs.IDTDX
		zero := strings.Repeat("00", 48)
		j.TDXModule = &pcs.TDXModuleJSON{MRSigner: zero, Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF"}
		j.TDXModuleIdentities = []pcs.TDXModuleIdentityJSON{{ID: "TDX_01", MRSigner: zero, Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF",
			TCBLevels: []pcs.IdentityLevelJSON{pcs.NewIdentityLevel(3, tcbDate, pcs.UpToDate, nil), pcs.NewIdentityLevel(1, tcbDate, pcs.OutOfDate, []string{"INTEL-SA-00888"})}}}
	}
	return j
}

// DefaultQEIdentity returns the identity of the test QE (QE, or TD_QE for
// TDX) with two levels: ISVSVN QEISVSVN (status given) and 0 (OutOfDate).
func (p *PKI) DefaultQEIdentity(tee dcap.TEE, issue, next time.Time, status pcs.TCBStatus) pcs.EnclaveIdentityJSON {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	tcbDate := p.Now.Add(-90 * 24 * time.Hour)
	j := pcs.EnclaveIdentityJSON{
		ID: pcs.IDQE, Version: 2, IssueDate: ts(issue), NextUpdate: ts(next), TCBEvaluationDataNumber: defaultEvalNum,
		MiscSelect: "00000000", MiscSelectMask: "FFFFFFFF",
		Attributes: "11000000000000000000000000000000", AttributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
		MRSigner: strings.ToUpper(hex.EncodeToString(QEMRSigner[:])), ISVProdID: int(QEISVProdID),
	}
	if tee == dcap.TDX {
		j.ID, j.ISVProdID = pcs.IDTDQE, int(TDQEISVProdID)
	}
	var adv []string
	if status == pcs.OutOfDate {
		adv = []string{"INTEL-SA-00999"}
	}
	j.TCBLevels = []pcs.IdentityLevelJSON{
		pcs.NewIdentityLevel(int(QEISVSVN), tcbDate, status, adv),
		pcs.NewIdentityLevel(0, tcbDate.Add(-365*24*time.Hour), pcs.OutOfDate, nil),
	}
	return j
}

// Collateral builds and signs one collateral set.
func (p *PKI) Collateral(d Docs) (*collateral.Collateral, error) {
	issue, next := d.Issue, d.Next
	if issue.IsZero() {
		issue = p.Now.Add(-time.Hour)
	}
	if next.IsZero() {
		next = p.Now.Add(30 * 24 * time.Hour)
	}
	tee := d.TEE
	if tee == "" {
		tee = dcap.SGX
	}
	info := p.DefaultTCBInfo(tee, issue, next, pcs.UpToDate, nil)
	if d.TCBInfo != nil {
		d.TCBInfo(&info)
	}
	qe := p.DefaultQEIdentity(tee, issue, next, pcs.UpToDate)
	if d.QEIdentity != nil {
		d.QEIdentity(&qe)
	}
	return p.SignCollateral(info, qe, d, issue, next)
}

// SignCollateral signs the given documents and builds the CRLs (valid
// issue .. next unless d's CRL mutators say otherwise).
func (p *PKI) SignCollateral(info pcs.TCBInfoJSON, qe pcs.EnclaveIdentityJSON, d Docs, issue, next time.Time) (*collateral.Collateral, error) {
	tcbJSON, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	qeJSON, err := json.Marshal(qe)
	if err != nil {
		return nil, err
	}
	signer := func(o *Issuer) *Issuer {
		if o != nil {
			return o
		}
		return &Issuer{Cert: p.Signer, Key: p.SignerKey}
	}
	tcbS, qeS := signer(d.TCBInfoSigner), signer(d.QEIdentitySigner)
	tcbSig, err := SignRaw(tcbS.Key, tcbJSON)
	if err != nil {
		return nil, err
	}
	qeSig, err := SignRaw(qeS.Key, qeJSON)
	if err != nil {
		return nil, err
	}
	crl := func(tmpl *x509.RevocationList, mod func(*x509.RevocationList), by *Issuer) ([]byte, error) {
		if mod != nil {
			mod(tmpl)
		}
		return x509.CreateRevocationList(rand.Reader, tmpl, by.Cert, by.Key)
	}
	rootBy := d.RootCRLSigner
	if rootBy == nil {
		rootBy = &Issuer{Cert: p.Root, Key: p.RootKey}
	}
	pckBy := d.PCKCRLSigner
	if pckBy == nil {
		pckBy = &Issuer{Cert: p.PCKCA, Key: p.PCKCAKey}
	}
	rootCRL, err := crl(&x509.RevocationList{Number: big.NewInt(1), ThisUpdate: issue, NextUpdate: next}, d.RootCRL, rootBy)
	if err != nil {
		return nil, fmt.Errorf("dcapfake: root CRL: %w", err)
	}
	pckCRL, err := crl(&x509.RevocationList{Number: big.NewInt(1), ThisUpdate: issue, NextUpdate: next}, d.PCKCRL, pckBy)
	if err != nil {
		return nil, fmt.Errorf("dcapfake: PCK CRL: %w", err)
	}
	c := &collateral.Collateral{
		PCKCRLIssuerChain: PEM(p.PCKCA, p.Root), RootCACRL: rootCRL, PCKCRL: pckCRL,
		TCBInfoIssuerChain: PEM(tcbS.Cert, p.Root), TCBInfo: tcbJSON, TCBInfoSignature: tcbSig,
		QEIdentityIssuerChain: PEM(qeS.Cert, p.Root), QEIdentity: qeJSON, QEIdentitySignature: qeSig,
	}
	if d.Mutate != nil {
		d.Mutate(c)
	}
	return c, nil
}

// Revoke returns a CRL mutator that lists the certificates' serial numbers.
func Revoke(certs ...*x509.Certificate) func(*x509.RevocationList) {
	return func(l *x509.RevocationList) {
		for _, c := range certs {
			l.RevokedCertificateEntries = append(l.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: l.ThisUpdate})
		}
	}
}
