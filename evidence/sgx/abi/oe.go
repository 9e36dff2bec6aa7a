package abi

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// OpenEnclave wire formats (learned from the OE SDK's include/openenclave/bits
// and common/sgx; no OE code is used):
//
//	oe_report_header_t:      u32 version (=1), u32 report_type (2 = SGX remote), u64 report_size, report[report_size]
//	oe_attestation_header_t: u32 version (=3; 2 = legacy), uuid format_id[16], u64 data_size, data[data_size]
//
// For format OE_FORMAT_UUID_SGX_ECDSA the attestation-header data is the SGX
// quote immediately followed by the serialized custom claims (header version 3),
// or an oe_report_header_t-wrapped quote followed by the claims (legacy
// version 2). SHA-256 of the custom claims buffer is the quote's
// report_data[0:32]. The custom claims buffer is
//
//	u64 version (=1), u64 num_claims, then per claim: u64 name_size, u64 value_size, name (NUL-terminated, name_size bytes incl. NUL), value
const (
	OEReportHeaderSize      = 16
	OEReportHeaderVersion   = 1
	OEReportTypeSGXLocal    = 1
	OEReportTypeSGXRemote   = 2
	OEAttestationHeaderSize = 4 + 16 + 8
	OEAttestationHeaderV2   = 2
	OEAttestationHeaderV3   = 3
	OECustomClaimsVersion   = 1
)

// OEFormatSGXECDSA is OE_FORMAT_UUID_SGX_ECDSA {a3a21e87-1b4d-4014-b70a-a125d2fbcd8c}
// (a string constant so no package state can be modified; convert with
// [16]byte([]byte(OEFormatSGXECDSA))).
const OEFormatSGXECDSA = "\xa3\xa2\x1e\x87\x1b\x4d\x40\x14\xb7\x0a\xa1\x25\xd2\xfb\xcd\x8c"

func oeFormatSGXECDSA() [16]byte { return [16]byte([]byte(OEFormatSGXECDSA)) }

// OEReport is an OpenEnclave remote report: a 16-byte header and an SGX quote.
type OEReport struct {
	Version    uint32
	ReportType uint32
	Quote      *Quote
	// QuoteBytes is a copy of the quote as carried in the report (the
	// memory Quote's byte slices share: read-only).
	QuoteBytes []byte
}

// ParseOEReport parses an OpenEnclave remote report (oe_get_report with
// OE_REPORT_FLAGS_REMOTE_ATTESTATION): header version 1, type 2, and exactly
// report_size bytes of SGX ECDSA quote.
func ParseOEReport(b []byte) (*OEReport, error) {
	if len(b) < OEReportHeaderSize {
		return nil, fmt.Errorf("OE report: need a %d-byte header, have %d bytes", OEReportHeaderSize, len(b))
	}
	v := binary.LittleEndian.Uint32(b[0:4])
	t := binary.LittleEndian.Uint32(b[4:8])
	size := binary.LittleEndian.Uint64(b[8:16])
	if v != OEReportHeaderVersion {
		return nil, fmt.Errorf("OE report: header version %d, want 1", v)
	}
	switch t {
	case OEReportTypeSGXRemote:
	case OEReportTypeSGXLocal:
		return nil, fmt.Errorf("OE report: type 1 (SGX local report) cannot be verified remotely; want type 2 (remote)")
	default:
		return nil, fmt.Errorf("OE report: report type %d, want 2 (SGX remote)", t)
	}
	if size != uint64(len(b)-OEReportHeaderSize) {
		return nil, fmt.Errorf("OE report: header says %d report bytes, %d follow", size, len(b)-OEReportHeaderSize)
	}
	qb := b[OEReportHeaderSize:]
	q, raw, err := ParseQuoteCopy(qb)
	if err != nil {
		return nil, fmt.Errorf("OE report: %w", err)
	}
	return &OEReport{Version: v, ReportType: t, Quote: q, QuoteBytes: raw}, nil
}

// Marshal returns the encoding of r (header + QuoteBytes).
func (r *OEReport) Marshal() []byte {
	return marshalOEReport(r.Version, r.ReportType, r.QuoteBytes)
}

func marshalOEReport(version, typ uint32, quote []byte) []byte {
	b := make([]byte, OEReportHeaderSize, OEReportHeaderSize+len(quote))
	binary.LittleEndian.PutUint32(b[0:4], version)
	binary.LittleEndian.PutUint32(b[4:8], typ)
	binary.LittleEndian.PutUint64(b[8:16], uint64(len(quote)))
	return append(b, quote...)
}

// NewOEReport wraps a quote in an OE remote report header.
func NewOEReport(quote []byte) []byte {
	return marshalOEReport(OEReportHeaderVersion, OEReportTypeSGXRemote, quote)
}

// CustomClaim is one OpenEnclave custom claim.
type CustomClaim struct {
	Name  string
	Value []byte
}

// OEEvidence is OpenEnclave evidence in the SGX_ECDSA format (oe_get_evidence
// with OE_EVIDENCE_FLAGS_EMBED_FORMAT_ID).
type OEEvidence struct {
	HeaderVersion uint32
	FormatID      [16]byte
	Quote         *Quote
	// QuoteBytes is the quote's exact bytes (parsed: the memory Quote's
	// byte slices share, read-only).
	QuoteBytes []byte
	// CustomClaimsBuffer is the serialized custom claims exactly as carried;
	// SHA-256 of it must equal the quote's report_data[0:32].
	CustomClaimsBuffer []byte
	CustomClaims       []CustomClaim
}

// IsOEEvidence reports whether b starts like an OE attestation header.
func IsOEEvidence(b []byte) bool {
	if len(b) < OEAttestationHeaderSize {
		return false
	}
	v := binary.LittleEndian.Uint32(b[0:4])
	return v == OEAttestationHeaderV2 || v == OEAttestationHeaderV3
}

// IsOEReport reports whether b starts like an OE report header.
func IsOEReport(b []byte) bool {
	return len(b) >= OEReportHeaderSize && binary.LittleEndian.Uint32(b[0:4]) == OEReportHeaderVersion
}

// ParseOEEvidence parses OE SGX_ECDSA evidence with its custom claims.
func ParseOEEvidence(b []byte) (*OEEvidence, error) {
	if len(b) < OEAttestationHeaderSize {
		return nil, fmt.Errorf("OE evidence: need a %d-byte attestation header, have %d bytes", OEAttestationHeaderSize, len(b))
	}
	e := &OEEvidence{HeaderVersion: binary.LittleEndian.Uint32(b[0:4])}
	copy(e.FormatID[:], b[4:20])
	size := binary.LittleEndian.Uint64(b[20:28])
	if e.HeaderVersion != OEAttestationHeaderV2 && e.HeaderVersion != OEAttestationHeaderV3 {
		return nil, fmt.Errorf("OE evidence: attestation header version %d, want 3 (or legacy 2)", e.HeaderVersion)
	}
	if e.FormatID != oeFormatSGXECDSA() {
		return nil, fmt.Errorf("OE evidence: format %x is not OE_FORMAT_UUID_SGX_ECDSA", e.FormatID)
	}
	data := b[OEAttestationHeaderSize:]
	if size != uint64(len(data)) {
		return nil, fmt.Errorf("OE evidence: header says %d data bytes, %d follow", size, len(data))
	}
	if e.HeaderVersion == OEAttestationHeaderV2 {
		// Legacy: an OE report header wraps the quote; its report_size delimits the quote.
		if len(data) < OEReportHeaderSize {
			return nil, fmt.Errorf("OE evidence (v2): data too short for the OE report header")
		}
		v := binary.LittleEndian.Uint32(data[0:4])
		t := binary.LittleEndian.Uint32(data[4:8])
		rs := binary.LittleEndian.Uint64(data[8:16])
		if v != OEReportHeaderVersion || t != OEReportTypeSGXRemote {
			return nil, fmt.Errorf("OE evidence (v2): inner report header version %d type %d, want 1/2", v, t)
		}
		if rs > uint64(len(data)-OEReportHeaderSize) {
			return nil, fmt.Errorf("OE evidence (v2): report size %d exceeds the %d bytes available", rs, len(data)-OEReportHeaderSize)
		}
		data = data[OEReportHeaderSize:]
		n := int(rs)
		if err := e.parseQuoteAndClaims(data, n); err != nil {
			return nil, err
		}
		return e, nil
	}
	n, err := QuoteLength(data)
	if err != nil {
		return nil, fmt.Errorf("OE evidence: %w", err)
	}
	if err := e.parseQuoteAndClaims(data, n); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *OEEvidence) parseQuoteAndClaims(data []byte, n int) error {
	q, raw, err := ParseQuoteCopy(data[:n])
	if err != nil {
		return fmt.Errorf("OE evidence: %w", err)
	}
	claims, err := ParseCustomClaims(data[n:])
	if err != nil {
		return fmt.Errorf("OE evidence: %w", err)
	}
	e.Quote = q
	e.QuoteBytes = raw
	e.CustomClaimsBuffer = clone(data[n:])
	e.CustomClaims = claims
	return nil
}

// Marshal returns the encoding of e (inverse of ParseOEEvidence).
func (e *OEEvidence) Marshal() []byte {
	var data []byte
	if e.HeaderVersion == OEAttestationHeaderV2 {
		data = marshalOEReport(OEReportHeaderVersion, OEReportTypeSGXRemote, e.QuoteBytes)
	} else {
		data = clone(e.QuoteBytes)
	}
	data = append(data, e.CustomClaimsBuffer...)
	b := make([]byte, OEAttestationHeaderSize, OEAttestationHeaderSize+len(data))
	binary.LittleEndian.PutUint32(b[0:4], e.HeaderVersion)
	copy(b[4:20], e.FormatID[:])
	binary.LittleEndian.PutUint64(b[20:28], uint64(len(data)))
	return append(b, data...)
}

// NewOEEvidence builds v3 SGX_ECDSA evidence from a quote and a serialized
// custom claims buffer (see MarshalCustomClaims).
func NewOEEvidence(quote, claimsBuffer []byte) []byte {
	e := &OEEvidence{HeaderVersion: OEAttestationHeaderV3, FormatID: oeFormatSGXECDSA(), QuoteBytes: quote, CustomClaimsBuffer: claimsBuffer}
	return e.Marshal()
}

// maxCustomClaims bounds the claim count so a hostile count cannot make the
// parser allocate before the lengths have been checked.
const maxCustomClaims = 1 << 16

// ParseCustomClaims parses an OE custom claims buffer. An empty buffer means
// no custom claims (OE hashes it as the empty string).
func ParseCustomClaims(b []byte) ([]CustomClaim, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := &reader{b: b, ctx: "OE custom claims"}
	v := r.u64("version")
	n := r.u64("claim count")
	if r.err != nil {
		return nil, r.err
	}
	if v != OECustomClaimsVersion {
		return nil, fmt.Errorf("OE custom claims: version %d, want 1", v)
	}
	if n > maxCustomClaims || n > uint64(len(b)-r.off)/16 {
		return nil, fmt.Errorf("OE custom claims: %d claims cannot fit in %d bytes", n, len(b)-r.off)
	}
	out := make([]CustomClaim, 0, n)
	for i := uint64(0); i < n; i++ {
		ns := r.u64("name size")
		vs := r.u64("value size")
		if r.err != nil {
			return nil, r.err
		}
		left := uint64(len(b) - r.off)
		if ns > left || vs > left-ns {
			return nil, fmt.Errorf("OE custom claims: claim %d: name size %d + value size %d exceed the %d bytes left", i, ns, vs, left)
		}
		name := r.take(int(ns), "name")
		val := r.take(int(vs), "value")
		if ns == 0 || name[ns-1] != 0 {
			return nil, fmt.Errorf("OE custom claims: claim %d: name is not NUL-terminated", i)
		}
		if bytes.IndexByte(name[:ns-1], 0) >= 0 {
			return nil, fmt.Errorf("OE custom claims: claim %d: name contains an inner NUL", i)
		}
		out = append(out, CustomClaim{Name: string(name[:ns-1]), Value: clone(val)})
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("OE custom claims: %d trailing bytes after %d claims", len(b)-r.off, n)
	}
	return out, nil
}

// MarshalCustomClaims serializes claims in OE's custom claims format.
func MarshalCustomClaims(claims []CustomClaim) []byte {
	b := binary.LittleEndian.AppendUint64(nil, OECustomClaimsVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(claims)))
	for _, c := range claims {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(c.Name)+1))
		b = binary.LittleEndian.AppendUint64(b, uint64(len(c.Value)))
		b = append(b, c.Name...)
		b = append(b, 0)
		b = append(b, c.Value...)
	}
	return b
}
