// Package abi is the 48-byte quote header that Intel's SGX (v3, v4) and
// TDX (v4, v5) ECDSA quotes share (Intel SGX ECDSA Quote Library reference,
// sgx_quote_header_t): the one layout both evidence/sgx/abi and
// evidence/tdx/abi start from. It only converts bytes and struct; which
// versions and TEE types a quote may have is each format's own check, so it
// stays in those packages (with their own messages). A leaf package with no
// attestd imports, so the abi packages stay free of the verifiers'
// dependencies.
package abi

import "encoding/binary"

// HeaderSize is the length of a quote header.
const HeaderSize = 48

// Header is a quote header, field by field in layout order.
type Header struct {
	Version            uint16
	AttestationKeyType uint16
	// TEEType is "reserved" in SGX v3 quotes and the TEE type from v4 on
	// (0 = SGX, 0x81 = TDX).
	TEEType uint32
	// QESVN and PCESVN are the quoting enclave's and PCE's SVNs at quote
	// generation; v4/v5 call them reserved, but quoting enclaves still fill
	// them (go-tdx-guest calls them so too).
	QESVN      uint16
	PCESVN     uint16
	QEVendorID [16]byte
	UserData   [20]byte
}

// DecodeHeader reads the header fields from b. It takes an array so that
// the caller has checked the length (and says so in its own words).
func DecodeHeader(b *[HeaderSize]byte) *Header {
	h := &Header{
		Version:            binary.LittleEndian.Uint16(b[0:2]),
		AttestationKeyType: binary.LittleEndian.Uint16(b[2:4]),
		TEEType:            binary.LittleEndian.Uint32(b[4:8]),
		QESVN:              binary.LittleEndian.Uint16(b[8:10]),
		PCESVN:             binary.LittleEndian.Uint16(b[10:12]),
	}
	copy(h.QEVendorID[:], b[12:28])
	copy(h.UserData[:], b[28:48])
	return h
}

// Marshal returns the 48-byte encoding of h.
func (h *Header) Marshal() []byte {
	b := make([]byte, HeaderSize)
	binary.LittleEndian.PutUint16(b[0:2], h.Version)
	binary.LittleEndian.PutUint16(b[2:4], h.AttestationKeyType)
	binary.LittleEndian.PutUint32(b[4:8], h.TEEType)
	binary.LittleEndian.PutUint16(b[8:10], h.QESVN)
	binary.LittleEndian.PutUint16(b[10:12], h.PCESVN)
	copy(b[12:28], h.QEVendorID[:])
	copy(b[28:48], h.UserData[:])
	return b
}
