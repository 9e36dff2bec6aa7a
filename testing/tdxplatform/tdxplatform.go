// Package tdxplatform is a fake Intel TDX platform for tests: it mints
// structurally real TD quotes (v4, and v5 with TDX 1.0 or 1.5 bodies) under
// a TEST root CA, together with the complete TDX collateral (PCK chain with
// real SGX extensions, CRLs, TDX TCB info with tdxtcbcomponents and a TDX
// module identity, TD_QE identity) that verifies them. The PKI and the
// documents come from testing/dcapfake, shared with testing/sgxplatform.
//
// Nothing here is trusted by default: a verifier accepts these quotes only
// when it is given Platform.Roots() explicitly.
package tdxplatform

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/tdx/abi"
	"github.com/attestd/attestd/testing/dcapfake"
)

// DefaultFMSPC is the FMSPC of the test platform's PCK certificate (a
// Sapphire Rapids-like value; any 6 bytes would do).
var DefaultFMSPC = [6]byte{0x90, 0xc0, 0x6f, 0x00, 0x00, 0x00}

// Options describe the platform.
type Options struct {
	// PKI options (Now, FMSPC, certificate overrides); zero FMSPC means
	// DefaultFMSPC.
	PKI dcapfake.Options
	// TCBStatus is the status of the TCB level the platform matches
	// (default UpToDate) and AdvisoryIDs that level's advisories.
	TCBStatus   pcs.TCBStatus
	AdvisoryIDs []string
}

// Platform is one fake TDX machine with its PKI.
type Platform struct {
	PKI  *dcapfake.PKI
	opts Options
}

// New builds a platform.
func New(opts Options) (*Platform, error) {
	if opts.PKI.FMSPC == ([6]byte{}) {
		opts.PKI.FMSPC = DefaultFMSPC
	}
	p, err := dcapfake.New(opts.PKI)
	if err != nil {
		return nil, err
	}
	return &Platform{PKI: p, opts: opts}, nil
}

// Roots are the certificates a verifier must be given to trust the platform.
func (p *Platform) Roots() []*x509.Certificate { return p.PKI.Roots() }

// RootsPEM is Roots as PEM (for configuration files).
func (p *Platform) RootsPEM() []byte { return dcapfake.PEM(p.PKI.Root) }

// Collateral returns the platform's TDX collateral (valid from an hour
// before the PKI's Now to 30 days after it); d's mutators change documents
// before they are signed (d.TEE is always TDX).
func (p *Platform) Collateral(d dcapfake.Docs) (*collateral.Collateral, error) {
	d.TEE = dcap.TDX
	status, adv := p.opts.TCBStatus, p.opts.AdvisoryIDs
	if status != "" || adv != nil {
		inner := d.TCBInfo
		d.TCBInfo = func(j *pcs.TCBInfoJSON) {
			if status != "" {
				j.TCBLevels[1].TCBStatus = string(status)
			}
			j.TCBLevels[1].AdvisoryIDs = adv
			if inner != nil {
				inner(j)
			}
		}
	}
	return p.PKI.Collateral(d)
}

// DefaultTEETCBSVN matches the second TCB level of the default TDX TCB
// info (tdxtcbcomponents of 3) and its TDX_01 module identity: byte 0 is
// the module's SVN (3: its UpToDate level), byte 1 its major version (1).
var DefaultTEETCBSVN = [16]byte{3, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3}

// Quote describes the TD a quote is made for. Zero fields are zero in the
// TD report, except TEETCBSVN (DefaultTEETCBSVN) and, in TDX 1.5 bodies,
// TEETCBSVN2 (TEETCBSVN).
type Quote struct {
	// Version is 4 (default) or 5; Body15 gives a v5 quote a TDX 1.5 body.
	Version uint16
	Body15  bool
	// Report is the TD report body; ReportData is usually
	// SHA-256(runtime data) || zeros (see BindRuntime).
	Report abi.TDReport
	// Debug sets TDATTRIBUTES.DEBUG.
	Debug bool
}

// BindRuntime sets REPORTDATA[0:32] to SHA-256(data), as MAA checks it.
func (q *Quote) BindRuntime(data []byte) {
	h := sha256.Sum256(data)
	copy(q.Report.ReportData[:32], h[:])
}

// BindInitTime sets MRCONFIGID[0:32] to SHA-256(data), attestd's TDX
// init-time binding.
func (q *Quote) BindInitTime(data []byte) {
	h := sha256.Sum256(data)
	copy(q.Report.MRConfigID[:32], h[:])
}

// Mint returns the quote's bytes, signed: the TD's header and body by the
// attestation key, the TD_QE report (binding that key) by the PCK key.
func (p *Platform) Mint(o Quote) ([]byte, error) {
	q := &abi.Quote{
		Header:   abi.Header{Version: abi.Version4, AttestationKeyType: abi.AttestationKeyECDSAP256, TEEType: abi.TEETypeTDX, QESVN: dcapfake.QEISVSVN, PCESVN: dcapfake.DefaultPCESVN},
		BodyType: abi.BodyTypeTD10,
		Body:     o.Report,
		CertType: abi.CertQEReportCertDat,
	}
	if o.Version == abi.Version5 {
		q.Header.Version = abi.Version5
		if o.Body15 {
			q.BodyType = abi.BodyTypeTD15
		}
	}
	copy(q.Header.QEVendorID[:], []byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07})
	if q.Body.TEETCBSVN == ([16]byte{}) {
		q.Body.TEETCBSVN = DefaultTEETCBSVN
	}
	if q.BodyType == abi.BodyTypeTD15 && q.Body.TEETCBSVN2 == ([16]byte{}) {
		q.Body.TEETCBSVN2 = q.Body.TEETCBSVN // no module update since launch
	}
	if o.Debug {
		a := binary.LittleEndian.Uint64(q.Body.TDAttributes[:]) | abi.TDAttrDebug
		binary.LittleEndian.PutUint64(q.Body.TDAttributes[:], a)
	}
	// Sign over the exact bytes Marshal will produce: marshal once with
	// placeholder signatures, sign the signed prefix, marshal again.
	qer := p.PKI.QEReport(dcap.TDX)
	q.QE = &abi.QEReportCertData{QEReport: qer.Marshal(), QEAuthData: append([]byte(nil), p.PKI.QEAuthData...), CertType: abi.CertPCKChain, CertData: p.PKI.PCKChainPEM()}
	var err error
	if q.QE.QEReportSignature, err = dcapfake.SignRaw(p.PKI.PCKKey, q.QE.QEReport); err != nil {
		return nil, err
	}
	q.Signature, q.AttestationKey = make([]byte, abi.SignatureSize), p.PKI.AttestationKeyRaw()
	b, err := q.Marshal()
	if err != nil {
		return nil, err
	}
	if q.Signature, err = dcapfake.SignRaw(p.PKI.AttestationKey, b[:q.SignedSize()]); err != nil {
		return nil, err
	}
	return q.Marshal()
}
