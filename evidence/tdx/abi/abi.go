// Package abi converts Intel TDX ECDSA quotes (versions 4 and 5, TD report
// bodies of TDX 1.0 and 1.5) between bytes and Go structs, with no
// cryptography, clock or policy.
//
// Layouts follow Intel's "TDX DCAP Quoting Library API" (Quote Format v4
// and v5, Appendix A). google/go-tdx-guest parses v4 quotes too, but the
// version obtainable here (see the shared dependency notes) knows no v5
// quote and no TD report 1.5 body, returns protobufs that drop the exact
// bytes the signatures cover, and has no marshaller; the layout is small,
// so it is written out here and the v4 reading is cross-checked against
// go-tdx-guest in the tests.
//
// Every parser checks lengths before reading and never allocates more than
// its input; slices it returns are copies, so the result never aliases the
// caller's buffer. Marshal is the exact inverse of ParseQuote.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"

	dcapabi "github.com/attestd/attestd/evidence/dcap/abi"
)

// Sizes, in bytes.
const (
	HeaderSize         = dcapabi.HeaderSize
	TDReport10Size     = 584 // TD report body of TDX 1.0 (quote v4, v5 body type 2)
	TDReport15Size     = 648 // TD report body of TDX 1.5 (v5 body type 3)
	QEReportSize       = 384 // the quoting enclave's SGX report body
	SignatureSize      = 64  // raw ECDSA P-256 r||s
	AttestationKeySize = 64  // raw P-256 point x||y
	// MaxQuoteSize bounds what ParseQuote accepts: real quotes are about 5 KB
	// (the PCK chain is most of it); the attest API's body limit is larger.
	MaxQuoteSize = 1 << 20
)

// Header and body constants.
const (
	Version4 = 4
	Version5 = 5

	// AttestationKeyECDSAP256 is the only attestation key type DCAP uses.
	AttestationKeyECDSAP256 = 2
	// TEETypeTDX is the header's TEE type of a TD quote (SGX quotes have 0).
	TEETypeTDX = 0x00000081

	// Quote v5 body types (Intel: "Quote Body Type").
	BodyTypeSGX   = 1 // an SGX enclave report: not TDX evidence
	BodyTypeTD10  = 2 // TD report body of TDX 1.0
	BodyTypeTD15  = 3 // TD report body of TDX 1.5
	bodyDescSize  = 6 // v5: u16 type, u32 size
	sigLenSize    = 4
	certHdrSize   = 6 // u16 type, u32 size
	qeAuthLenSize = 2
)

// Certification data types (Intel QL API, "Certification Data Type").
const (
	CertPCKChain        = 5 // PEM PCK leaf, PCK CA, Root CA
	CertQEReportCertDat = 6 // QE report certification data (nests type 5)
)

// ErrNotTDX is wrapped by ParseQuote for well-formed DCAP quotes that are
// not TD quotes (SGX quotes, TEE type 0).
var ErrNotTDX = errors.New("not a TDX quote")

// Header is the 48-byte quote header, the layout SGX and TDX quotes
// share (evidence/dcap/abi).
type Header = dcapabi.Header

// TDReport is a TD report body (TDREPORT's TDINFO with the TEE TCB): all of
// TDX 1.0's fields, and for TDX 1.5 bodies TEETCBSVN2 and MRServiceTD.
type TDReport struct {
	TEETCBSVN      [16]byte
	MRSeam         [48]byte
	MRSignerSeam   [48]byte
	SEAMAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [48]byte
	MRConfigID     [48]byte
	MROwner        [48]byte
	MROwnerConfig  [48]byte
	RTMR           [4][48]byte
	ReportData     [64]byte
	// TDX 1.5 only (BodyTypeTD15).
	TEETCBSVN2  [16]byte
	MRServiceTD [48]byte
}

// TD attribute bits (Intel TDX module ABI, TDATTRIBUTES).
const (
	TDAttrDebug          = 1 << 0  // TUD.DEBUG: the TD is debuggable (host can read its memory)
	TDAttrSEPTVEDisable  = 1 << 28 // SEC.SEPT_VE_DISABLE
	TDAttrProtectionKeys = 1 << 30 // SEC.PKS
	TDAttrKeyLocker      = 1 << 31 // SEC.KL
	TDAttrPerfmon        = 1 << 63 // OTHER.PERFMON
)

// Attributes returns TDATTRIBUTES as a little-endian integer.
func (r *TDReport) Attributes() uint64 { return binary.LittleEndian.Uint64(r.TDAttributes[:]) }

// Debug reports TDATTRIBUTES.DEBUG.
func (r *TDReport) Debug() bool { return r.Attributes()&TDAttrDebug != 0 }

// QEReportCertData is certification data type 6: the QE's report, its
// signature by the PCK key, the QE authentication data, and the nested
// certification data (type 5, the PCK chain).
type QEReportCertData struct {
	QEReport          []byte // QEReportSize bytes, as signed
	QEReportSignature []byte
	QEAuthData        []byte
	// CertType and CertData are the nested certification data.
	CertType uint16
	CertData []byte
}

// Quote is a parsed TD quote.
type Quote struct {
	Header Header
	// BodyType is the v5 body descriptor's type; for v4 it is BodyTypeTD10.
	BodyType uint16
	Body     TDReport
	// Signature is by the attestation key over header || (v5: body
	// descriptor ||) body.
	Signature      []byte
	AttestationKey []byte
	// CertType is the outer certification data type (6 for every quote the
	// DCAP QE produces); QE is set when it is 6, CertData otherwise.
	CertType uint16
	QE       *QEReportCertData
	CertData []byte
	// Extra are bytes after the signature data that no length field
	// covers: some tools pad quotes to a fixed buffer (zeros), go-tdx-guest's
	// sample carries text there. They are outside everything that is signed,
	// so, like go-tdx-guest and dcap-qvl, the parser keeps them (for the
	// exact round trip) and the verifier ignores them.
	Extra []byte
}

// bodySize returns the body length of a body type.
func bodySize(t uint16) (int, bool) {
	switch t {
	case BodyTypeTD10:
		return TDReport10Size, true
	case BodyTypeTD15:
		return TDReport15Size, true
	}
	return 0, false
}

// SignedSize is the length of the quote prefix the quote signature covers.
func (q *Quote) SignedSize() int {
	n, _ := bodySize(q.BodyType)
	if q.Header.Version == Version5 {
		return HeaderSize + bodyDescSize + n
	}
	return HeaderSize + n
}

// PCKChainPEM returns the PEM PCK chain the quote carries (certification
// data type 5, nested in type 6 or, for other producers, at the top level).
func (q *Quote) PCKChainPEM() ([]byte, error) {
	switch {
	case q.QE != nil && q.QE.CertType == CertPCKChain:
		return q.QE.CertData, nil
	case q.QE == nil && q.CertType == CertPCKChain:
		return q.CertData, nil
	case q.QE != nil:
		return nil, fmt.Errorf("QE report certification data nests certification data type %d, not a PCK chain (type 5)", q.QE.CertType)
	}
	return nil, fmt.Errorf("certification data type %d carries no PCK chain (want type 6 wrapping type 5)", q.CertType)
}

// reader reads a byte slice front to back; the first short read sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%s: need %d bytes at offset %d, have %d", what, n, r.off, len(r.b)-r.off)
		return nil
	}
	out := r.b[r.off : r.off+n : r.off+n] // capacity-limited: an append never writes past it
	r.off += n
	return out
}

func (r *reader) u16(what string) uint16 {
	b := r.take(2, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32(what string) uint32 {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// ParseHeader parses the 48-byte header of a TD quote.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("header: %d bytes, want %d", len(b), HeaderSize)
	}
	h := dcapabi.DecodeHeader((*[HeaderSize]byte)(b))
	switch {
	case h.Version != Version4 && h.Version != Version5:
		if h.Version == 3 {
			return nil, fmt.Errorf("%w: quote version 3 is an SGX quote (TDX quotes are version 4 or 5)", ErrNotTDX)
		}
		return nil, fmt.Errorf("header: quote version %d is not 4 or 5", h.Version)
	case h.TEEType != TEETypeTDX:
		return nil, fmt.Errorf("%w: TEE type %#x is not TDX (%#x)", ErrNotTDX, h.TEEType, TEETypeTDX)
	case h.AttestationKeyType != AttestationKeyECDSAP256:
		return nil, fmt.Errorf("header: attestation key type %d is not ECDSA-256-with-P-256 (2)", h.AttestationKeyType)
	}
	return h, nil
}

// tdFields lists the TD report's fields in layout order.
func (r *TDReport) fields(v15 bool) [][]byte {
	f := [][]byte{r.TEETCBSVN[:], r.MRSeam[:], r.MRSignerSeam[:], r.SEAMAttributes[:], r.TDAttributes[:], r.XFAM[:],
		r.MRTD[:], r.MRConfigID[:], r.MROwner[:], r.MROwnerConfig[:], r.RTMR[0][:], r.RTMR[1][:], r.RTMR[2][:], r.RTMR[3][:], r.ReportData[:]}
	if v15 {
		f = append(f, r.TEETCBSVN2[:], r.MRServiceTD[:])
	}
	return f
}

// ParseTDReport parses a TD report body of the given body type.
func ParseTDReport(b []byte, bodyType uint16) (*TDReport, error) {
	n, ok := bodySize(bodyType)
	if !ok {
		return nil, fmt.Errorf("TD report: body type %d is not a TD report (2: TDX 1.0, 3: TDX 1.5)", bodyType)
	}
	if len(b) != n {
		return nil, fmt.Errorf("TD report: %d bytes, want %d for body type %d", len(b), n, bodyType)
	}
	r := &TDReport{}
	off := 0
	for _, f := range r.fields(bodyType == BodyTypeTD15) {
		off += copy(f, b[off:])
	}
	return r, nil
}

// Marshal returns the TD report body of the given body type.
func (r *TDReport) Marshal(bodyType uint16) []byte {
	var b []byte
	for _, f := range r.fields(bodyType == BodyTypeTD15) {
		b = append(b, f...)
	}
	return b
}

// ParseQuote parses a TD quote v4 or v5. A quote whose header is an SGX
// quote's wraps ErrNotTDX.
func ParseQuote(b []byte) (*Quote, error) {
	q, _, err := ParseQuoteCopy(b)
	return q, err
}

// ParseQuoteCopy is ParseQuote that also returns raw, the one private copy
// of b that the quote's byte slices (signature, attestation key, QE report
// and its signature, QE authentication data, certification data, Extra) are
// capacity-limited sub-slices of: one allocation for all of them instead of
// one each, and a caller that keeps the quote's exact bytes needs no copy of
// its own. Neither q nor raw aliases b; q and raw share memory, so treat
// both as read-only.
func ParseQuoteCopy(b []byte) (q *Quote, raw []byte, err error) {
	if len(b) > MaxQuoteSize {
		return nil, nil, fmt.Errorf("quote: %d bytes, more than the %d a TD quote can need", len(b), MaxQuoteSize)
	}
	if _, err := ParseHeader(b); err != nil {
		return nil, nil, err
	}
	raw = clone(b)
	if q, err = parseQuote(raw); err != nil {
		return nil, nil, err
	}
	return q, raw, nil
}

// parseQuote parses b (at most MaxQuoteSize bytes), which the result may alias.
func parseQuote(b []byte) (*Quote, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	q := &Quote{Header: *h, BodyType: BodyTypeTD10}
	r := &reader{b: b, off: HeaderSize}
	if h.Version == Version5 {
		q.BodyType = r.u16("body type")
		size := r.u32("body size")
		if r.err != nil {
			return nil, r.err
		}
		if q.BodyType == BodyTypeSGX {
			return nil, fmt.Errorf("%w: quote v5 body type 1 is an SGX enclave report", ErrNotTDX)
		}
		n, ok := bodySize(q.BodyType)
		if !ok {
			return nil, fmt.Errorf("body: quote v5 body type %d is not a TD report (2: TDX 1.0, 3: TDX 1.5)", q.BodyType)
		}
		if int64(size) != int64(n) {
			return nil, fmt.Errorf("body: body type %d has %d bytes, the descriptor says %d", q.BodyType, n, size)
		}
	}
	n, _ := bodySize(q.BodyType)
	body := r.take(n, "TD report body")
	if r.err != nil {
		return nil, r.err
	}
	td, err := ParseTDReport(body, q.BodyType)
	if err != nil {
		return nil, err
	}
	q.Body = *td
	sigLen := r.u32("signature data length")
	if r.err != nil {
		return nil, r.err
	}
	sd := r.take(int(min(sigLen, uint32(MaxQuoteSize))), "signature data")
	if r.err != nil {
		return nil, r.err
	}
	if err := q.parseSignatureData(sd); err != nil {
		return nil, err
	}
	if r.off < len(b) {
		q.Extra = b[r.off:len(b):len(b)]
	}
	return q, nil
}

func (q *Quote) parseSignatureData(sd []byte) error {
	r := &reader{b: sd}
	q.Signature = r.take(SignatureSize, "quote signature")
	q.AttestationKey = r.take(AttestationKeySize, "attestation key")
	q.CertType = r.u16("certification data type")
	size := r.u32("certification data size")
	data := r.take(int(min(size, uint32(len(sd)))), "certification data")
	if r.err == nil && int64(size) > int64(len(data)) {
		r.err = fmt.Errorf("certification data: size %d exceeds the signature data", size)
	}
	if r.err != nil {
		return r.err
	}
	if r.off != len(sd) {
		return fmt.Errorf("signature data: %d bytes after the certification data", len(sd)-r.off)
	}
	if q.CertType != CertQEReportCertDat {
		q.CertData = data
		return nil
	}
	qr := &reader{b: data}
	qe := &QEReportCertData{}
	qe.QEReport = qr.take(QEReportSize, "QE report")
	qe.QEReportSignature = qr.take(SignatureSize, "QE report signature")
	authLen := qr.u16("QE authentication data size")
	qe.QEAuthData = qr.take(int(authLen), "QE authentication data")
	qe.CertType = qr.u16("nested certification data type")
	nsize := qr.u32("nested certification data size")
	if qr.err != nil {
		return qr.err
	}
	if int64(nsize) != int64(len(data)-qr.off) {
		return fmt.Errorf("nested certification data: size %d, but %d bytes remain in the QE report certification data", nsize, len(data)-qr.off)
	}
	qe.CertData = data[qr.off:len(data):len(data)]
	q.QE = qe
	return nil
}

// Marshal returns the quote's bytes: the exact inverse of ParseQuote.
func (q *Quote) Marshal() ([]byte, error) {
	if len(q.Signature) != SignatureSize || len(q.AttestationKey) != AttestationKeySize {
		return nil, errors.New("quote: signature and attestation key must be 64 bytes each")
	}
	n, ok := bodySize(q.BodyType)
	if !ok || (q.Header.Version == Version4 && q.BodyType != BodyTypeTD10) {
		return nil, fmt.Errorf("quote: body type %d cannot be carried by quote version %d", q.BodyType, q.Header.Version)
	}
	b := q.Header.Marshal()
	if q.Header.Version == Version5 {
		b = binary.LittleEndian.AppendUint16(b, q.BodyType)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
	}
	b = append(b, q.Body.Marshal(q.BodyType)...)
	cert := q.CertData
	if q.CertType == CertQEReportCertDat {
		if q.QE == nil || len(q.QE.QEReport) != QEReportSize || len(q.QE.QEReportSignature) != SignatureSize || len(q.QE.QEAuthData) > 0xffff {
			return nil, errors.New("quote: QE report certification data is incomplete")
		}
		cert = append(clone(q.QE.QEReport), q.QE.QEReportSignature...)
		cert = binary.LittleEndian.AppendUint16(cert, uint16(len(q.QE.QEAuthData)))
		cert = append(cert, q.QE.QEAuthData...)
		cert = binary.LittleEndian.AppendUint16(cert, q.QE.CertType)
		cert = binary.LittleEndian.AppendUint32(cert, uint32(len(q.QE.CertData)))
		cert = append(cert, q.QE.CertData...)
	}
	sd := append(clone(q.Signature), q.AttestationKey...)
	sd = binary.LittleEndian.AppendUint16(sd, q.CertType)
	sd = binary.LittleEndian.AppendUint32(sd, uint32(len(cert)))
	sd = append(sd, cert...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sd)))
	b = append(b, sd...)
	return append(b, q.Extra...), nil
}
