// Package tpmclient drives MAA's TPM attestation protocol from a TPM 2.0
// (a go-tpm transport: /dev/tpmrm0 through linuxtpm, or a software TPM): it
// creates an attestation key (RSA or ECC), measures a TCG event log into the
// PCRs, quotes them with the service's challenge bound to the request key
// (info.tpm_quote), optionally certifies another TPM key (tpm_certify), and
// builds and signs the v2 ("attReqV2") request JWS with PS256; or the v1
// ("attReq") request, whose evidence is a PCP platform claim (v1.go).
//
// The messages are the {"payload": …} JSON documents of the VBS protocol;
// the {"data": b64url} HTTP wrapping belongs to the caller (the SDK).
package tpmclient

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// KeyAlg selects the AK's algorithm.
type KeyAlg int

const (
	RSA KeyAlg = iota // RSA 2048, RSASSA-SHA256
	ECC               // NIST P-256, ECDSA-SHA256
)

// Key is a TPM-resident key the client created.
type Key struct {
	Handle tpm2.TPMHandle
	Name   tpm2.TPM2BName
	Public tpm2.TPMTPublic
	// PublicBytes is the TPMT_PUBLIC as the TPM returned it.
	PublicBytes []byte
	Pub         crypto.PublicKey
}

func (k *Key) auth() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: k.Handle, Name: k.Name, Auth: tpm2.PasswordAuth(nil)}
}

// Flush unloads the key (swtpm has no resource manager: about three
// transient objects fit at once).
func (k *Key) Flush(t transport.TPM) error {
	_, err := tpm2.FlushContext{FlushHandle: k.Handle}.Execute(t)
	return err
}

// AKTemplate is a restricted signing key template for alg.
func AKTemplate(alg KeyAlg) tpm2.TPMTPublic {
	attrs := tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, NoDA: true, Restricted: true, SignEncrypt: true}
	if alg == ECC {
		return tpm2.TPMTPublic{
			Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				CurveID: tpm2.TPMECCNistP256,
				Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
					Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
		}
	}
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Scheme: tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgRSASSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256})},
			KeyBits: 2048,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
	}
}

// SigningKeyTemplate is an unrestricted RSA signing key (fixedTPM,
// fixedParent, sensitiveDataOrigin, userWithAuth, sign) for tpm_certify.
func SigningKeyTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Scheme: tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull}, KeyBits: 2048,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
	}
}

// CreatePrimary creates a primary key from tmpl in the owner hierarchy.
func CreatePrimary(ctx context.Context, t transport.TPM, tmpl tpm2.TPMTPublic) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tmpl)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_CreatePrimary: %w", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, err
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, err
	}
	return &Key{Handle: rsp.ObjectHandle, Name: rsp.Name, Public: *pub, PublicBytes: tpm2.Marshal(*pub), Pub: k}, nil
}

// CreateAK creates an attestation key.
func CreateAK(ctx context.Context, t transport.TPM, alg KeyAlg) (*Key, error) {
	return CreatePrimary(ctx, t, AKTemplate(alg))
}

// Event is one event of a synthetic log.
type Event struct {
	PCR  int
	Type uint32
	Data []byte
	// Digest is what is extended; nil means SHA-256(Data).
	Digest []byte
}

// Event types used by SyntheticBootEvents (PC Client PFP §10.4.1).
const (
	EvNoAction                = 0x00000003
	EvSeparator               = 0x00000004
	EvSCRTMVersion            = 0x00000008
	EvEFIVariableDriverConfig = 0x80000001
	EvEFIAction               = 0x80000007
	EvEFIVariableAuthority    = 0x800000E0
)

// efiGlobalVariable is EFI_GLOBAL_VARIABLE 8BE4DF61-93CA-11D2-AA0D-00E098032B8C in EFI_GUID byte order.
var efiGlobalVariable = []byte{0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}

// efiImageSecurityDatabase is EFI_IMAGE_SECURITY_DATABASE_GUID
// D719B2CB-3D3A-4596-A3BC-DAD00E67656F (db, dbx) in EFI_GUID byte order.
var efiImageSecurityDatabase = []byte{0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f}

// UEFIVariable encodes UEFI_VARIABLE_DATA for an EFI global variable.
func UEFIVariable(name string, data []byte) []byte {
	return uefiVariable(efiGlobalVariable, name, data)
}

func uefiVariable(guid []byte, name string, data []byte) []byte {
	u := utf16.Encode([]rune(name))
	b := append([]byte(nil), guid...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(u)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, data...)
}

// SyntheticBootEvents is a small, well-formed UEFI boot: an S-CRTM version
// in PCR 0, SecureBoot=secureBoot in PCR 7, separators in PCRs 0–7 and,
// when dbCert (DER) is given, the EV_EFI_VARIABLE_AUTHORITY of the db
// certificate that verified the boot loader (firmware logs it after the
// separator; a Secure Boot state without one is incoherent).
func SyntheticBootEvents(secureBoot bool, dbCert []byte) []Event {
	sb := byte(0)
	if secureBoot {
		sb = 1
	}
	ev := []Event{
		{PCR: 0, Type: EvSCRTMVersion, Data: []byte{'1', 0, '.', 0, '0', 0, 0, 0}},
		{PCR: 7, Type: EvEFIVariableDriverConfig, Data: UEFIVariable("SecureBoot", []byte{sb})},
	}
	if dbCert != nil {
		// PK, KEK and db as EFI_SIGNATURE_LISTs of one X.509 certificate
		// (UEFI 2.x §32.4.1): type EFI_CERT_X509_GUID, list size, header
		// size 0, signature size, then owner GUID + DER.
		certX509 := []byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}
		list := append([]byte(nil), certX509...)
		list = binary.LittleEndian.AppendUint32(list, uint32(28+16+len(dbCert)))
		list = binary.LittleEndian.AppendUint32(list, 0)
		list = binary.LittleEndian.AppendUint32(list, uint32(16+len(dbCert)))
		list = append(append(list, make([]byte, 16)...), dbCert...)
		ev = append(ev,
			Event{PCR: 7, Type: EvEFIVariableDriverConfig, Data: UEFIVariable("PK", list)},
			Event{PCR: 7, Type: EvEFIVariableDriverConfig, Data: UEFIVariable("KEK", list)},
			Event{PCR: 7, Type: EvEFIVariableDriverConfig, Data: uefiVariable(efiImageSecurityDatabase, "db", list)})
	}
	for i := 0; i <= 7; i++ {
		ev = append(ev, Event{PCR: i, Type: EvSeparator, Data: []byte{0, 0, 0, 0}})
	}
	if dbCert != nil {
		// EFI_SIGNATURE_DATA: SignatureOwner GUID, then the certificate.
		sig := append(make([]byte, 16), dbCert...)
		ev = append(ev, Event{PCR: 7, Type: EvEFIVariableAuthority, Data: uefiVariable(efiImageSecurityDatabase, "db", sig)})
	}
	return ev
}

// EncodeLog renders events as a crypto-agile (TCG2) log with SHA-256
// digests: the EV_NO_ACTION "Spec ID Event03" header in the SHA-1 event
// format, then TCG_PCR_EVENT2 records.
func EncodeLog(events []Event) []byte {
	le := binary.LittleEndian
	spec := []byte("Spec ID Event03\x00")
	spec = le.AppendUint32(spec, 0)      // platformClass
	spec = append(spec, 0, 2, 0, 2)      // specVersionMinor, Major, errata, uintnSize
	spec = le.AppendUint32(spec, 1)      // numberOfAlgorithms
	spec = le.AppendUint16(spec, 0x000B) // SHA-256
	spec = le.AppendUint16(spec, 32)
	spec = append(spec, 0) // vendorInfoSize
	var b []byte
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, EvNoAction)
	b = append(b, make([]byte, 20)...)
	b = le.AppendUint32(b, uint32(len(spec)))
	b = append(b, spec...)
	for _, e := range events {
		b = le.AppendUint32(b, uint32(e.PCR))
		b = le.AppendUint32(b, e.Type)
		b = le.AppendUint32(b, 1)
		b = le.AppendUint16(b, 0x000B)
		b = append(b, digest(e)...)
		b = le.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}

func digest(e Event) []byte {
	if e.Digest != nil {
		return e.Digest
	}
	s := sha256.Sum256(e.Data)
	return s[:]
}

// Measure extends each event's digest into its PCR's SHA-256 bank.
func Measure(ctx context.Context, t transport.TPM, events []Event) error {
	for _, e := range events {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Type == EvNoAction {
			continue
		}
		_, err := tpm2.PCRExtend{
			PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(e.PCR), Auth: tpm2.PasswordAuth(nil)},
			Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: digest(e)}}},
		}.Execute(t)
		if err != nil {
			return fmt.Errorf("TPM2_PCR_Extend(%d): %w", e.PCR, err)
		}
	}
	return nil
}

// Quote is a TPM2_Quote over the SHA-256 bank with the PCR values read.
type Quote struct {
	Attest    []byte // TPMS_ATTEST
	Signature []byte // TPMT_SIGNATURE
	PCRs      map[int][]byte
}

// QuoteSHA256 reads PCRs 0–23 of the SHA-256 bank and quotes them with
// qualifyingData nonce.
func QuoteSHA256(ctx context.Context, t transport.TPM, ak *Key, nonce []byte) (*Quote, error) {
	return QuotePCRs(ctx, t, ak, nonce, AllPCRs)
}

// AllPCRs selects PCRs 0–23, what MAA's default required_pcr_mask requires.
const AllPCRs uint32 = 0xFFFFFF

// QuotePCRs reads the SHA-256 PCRs of mask (bit n: PCR n, n < 24) and
// quotes them with qualifyingData nonce.
func QuotePCRs(ctx context.Context, t transport.TPM, ak *Key, nonce []byte, mask uint32) (*Quote, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if mask == 0 || mask&^AllPCRs != 0 {
		return nil, fmt.Errorf("tpmclient: PCR mask %#x: want a non-empty subset of PCRs 0–23", mask)
	}
	pcrs, err := readPCRs(ctx, t, tpm2.TPMAlgSHA256, mask)
	if err != nil {
		return nil, err
	}
	q := &Quote{PCRs: pcrs}
	rsp, err := runQuote(t, ak, nonce, mask)
	if err != nil {
		return nil, err
	}
	q.Attest = rsp.Quoted.Bytes()
	q.Signature = tpm2.Marshal(rsp.Signature)
	return q, nil
}

// pcrSelection selects the PCRs of mask (0…23) in bank alg.
func pcrSelection(alg tpm2.TPMAlgID, mask uint32) tpm2.TPMLPCRSelection {
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: alg, PCRSelect: []byte{byte(mask), byte(mask >> 8), byte(mask >> 16)}}}}
}

// readPCRs reads the PCRs of mask (0…23) from bank alg.
func readPCRs(ctx context.Context, t transport.TPM, alg tpm2.TPMAlgID, mask uint32) (map[int][]byte, error) {
	out := map[int][]byte{}
	for group := 0; group < 3; group++ { // TPM2_PCR_Read returns at most 8 digests
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bits := byte(mask >> (8 * group))
		if bits == 0 {
			continue
		}
		sel := []byte{0, 0, 0}
		sel[group] = bits
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: alg, PCRSelect: sel}}}}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("TPM2_PCR_Read: %w", err)
		}
		var idx []int
		for i := 0; i < 8; i++ {
			if bits&(1<<i) != 0 {
				idx = append(idx, group*8+i)
			}
		}
		if len(rsp.PCRValues.Digests) != len(idx) {
			return nil, fmt.Errorf("TPM2_PCR_Read: %d digests for %d PCRs", len(rsp.PCRValues.Digests), len(idx))
		}
		for i, d := range rsp.PCRValues.Digests {
			out[idx[i]] = d.Buffer
		}
	}
	return out, nil
}

// Certify runs TPM2_Certify of key by ak with qualifyingData challenge.
func Certify(ctx context.Context, t transport.TPM, key, ak *Key, challenge []byte) (certification, signature []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	rsp, err := tpm2.Certify{
		ObjectHandle:   key.auth(),
		SignHandle:     ak.auth(),
		QualifyingData: tpm2.TPM2BData{Buffer: challenge},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(t)
	if err != nil {
		return nil, nil, fmt.Errorf("TPM2_Certify: %w", err)
	}
	return rsp.CertifyInfo.Bytes(), tpm2.Marshal(rsp.Signature), nil
}

// InitMessage is the first message, {"payload":{"type":"aikcert"}}.
func InitMessage() []byte { return []byte(`{"payload":{"type":"aikcert"}}`) }

// ParseChallenge reads the service's {"payload":{"challenge","service_context"}}.
func ParseChallenge(b []byte) (challenge []byte, serviceContext string, err error) {
	var m struct {
		Payload struct {
			Challenge      string `json:"challenge"`
			ServiceContext string `json:"service_context"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("challenge message: %w", err)
	}
	if challenge, err = base64.RawURLEncoding.DecodeString(m.Payload.Challenge); err != nil || len(challenge) == 0 {
		return nil, "", errors.New("challenge message: payload.challenge is not base64url")
	}
	if m.Payload.ServiceContext == "" {
		return nil, "", errors.New("challenge message: no service_context")
	}
	return challenge, m.Payload.ServiceContext, nil
}

// RequestMessage wraps a request JWS: {"payload":{"request":"<JWS>"}}.
func RequestMessage(jws string) []byte {
	b, _ := json.Marshal(map[string]any{"payload": map[string]string{"request": jws}})
	return b
}

// Request is what BuildRequest needs.
type Request struct {
	Challenge      []byte
	ServiceContext string
	RPID           string
	RPData         []byte // nil: not sent
	AK             *Key
	AIKCert        []byte // DER, optional
	Log            []byte // the TCG log whose events were measured
	// RequestKey signs the JWS; it is bound to the quote by tpm_quote.
	RequestKey *rsa.PrivateKey
	// CertifiedKey, when set, is sent in other_keys with a TPM2_Certify by the AK.
	CertifiedKey *Key
	CustomClaims []CustomClaim
	// VSMReport, when set, makes att_type "vbs": the report is sent as
	// vsm_report.enclave.report and ReportHash receives SHA-512 of the
	// report_signed text first, so a caller can build an enclave report
	// bound to it.
	VSMReport func(reportHash [64]byte) ([]byte, error)
	// PCRMask selects the quoted PCRs; 0 means AllPCRs.
	PCRMask uint32
	// Alg signs the JWS: "PS256" (the default) or "RS256".
	Alg string
	// Mutate, for tests, changes the TPM evidence before it is signed.
	Mutate func(*Evidence)
	// Protocol is 2 (attReqV2, the default when 0) or 1 (attReq: the
	// evidence is a PCP platform claim, see BuildRequestV1).
	Protocol int
	// BootClaim, v1 only, is sent as boot_claim: a PlatformClaim taken at
	// boot (nil: none sent).
	BootClaim []byte
}

// CustomClaim is one custom_claims entry.
type CustomClaim struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueType string `json:"value_type"`
}

// Evidence is the TPM part of a request, exposed for Request.Mutate.
type Evidence struct {
	Quote *Quote // v2
	Log   []byte // v2: the TCG log; v1: srtm_boot_log
	// AIKPub is sent as aik_pub (the AK's key unless a test changes it).
	AIKPub crypto.PublicKey
	// Claim and BootClaim are v1's current_claim and boot_claim (PCP
	// platform attestation blobs, see PlatformClaim).
	Claim, BootClaim []byte
}

// BuildRequest quotes the PCRs with the request key's tpm_quote binding
// (qualifyingData = SHA-256(UTF8(jwk) || 0x00 || challenge)), certifies
// CertifiedKey, and returns the signed v2 request JWS.
//
// With r.Protocol 1 it builds a v1 request instead (BuildRequestV1).
func BuildRequest(ctx context.Context, t transport.TPM, r Request) (string, error) {
	if r.AK == nil || r.RequestKey == nil || len(r.Challenge) == 0 {
		return "", errors.New("tpmclient: AK, RequestKey and Challenge are required")
	}
	switch r.Protocol {
	case 0, 2:
	case 1:
		return BuildRequestV1(ctx, t, r)
	default:
		return "", fmt.Errorf("tpmclient: protocol %d: want 1 (attReq) or 2 (attReqV2)", r.Protocol)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwk, err := jose.JSONWebKey{Key: r.RequestKey.Public()}.MarshalJSON()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(jwk)
	h.Write([]byte{0})
	h.Write(r.Challenge)
	mask := r.PCRMask
	if mask == 0 {
		mask = AllPCRs
	}
	q, err := QuotePCRs(ctx, t, r.AK, h.Sum(nil), mask)
	if err != nil {
		return "", err
	}
	ev := &Evidence{Quote: q, Log: r.Log, AIKPub: r.AK.Pub}
	if r.Mutate != nil {
		r.Mutate(ev)
	}
	akJWK, err := jose.JSONWebKey{Key: ev.AIKPub}.MarshalJSON()
	if err != nil {
		return "", err
	}
	var values []map[string]any
	for i := 0; i < 24; i++ {
		if d, ok := ev.Quote.PCRs[i]; ok {
			values = append(values, map[string]any{"index": i, "digest": b64(d)})
		}
	}
	cur := map[string]any{
		"aik_pub":   json.RawMessage(akJWK),
		"pcrs":      []any{map[string]any{"algorithm": 11, "values": values}},
		"quote":     b64(ev.Quote.Attest),
		"signature": b64(ev.Quote.Signature),
	}
	if len(ev.Log) > 0 {
		cur["logs"] = []any{map[string]string{"type": "TCG", "log": b64(ev.Log)}}
	}
	if len(r.AIKCert) > 0 {
		cur["aik_cert"] = b64(r.AIKCert)
	}
	data := map[string]any{
		"challenge":       b64(r.Challenge),
		"service_context": r.ServiceContext,
		"tpm_att_data":    map[string]any{"current_attestation": cur},
		"request_key": map[string]any{
			"jwk":  json.RawMessage(jwk),
			"info": map[string]any{"tpm_quote": map[string]string{"hash_alg": "sha-256"}},
		},
	}
	r.addOptional(data)
	if k := r.CertifiedKey; k != nil {
		cert, sig, err := Certify(ctx, t, k, r.AK, r.Challenge)
		if err != nil {
			return "", err
		}
		kj, err := jose.JSONWebKey{Key: k.Pub}.MarshalJSON()
		if err != nil {
			return "", err
		}
		data["other_keys"] = []any{map[string]any{
			"jwk": json.RawMessage(kj),
			"info": map[string]any{"tpm_certify": map[string]string{
				"public": b64(k.PublicBytes), "certification": b64(cert), "signature": b64(sig)}},
		}}
	}
	return signRequest(r, abiTypV2, data)
}

// The request JWS "typ" values (abi.TypV1, abi.TypV2; not imported: the
// client does not depend on the service's packages).
const (
	abiTypV1 = "attReq"
	abiTypV2 = "attReqV2"
)

// signRequest wraps att_data (in report_signed with a VBS report when
// r.VSMReport is set: v2 sends it as vsm_report.enclave.report, v1 as the
// vsm_report string) and signs the JWS of type typ with r.RequestKey.
// addOptional adds the request's optional att_data members (rp_id,
// rp_data, custom_claims), the same in v1 and v2.
func (r Request) addOptional(data map[string]any) {
	if r.RPID != "" {
		data["rp_id"] = r.RPID
	}
	if r.RPData != nil {
		data["rp_data"] = base64.RawURLEncoding.EncodeToString(r.RPData)
	}
	if len(r.CustomClaims) > 0 {
		data["custom_claims"] = r.CustomClaims
	}
}

func signRequest(r Request, typ string, data map[string]any) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	payload := map[string]any{"att_type": "basic", "att_data": data}
	if r.VSMReport != nil {
		signed, err := json.Marshal(data)
		if err != nil {
			return "", err
		}
		report, err := r.VSMReport(sha512.Sum512(signed))
		if err != nil {
			return "", err
		}
		var vsm any = map[string]any{"enclave": map[string]string{"report": b64(report)}}
		if typ == abiTypV1 {
			vsm = b64(report)
		}
		payload = map[string]any{"att_type": "vbs", "att_data": map[string]any{
			"report_signed": json.RawMessage(signed),
			"vsm_report":    vsm,
		}}
	}
	pb, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	alg := r.Alg
	if alg == "" {
		alg = "PS256"
	}
	input := b64([]byte(`{"alg":"`+alg+`","typ":"`+typ+`"}`)) + "." + b64(pb)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch alg {
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, r.RequestKey, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, r.RequestKey, crypto.SHA256, sum[:])
	default:
		return "", fmt.Errorf("tpmclient: request JWS alg %q: PS256 or RS256", alg)
	}
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// runQuote runs TPM2_Quote with ak over the SHA-256 bank's PCRs in mask,
// nonce as qualifyingData, in the AK's own signing scheme.
func runQuote(t transport.TPM, ak *Key, nonce []byte, mask uint32) (*tpm2.QuoteResponse, error) {
	rsp, err := tpm2.Quote{
		SignHandle:     ak.auth(),
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      pcrSelection(tpm2.TPMAlgSHA256, mask),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_Quote: %w", err)
	}
	return rsp, nil
}
