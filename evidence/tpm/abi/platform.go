package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The Windows Platform Crypto Provider's platform attestation blob: what
// NCryptCreateClaim(NCRYPT_CLAIM_PLATFORM) returns and MAA's v1 (attReq)
// requests carry as tpm_att_data.current_claim and boot_claim. Microsoft
// publishes its layout in the PCP reference implementation, repository
// microsoft/TSS.MSR, PCPTool.v11:
//
//   - inc/TpmAtt.h: PCP_PLATFORM_ATTESTATION_BLOB (magic 'SDAP') and
//     PCP_PLATFORM_ATTESTATION_BLOB2 (magic '2DAP', crypto-agile), seven or
//     eight little-endian ULONGs: Magic, Platform (the TPM version: 1 for
//     TPM 1.2, 2 for TPM 2.0), HeaderSize, cbPcrValues, cbQuote,
//     cbSignature, cbLog [, PcrAlgorithmId];
//   - dll/AttestationApi.cpp TpmAttGeneratePlatformAttestation: the header
//     is followed by the 24 PCR values of one bank (PCR 0 first, each the
//     bank's digest size), the quote, the signature and the TCG log
//     filtered to the quoted PCRs (TpmAttiFilterLog: the crypto-agile
//     header event, then the events of masked PCRs); HeaderSize is
//     sizeof(BLOB) = 28 for 'SDAP' (SHA-1 log) and sizeof(BLOB2) = 32 for
//     '2DAP' (crypto-agile log, PcrAlgorithmId = the log's digest);
//   - dll/TPM20.cpp GenerateQuote20: for TPM 2.0 the quote is the
//     TPMS_ATTEST TPM2_Quote returned (the TPM2B_ATTEST's contents, without
//     its size) and the signature is the RSASSA-PKCS1-v1_5 signature bytes
//     (the TPMT_SIGNATURE's TPM2B_PUBLIC_KEY_RSA contents, without algorithm
//     identifiers); TpmAttValidatePlatformAttestation checks that the blob's
//     length is exactly the sum of the header's sizes.
//
// The layout follows that reference; no blob captured from a Windows
// machine was available to compare with (README, TPM section).
const (
	// PlatformMagic is 'SDAP' as MSVC evaluates the multi-character
	// constant (0x53444150), stored little-endian: the bytes "PADS".
	PlatformMagic uint32 = 0x53444150
	// PlatformMagic2 is '2DAP' (0x32444150), bytes "PAD2".
	PlatformMagic2 uint32 = 0x32444150

	PlatformTPM12 uint32 = 1 // TPM_VERSION_12
	PlatformTPM20 uint32 = 2 // TPM_VERSION_20

	platformHeaderSize  = 28 // sizeof(PCP_PLATFORM_ATTESTATION_BLOB)
	platformHeaderSize2 = 32 // sizeof(PCP_PLATFORM_ATTESTATION_BLOB2)

	// PlatformPCRs is AVAILABLE_PLATFORM_PCRS: the blob always carries 24.
	PlatformPCRs = 24
	// MaxPlatformBlobSize bounds a blob: it sits base64url-encoded inside a
	// request of at most MaxRequestSize bytes.
	MaxPlatformBlobSize = MaxRequestSize * 3 / 4
	// MaxPlatformSignatureSize is an RSA-16384 signature, far beyond any TPM.
	MaxPlatformSignatureSize = 2048
)

// ErrPlatformTPM12 is returned for a well-formed blob of a TPM 1.2
// platform: its quote is a TPM_QUOTE_INFO, which this package does not
// parse (the verifier reports it as unsupported, not malformed).
var ErrPlatformTPM12 = errors.New("platform attestation blob: a TPM 1.2 platform (Platform 1), only TPM 2.0 is supported")

// PlatformBlob is a parsed (not verified) PCP platform attestation blob.
type PlatformBlob struct {
	Magic    uint32 // PlatformMagic or PlatformMagic2
	Platform uint32 // PlatformTPM20 (ParsePlatformBlob refuses others)
	// PCRAlg is the TPM_ALG_ID of the PCR bank: SHA-1 for PlatformMagic,
	// PcrAlgorithmId for PlatformMagic2.
	PCRAlg uint16
	// PCRs are the values of PCRs 0…23 of bank PCRAlg, as the client read
	// them; only those the signed quote selects are authenticated.
	PCRs      [PlatformPCRs][]byte
	Quote     []byte // TPMS_ATTEST
	Signature []byte // the raw signature over Quote
	Log       []byte // the TCG log, filtered to the quoted PCRs
}

// ParsePlatformBlob parses a PCP platform attestation blob: header, exact
// total length, TPM 2.0 platform, a known PCR bank and 24 values of its
// size, and non-empty quote and signature (an unsigned blob attests
// nothing remotely). The returned slices are copies of b.
func ParsePlatformBlob(b []byte) (*PlatformBlob, error) {
	if len(b) > MaxPlatformBlobSize {
		return nil, fmt.Errorf("platform attestation blob: %d bytes, limit %d", len(b), MaxPlatformBlobSize)
	}
	if len(b) < platformHeaderSize {
		return nil, fmt.Errorf("platform attestation blob: %d bytes, shorter than the %d-byte header", len(b), platformHeaderSize)
	}
	le := binary.LittleEndian
	u := func(i int) uint32 { return le.Uint32(b[4*i:]) }
	p := &PlatformBlob{Magic: u(0), Platform: u(1)}
	hdr, cbPCR, cbQuote, cbSig, cbLog := u(2), u(3), u(4), u(5), u(6)
	switch p.Magic {
	case PlatformMagic:
		if hdr != platformHeaderSize {
			return nil, fmt.Errorf("platform attestation blob: HeaderSize %d, want %d for magic PADS", hdr, platformHeaderSize)
		}
		p.PCRAlg = 0x0004
	case PlatformMagic2:
		if hdr != platformHeaderSize2 {
			return nil, fmt.Errorf("platform attestation blob: HeaderSize %d, want %d for magic PAD2", hdr, platformHeaderSize2)
		}
		if len(b) < platformHeaderSize2 {
			return nil, fmt.Errorf("platform attestation blob: %d bytes, shorter than the %d-byte header", len(b), platformHeaderSize2)
		}
		alg := u(7)
		if alg > 0xFFFF {
			return nil, fmt.Errorf("platform attestation blob: PcrAlgorithmId %#x is not a TPM_ALG_ID", alg)
		}
		p.PCRAlg = uint16(alg)
	default:
		return nil, fmt.Errorf("platform attestation blob: magic %#08x, want %#08x (PADS) or %#08x (PAD2)", p.Magic, PlatformMagic, PlatformMagic2)
	}
	// uint64: the sum of five uint32 cannot wrap.
	total := uint64(hdr) + uint64(cbPCR) + uint64(cbQuote) + uint64(cbSig) + uint64(cbLog)
	if total != uint64(len(b)) {
		return nil, fmt.Errorf("platform attestation blob: the header's sizes add up to %d bytes, the blob has %d", total, len(b))
	}
	switch p.Platform {
	case PlatformTPM20:
	case PlatformTPM12:
		return nil, ErrPlatformTPM12
	default:
		return nil, fmt.Errorf("platform attestation blob: Platform %d, want 2 (TPM 2.0)", p.Platform)
	}
	size, ok := DigestSize(p.PCRAlg)
	if !ok {
		return nil, fmt.Errorf("platform attestation blob: PCR algorithm %#x, want SHA-1, SHA-256, SHA-384 or SHA-512", p.PCRAlg)
	}
	if cbPCR != PlatformPCRs*uint32(size) {
		return nil, fmt.Errorf("platform attestation blob: cbPcrValues %d, want %d (24 PCRs of %d bytes)", cbPCR, PlatformPCRs*size, size)
	}
	if cbQuote == 0 || cbQuote > MaxTPMStructSize {
		return nil, fmt.Errorf("platform attestation blob: cbQuote %d, want 1…%d (an unsigned blob attests nothing)", cbQuote, MaxTPMStructSize)
	}
	if cbSig == 0 || cbSig > MaxPlatformSignatureSize {
		return nil, fmt.Errorf("platform attestation blob: cbSignature %d, want 1…%d (an unsigned blob attests nothing)", cbSig, MaxPlatformSignatureSize)
	}
	off := int(hdr)
	next := func(n uint32) []byte {
		s := bytes.Clone(b[off : off+int(n)])
		off += int(n)
		return s
	}
	for i := range p.PCRs {
		p.PCRs[i] = next(uint32(size))
	}
	p.Quote, p.Signature, p.Log = next(cbQuote), next(cbSig), next(cbLog)
	return p, nil
}

// MarshalPlatformBlob is the inverse of ParsePlatformBlob: the header
// (HeaderSize 28 for PlatformMagic, 32 with PcrAlgorithmId for
// PlatformMagic2) and the fields in order. It does not check the values.
func MarshalPlatformBlob(p *PlatformBlob) []byte {
	le := binary.LittleEndian
	hdr := uint32(platformHeaderSize)
	if p.Magic == PlatformMagic2 {
		hdr = platformHeaderSize2
	}
	var cbPCR int
	for _, v := range p.PCRs {
		cbPCR += len(v)
	}
	var b []byte
	for _, v := range []uint32{p.Magic, p.Platform, hdr, uint32(cbPCR), uint32(len(p.Quote)), uint32(len(p.Signature)), uint32(len(p.Log))} {
		b = le.AppendUint32(b, v)
	}
	if p.Magic == PlatformMagic2 {
		b = le.AppendUint32(b, uint32(p.PCRAlg))
	}
	for _, v := range p.PCRs {
		b = append(b, v...)
	}
	b = append(b, p.Quote...)
	b = append(b, p.Signature...)
	return append(b, p.Log...)
}

// AllPlatformPCRs is the mask of the PCRs a platform blob carries (0…23),
// NCRYPTBUFFER_TPM_PLATFORM_CLAIM_PCR_MASK "set to include all PCRs".
const AllPlatformPCRs uint32 = 1<<PlatformPCRs - 1
