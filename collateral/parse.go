package collateral

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/internal/pemfile"
)

// This file parses the untrusted encodings collateral travels in. Nothing here
// checks a signature: it only finds the signed bytes, the dates and the
// identifiers that sources need to index, cache and refresh collateral, and it
// rejects bytes that cannot be collateral with an error saying why.

// SignedDocument is a TCB info or enclave (QE) identity as Intel signs it
// (the exact signed bytes and the raw r||s signature). pcs owns the format.
type SignedDocument = pcs.SignedDocument

// ParseTCBInfoResponse cuts the signed "tcbInfo" value and its signature out
// of a PCS/PCCS TCB info response body ({"tcbInfo":{…},"signature":"hex"}),
// bytes exactly as served (pcs.ParseTCBInfoResponse); errors wrap ErrMalformed.
func ParseTCBInfoResponse(body []byte) (*SignedDocument, error) {
	d, err := pcs.ParseTCBInfoResponse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return d, nil
}

// ParseQEIdentityResponse does the same for a QE identity response body
// ({"enclaveIdentity":{…},"signature":"hex"}; PCS API v2's "qeIdentity" too).
func ParseQEIdentityResponse(body []byte) (*SignedDocument, error) {
	d, err := pcs.ParseEnclaveIdentityResponse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return d, nil
}

// ParseSignatureHex decodes a hex ECDSA P-256 signature r||s (64 bytes).
func ParseSignatureHex(s string) ([]byte, error) {
	sig, err := pcs.ParseSignatureHex(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return sig, nil
}

// TCBInfoHeader is the part of a TCB info that sources need: identity and
// dates. The TCB levels are the verifier's business.
type TCBInfoHeader struct {
	ID                      string // "SGX", "TDX"; empty in version 2 (SGX only)
	Version                 int    // 2 or 3
	IssueDate               time.Time
	NextUpdate              time.Time
	FMSPC                   string // lower-case hex
	PCEID                   string
	TCBType                 int
	TCBEvaluationDataNumber int
}

// TEE is the TEE this TCB info applies to.
func (h *TCBInfoHeader) TEE() TEE {
	if h.ID == "TDX" {
		return TDX
	}
	return SGX
}

// ParseTCBInfoHeader reads the header fields of the signed "tcbInfo" bytes.
func ParseTCBInfoHeader(signed []byte) (*TCBInfoHeader, error) {
	v, err := pcs.DecodeTCBInfoHeader(signed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h := &TCBInfoHeader{Version: v.Version, FMSPC: strings.ToLower(v.FMSPC), PCEID: v.PCEID,
		TCBType: v.TCBType, TCBEvaluationDataNumber: v.TCBEvaluationDataNumber}
	switch {
	case v.Version == 2 && v.ID == "":
	case v.Version == 3 && (v.ID == pcs.IDSGX || v.ID == pcs.IDTDX):
		h.ID = v.ID
	case v.ID != "":
		return nil, fmt.Errorf("%w: TCB info: unsupported id %q version %d (want SGX/TDX version 3, or version 2 without id)", ErrMalformed, v.ID, v.Version)
	default:
		return nil, fmt.Errorf("%w: TCB info: unsupported version %d (want 2 or 3)", ErrMalformed, v.Version)
	}
	if err := checkFMSPC(h.FMSPC); err != nil {
		return nil, fmt.Errorf("%w: TCB info: %v", ErrMalformed, err)
	}
	if h.IssueDate, h.NextUpdate, err = parseDates("TCB info", v.IssueDate, v.NextUpdate); err != nil {
		return nil, err
	}
	return h, nil
}

// EnclaveIdentityHeader is the header of a signed "enclaveIdentity" (QE,
// TD_QE or QVE identity).
type EnclaveIdentityHeader struct {
	ID                      string // "QE", "TD_QE", "QVE"
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	TCBEvaluationDataNumber int
}

// TEE is the TEE whose quoting enclave this identity describes: QE → SGX,
// TD_QE → TDX. Other identities (QVE) have none.
func (h *EnclaveIdentityHeader) TEE() (TEE, bool) {
	switch h.ID {
	case "QE":
		return SGX, true
	case "TD_QE":
		return TDX, true
	}
	return "", false
}

// ParseEnclaveIdentityHeader reads the header fields of the signed
// "enclaveIdentity" bytes.
func ParseEnclaveIdentityHeader(signed []byte) (*EnclaveIdentityHeader, error) {
	v, err := pcs.DecodeEnclaveIdentityHeader(signed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if v.ID == "" {
		return nil, fmt.Errorf("%w: enclave identity has no id", ErrMalformed)
	}
	if v.Version != 2 {
		return nil, fmt.Errorf("%w: enclave identity %s: unsupported version %d (want 2)", ErrMalformed, v.ID, v.Version)
	}
	h := &EnclaveIdentityHeader{ID: v.ID, Version: v.Version, TCBEvaluationDataNumber: v.TCBEvaluationDataNumber}
	if h.IssueDate, h.NextUpdate, err = parseDates("enclave identity "+v.ID, v.IssueDate, v.NextUpdate); err != nil {
		return nil, err
	}
	return h, nil
}

func parseDates(what, issue, next string) (time.Time, time.Time, error) {
	i, err := time.Parse(time.RFC3339, issue)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: %s: issueDate %q is not RFC 3339", ErrMalformed, what, issue)
	}
	n, err := time.Parse(time.RFC3339, next)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: %s: nextUpdate %q is not RFC 3339", ErrMalformed, what, next)
	}
	if n.Before(i) {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: %s: nextUpdate %s is before issueDate %s", ErrMalformed, what, next, issue)
	}
	return i.UTC(), n.UTC(), nil
}

// CRLInfo describes a CRL issued by one of the Intel SGX CAs.
type CRLInfo struct {
	DER        []byte
	Issuer     pkix.Name
	CA         string // "root", CAProcessor or CAPlatform, from the issuer's common name
	ThisUpdate time.Time
	NextUpdate time.Time
}

// CARoot is CRLInfo.CA for a CRL issued by the Intel SGX Root CA.
const CARoot = "root"

// ParseCRL accepts a CRL in any encoding collateral uses — DER (PCS with
// encoding=der, Intel's CDP), PEM (PCS default), or hex text of the DER
// (dcap-qvl JSON, sgx_ql_qve_collateral_t v3.0/v4, older PCCS) — and returns
// its DER with the fields sources need. Trailing NULs and whitespace (C
// strings, text files) are ignored.
func ParseCRL(b []byte) (*CRLInfo, error) {
	der, err := crlDER(b)
	if err != nil {
		return nil, err
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("%w: CRL: %v", ErrMalformed, err)
	}
	if crl.NextUpdate.IsZero() {
		return nil, fmt.Errorf("%w: CRL from %q has no nextUpdate", ErrMalformed, crl.Issuer.CommonName)
	}
	ca, err := caOf(crl.Issuer)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	return &CRLInfo{DER: der, Issuer: crl.Issuer, CA: ca, ThisUpdate: crl.ThisUpdate.UTC(), NextUpdate: crl.NextUpdate.UTC()}, nil
}

func crlDER(b []byte) ([]byte, error) {
	t := bytes.Trim(b, " \t\r\n\x00")
	switch {
	case len(t) == 0:
		return nil, fmt.Errorf("%w: CRL is empty", ErrMalformed)
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		blk, rest := pem.Decode(t)
		if blk == nil || blk.Type != "X509 CRL" {
			return nil, fmt.Errorf("%w: CRL: PEM block is not an X509 CRL", ErrMalformed)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: CRL: data after the PEM block", ErrMalformed)
		}
		return blk.Bytes, nil
	case b[0] == 0x30: // DER SEQUENCE; untrimmed, a DER CRL may end in 0x00 or 0x20
		return b, nil
	default:
		der, err := hex.DecodeString(string(t))
		if err != nil {
			return nil, fmt.Errorf("%w: CRL is neither DER, PEM nor hex", ErrMalformed)
		}
		if len(der) == 0 || der[0] != 0x30 {
			return nil, fmt.Errorf("%w: hex CRL does not decode to DER", ErrMalformed)
		}
		return der, nil
	}
}

// caOf names the Intel SGX CA from its distinguished name: "Intel SGX Root
// CA", "Intel SGX PCK Processor CA", "Intel SGX PCK Platform CA". Matching on
// words rather than whole names lets test CAs with similar names work.
func caOf(n pkix.Name) (string, error) {
	cn := strings.ToLower(n.CommonName)
	switch {
	case strings.Contains(cn, "processor"):
		return CAProcessor, nil
	case strings.Contains(cn, "platform"):
		return CAPlatform, nil
	case strings.Contains(cn, "root"):
		return CARoot, nil
	}
	return "", fmt.Errorf("%w: issuer %q is not an Intel SGX Root, PCK Processor or PCK Platform CA", ErrMalformed, n.CommonName)
}

// ParseCertChain parses a PEM issuer chain (leaf first) with attestd's one
// strict chain parser, pemfile.ParseChain; errors wrap ErrMalformed.
func ParseCertChain(b []byte) ([]*x509.Certificate, error) {
	certs, err := pemfile.ParseChain(b)
	if err != nil {
		return nil, fmt.Errorf("%w: issuer %v", ErrMalformed, err)
	}
	return certs, nil
}

// newestTCBDate returns the latest tcbDate among the TCB levels of a TCB
// info, or the zero time. Display only: the bytes are not verified here.
func newestTCBDate(signed []byte) time.Time {
	var v pcs.TCBInfoJSON
	var newest time.Time
	if json.Unmarshal(signed, &v) != nil {
		return newest
	}
	for _, l := range v.TCBLevels {
		if t, err := time.Parse(time.RFC3339, l.TCBDate); err == nil && t.After(newest) {
			newest = t
		}
	}
	return newest.UTC()
}
