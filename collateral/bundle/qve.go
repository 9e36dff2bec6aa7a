package bundle

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/attestd/attestd/collateral"
)

// Intel's sgx_ql_qve_collateral_t as dumped to disk by a 64-bit process
// (OpenEnclave's test endorsements):
//
//	0x00 u32 version (u16 major | u16 minor << 16): 1 = PCS v1/v2 (PEM CRLs),
//	         3.0 = hex DER CRLs, 3.1 = raw DER CRLs, 4 = PCS v4 API
//	0x04 u32 tee_type: 0x00 SGX, 0x81 TDX
//	0x08 7 × { u64 pointer (meaningless on disk), u32 size, u32 padding }
//	0x78 the seven payloads back to back, in the order below, each a C string
//	     whose size counts its terminating NUL
//
// No Go library reads this; the layout is Intel's public header
// sgx_ql_lib_common.h, so it is parsed here by hand.
const (
	qveHeaderLen = 8 + 7*16
	teeTypeSGX   = 0x00
	teeTypeTDX   = 0x81
)

// ParseQVECollateral parses a binary sgx_ql_qve_collateral_t dump. CRLs may
// be in any of the encodings the version implies (see collateral.ParseCRL);
// the TCB info and QE identity are whole PCS response bodies.
func ParseQVECollateral(b []byte) (*collateral.Collateral, error) {
	if len(b) < qveHeaderLen {
		return nil, fmt.Errorf("%w: sgx_ql_qve_collateral_t: %d bytes, shorter than its %d-byte header", collateral.ErrMalformed, len(b), qveHeaderLen)
	}
	version := binary.LittleEndian.Uint32(b[0:])
	major := version & 0xffff
	if major != 1 && major != 2 && major != 3 && major != 4 {
		return nil, fmt.Errorf("%w: sgx_ql_qve_collateral_t: unknown version %d.%d", collateral.ErrMalformed, major, version>>16)
	}
	var tee collateral.TEE
	switch t := binary.LittleEndian.Uint32(b[4:]); t {
	case teeTypeSGX:
		tee = collateral.SGX
	case teeTypeTDX:
		tee = collateral.TDX
	default:
		return nil, fmt.Errorf("%w: sgx_ql_qve_collateral_t: unknown tee_type %#x", collateral.ErrMalformed, t)
	}
	var parts [7][]byte
	off := uint64(qveHeaderLen)
	for i := range parts {
		size := uint64(binary.LittleEndian.Uint32(b[8+16*i+8:]))
		if off+size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: sgx_ql_qve_collateral_t: payload %d (%d bytes at %d) runs past the end (%d bytes)", collateral.ErrMalformed, i, size, off, len(b))
		}
		p := b[off : off+size]
		if n := len(p); n > 0 && p[n-1] == 0 {
			p = p[:n-1]
		}
		if bytes.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("%w: sgx_ql_qve_collateral_t: payload %d has an embedded NUL", collateral.ErrMalformed, i)
		}
		parts[i] = p
		off += size
	}
	if off != uint64(len(b)) {
		return nil, fmt.Errorf("%w: sgx_ql_qve_collateral_t: %d bytes after the last payload", collateral.ErrMalformed, uint64(len(b))-off)
	}
	c := &collateral.Collateral{
		PCKCRLIssuerChain:     parts[0],
		TCBInfoIssuerChain:    parts[3],
		QEIdentityIssuerChain: parts[5],
	}
	root, err := collateral.ParseCRL(parts[1])
	if err != nil {
		return nil, fmt.Errorf("sgx_ql_qve_collateral_t: root CA CRL: %w", err)
	}
	pck, err := collateral.ParseCRL(parts[2])
	if err != nil {
		return nil, fmt.Errorf("sgx_ql_qve_collateral_t: PCK CRL: %w", err)
	}
	c.RootCACRL, c.PCKCRL = root.DER, pck.DER
	tcb, err := collateral.ParseTCBInfoResponse(parts[4])
	if err != nil {
		return nil, fmt.Errorf("sgx_ql_qve_collateral_t: %w", err)
	}
	qe, err := collateral.ParseQEIdentityResponse(parts[6])
	if err != nil {
		return nil, fmt.Errorf("sgx_ql_qve_collateral_t: %w", err)
	}
	c.TCBInfo, c.TCBInfoSignature = tcb.Body, tcb.Signature
	c.QEIdentity, c.QEIdentitySignature = qe.Body, qe.Signature
	info, err := c.Inspect()
	if err != nil {
		return nil, fmt.Errorf("sgx_ql_qve_collateral_t: %w", err)
	}
	if info.Request.TEE != tee {
		return nil, fmt.Errorf("%w: sgx_ql_qve_collateral_t: tee_type says %s but the TCB info is for %s", collateral.ErrMalformed, tee, info.Request.TEE)
	}
	return c, nil
}

// looksLikeQVE tells a dump from other binary files without parsing the
// payloads: known version and tee_type, and sizes that add up to the length.
func looksLikeQVE(b []byte) bool {
	if len(b) < qveHeaderLen {
		return false
	}
	if m := binary.LittleEndian.Uint32(b[0:]) & 0xffff; m < 1 || m > 4 {
		return false
	}
	if t := binary.LittleEndian.Uint32(b[4:]); t != teeTypeSGX && t != teeTypeTDX {
		return false
	}
	total := uint64(qveHeaderLen)
	for i := 0; i < 7; i++ {
		total += uint64(binary.LittleEndian.Uint32(b[8+16*i+8:]))
	}
	return total == uint64(len(b))
}
