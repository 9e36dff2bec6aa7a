// Package abi turns the bytes of MAA's TPM/VBS protocol into Go values: the
// {"payload": …} messages, the attestation request JWS and its JSON payload
// (v1 "attReq" and v2 "attReqV2", att_type "basic" and "vbs"), the TPM 2.0
// structures it carries (TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC, through
// go-tpm's direct API types), v1's PCP platform attestation blobs
// (platform.go; hand-written: no Go library knows the Windows format) and
// the VBS enclave report.
//
// Nothing here does cryptography, reads a clock or applies policy: a value
// returned by a parser is well-formed, not trusted. Package
// evidence/tpm/verify checks signatures, chains, nonces and PCRs.
//
// Every parser of untrusted bytes refuses trailing data, duplicate JSON
// members and over-long inputs with an error that names the field; the limits
// are the Max* constants below, chosen so that an anonymous caller cannot make
// a request cost more than a few megabytes of memory.
package abi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Limits on what a request may carry. MAA does not publish its own; these
// are well above what real machines send (a Windows WBCL is ~100 KB, a
// Linux TCG log ~50 KB, 24 PCRs per bank, at most 4 banks).
const (
	MaxRequestSize   = 4 << 20 // bytes of the compact JWS
	MaxLogs          = 8       // logs per attestation
	MaxPCRBanks      = 4       // SHA-1, SHA-256, SHA-384, SHA-512
	MaxPCRIndex      = 23      // PC Client TPMs have PCR 0…23
	MaxOtherKeys     = 2       // "Maximum of two keys" (VBS protocol doc)
	MaxCustomClaims  = 64
	MaxTPMStructSize = 4096 // TPMS_ATTEST / TPMT_SIGNATURE / TPMT_PUBLIC
)

// TPMGeneratedValue is TPM_GENERATED_VALUE, the magic of every TPMS_ATTEST
// (TPM 2.0 Part 2 §6.2): a TPM only signs structures starting with it, so a
// signed blob without it was not produced by TPM2_Quote/Certify.
const TPMGeneratedValue = 0xff544347

// ParseAttest parses a TPMS_ATTEST (TPM 2.0 Part 2 §10.12.12). It checks the
// magic (go-tpm's `gotpm:"check"` tag) and that the bytes are exactly one
// canonical structure: re-marshalling must give the input back, so no
// trailing or non-canonical bytes are accepted (the signature covers these
// exact bytes and a verifier must not read fields the TPM did not write).
func ParseAttest(b []byte) (*tpm2.TPMSAttest, error) {
	if len(b) == 0 || len(b) > MaxTPMStructSize {
		return nil, fmt.Errorf("TPMS_ATTEST: %d bytes, want 1…%d", len(b), MaxTPMStructSize)
	}
	a, err := unmarshal[tpm2.TPMSAttest]("TPMS_ATTEST", b)
	if err != nil {
		return nil, err
	}
	if uint32(a.Magic) != TPMGeneratedValue {
		return nil, fmt.Errorf("TPMS_ATTEST: magic %#x, want TPM_GENERATED_VALUE", uint32(a.Magic))
	}
	switch a.Type {
	case tpm2.TPMSTAttestQuote:
		if _, err := a.Attested.Quote(); err != nil {
			return nil, fmt.Errorf("TPMS_ATTEST: quote info: %w", err)
		}
	case tpm2.TPMSTAttestCertify:
		if _, err := a.Attested.Certify(); err != nil {
			return nil, fmt.Errorf("TPMS_ATTEST: certify info: %w", err)
		}
	}
	return a, nil
}

// ParseSignature parses a TPMT_SIGNATURE (Part 2 §11.3.4) exactly.
func ParseSignature(b []byte) (*tpm2.TPMTSignature, error) {
	if len(b) == 0 || len(b) > MaxTPMStructSize {
		return nil, fmt.Errorf("TPMT_SIGNATURE: %d bytes, want 1…%d", len(b), MaxTPMStructSize)
	}
	return unmarshal[tpm2.TPMTSignature]("TPMT_SIGNATURE", b)
}

// ParsePublic parses a TPMT_PUBLIC (Part 2 §12.2.4) exactly. Its Name (the
// nameAlg digest of these bytes) is what TPM2_Certify attests to, so the
// bytes must be canonical.
func ParsePublic(b []byte) (*tpm2.TPMTPublic, error) {
	if len(b) == 0 || len(b) > MaxTPMStructSize {
		return nil, fmt.Errorf("TPMT_PUBLIC: %d bytes, want 1…%d", len(b), MaxTPMStructSize)
	}
	return unmarshal[tpm2.TPMTPublic]("TPMT_PUBLIC", b)
}

func unmarshal[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](what string, b []byte) (v *T, err error) {
	// go-tpm's reflection-based unmarshaller is robust on the inputs we have
	// fuzzed, but a panic on hostile bytes must not take the service down.
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%s: malformed (%v)", what, r)
		}
	}()
	v, err = tpm2.Unmarshal[T, P](b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if re := tpm2.Marshal(*v); !bytes.Equal(re, b) {
		return nil, fmt.Errorf("%s: %d bytes are not one canonical structure (%d bytes re-encode)", what, len(b), len(re))
	}
	return v, nil
}

// decodeB64URL decodes unpadded base64url (RFC 7515 §2), the encoding of
// every octet field of the protocol; padding or other alphabets are refused
// so that one value has one encoding.
func decodeB64URL(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not unpadded base64url: %w", field, err)
	}
	return b, nil
}

// ErrUnsupported marks well-formed input that this build does not handle
// (for example a v1 request's Windows platform claim, whose structure is not
// publicly documented).
var ErrUnsupported = errors.New("not supported")
