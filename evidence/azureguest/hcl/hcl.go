// Package hcl reads what the Azure paravisor (HCL) produces for guest
// attestation: the HCL report the vTPM keeps in NV index 0x01400001 (a
// header, the hardware report — an SEV-SNP report or a TDX TDREPORT — and
// the IGVM request data whose variable part is the runtime JSON), and the
// runtime JSON itself ("keys" with HCLAkPub/HCLEkPub, "vm-configuration",
// "user-data"). The hardware report's REPORT_DATA starts with the hash of
// the runtime JSON, so verified hardware evidence vouches for the vTPM's
// attestation key.
//
// Hand-written: no Go library parses the HCL report; its layout is the one
// of the paravisor's IGVM attestation request (OpenHCL igvm_attest, the
// az-cvm-vtpm crate), checked against the real reports in the trustee
// vectors.
package hcl

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// Layout of the HCL report.
const (
	// Magic is "HCLA" read as a little-endian uint32.
	Magic        = 0x414c4348
	HeaderSize   = 32
	HWReportSize = 1184 // the SEV-SNP report size; a TDREPORT (1024 bytes) is padded to it
	// RequestDataOffset is where the IGVM request data begins.
	RequestDataOffset = HeaderSize + HWReportSize
	requestDataHeader = 20
	// TDReportSize is the size of a TDX TDREPORT.
	TDReportSize = 1024
	// MaxReport bounds an HCL report (the NV index holds a few KB).
	MaxReport = 64 << 10
	// MaxRuntime bounds the runtime JSON.
	MaxRuntime = 32 << 10
)

// ReportType is the IGVM report type of the hardware report.
type ReportType uint32

// The report types of the IGVM attestation request.
const (
	TypeInvalid  ReportType = 0
	TypeReserved ReportType = 1
	TypeSNP      ReportType = 2
	TypeTVM      ReportType = 3 // Trusted Launch (no hardware isolation)
	TypeTDX      ReportType = 4
)

func (t ReportType) String() string {
	switch t {
	case TypeSNP:
		return "SevSnp"
	case TypeTDX:
		return "Tdx"
	case TypeTVM:
		return "TrustedLaunch"
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// HashType is the hash of the runtime data that REPORT_DATA holds.
type HashType uint32

// The hash types of the IGVM request data.
const (
	HashSHA256 HashType = 1
	HashSHA384 HashType = 2
	HashSHA512 HashType = 3
)

// Hash returns the crypto.Hash of h.
func (h HashType) Hash() (crypto.Hash, error) {
	switch h {
	case HashSHA256:
		return crypto.SHA256, nil
	case HashSHA384:
		return crypto.SHA384, nil
	case HashSHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("runtime data hash type %d is not SHA-256/384/512", uint32(h))
}

// Report is a parsed HCL report.
type Report struct {
	Version     uint32
	RequestType uint32
	Type        ReportType
	HashType    HashType
	// HWReport is the hardware report: 1184 bytes for SEV-SNP, 1024 for a
	// TDREPORT (the rest of the area is padding).
	HWReport []byte
	// RuntimeData is the runtime JSON, as REPORT_DATA hashes it.
	RuntimeData []byte
}

// ParseReport parses an HCL report (structure only).
func ParseReport(b []byte) (*Report, error) {
	if len(b) > MaxReport {
		return nil, fmt.Errorf("HCL report: %d bytes exceeds the limit of %d", len(b), MaxReport)
	}
	if len(b) < RequestDataOffset+requestDataHeader {
		return nil, fmt.Errorf("HCL report: %d bytes, want at least %d", len(b), RequestDataOffset+requestDataHeader)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != Magic {
		return nil, fmt.Errorf("HCL report: magic %#x, want \"HCLA\"", m)
	}
	size := le.Uint32(b[8:])
	if size < RequestDataOffset+requestDataHeader || int64(size) > int64(len(b)) {
		return nil, fmt.Errorf("HCL report: report_size %d outside %d…%d", size, RequestDataOffset+requestDataHeader, len(b))
	}
	r := &Report{Version: le.Uint32(b[4:]), RequestType: le.Uint32(b[12:])}
	rd := b[RequestDataOffset:size]
	dataSize := le.Uint32(rd)
	r.Type = ReportType(le.Uint32(rd[8:]))
	r.HashType = HashType(le.Uint32(rd[12:]))
	varSize := le.Uint32(rd[16:])
	if dataSize < requestDataHeader || int64(dataSize) > int64(len(rd)) {
		return nil, fmt.Errorf("HCL report: request data_size %d outside %d…%d", dataSize, requestDataHeader, len(rd))
	}
	if int64(varSize) > int64(dataSize)-requestDataHeader {
		return nil, fmt.Errorf("HCL report: variable_data_size %d exceeds the request data (%d)", varSize, dataSize-requestDataHeader)
	}
	if varSize > MaxRuntime {
		return nil, fmt.Errorf("HCL report: runtime data of %d bytes exceeds the limit of %d", varSize, MaxRuntime)
	}
	hw := b[HeaderSize:RequestDataOffset]
	switch r.Type {
	case TypeSNP:
		r.HWReport = bytes.Clone(hw)
	case TypeTDX:
		r.HWReport = bytes.Clone(hw[:TDReportSize])
	default:
		return nil, fmt.Errorf("HCL report: report type %s, want SevSnp (2) or Tdx (4)", r.Type)
	}
	if _, err := r.HashType.Hash(); err != nil {
		return nil, fmt.Errorf("HCL report: %w", err)
	}
	r.RuntimeData = bytes.Clone(rd[requestDataHeader : requestDataHeader+varSize])
	return r, nil
}

// ReportData returns the 64-byte REPORT_DATA of a hardware report of type t
// (SEV-SNP report offset 0x50; TDREPORT REPORTMACSTRUCT offset 128).
func ReportData(t ReportType, hw []byte) ([]byte, error) {
	off := 0
	switch t {
	case TypeSNP:
		off = 0x50
	case TypeTDX:
		off = 128
	default:
		return nil, fmt.Errorf("no REPORT_DATA in a report of %s", t)
	}
	if len(hw) < off+64 {
		return nil, fmt.Errorf("hardware report of %d bytes has no REPORT_DATA", len(hw))
	}
	return hw[off : off+64], nil
}

// Key ids of the runtime JSON.
const (
	KeyAK = "HCLAkPub" // the vTPM's attestation key
	KeyEK = "HCLEkPub" // the vTPM's endorsement key
)

// JWK is one key of the runtime JSON.
type JWK struct {
	Kid    string   `json:"kid"`
	KeyOps []string `json:"key_ops"`
	Kty    string   `json:"kty"`
	E      string   `json:"e"`
	N      string   `json:"n"`
}

// RSA returns the RSA public key of an RSA JWK (2048…8192-bit modulus,
// exponent 3…2^31-1).
func (k *JWK) RSA() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("key %q: kty %q, want RSA", k.Kid, k.Kty)
	}
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("key %q: n: %v", k.Kid, err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("key %q: e is not 1…4 bytes of base64url", k.Kid)
	}
	ev := new(big.Int).SetBytes(e).Int64()
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 8192 {
		return nil, fmt.Errorf("key %q: %d-bit modulus, want 2048…8192", k.Kid, bits)
	}
	if ev < 3 || ev > 1<<31-1 || ev%2 == 0 {
		return nil, fmt.Errorf("key %q: exponent %d is not an odd 3…2^31-1", k.Kid, ev)
	}
	return pub, nil
}

// VMConfiguration is the runtime JSON's "vm-configuration".
type VMConfiguration struct {
	ConsoleEnabled bool   `json:"console-enabled"`
	SecureBoot     bool   `json:"secure-boot"`
	TPMEnabled     bool   `json:"tpm-enabled"`
	VMUniqueID     string `json:"vmUniqueId"`
}

// Runtime is the parsed runtime JSON.
type Runtime struct {
	Keys     []JWK
	VMConfig VMConfiguration
	UserData string
	// Object is the whole document, as the token's
	// x-ms-isolation-tee.x-ms-runtime repeats it.
	Object map[string]any
}

// ParseRuntime parses the runtime JSON.
func ParseRuntime(b []byte) (*Runtime, error) {
	if len(b) > MaxRuntime {
		return nil, fmt.Errorf("runtime data: %d bytes exceeds the limit of %d", len(b), MaxRuntime)
	}
	var doc struct {
		Keys     []JWK           `json:"keys"`
		VMConfig VMConfiguration `json:"vm-configuration"`
		UserData string          `json:"user-data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("runtime data is not the HCL runtime JSON: %v", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, errors.New("runtime data is not a JSON object")
	}
	return &Runtime{Keys: doc.Keys, VMConfig: doc.VMConfig, UserData: doc.UserData, Object: obj}, nil
}

// Key returns the RSA key of kid; exactly one key may carry it.
func (r *Runtime) Key(kid string) (*rsa.PublicKey, error) {
	var found *JWK
	for i := range r.Keys {
		if r.Keys[i].Kid == kid {
			if found != nil {
				return nil, fmt.Errorf("runtime data has two keys %q", kid)
			}
			found = &r.Keys[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("runtime data has no key %q", kid)
	}
	return found.RSA()
}

// Marshal encodes r as an HCL report (tests and test platforms build the
// report a vTPM would hold with it). HWReport is padded to HWReportSize.
func Marshal(r *Report) ([]byte, error) {
	if len(r.HWReport) > HWReportSize || len(r.RuntimeData) > MaxRuntime {
		return nil, errors.New("HCL report: hardware report or runtime data too large")
	}
	le := binary.LittleEndian
	b := make([]byte, RequestDataOffset+requestDataHeader+len(r.RuntimeData))
	le.PutUint32(b, Magic)
	le.PutUint32(b[4:], r.Version)
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint32(b[12:], r.RequestType)
	copy(b[HeaderSize:], r.HWReport)
	rd := b[RequestDataOffset:]
	le.PutUint32(rd, uint32(requestDataHeader+len(r.RuntimeData)))
	le.PutUint32(rd[4:], 1)
	le.PutUint32(rd[8:], uint32(r.Type))
	le.PutUint32(rd[12:], uint32(r.HashType))
	le.PutUint32(rd[16:], uint32(len(r.RuntimeData)))
	copy(rd[requestDataHeader:], r.RuntimeData)
	return b, nil
}
