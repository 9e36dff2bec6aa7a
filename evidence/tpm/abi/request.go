package abi

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/attestd/attestd/internal/strictjson"
)

// Request JWS "typ" values (VBS protocol doc, "JWS protected header").
const (
	TypV1 = "attReq"
	TypV2 = "attReqV2"
)

// Attestation types (the payload's "att_type").
const (
	AttTypeBasic = "basic"
	AttTypeVBS   = "vbs"
)

// Init is the first client message, {"payload":{"type":"aikcert"}}.
type Init struct {
	Type string // always "aikcert": the only type MAA defines
}

// ParseInit parses the init message. It refuses any type but "aikcert".
func ParseInit(b []byte) (*Init, error) {
	p, err := payload(b)
	if err != nil {
		return nil, err
	}
	var typ string
	if ok, err := strictjson.Member(p, "type", &typ); err != nil || !ok {
		return nil, fmt.Errorf("init: payload.type: missing or not a string")
	}
	if typ != "aikcert" {
		return nil, fmt.Errorf("init: payload.type %q: only \"aikcert\" is defined", typ)
	}
	return &Init{Type: typ}, nil
}

// IsInit reports whether b is a {"payload":{"type":…}} message (the init
// round) rather than a {"payload":{"request":…}} one, without judging it.
func IsInit(b []byte) bool {
	p, err := payload(b)
	if err != nil {
		return false
	}
	_, ok := p["type"]
	return ok
}

// ParseRequestMessage extracts the compact JWS of a {"payload":{"request":
// "<JWS>"}} message.
func ParseRequestMessage(b []byte) (string, error) {
	p, err := payload(b)
	if err != nil {
		return "", err
	}
	var jws string
	if ok, err := strictjson.Member(p, "request", &jws); err != nil || !ok {
		return "", errors.New("request: payload.request: missing or not a string")
	}
	return jws, nil
}

func payload(b []byte) (map[string]json.RawMessage, error) {
	if len(b) > MaxRequestSize+1024 {
		return nil, fmt.Errorf("message: %d bytes, limit %d", len(b), MaxRequestSize+1024)
	}
	m, err := strictjson.Object(b)
	if err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	raw, ok := m["payload"]
	if !ok {
		return nil, errors.New("message: no \"payload\" member")
	}
	p, err := strictjson.Object(raw)
	if err != nil {
		return nil, fmt.Errorf("message: payload: %w", err)
	}
	return p, nil
}

// Request is a parsed (not verified) attestation request JWS.
type Request struct {
	Version int    // 1 (typ attReq) or 2 (typ attReqV2)
	Alg     string // PS256 or RS256
	// SigningInput is BASE64URL(header) || '.' || BASE64URL(payload), the
	// bytes the JWS signature covers; Signature is the decoded signature.
	SigningInput []byte
	Signature    []byte
	Payload      []byte // the decoded JWS payload (JSON)

	AttType string // AttTypeBasic or AttTypeVBS
	Data    AttData
	// ReportSigned is the exact JSON text of att_data.report_signed (vbs):
	// the enclave report's EnclaveData is SHA-512 of these bytes.
	ReportSigned []byte
	// VSMReport is the decoded VBS enclave report (vbs only): v1's
	// "vsm_report" string, v2's "vsm_report.enclave.report".
	VSMReport []byte
}

// AttData is att_data (basic) or att_data.report_signed (vbs).
type AttData struct {
	RPID      string
	RPData    []byte // nil when absent
	Challenge []byte
	TPM       TPMAttData
	// SigningKey is the key that must have signed the JWS: attest_key (v1)
	// or request_key (v2).
	SigningKey     *Key
	OtherKeys      []Key // v2 only
	CustomClaims   []CustomClaim
	ServiceContext string // opaque to this package, as sent (base64url)
}

// TPMAttData is tpm_att_data.
type TPMAttData struct {
	// v2
	Current *Attestation // current_attestation (required in v2)
	Boot    *Attestation // boot_attestation (optional)
	// v1: the Windows platform claims (NCryptCreateClaim output) and logs.
	V1 *TPMAttDataV1
}

// TPMAttDataV1 holds v1's tpm_att_data fields.
type TPMAttDataV1 struct {
	SRTMBootLog, SRTMResumeLog, DRTMBootLog, DRTMResumeLog []byte
	AIKCert                                                []byte
	AIKPub                                                 *JWK
	CurrentClaim, BootClaim                                []byte
}

// Attestation is a v2 current_attestation / boot_attestation object.
type Attestation struct {
	Logs      []Log
	AIKCert   []byte // DER, nil when absent
	AIKPub    *JWK   // nil when absent
	PCRs      []PCRBank
	Quote     []byte // TPMS_ATTEST bytes as signed
	Signature []byte // TPMT_SIGNATURE bytes
}

// Log is one {type, log} entry; Type is "TCG" or "IMA".
type Log struct {
	Type string
	Data []byte
}

// PCRBank is one {algorithm, values} entry, in the order of the quote.
type PCRBank struct {
	Algorithm uint16 // TPM_ALG_ID: 4 SHA-1, 11 SHA-256, 12 SHA-384, 13 SHA-512
	Values    []PCRValue
}

// PCRValue is one {index, digest}.
type PCRValue struct {
	Index  int
	Digest []byte
}

// JWK is a public JSON Web Key with the exact JSON text it was sent as.
type JWK struct {
	Raw    []byte           // the exact bytes on the wire (the tpm_quote binding hashes them)
	Key    crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
	KeyTyp string           // "RSA" or "EC"
}

// Key is a key object {jwk, info}.
type Key struct {
	JWK     JWK
	Quote   *QuoteBinding   // info.tpm_quote
	Certify *CertifyBinding // info.tpm_certify
	// Raw is the exact JSON of the key object.
	Raw []byte
}

// QuoteBinding is info.tpm_quote: the quote's qualifyingData is
// HASH(UTF8(jwk) || 0x00 || challenge).
type QuoteBinding struct {
	HashAlg string // "sha-256", "sha-384", "sha-512" or "sha-1"
}

// CertifyBinding is info.tpm_certify.
type CertifyBinding struct {
	Public        []byte // TPMT_PUBLIC
	Certification []byte // TPMS_ATTEST of type CERTIFY
	Signature     []byte // TPMT_SIGNATURE by the AIK
}

// CustomClaim is one custom_claims entry.
type CustomClaim struct {
	Name, Value, ValueType string
}

// ParseRequest parses a compact request JWS: header (alg PS256|RS256, typ
// attReq|attReqV2, no kid and nothing critical), payload and signature. It
// does not verify the signature (verify.Request does, with the key the
// payload carries).
func ParseRequest(compact string) (*Request, error) {
	if len(compact) > MaxRequestSize {
		return nil, fmt.Errorf("request: %d bytes, limit %d", len(compact), MaxRequestSize)
	}
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("request: a compact JWS has 3 parts, got %d", len(parts))
	}
	hb, err := decodeB64URL("request header", parts[0])
	if err != nil {
		return nil, err
	}
	hdr, err := strictjson.Object(hb)
	if err != nil {
		return nil, fmt.Errorf("request header: %w", err)
	}
	r := &Request{SigningInput: []byte(parts[0] + "." + parts[1])}
	for name := range hdr {
		switch name {
		case "alg", "typ":
		case "kid":
			// The protocol says the key in the payload must sign: a kid
			// would name a key the service does not know.
			return nil, errors.New("request header: \"kid\" is not allowed (the attest/request key in the payload signs)")
		default:
			return nil, fmt.Errorf("request header: member %q is not understood", name)
		}
	}
	var typ string
	if ok, err := strictjson.Member(hdr, "alg", &r.Alg); err != nil || !ok {
		return nil, errors.New("request header: alg missing or not a string")
	}
	if r.Alg != "PS256" && r.Alg != "RS256" {
		return nil, fmt.Errorf("request header: alg %q, want PS256 or RS256", r.Alg)
	}
	if ok, err := strictjson.Member(hdr, "typ", &typ); err != nil || !ok {
		return nil, errors.New("request header: typ missing or not a string")
	}
	switch typ {
	case TypV1:
		r.Version = 1
	case TypV2:
		r.Version = 2
	default:
		return nil, fmt.Errorf("request header: typ %q, want %q or %q", typ, TypV1, TypV2)
	}
	if r.Payload, err = decodeB64URL("request payload", parts[1]); err != nil {
		return nil, err
	}
	if r.Signature, err = decodeB64URL("request signature", parts[2]); err != nil {
		return nil, err
	}
	if len(r.Signature) == 0 {
		return nil, errors.New("request signature: empty")
	}
	if err := r.parsePayload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Request) parsePayload() error {
	p, err := strictjson.Object(r.Payload)
	if err != nil {
		return fmt.Errorf("request payload: %w", err)
	}
	if ok, err := strictjson.Member(p, "att_type", &r.AttType); err != nil || !ok {
		return errors.New("request payload: att_type missing or not a string")
	}
	rawData, ok := p["att_data"]
	if !ok {
		return errors.New("request payload: att_data missing")
	}
	ad, err := strictjson.Object(rawData)
	if err != nil {
		return fmt.Errorf("request payload: att_data: %w", err)
	}
	switch r.AttType {
	case AttTypeBasic:
		return r.parseAttData("att_data", ad)
	case AttTypeVBS:
		rs, ok := ad["report_signed"]
		if !ok {
			return errors.New("request payload: att_data.report_signed missing (att_type vbs)")
		}
		r.ReportSigned = bytes.Clone(rs)
		inner, err := strictjson.Object(rs)
		if err != nil {
			return fmt.Errorf("request payload: att_data.report_signed: %w", err)
		}
		if err := r.parseAttData("att_data.report_signed", inner); err != nil {
			return err
		}
		return r.parseVSMReport(ad)
	default:
		return fmt.Errorf("request payload: att_type %q, want %q or %q", r.AttType, AttTypeBasic, AttTypeVBS)
	}
}

func (r *Request) parseVSMReport(ad map[string]json.RawMessage) error {
	raw, ok := ad["vsm_report"]
	if !ok {
		return errors.New("request payload: att_data.vsm_report missing (att_type vbs)")
	}
	var s string
	if r.Version == 1 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return errors.New("request payload: att_data.vsm_report: want a base64url string (v1)")
		}
	} else {
		vr, err := strictjson.Object(raw)
		if err != nil {
			return fmt.Errorf("request payload: att_data.vsm_report: %w", err)
		}
		enc, ok := vr["enclave"]
		if !ok {
			return errors.New("request payload: att_data.vsm_report.enclave missing")
		}
		eo, err := strictjson.Object(enc)
		if err != nil {
			return fmt.Errorf("request payload: att_data.vsm_report.enclave: %w", err)
		}
		if ok, err := strictjson.Member(eo, "report", &s); err != nil || !ok {
			return errors.New("request payload: att_data.vsm_report.enclave.report missing or not a string")
		}
	}
	b, err := decodeB64URL("att_data.vsm_report", s)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return errors.New("att_data.vsm_report: empty")
	}
	r.VSMReport = b
	return nil
}

func (r *Request) parseAttData(at string, ad map[string]json.RawMessage) error {
	d := &r.Data
	if ok, err := strictjson.Member(ad, "rp_id", &d.RPID); err != nil {
		return fmt.Errorf("%s.rp_id: not a string", at)
	} else if !ok {
		d.RPID = ""
	}
	var err error
	if d.RPData, err = optB64(ad, at+".rp_data"); err != nil {
		return err
	}
	if d.Challenge, err = optB64(ad, at+".challenge"); err != nil {
		return err
	}
	if len(d.Challenge) == 0 {
		return fmt.Errorf("%s.challenge: missing or empty", at)
	}
	if _, err := strictjson.Member(ad, "service_context", &d.ServiceContext); err != nil {
		return fmt.Errorf("%s.service_context: not a string", at)
	}
	if d.ServiceContext == "" {
		return fmt.Errorf("%s.service_context: missing or empty", at)
	}
	if err := parseCustomClaims(at, ad, d); err != nil {
		return err
	}
	rawTPM, ok := ad["tpm_att_data"]
	if !ok {
		return fmt.Errorf("%s.tpm_att_data: missing", at)
	}
	tad, err := strictjson.Object(rawTPM)
	if err != nil {
		return fmt.Errorf("%s.tpm_att_data: %w", at, err)
	}
	if r.Version == 1 {
		for _, m := range []string{"request_key", "other_keys"} {
			if _, ok := ad[m]; ok {
				return fmt.Errorf("%s.%s: a v2 member in a v1 (attReq) request", at, m)
			}
		}
		raw, ok := ad["attest_key"]
		if !ok {
			return fmt.Errorf("%s.attest_key: missing", at)
		}
		jwk, err := parseJWK(at+".attest_key", raw)
		if err != nil {
			return err
		}
		d.SigningKey = &Key{JWK: *jwk, Raw: bytes.Clone(raw)}
		v1, err := parseTPMV1(at+".tpm_att_data", tad)
		if err != nil {
			return err
		}
		d.TPM.V1 = v1
		return nil
	}
	if _, ok := ad["attest_key"]; ok {
		return fmt.Errorf("%s.attest_key: a v1 member in a v2 (attReqV2) request", at)
	}
	raw, ok := ad["request_key"]
	if !ok {
		return fmt.Errorf("%s.request_key: missing", at)
	}
	k, err := parseKey(at+".request_key", raw)
	if err != nil {
		return err
	}
	d.SigningKey = k
	if raw, ok := ad["other_keys"]; ok && !isNull(raw) {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("%s.other_keys: not an array", at)
		}
		if len(list) > MaxOtherKeys {
			return fmt.Errorf("%s.other_keys: %d keys, at most %d", at, len(list), MaxOtherKeys)
		}
		for i, kr := range list {
			k, err := parseKey(fmt.Sprintf("%s.other_keys[%d]", at, i), kr)
			if err != nil {
				return err
			}
			if k.Quote != nil {
				return fmt.Errorf("%s.other_keys[%d].info.tpm_quote: the quote binding is only for request_key", at, i)
			}
			d.OtherKeys = append(d.OtherKeys, *k)
		}
	}
	if raw, ok := tad["current_attestation"]; ok {
		if d.TPM.Current, err = parseAttestation(at+".tpm_att_data.current_attestation", raw); err != nil {
			return err
		}
	} else {
		return fmt.Errorf("%s.tpm_att_data.current_attestation: missing", at)
	}
	if raw, ok := tad["boot_attestation"]; ok && !isNull(raw) {
		if d.TPM.Boot, err = parseAttestation(at+".tpm_att_data.boot_attestation", raw); err != nil {
			return err
		}
	}
	return nil
}

func parseCustomClaims(at string, ad map[string]json.RawMessage, d *AttData) error {
	raw, ok := ad["custom_claims"]
	if !ok || isNull(raw) {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("%s.custom_claims: not an array", at)
	}
	if len(list) > MaxCustomClaims {
		return fmt.Errorf("%s.custom_claims: %d claims, at most %d", at, len(list), MaxCustomClaims)
	}
	for i, cr := range list {
		f := fmt.Sprintf("%s.custom_claims[%d]", at, i)
		o, err := strictjson.Object(cr)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		var c CustomClaim
		if ok, err := strictjson.Member(o, "name", &c.Name); err != nil || !ok || c.Name == "" {
			return fmt.Errorf("%s.name: missing, empty or not a string", f)
		}
		if ok, err := strictjson.Member(o, "value", &c.Value); err != nil || !ok {
			return fmt.Errorf("%s.value: missing or not a string", f)
		}
		if _, err := strictjson.Member(o, "value_type", &c.ValueType); err != nil {
			return fmt.Errorf("%s.value_type: not a string", f)
		}
		d.CustomClaims = append(d.CustomClaims, c)
	}
	return nil
}

func parseTPMV1(at string, tad map[string]json.RawMessage) (*TPMAttDataV1, error) {
	v := &TPMAttDataV1{}
	var err error
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{
		{"srtm_boot_log", &v.SRTMBootLog}, {"srtm_resume_log", &v.SRTMResumeLog},
		{"drtm_boot_log", &v.DRTMBootLog}, {"drtm_resume_log", &v.DRTMResumeLog},
		{"aik_cert", &v.AIKCert}, {"current_claim", &v.CurrentClaim}, {"boot_claim", &v.BootClaim},
	} {
		if *f.dst, err = optB64(tad, at+"."+f.name); err != nil {
			return nil, err
		}
	}
	if raw, ok := tad["aik_pub"]; ok && !isNull(raw) {
		if v.AIKPub, err = parseJWK(at+".aik_pub", raw); err != nil {
			return nil, err
		}
	}
	if len(v.CurrentClaim) == 0 {
		return nil, fmt.Errorf("%s.current_claim: missing or empty", at)
	}
	return v, nil
}

func parseAttestation(at string, raw json.RawMessage) (*Attestation, error) {
	o, err := strictjson.Object(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	a := &Attestation{}
	if a.AIKCert, err = optB64(o, at+".aik_cert"); err != nil {
		return nil, err
	}
	if r, ok := o["aik_pub"]; ok && !isNull(r) {
		if a.AIKPub, err = parseJWK(at+".aik_pub", r); err != nil {
			return nil, err
		}
	}
	if a.Quote, err = optB64(o, at+".quote"); err != nil {
		return nil, err
	}
	if a.Signature, err = optB64(o, at+".signature"); err != nil {
		return nil, err
	}
	if len(a.Quote) == 0 || len(a.Signature) == 0 {
		return nil, fmt.Errorf("%s: quote and signature are required", at)
	}
	if r, ok := o["logs"]; ok && !isNull(r) {
		var list []json.RawMessage
		if err := json.Unmarshal(r, &list); err != nil {
			return nil, fmt.Errorf("%s.logs: not an array", at)
		}
		if len(list) > MaxLogs {
			return nil, fmt.Errorf("%s.logs: %d logs, at most %d", at, len(list), MaxLogs)
		}
		for i, lr := range list {
			f := fmt.Sprintf("%s.logs[%d]", at, i)
			lo, err := strictjson.Object(lr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			var l Log
			if ok, err := strictjson.Member(lo, "type", &l.Type); err != nil || !ok {
				return nil, fmt.Errorf("%s.type: missing or not a string", f)
			}
			if l.Type != "TCG" && l.Type != "IMA" {
				return nil, fmt.Errorf("%s.type %q: want \"TCG\" or \"IMA\"", f, l.Type)
			}
			if l.Data, err = optB64(lo, f+".log"); err != nil {
				return nil, err
			}
			if len(l.Data) == 0 {
				return nil, fmt.Errorf("%s.log: missing or empty", f)
			}
			a.Logs = append(a.Logs, l)
		}
	}
	r, ok := o["pcrs"]
	if !ok {
		return nil, fmt.Errorf("%s.pcrs: missing", at)
	}
	var banks []json.RawMessage
	if err := json.Unmarshal(r, &banks); err != nil {
		return nil, fmt.Errorf("%s.pcrs: not an array", at)
	}
	if len(banks) == 0 || len(banks) > MaxPCRBanks {
		return nil, fmt.Errorf("%s.pcrs: %d banks, want 1…%d", at, len(banks), MaxPCRBanks)
	}
	seenAlg := map[uint16]bool{}
	for i, br := range banks {
		f := fmt.Sprintf("%s.pcrs[%d]", at, i)
		bo, err := strictjson.Object(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		var b PCRBank
		if ok, err := strictjson.Member(bo, "algorithm", &b.Algorithm); err != nil || !ok {
			return nil, fmt.Errorf("%s.algorithm: missing or not a UINT16", f)
		}
		size, known := DigestSize(b.Algorithm)
		if !known {
			return nil, fmt.Errorf("%s.algorithm %d: want 4 (SHA-1), 11 (SHA-256), 12 (SHA-384) or 13 (SHA-512)", f, b.Algorithm)
		}
		if seenAlg[b.Algorithm] {
			return nil, fmt.Errorf("%s.algorithm %d: bank listed twice", f, b.Algorithm)
		}
		seenAlg[b.Algorithm] = true
		var vals []json.RawMessage
		if ok, err := strictjson.Member(bo, "values", &vals); err != nil || !ok {
			return nil, fmt.Errorf("%s.values: missing or not an array", f)
		}
		if len(vals) == 0 || len(vals) > MaxPCRIndex+1 {
			return nil, fmt.Errorf("%s.values: %d values, want 1…%d", f, len(vals), MaxPCRIndex+1)
		}
		seen := map[int]bool{}
		for j, vr := range vals {
			g := fmt.Sprintf("%s.values[%d]", f, j)
			vo, err := strictjson.Object(vr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", g, err)
			}
			var v PCRValue
			if ok, err := strictjson.Member(vo, "index", &v.Index); err != nil || !ok {
				return nil, fmt.Errorf("%s.index: missing or not an integer", g)
			}
			if v.Index < 0 || v.Index > MaxPCRIndex {
				return nil, fmt.Errorf("%s.index %d: want 0…%d", g, v.Index, MaxPCRIndex)
			}
			if seen[v.Index] {
				return nil, fmt.Errorf("%s.index %d: listed twice", g, v.Index)
			}
			seen[v.Index] = true
			if v.Digest, err = optB64(vo, g+".digest"); err != nil {
				return nil, err
			}
			if len(v.Digest) != size {
				return nil, fmt.Errorf("%s.digest: %d bytes, want %d for algorithm %d", g, len(v.Digest), size, b.Algorithm)
			}
			b.Values = append(b.Values, v)
		}
		a.PCRs = append(a.PCRs, b)
	}
	return a, nil
}

// DigestSize returns the digest length of a TPM_ALG_ID hash this package
// accepts in PCR banks.
func DigestSize(alg uint16) (int, bool) {
	switch alg {
	case 0x0004:
		return 20, true
	case 0x000B:
		return 32, true
	case 0x000C:
		return 48, true
	case 0x000D:
		return 64, true
	}
	return 0, false
}

func parseKey(at string, raw json.RawMessage) (*Key, error) {
	o, err := strictjson.Object(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	jr, ok := o["jwk"]
	if !ok {
		return nil, fmt.Errorf("%s.jwk: missing", at)
	}
	jwk, err := parseJWK(at+".jwk", jr)
	if err != nil {
		return nil, err
	}
	k := &Key{JWK: *jwk, Raw: bytes.Clone(raw)}
	ir, ok := o["info"]
	if !ok || isNull(ir) {
		return k, nil
	}
	info, err := strictjson.Object(ir)
	if err != nil {
		return nil, fmt.Errorf("%s.info: %w", at, err)
	}
	if q, ok := info["tpm_quote"]; ok {
		qo, err := strictjson.Object(q)
		if err != nil {
			return nil, fmt.Errorf("%s.info.tpm_quote: %w", at, err)
		}
		var b QuoteBinding
		if ok, err := strictjson.Member(qo, "hash_alg", &b.HashAlg); err != nil || !ok {
			return nil, fmt.Errorf("%s.info.tpm_quote.hash_alg: missing or not a string", at)
		}
		switch b.HashAlg {
		case "sha-1", "sha-256", "sha-384", "sha-512":
		default:
			return nil, fmt.Errorf("%s.info.tpm_quote.hash_alg %q: want sha-1, sha-256, sha-384 or sha-512", at, b.HashAlg)
		}
		k.Quote = &b
	}
	if c, ok := info["tpm_certify"]; ok {
		if k.Quote != nil {
			return nil, fmt.Errorf("%s.info: tpm_quote and tpm_certify are exclusive", at)
		}
		co, err := strictjson.Object(c)
		if err != nil {
			return nil, fmt.Errorf("%s.info.tpm_certify: %w", at, err)
		}
		var b CertifyBinding
		for _, f := range []struct {
			name string
			dst  *[]byte
		}{{"public", &b.Public}, {"certification", &b.Certification}, {"signature", &b.Signature}} {
			if *f.dst, err = optB64(co, at+".info.tpm_certify."+f.name); err != nil {
				return nil, err
			}
			if len(*f.dst) == 0 {
				return nil, fmt.Errorf("%s.info.tpm_certify.%s: missing or empty", at, f.name)
			}
		}
		k.Certify = &b
	}
	return k, nil
}

// parseJWK reads a public RSA or EC JWK, keeping its exact text.
func parseJWK(at string, raw json.RawMessage) (*JWK, error) {
	o, err := strictjson.Object(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	if _, ok := o["d"]; ok {
		return nil, fmt.Errorf("%s: carries a private key (\"d\")", at)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	if !k.Valid() || !k.IsPublic() {
		return nil, fmt.Errorf("%s: not a valid public key", at)
	}
	j := &JWK{Raw: bytes.Clone(raw), Key: k.Key}
	var kty string
	_, _ = strictjson.Member(o, "kty", &kty)
	switch kty {
	case "RSA", "EC":
		j.KeyTyp = kty
	default:
		return nil, fmt.Errorf("%s.kty %q: want RSA or EC", at, kty)
	}
	return j, nil
}

func optB64(o map[string]json.RawMessage, field string) ([]byte, error) {
	name := field[strings.LastIndexByte(field, '.')+1:]
	var s string
	ok, err := strictjson.Member(o, name, &s)
	if err != nil {
		return nil, fmt.Errorf("%s: not a string", field)
	}
	if !ok {
		return nil, nil
	}
	return decodeB64URL(field, s)
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
