// Package abi converts Intel SGX ECDSA quotes (versions 3 and 4) and the
// OpenEnclave report and evidence formats that wrap them between bytes and Go
// structs, with no cryptography, clock or policy.
//
// Layouts follow Intel's "SGX ECDSA Quote Library API" (quote v3, Appendix A)
// and the DCAP quote v4 header/certification-data definitions. Every parser
// checks lengths before reading, rejects must-be-zero ranges that are not zero,
// and clones every slice it returns so the result never aliases the caller's
// buffer. Each Parse function has a Marshal inverse; the round trip is exact.
package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	dcapabi "github.com/attestd/attestd/evidence/dcap/abi"
)

// Sizes and offsets of the quote, in bytes.
const (
	HeaderSize     = dcapabi.HeaderSize
	ReportBodySize = 384
	// QuoteFixedSize is header + report body + the uint32 signature data length.
	QuoteFixedSize = HeaderSize + ReportBodySize + 4
	// SignedSize is the length of the quote prefix covered by the quote signature.
	SignedSize = HeaderSize + ReportBodySize

	SignatureSize      = 64 // raw ECDSA P-256 r||s
	AttestationKeySize = 64 // raw P-256 point x||y

	// ReportDataOffset is the offset of REPORTDATA in the quote (48 + 320).
	ReportDataOffset = HeaderSize + 320
)

// Quote and key type constants.
const (
	QuoteVersion3 = 3
	QuoteVersion4 = 4
	QuoteVersion5 = 5

	// AttestationKeyECDSAP256 is the only attestation key type DCAP uses.
	AttestationKeyECDSAP256 = 2

	TeeTypeSGX = 0x00000000
	TeeTypeTDX = 0x00000081
)

// Certification data types (Intel QL API, "Certification Data Type").
const (
	CertPPIDCleartext    = 1
	CertPPIDRSA2048      = 2
	CertPPIDRSA3072      = 3
	CertPCKCleartext     = 4
	CertPCKChain         = 5 // PEM PCK leaf, PCK CA, Root CA
	CertQEReportCertDat  = 6 // v4: QE report certification data (nests type 5)
	CertPlatformManifest = 7
)

// ErrTDX is returned for TDX quotes: attestd verifies TDX in a separate
// verifier, and this package does not pretend to parse its TD report body.
var ErrTDX = errors.New("quote is a TDX quote (TEE type 0x81); TDX evidence is not SGX evidence and is not supported by the SGX verifier")

// Header is the 48-byte quote header, the layout SGX and TDX quotes
// share (evidence/dcap/abi).
type Header = dcapabi.Header

// ReportBody is the 384-byte SGX enclave report body (SGX REPORTBODY),
// used both for the ISV enclave and the quoting enclave.
type ReportBody struct {
	CPUSVN               [16]byte
	MiscSelect           uint32
	ISVExtendedProductID [16]byte
	Attributes           [16]byte // FLAGS (u64 LE) || XFRM (u64 LE)
	MREnclave            [32]byte
	MRSigner             [32]byte
	ConfigID             [64]byte
	ISVProdID            uint16
	ISVSVN               uint16
	ConfigSVN            uint16
	ISVFamilyID          [16]byte
	ReportData           [64]byte
}

// Attribute flag bits (SGX ATTRIBUTES.FLAGS).
const (
	FlagInit   = 0x01
	FlagDebug  = 0x02
	FlagMode64 = 0x04
	FlagKSS    = 0x80
)

// Flags returns ATTRIBUTES.FLAGS.
func (r *ReportBody) Flags() uint64 { return binary.LittleEndian.Uint64(r.Attributes[0:8]) }

// Debug reports whether the enclave was launched in debug mode.
func (r *ReportBody) Debug() bool { return r.Flags()&FlagDebug != 0 }

// KSS reports whether Key Separation and Sharing is enabled for the enclave.
func (r *ReportBody) KSS() bool { return r.Flags()&FlagKSS != 0 }

// CertificationData is a typed certification data blob.
type CertificationData struct {
	Type uint16
	Data []byte
}

// QEReportCertificationData is what the quoting enclave contributes: its report
// (signed by the PCK key), its authentication data and the PCK certification
// data. In v3 it is inlined in the signature data; in v4 it is certification
// data of type 6.
type QEReportCertificationData struct {
	QEReport          ReportBody
	QEReportSignature []byte // 64
	QEAuthData        []byte
	Certification     CertificationData
}

// Quote is a parsed SGX ECDSA quote (v3 or v4).
type Quote struct {
	Header         Header
	Body           ReportBody
	Signature      []byte // 64, ISV enclave report signature by the attestation key
	AttestationKey []byte // 64, raw P-256 point
	QE             QEReportCertificationData
}

// PCKChainPEM returns the PEM PCK certificate chain carried by the quote
// (certification data type 5), or an error for types that need the PCK
// certificate from elsewhere (PPID types 1–3).
func (q *Quote) PCKChainPEM() ([]byte, error) {
	c := q.QE.Certification
	if c.Type != CertPCKChain {
		return nil, fmt.Errorf("certification data type %d: only type 5 (PCK certificate chain) is supported; types 1-3 carry an encrypted PPID and need the PCK certificate from PCS/PCCS", c.Type)
	}
	return c.Data, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func mbz(b []byte, lo, hi int, what string) error {
	for i := lo; i < hi; i++ {
		if b[i] != 0 {
			return fmt.Errorf("%s: reserved bytes [0x%x, 0x%x) must be zero, byte 0x%x is 0x%02x", what, lo, hi, i, b[i])
		}
	}
	return nil
}

// ParseHeader parses the 48-byte quote header. It accepts versions 3 and 4
// with an ECDSA P-256 attestation key and rejects TDX quotes with ErrTDX.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("quote header: need %d bytes, have %d", HeaderSize, len(b))
	}
	h := dcapabi.DecodeHeader((*[HeaderSize]byte)(b))
	if h.TEEType == TeeTypeTDX {
		return nil, ErrTDX
	}
	switch h.Version {
	case QuoteVersion3, QuoteVersion4:
	case QuoteVersion5:
		return nil, fmt.Errorf("quote version 5 is only defined for TDX 1.5 quotes; not an SGX quote")
	default:
		return nil, fmt.Errorf("quote version %d is not supported (want 3 or 4)", h.Version)
	}
	if h.TEEType != TeeTypeSGX {
		return nil, fmt.Errorf("quote header: TEE type 0x%x is neither SGX (0) nor TDX (0x81)", h.TEEType)
	}
	if h.AttestationKeyType != AttestationKeyECDSAP256 {
		return nil, fmt.Errorf("attestation key type %d is not supported (want 2, ECDSA-256-with-P-256)", h.AttestationKeyType)
	}
	return h, nil
}

// Report body field offsets (Intel SGX SDM, REPORTBODY).
const (
	offCPUSVN       = 0
	offMiscSelect   = 16
	offReserved1    = 20 // 12 bytes
	offISVExtProdID = 32
	offAttributes   = 48
	offMREnclave    = 64
	offReserved2    = 96 // 32 bytes
	offMRSigner     = 128
	offReserved3    = 160 // 32 bytes
	offConfigID     = 192
	offISVProdID    = 256
	offISVSVN       = 258
	offConfigSVN    = 260
	offReserved4    = 262 // 42 bytes
	offISVFamilyID  = 304
	offReportData   = 320
)

// ParseReportBody parses a 384-byte SGX report body.
func ParseReportBody(b []byte) (*ReportBody, error) {
	r := &ReportBody{}
	if err := parseReportBody(r, b); err != nil {
		return nil, err
	}
	return r, nil
}

// reservedRanges are the must-be-zero ranges of a report body.
var reservedRanges = [...][2]int{{offReserved1, offISVExtProdID}, {offReserved2, offMRSigner}, {offReserved3, offConfigID}, {offReserved4, offISVFamilyID}}

// parseReportBody is ParseReportBody into *r (a quote parses its two report
// bodies in place, without an allocation each).
func parseReportBody(r *ReportBody, b []byte) error {
	if len(b) < ReportBodySize {
		return fmt.Errorf("report body: need %d bytes, have %d", ReportBodySize, len(b))
	}
	b = b[:ReportBodySize]
	for _, rr := range reservedRanges {
		if err := mbz(b, rr[0], rr[1], "report body"); err != nil {
			return err
		}
	}
	*r = ReportBody{
		MiscSelect: binary.LittleEndian.Uint32(b[offMiscSelect:]),
		ISVProdID:  binary.LittleEndian.Uint16(b[offISVProdID:]),
		ISVSVN:     binary.LittleEndian.Uint16(b[offISVSVN:]),
		ConfigSVN:  binary.LittleEndian.Uint16(b[offConfigSVN:]),
	}
	copy(r.CPUSVN[:], b[offCPUSVN:])
	copy(r.ISVExtendedProductID[:], b[offISVExtProdID:])
	copy(r.Attributes[:], b[offAttributes:])
	copy(r.MREnclave[:], b[offMREnclave:])
	copy(r.MRSigner[:], b[offMRSigner:])
	copy(r.ConfigID[:], b[offConfigID:])
	copy(r.ISVFamilyID[:], b[offISVFamilyID:])
	copy(r.ReportData[:], b[offReportData:])
	return nil
}

// Marshal returns the 384-byte encoding of r.
func (r *ReportBody) Marshal() []byte { return r.Append(nil) }

// Append appends the 384-byte encoding of r to dst (Marshal without its own
// allocation, for a caller with a buffer).
func (r *ReportBody) Append(dst []byte) []byte {
	dst = slices.Grow(dst, ReportBodySize)
	n := len(dst)
	dst = dst[:n+ReportBodySize]
	b := dst[n:]
	clear(b)
	copy(b[offCPUSVN:], r.CPUSVN[:])
	binary.LittleEndian.PutUint32(b[offMiscSelect:], r.MiscSelect)
	copy(b[offISVExtProdID:], r.ISVExtendedProductID[:])
	copy(b[offAttributes:], r.Attributes[:])
	copy(b[offMREnclave:], r.MREnclave[:])
	copy(b[offMRSigner:], r.MRSigner[:])
	copy(b[offConfigID:], r.ConfigID[:])
	binary.LittleEndian.PutUint16(b[offISVProdID:], r.ISVProdID)
	binary.LittleEndian.PutUint16(b[offISVSVN:], r.ISVSVN)
	binary.LittleEndian.PutUint16(b[offConfigSVN:], r.ConfigSVN)
	copy(b[offISVFamilyID:], r.ISVFamilyID[:])
	copy(b[offReportData:], r.ReportData[:])
	return dst
}

// reader is a bounds-checked little-endian cursor.
type reader struct {
	b   []byte
	off int
	err error
	ctx string
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%s: %s needs %d bytes at offset %d, only %d left", r.ctx, what, n, r.off, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n] // capacity-limited: an append never writes past it
	r.off += n
	return s
}

func (r *reader) u16(what string) uint16 {
	s := r.take(2, what)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(s)
}

func (r *reader) u32(what string) uint32 {
	s := r.take(4, what)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(s)
}

func (r *reader) u64(what string) uint64 {
	s := r.take(8, what)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(s)
}

// QuoteLength returns the total length of the quote that starts at b, as
// declared by its signature data length, after checking the header.
func QuoteLength(b []byte) (int, error) {
	if _, err := ParseHeader(b); err != nil {
		return 0, err
	}
	if len(b) < QuoteFixedSize {
		return 0, fmt.Errorf("quote: need at least %d bytes, have %d", QuoteFixedSize, len(b))
	}
	n := uint64(binary.LittleEndian.Uint32(b[SignedSize:QuoteFixedSize]))
	total := uint64(QuoteFixedSize) + n
	if total > uint64(len(b)) {
		return 0, fmt.Errorf("quote: signature data length %d exceeds the %d bytes available", n, len(b)-QuoteFixedSize)
	}
	return int(total), nil
}

// ParseQuote parses an SGX ECDSA quote v3 or v4. b must hold exactly one
// quote: trailing bytes after the declared signature data are rejected.
func ParseQuote(b []byte) (*Quote, error) {
	q, _, err := ParseQuoteCopy(b)
	return q, err
}

// ParseQuoteCopy is ParseQuote that also returns raw, the one private copy
// of b that the quote's byte slices (signature, attestation key, QE report
// signature, QE authentication data, certification data) are
// capacity-limited sub-slices of: one allocation for all of them instead of
// one each, and a caller that keeps the quote's exact bytes (to hash them)
// needs no copy of its own. Neither q nor raw aliases b; q and raw share
// memory, so treat both as read-only.
func ParseQuoteCopy(b []byte) (q *Quote, raw []byte, err error) {
	n, err := QuoteLength(b)
	if err != nil {
		return nil, nil, err
	}
	if n != len(b) {
		return nil, nil, fmt.Errorf("quote: %d trailing bytes after the %d-byte quote", len(b)-n, n)
	}
	raw = clone(b)
	q, err = parseQuote(raw)
	if err != nil {
		return nil, nil, err
	}
	return q, raw, nil
}

// parseQuote parses b, a quote of exactly len(b) bytes (QuoteLength
// checked), that the result may alias.
func parseQuote(b []byte) (*Quote, error) {
	// The header was checked by QuoteLength (ParseHeader); decoded again
	// here into the quote itself.
	q := &Quote{Header: *dcapabi.DecodeHeader((*[HeaderSize]byte)(b))}
	h := &q.Header
	if err := parseReportBody(&q.Body, b[HeaderSize:SignedSize]); err != nil {
		return nil, fmt.Errorf("ISV enclave %w", err)
	}
	r := &reader{b: b[QuoteFixedSize:], ctx: "quote signature data"}
	q.Signature = r.take(SignatureSize, "quote signature")
	q.AttestationKey = r.take(AttestationKeySize, "attestation key")
	if r.err != nil {
		return nil, r.err
	}
	switch h.Version {
	case QuoteVersion3:
		if err := parseQEReportCertData(r, &q.QE); err != nil {
			return nil, err
		}
	case QuoteVersion4:
		typ := r.u16("certification data type")
		size := r.u32("certification data size")
		data := r.take(int(size), "certification data")
		if r.err != nil {
			return nil, r.err
		}
		if typ != CertQEReportCertDat {
			return nil, fmt.Errorf("quote v4: certification data type %d, want 6 (QE report certification data)", typ)
		}
		inner := &reader{b: data, ctx: "QE report certification data"}
		if err := parseQEReportCertData(inner, &q.QE); err != nil {
			return nil, err
		}
		if inner.off != len(data) {
			return nil, fmt.Errorf("QE report certification data: %d trailing bytes", len(data)-inner.off)
		}
	}
	if r.off != len(r.b) {
		return nil, fmt.Errorf("quote signature data: %d trailing bytes after the certification data", len(r.b)-r.off)
	}
	return q, nil
}

// parseQEReportCertData parses into *qe; its slices alias r's buffer.
func parseQEReportCertData(r *reader, qe *QEReportCertificationData) error {
	rep := r.take(ReportBodySize, "QE report")
	sig := r.take(SignatureSize, "QE report signature")
	authLen := r.u16("QE authentication data size")
	auth := r.take(int(authLen), "QE authentication data")
	typ := r.u16("certification data type")
	size := r.u32("certification data size")
	data := r.take(int(size), "certification data")
	if r.err != nil {
		return r.err
	}
	if err := parseReportBody(&qe.QEReport, rep); err != nil {
		return fmt.Errorf("QE %w", err)
	}
	if typ == CertQEReportCertDat {
		return fmt.Errorf("%s: certification data type 6 nested inside itself", r.ctx)
	}
	qe.QEReportSignature, qe.QEAuthData = sig, auth
	qe.Certification = CertificationData{Type: typ, Data: data}
	return nil
}

func (qe *QEReportCertificationData) marshal() []byte {
	var buf bytes.Buffer
	buf.Write(qe.QEReport.Marshal())
	buf.Write(qe.QEReportSignature)
	buf.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(qe.QEAuthData))))
	buf.Write(qe.QEAuthData)
	buf.Write(binary.LittleEndian.AppendUint16(nil, qe.Certification.Type))
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(qe.Certification.Data))))
	buf.Write(qe.Certification.Data)
	return buf.Bytes()
}

// SignedBytes returns the bytes covered by the quote signature: header || report body.
func (q *Quote) SignedBytes() []byte { return q.AppendSignedBytes(make([]byte, 0, SignedSize)) }

// AppendSignedBytes appends SignedBytes to dst.
func (q *Quote) AppendSignedBytes(dst []byte) []byte {
	return q.Body.Append(append(dst, q.Header.Marshal()...))
}

// Marshal returns the encoding of q (the inverse of ParseQuote).
func (q *Quote) Marshal() ([]byte, error) {
	if len(q.Signature) != SignatureSize || len(q.AttestationKey) != AttestationKeySize || len(q.QE.QEReportSignature) != SignatureSize {
		return nil, errors.New("quote: signature, attestation key and QE report signature must be 64 bytes each")
	}
	if len(q.QE.QEAuthData) > 0xffff {
		return nil, errors.New("quote: QE authentication data longer than 65535 bytes")
	}
	var sd bytes.Buffer
	sd.Write(q.Signature)
	sd.Write(q.AttestationKey)
	qe := q.QE.marshal()
	switch q.Header.Version {
	case QuoteVersion3:
		sd.Write(qe)
	case QuoteVersion4:
		sd.Write(binary.LittleEndian.AppendUint16(nil, CertQEReportCertDat))
		sd.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(qe))))
		sd.Write(qe)
	default:
		return nil, fmt.Errorf("quote: cannot marshal version %d", q.Header.Version)
	}
	out := q.SignedBytes()
	out = binary.LittleEndian.AppendUint32(out, uint32(sd.Len()))
	return append(out, sd.Bytes()...), nil
}
