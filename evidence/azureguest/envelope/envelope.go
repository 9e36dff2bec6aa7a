// Package envelope reads and writes the AzureGuest request body's
// AttestationInfo (maa-api.md §8): the JSON document the Azure guest
// attestation client base64url-encodes into {"AttestationInfo": …}. Byte
// fields are standard base64 in the real client (cvm-attestation-tools
// attestation_types.py) and base64url in some of its parts (the SNP
// Proof); both alphabets, padded or not, are accepted.
package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxSize bounds an AttestationInfo document (a TCG log of a few hundred
// KB dominates it).
const MaxSize = 4 << 20

// ProtocolVersion is the version the real client sends and this package writes.
const ProtocolVersion = "2.0"

// Isolation types of IsolationInfo.Type.
const (
	IsolationSevSnp = "SevSnp"
	IsolationTdx    = "Tdx"
	// IsolationNone is what the client sends on a Trusted Launch VM (no
	// hardware evidence).
	IsolationNone = "Undefined"
)

// PCR is one reported PCR value (SHA-256 bank).
type PCR struct {
	Index  int
	Digest []byte
}

// TPMInfo is the vTPM part.
type TPMInfo struct {
	AikCert      []byte // DER (NV index 0x01C101D0); may be empty
	AikPub       []byte // TPM2B_PUBLIC (or TPMT_PUBLIC) of the AK
	PcrQuote     []byte // TPMS_ATTEST of TPM2_Quote
	PcrSignature []byte // its signature: raw RSASSA bytes or a TPMT_SIGNATURE
	PcrSet       []int
	PCRs         []PCR
	// EncKeyPub is the TPM2B_PUBLIC of the ephemeral encryption key the
	// token is sealed to; EncKeyCertifyInfo the TPMS_ATTEST of its
	// TPM2_Certify by the AK and EncKeyCertifyInfoSignature its signature.
	EncKeyPub                  []byte
	EncKeyCertifyInfo          []byte
	EncKeyCertifyInfoSignature []byte
}

// Isolation is IsolationInfo.
type Isolation struct {
	Type string
	// Proof is the hardware evidence: for SevSnp the JSON
	// {"SnpReport","VcekCertChain"} (decoded from its base64url), for Tdx
	// the TD quote.
	Proof []byte
	// RuntimeData is the HCL runtime JSON.
	RuntimeData []byte
}

// AttestationInfo is the decoded document.
type AttestationInfo struct {
	ProtocolVersion string
	OSType          string // decoded from base64 ("Linux", "Windows")
	OSDistro        string
	OSBuild         string
	OSVersionMajor  int
	OSVersionMinor  int
	TcgLogs         []byte
	ClientPayload   []byte // decoded: a JSON document or empty
	TPM             TPMInfo
	Isolation       Isolation
}

type wirePCR struct {
	Index  int    `json:"Index"`
	Digest string `json:"Digest"`
}

type wireTPM struct {
	AikCert                    string    `json:"AikCert"`
	AikPub                     string    `json:"AikPub"`
	PcrQuote                   string    `json:"PcrQuote"`
	PcrSignature               string    `json:"PcrSignature"`
	EncKeyPub                  string    `json:"EncKeyPub"`
	EncKeyCertifyInfo          string    `json:"EncKeyCertifyInfo"`
	EncKeyCertifyInfoSignature string    `json:"EncKeyCertifyInfoSignature"`
	PcrSet                     []int     `json:"PcrSet"`
	PCRs                       []wirePCR `json:"PCRs"`
}

type wireIsolation struct {
	Type     string `json:"Type"`
	Evidence struct {
		Proof       string `json:"Proof,omitempty"`
		RunTimeData string `json:"RunTimeData,omitempty"`
	} `json:"Evidence"`
}

type wire struct {
	AttestationProtocolVersion string        `json:"AttestationProtocolVersion"`
	OSType                     string        `json:"OSType"`
	OSDistro                   string        `json:"OSDistro"`
	OSVersionMajor             flexInt       `json:"OSVersionMajor"`
	OSVersionMinor             flexInt       `json:"OSVersionMinor"`
	OSBuild                    string        `json:"OSBuild"`
	TcgLogs                    string        `json:"TcgLogs"`
	ClientPayload              string        `json:"ClientPayload"`
	TpmInfo                    wireTPM       `json:"TpmInfo"`
	IsolationInfo              wireIsolation `json:"IsolationInfo"`
}

// flexInt is a version number sent as a string ("22") or a number.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<30 {
		return fmt.Errorf("version %q is not a non-negative integer", s)
	}
	*f = flexInt(n)
	return nil
}

func (f flexInt) MarshalJSON() ([]byte, error) { return json.Marshal(strconv.Itoa(int(f))) }

// Decode decodes base64 in either alphabet, padded or not.
func Decode(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.RawURLEncoding, base64.URLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64 or base64url")
}

// Error is a parse failure naming the field.
type Error struct {
	Field string
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("AttestationInfo.%s: %v", e.Field, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func field(name, s string, dst *[]byte) error {
	if s == "" {
		return nil
	}
	b, err := Decode(s)
	if err != nil {
		return &Error{Field: name, Err: err}
	}
	*dst = b
	return nil
}

// Parse parses an AttestationInfo document (the JSON text, already decoded
// from the request's base64url). It checks structure only.
func Parse(b []byte) (*AttestationInfo, error) {
	if len(b) > MaxSize {
		return nil, &Error{Field: "", Err: fmt.Errorf("%d bytes exceeds the limit of %d", len(b), MaxSize)}
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return nil, &Error{Field: "", Err: fmt.Errorf("not an AttestationInfo JSON object: %v", err)}
	}
	if dec.More() {
		return nil, &Error{Field: "", Err: errors.New("trailing data after the JSON object")}
	}
	ai := &AttestationInfo{ProtocolVersion: w.AttestationProtocolVersion, OSVersionMajor: int(w.OSVersionMajor), OSVersionMinor: int(w.OSVersionMinor)}
	if ai.ProtocolVersion != ProtocolVersion {
		return nil, &Error{Field: "AttestationProtocolVersion", Err: fmt.Errorf("%q, want %q", ai.ProtocolVersion, ProtocolVersion)}
	}
	for _, s := range []struct {
		name string
		in   string
		out  *string
	}{{"OSType", w.OSType, &ai.OSType}, {"OSDistro", w.OSDistro, &ai.OSDistro}, {"OSBuild", w.OSBuild, &ai.OSBuild}} {
		var raw []byte
		if err := field(s.name, s.in, &raw); err != nil {
			return nil, err
		}
		*s.out = string(raw)
	}
	t := &w.TpmInfo
	for _, f := range []struct {
		name string
		in   string
		out  *[]byte
	}{
		{"TcgLogs", w.TcgLogs, &ai.TcgLogs},
		{"ClientPayload", w.ClientPayload, &ai.ClientPayload},
		{"TpmInfo.AikCert", t.AikCert, &ai.TPM.AikCert},
		{"TpmInfo.AikPub", t.AikPub, &ai.TPM.AikPub},
		{"TpmInfo.PcrQuote", t.PcrQuote, &ai.TPM.PcrQuote},
		{"TpmInfo.PcrSignature", t.PcrSignature, &ai.TPM.PcrSignature},
		{"TpmInfo.EncKeyPub", t.EncKeyPub, &ai.TPM.EncKeyPub},
		{"TpmInfo.EncKeyCertifyInfo", t.EncKeyCertifyInfo, &ai.TPM.EncKeyCertifyInfo},
		{"TpmInfo.EncKeyCertifyInfoSignature", t.EncKeyCertifyInfoSignature, &ai.TPM.EncKeyCertifyInfoSignature},
		{"IsolationInfo.Evidence.Proof", w.IsolationInfo.Evidence.Proof, &ai.Isolation.Proof},
		{"IsolationInfo.Evidence.RunTimeData", w.IsolationInfo.Evidence.RunTimeData, &ai.Isolation.RuntimeData},
	} {
		if err := field(f.name, f.in, f.out); err != nil {
			return nil, err
		}
	}
	if len(t.PCRs) > 24 || len(t.PcrSet) > 24 {
		return nil, &Error{Field: "TpmInfo.PCRs", Err: fmt.Errorf("%d PCRs (%d in PcrSet), a TPM has 24", len(t.PCRs), len(t.PcrSet))}
	}
	seen := map[int]bool{}
	for i, p := range t.PCRs {
		if p.Index < 0 || p.Index > 23 || seen[p.Index] {
			return nil, &Error{Field: fmt.Sprintf("TpmInfo.PCRs[%d]", i), Err: fmt.Errorf("index %d is out of range or repeated", p.Index)}
		}
		seen[p.Index] = true
		var d []byte
		if err := field(fmt.Sprintf("TpmInfo.PCRs[%d].Digest", i), p.Digest, &d); err != nil {
			return nil, err
		}
		if len(d) != 32 {
			return nil, &Error{Field: fmt.Sprintf("TpmInfo.PCRs[%d].Digest", i), Err: fmt.Errorf("%d bytes, want a SHA-256 digest", len(d))}
		}
		ai.TPM.PCRs = append(ai.TPM.PCRs, PCR{Index: p.Index, Digest: d})
	}
	for _, i := range t.PcrSet {
		if !seen[i] {
			return nil, &Error{Field: "TpmInfo.PcrSet", Err: fmt.Errorf("PCR %d is in PcrSet but not in PCRs", i)}
		}
	}
	if len(t.PcrSet) != len(t.PCRs) && len(t.PcrSet) != 0 {
		return nil, &Error{Field: "TpmInfo.PcrSet", Err: fmt.Errorf("%d indices for %d PCR values", len(t.PcrSet), len(t.PCRs))}
	}
	ai.TPM.PcrSet = append([]int(nil), t.PcrSet...)
	for _, f := range []struct {
		name string
		b    []byte
	}{{"TpmInfo.PcrQuote", ai.TPM.PcrQuote}, {"TpmInfo.PcrSignature", ai.TPM.PcrSignature}} {
		if len(f.b) == 0 {
			return nil, &Error{Field: f.name, Err: errors.New("missing")}
		}
	}
	ai.Isolation.Type = w.IsolationInfo.Type
	switch ai.Isolation.Type {
	case IsolationSevSnp, IsolationTdx:
		if len(ai.Isolation.Proof) == 0 || len(ai.Isolation.RuntimeData) == 0 {
			return nil, &Error{Field: "IsolationInfo.Evidence", Err: fmt.Errorf("%s isolation needs Proof and RunTimeData", ai.Isolation.Type)}
		}
	case "", IsolationNone, "TrustedLaunch":
		ai.Isolation.Type = IsolationNone
	default:
		return nil, &Error{Field: "IsolationInfo.Type", Err: fmt.Errorf("%q, want SevSnp, Tdx or Undefined", ai.Isolation.Type)}
	}
	return ai, nil
}

// Marshal encodes ai as the real client does (standard base64 fields, the
// SevSnp Proof base64url, versions as strings).
func Marshal(ai *AttestationInfo) ([]byte, error) {
	std := base64.StdEncoding.EncodeToString
	w := wire{
		AttestationProtocolVersion: ai.ProtocolVersion,
		OSType:                     std([]byte(ai.OSType)),
		OSDistro:                   std([]byte(ai.OSDistro)),
		OSBuild:                    std([]byte(ai.OSBuild)),
		OSVersionMajor:             flexInt(ai.OSVersionMajor),
		OSVersionMinor:             flexInt(ai.OSVersionMinor),
		TcgLogs:                    std(ai.TcgLogs),
		ClientPayload:              std(ai.ClientPayload),
		TpmInfo: wireTPM{
			AikCert: std(ai.TPM.AikCert), AikPub: std(ai.TPM.AikPub), PcrQuote: std(ai.TPM.PcrQuote), PcrSignature: std(ai.TPM.PcrSignature),
			EncKeyPub: std(ai.TPM.EncKeyPub), EncKeyCertifyInfo: std(ai.TPM.EncKeyCertifyInfo), EncKeyCertifyInfoSignature: std(ai.TPM.EncKeyCertifyInfoSignature),
			PcrSet: append([]int{}, ai.TPM.PcrSet...), PCRs: []wirePCR{},
		},
	}
	if w.AttestationProtocolVersion == "" {
		w.AttestationProtocolVersion = ProtocolVersion
	}
	for _, p := range ai.TPM.PCRs {
		w.TpmInfo.PCRs = append(w.TpmInfo.PCRs, wirePCR{Index: p.Index, Digest: std(p.Digest)})
	}
	w.IsolationInfo.Type = ai.Isolation.Type
	if ai.Isolation.Type == IsolationSevSnp {
		w.IsolationInfo.Evidence.Proof = base64.RawURLEncoding.EncodeToString(ai.Isolation.Proof)
	} else if len(ai.Isolation.Proof) > 0 {
		w.IsolationInfo.Evidence.Proof = std(ai.Isolation.Proof)
	}
	if len(ai.Isolation.RuntimeData) > 0 {
		w.IsolationInfo.Evidence.RunTimeData = base64.RawURLEncoding.EncodeToString(ai.Isolation.RuntimeData)
	}
	return json.Marshal(w)
}

// TransportKeyAAD is the additional data of the token's AES-GCM encryption.
const TransportKeyAAD = "Transport Key"

// SealedToken is the decoded answer: {"token": b64url(JSON of SealedToken)}.
type SealedToken struct {
	Jwt               string `json:"Jwt"`               // AES-GCM ciphertext without the tag, base64
	EncryptedInnerKey string `json:"EncryptedInnerKey"` // the AES key, RSAES-PKCS1-v1_5 to EncKeyPub, base64
	EncryptionParams  struct {
		Iv string `json:"Iv"` // base64
	} `json:"EncryptionParams"`
	AuthenticationData string `json:"AuthenticationData"` // the GCM tag, base64
}

// Seal encrypts token to key as MAA answers AzureGuest: a fresh AES-256
// key, a 12-byte IV, additional data "Transport Key", the key wrapped with
// RSAES-PKCS1-v1_5 (what TPM2_RSA_Decrypt with TPM_ALG_RSAES undoes).
func Seal(token string, key *rsa.PublicKey) (string, error) {
	aesKey := make([]byte, 32)
	iv := make([]byte, 12)
	if _, err := rand.Read(aesKey); err != nil {
		return "", err
	}
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	blk, err := aes.NewCipher(aesKey)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(blk)
	if err != nil {
		return "", err
	}
	ct := gcm.Seal(nil, iv, []byte(token), []byte(TransportKeyAAD))
	wrapped, err := rsa.EncryptPKCS1v15(rand.Reader, key, aesKey)
	if err != nil {
		return "", err
	}
	std := base64.StdEncoding.EncodeToString
	var st SealedToken
	st.Jwt = std(ct[:len(ct)-gcm.Overhead()])
	st.AuthenticationData = std(ct[len(ct)-gcm.Overhead():])
	st.EncryptedInnerKey = std(wrapped)
	st.EncryptionParams.Iv = std(iv)
	b, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Open decrypts a sealed token given a function that unwraps the inner key
// (the vTPM's TPM2_RSA_Decrypt, or a software key in tests).
func Open(sealed string, unwrap func(wrapped []byte) ([]byte, error)) (string, error) {
	b, err := Decode(sealed)
	if err != nil {
		return "", fmt.Errorf("sealed token: %v", err)
	}
	var st SealedToken
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("sealed token: %v", err)
	}
	dec := func(s string) []byte { x, _ := base64.StdEncoding.DecodeString(s); return x }
	key, err := unwrap(dec(st.EncryptedInnerKey))
	if err != nil {
		return "", fmt.Errorf("unwrapping the token key: %w", err)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(blk)
	if err != nil {
		return "", err
	}
	iv := dec(st.EncryptionParams.Iv)
	if len(iv) != gcm.NonceSize() {
		return "", fmt.Errorf("sealed token: IV of %d bytes", len(iv))
	}
	pt, err := gcm.Open(nil, iv, append(dec(st.Jwt), dec(st.AuthenticationData)...), []byte(TransportKeyAAD))
	if err != nil {
		return "", fmt.Errorf("sealed token: %v", err)
	}
	return string(pt), nil
}
