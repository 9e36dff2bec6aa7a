// Package abi turns SevSnpVm evidence, as clients send it, into a parsed
// AMD SEV-SNP attestation report and the certificates that came with it. It
// does no cryptography, reads no clock and applies no policy: package
// evidence/snp/verify does that.
//
// The report itself is parsed by github.com/google/go-sev-guest/abi (the
// AMD SEV-SNP firmware ABI, report versions 2 to 5); this package adds the
// envelopes real clients wrap it in, which no library reads:
//
//   - MAA's report JSON (maa-api.md §1.6, §8): the request's "report" is
//     base64url of {"SnpReport": b64url(raw report), "VcekCertChain":
//     b64url(PEM chain), "Endorsements": b64url({"Uvm": [b64url(COSE_Sign1)]})},
//     as the Azure confidential-containers sidecar and MAA's own examples send
//     it. The sidecar pads its base64url; MAA's examples do not: both are read.
//     VcekCertChain may also hold the THIM/certificate-cache JSON Azure hosts
//     serve ({"vcekCert": PEM, "certificateChain": PEM, "tcbm": …}).
//   - Linux configfs-tsm output as JSON ({"outblob": b64, "auxblob": b64,
//     "provider": "sev_guest"}): the report and the extended-report
//     certificate table (GUID table of VCEK/VLEK, ASK, ARK).
//   - A raw report (1184 bytes) or its hex text, with certificates given
//     separately (Certificates).
package abi

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	sevabi "github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/attestd/attestd/internal/strictjson"
)

// MaxEvidence bounds what Parse reads: a report (1184 bytes), a certificate
// chain of a few KB and ACI's UVM endorsements (a few KB each) fit many times
// over; the API's body limit is the outer bound.
const MaxEvidence = 1 << 20

// maxEndorsements bounds the number of UVM endorsements read from one request.
const maxEndorsements = 16

// Format names the envelope the report arrived in.
type Format string

// The envelopes Parse recognises.
const (
	FormatMAA         Format = "maa-json"     // {"SnpReport", "VcekCertChain", "Endorsements"}
	FormatConfigfsTSM Format = "configfs-tsm" // {"outblob", "auxblob", "provider"}
	FormatRaw         Format = "raw"          // the 1184-byte report
	FormatHex         Format = "hex"          // the report as hex text
)

// Certs are the AMD certificates that came with a report, each as DER. A
// certificate here is only a claim by the client; the verifier trusts the
// endorsement key (VCEK/VLEK) only through a chain to a configured AMD root,
// and never takes an ASK or ARK from the request as a root.
type Certs struct {
	VCEK []byte
	VLEK []byte
	ASK  []byte
	ASVK []byte
	ARK  []byte
}

// Empty reports whether no certificate is present.
func (c *Certs) Empty() bool {
	return c.VCEK == nil && c.VLEK == nil && c.ASK == nil && c.ASVK == nil && c.ARK == nil
}

// Evidence is parsed SevSnpVm evidence.
type Evidence struct {
	Format Format
	// Raw is the exact report (ReportSize bytes): what the signature covers.
	Raw    []byte
	Report *spb.Report
	Certs  Certs
	// UVMEndorsements are ACI's COSE_Sign1 endorsements of the utility VM
	// (from "Endorsements"), undecoded.
	UVMEndorsements [][]byte
}

// Error is a parse failure of one part of the evidence.
type Error struct {
	Part string // "report", "envelope", "certificates", "endorsements"
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Part, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func perr(part, format string, args ...any) error {
	return &Error{Part: part, Err: fmt.Errorf(format, args...)}
}

// Parse reads SevSnpVm evidence in any of the formats of the package doc.
// b is the decoded "report" of the attest request (for MAA's JSON, the JSON
// text itself).
func Parse(b []byte) (*Evidence, error) {
	if len(b) > MaxEvidence {
		return nil, perr("envelope", "evidence of %d bytes exceeds the limit of %d", len(b), MaxEvidence)
	}
	trimmed := bytes.TrimSpace(b)
	switch {
	case len(b) == sevabi.ReportSize:
		// A raw report can begin with any byte, so its size decides first
		// (no JSON or hex text of a report has exactly this length and
		// parses as a report).
		return parseRaw(b, FormatRaw)
	case len(trimmed) > 0 && trimmed[0] == '{':
		return parseJSON(trimmed)
	case isHex(trimmed):
		raw, err := hex.DecodeString(string(trimmed))
		if err != nil {
			return nil, perr("report", "hex text: %v", err)
		}
		return parseRaw(raw, FormatHex)
	}
	return nil, perr("envelope", "not an SEV-SNP report (%d bytes; a report has %d), MAA report JSON, configfs-tsm JSON or hex text", len(b), sevabi.ReportSize)
}

func isHex(b []byte) bool {
	if len(b) != 2*sevabi.ReportSize {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ParseReport parses a raw report.
func ParseReport(raw []byte) (*spb.Report, error) {
	if len(raw) != sevabi.ReportSize {
		return nil, perr("report", "%d bytes, want %d", len(raw), sevabi.ReportSize)
	}
	r, err := sevabi.ReportToProto(raw)
	if err != nil {
		return nil, &Error{Part: "report", Err: err}
	}
	if r.GetSignatureAlgo() != sevabi.SignEcdsaP384Sha384 {
		return nil, perr("report", "signature algorithm %d, want %d (ECDSA P-384 with SHA-384)", r.GetSignatureAlgo(), sevabi.SignEcdsaP384Sha384)
	}
	return r, nil
}

func parseRaw(raw []byte, f Format) (*Evidence, error) {
	r, err := ParseReport(raw)
	if err != nil {
		return nil, err
	}
	return &Evidence{Format: f, Raw: bytes.Clone(raw), Report: r}, nil
}

func parseJSON(b []byte) (*Evidence, error) {
	m, err := strictjson.Object(b)
	if err != nil {
		return nil, perr("envelope", "JSON: %v", err)
	}
	if _, ok := m["SnpReport"]; ok {
		return parseMAA(m)
	}
	if _, ok := m["outblob"]; ok {
		return parseTSM(m)
	}
	return nil, perr("envelope", "JSON object has neither \"SnpReport\" (MAA report JSON) nor \"outblob\" (configfs-tsm)")
}

// b64 decodes base64 in any of the alphabets and paddings clients use:
// base64url with (the ACI sidecar) or without padding (MAA's examples), and
// standard base64 (configfs-tsm dumps).
func b64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64 or base64url")
}

func stringMember(m map[string]json.RawMessage, name string) (string, bool, error) {
	var s string
	ok, err := strictjson.Member(m, name, &s)
	return s, ok, err
}

func parseMAA(m map[string]json.RawMessage) (*Evidence, error) {
	rep, _, err := stringMember(m, "SnpReport")
	if err != nil {
		return nil, perr("envelope", "%v", err)
	}
	raw, err := b64(rep)
	if err != nil {
		return nil, perr("report", "SnpReport: %v", err)
	}
	ev, err := parseRaw(raw, FormatMAA)
	if err != nil {
		return nil, err
	}
	chain, ok, err := stringMember(m, "VcekCertChain")
	if err != nil {
		return nil, perr("envelope", "%v", err)
	}
	if ok && chain != "" {
		pemBytes, err := b64(chain)
		if err != nil {
			return nil, perr("certificates", "VcekCertChain: %v", err)
		}
		if ev.Certs, err = Certificates(pemBytes); err != nil {
			return nil, err
		}
	}
	end, ok, err := stringMember(m, "Endorsements")
	if err != nil {
		return nil, perr("envelope", "%v", err)
	}
	if ok && end != "" {
		if ev.UVMEndorsements, err = parseEndorsements(end); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

func parseEndorsements(s string) ([][]byte, error) {
	b, err := b64(s)
	if err != nil {
		return nil, perr("endorsements", "Endorsements: %v", err)
	}
	m, err := strictjson.Object(b)
	if err != nil {
		return nil, perr("endorsements", "Endorsements JSON: %v", err)
	}
	var uvm []string
	if _, err := strictjson.Member(m, "Uvm", &uvm); err != nil {
		return nil, perr("endorsements", "%v", err)
	}
	if len(uvm) > maxEndorsements {
		return nil, perr("endorsements", "%d UVM endorsements, at most %d", len(uvm), maxEndorsements)
	}
	var out [][]byte
	for i, e := range uvm {
		d, err := b64(e)
		if err != nil {
			return nil, perr("endorsements", "Uvm[%d]: %v", i, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseTSM(m map[string]json.RawMessage) (*Evidence, error) {
	if p, ok, err := stringMember(m, "provider"); err != nil {
		return nil, perr("envelope", "%v", err)
	} else if ok && strings.TrimSpace(p) != "sev_guest" {
		return nil, perr("envelope", "configfs-tsm provider %q is not sev_guest", p)
	}
	out, _, err := stringMember(m, "outblob")
	if err != nil {
		return nil, perr("envelope", "%v", err)
	}
	raw, err := b64(out)
	if err != nil {
		return nil, perr("report", "outblob: %v", err)
	}
	ev, err := parseRaw(raw, FormatConfigfsTSM)
	if err != nil {
		return nil, err
	}
	aux, ok, err := stringMember(m, "auxblob")
	if err != nil {
		return nil, perr("envelope", "%v", err)
	}
	if ok && aux != "" {
		table, err := b64(aux)
		if err != nil {
			return nil, perr("certificates", "auxblob: %v", err)
		}
		if ev.Certs, err = CertTable(table); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// CertTable reads an extended-report certificate table (the GUID table of
// the SNP_GET_EXT_REPORT ABI, configfs-tsm's auxblob). Entries may be DER or
// PEM; unknown GUIDs are ignored.
func CertTable(b []byte) (Certs, error) {
	var t sevabi.CertTable
	if err := t.Unmarshal(b); err != nil {
		return Certs{}, perr("certificates", "certificate table: %v", err)
	}
	var c Certs
	for _, e := range t.Entries {
		var dst *[]byte
		switch e.GUID.String() {
		case sevabi.VcekGUID:
			dst = &c.VCEK
		case sevabi.VlekGUID:
			dst = &c.VLEK
		case sevabi.AskGUID:
			dst = &c.ASK
		case sevabi.ArkGUID:
			dst = &c.ARK
		default:
			continue
		}
		der, err := oneCert(e.RawCert)
		if err != nil {
			return Certs{}, perr("certificates", "certificate table entry %s: %v", e.GUID, err)
		}
		*dst = der
	}
	return c, nil
}

// oneCert returns the DER of a single certificate given as DER or PEM
// (padding after DER, as certificate tables have, is cut off).
func oneCert(b []byte) ([]byte, error) {
	if p, _ := pem.Decode(b); p != nil {
		if p.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", p.Type)
		}
		b = p.Bytes
	}
	c, err := x509.ParseCertificate(trimDER(b))
	if err != nil {
		return nil, err
	}
	return c.Raw, nil
}

// trimDER cuts b to the length its outer DER SEQUENCE header states, so
// zero padding after a certificate does not fail the parse.
func trimDER(b []byte) []byte {
	if len(b) < 2 || b[0] != 0x30 {
		return b
	}
	n, hdr := int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return b
		}
		n = 0
		for _, x := range b[2 : 2+k] {
			n = n<<8 | int(x)
		}
		hdr = 2 + k
	}
	if hdr+n <= len(b) {
		return b[:hdr+n]
	}
	return b
}

// Certificates reads the AMD certificates of a report from any of the
// shapes clients send them in: a PEM bundle (VCEK or VLEK, ASK or ASVK, ARK
// in any order), one DER certificate, the THIM/certificate-cache JSON Azure
// hosts serve ({"vcekCert", "certificateChain"}), or a certificate table.
// Each certificate is classified by its subject common name (AMD KDS names
// them "SEV-VCEK", "SEV-VLEK", "SEV-<product>", "SEV-VLEK-<product>",
// "ARK-<product>"); two certificates of one role are refused.
func Certificates(b []byte) (Certs, error) {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '{' {
		return thim(t)
	}
	var ders [][]byte
	if bytes.Contains(t, []byte("-----BEGIN")) {
		rest := t
		for {
			var p *pem.Block
			p, rest = pem.Decode(rest)
			if p == nil {
				break
			}
			if p.Type != "CERTIFICATE" {
				return Certs{}, perr("certificates", "PEM block %q, want CERTIFICATE", p.Type)
			}
			ders = append(ders, p.Bytes)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return Certs{}, perr("certificates", "data after the last PEM certificate")
		}
	} else if len(t) > 0 && t[0] == 0x30 {
		ders = [][]byte{b}
	} else if len(t) >= 24 {
		// A certificate table starts with a GUID.
		return CertTable(b)
	}
	if len(ders) == 0 {
		return Certs{}, perr("certificates", "no certificate found")
	}
	var c Certs
	for i, d := range ders {
		crt, err := x509.ParseCertificate(d)
		if err != nil {
			return Certs{}, perr("certificates", "certificate %d: %v", i, err)
		}
		if err := c.add(crt); err != nil {
			return Certs{}, err
		}
	}
	return c, nil
}

func (c *Certs) add(crt *x509.Certificate) error {
	cn := crt.Subject.CommonName
	var dst *[]byte
	switch {
	case cn == "SEV-VCEK":
		dst = &c.VCEK
	case cn == "SEV-VLEK":
		dst = &c.VLEK
	case strings.HasPrefix(cn, "SEV-VLEK-"):
		dst = &c.ASVK
	case strings.HasPrefix(cn, "ARK-"):
		dst = &c.ARK
	case strings.HasPrefix(cn, "SEV-"):
		dst = &c.ASK
	default:
		return perr("certificates", "certificate %q is not an AMD SEV certificate (VCEK, VLEK, ASK, ASVK or ARK)", cn)
	}
	if *dst != nil {
		return perr("certificates", "two certificates named %q", cn)
	}
	*dst = crt.Raw
	return nil
}

func thim(b []byte) (Certs, error) {
	m, err := strictjson.Object(b)
	if err != nil {
		return Certs{}, perr("certificates", "certificate JSON: %v", err)
	}
	var vcek, chain string
	if _, err := strictjson.Member(m, "vcekCert", &vcek); err != nil {
		return Certs{}, perr("certificates", "%v", err)
	}
	if _, err := strictjson.Member(m, "certificateChain", &chain); err != nil {
		return Certs{}, perr("certificates", "%v", err)
	}
	if vcek == "" {
		return Certs{}, perr("certificates", "certificate JSON has no \"vcekCert\"")
	}
	return Certificates([]byte(vcek + "\n" + chain))
}

// Merge fills the certificates c lacks from o (certificates given beside
// the evidence complete those inside it; those inside win).
func (c Certs) Merge(o Certs) Certs {
	pick := func(a, b []byte) []byte {
		if a != nil {
			return a
		}
		return b
	}
	return Certs{VCEK: pick(c.VCEK, o.VCEK), VLEK: pick(c.VLEK, o.VLEK), ASK: pick(c.ASK, o.ASK), ASVK: pick(c.ASVK, o.ASVK), ARK: pick(c.ARK, o.ARK)}
}
