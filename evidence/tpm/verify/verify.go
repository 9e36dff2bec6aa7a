package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
)

// DefaultRequiredPCRMask is MAA's default required_pcr_mask: PCRs 0–23.
const DefaultRequiredPCRMask uint32 = 0xFFFFFF

// Options are the verification inputs besides the request. A zero Options
// trusts no AIK. Options are read, never written.
type Options struct {
	// Roots are the TPM EK/AK CA roots an AIK certificate must chain to
	// (e.g. a cloud vTPM root). nil: no certificate validates.
	Roots *x509.CertPool
	// Intermediates may help build the chain (the request carries only the
	// AIK certificate).
	Intermediates *x509.CertPool
	// TrustedAKs are AIK public keys trusted without a certificate (an
	// enrolled machine): a request whose AIK is one of them is validated.
	TrustedAKs []crypto.PublicKey
	// Now is the time certificates are checked at. Required when Roots is
	// set (a zero Now is an error, never "the current time").
	Now time.Time
	// AllowUnvalidatedAIK is the policy's require_valid_aik_cert = false:
	// an AIK that does not validate gives aikValidated = false instead of an
	// error. The quote must still be signed by the AIK the request names.
	AllowUnvalidatedAIK bool
	// RequiredPCRMask is required_pcr_mask (bit n: PCR n must be quoted in
	// some bank). nil: DefaultRequiredPCRMask.
	RequiredPCRMask *uint32
	// VBSSigningKeys are the VSM identity keys (IDK_S) whose signatures on
	// VBS enclave reports are accepted. None: VBS requests are refused (see
	// the package doc).
	VBSSigningKeys []*rsa.PublicKey
}

// OptionsFromProperties applies the policy's configuration-rule properties
// (require_valid_aik_cert, required_pcr_mask) to base and returns the result.
func OptionsFromProperties(base Options, props map[string]any) (Options, error) {
	o := base
	if v, ok := props["require_valid_aik_cert"]; ok {
		b, ok := v.(bool)
		if !ok {
			return o, evidence.Errorf(CheckOptions, "require_valid_aik_cert is %T, want a Boolean", v)
		}
		o.AllowUnvalidatedAIK = !b
	}
	if v, ok := props["required_pcr_mask"]; ok {
		n, ok := v.(int64)
		if !ok || n < 0 || n > 0xFFFFFFFF {
			return o, evidence.Errorf(CheckOptions, "required_pcr_mask is %v, want an Integer 0…0xFFFFFFFF", v)
		}
		m := uint32(n)
		o.RequiredPCRMask = &m
	}
	return o, nil
}

// KeyResult is a verified key object (request_key or an other_keys entry).
type KeyResult struct {
	JWK     []byte           // the exact JWK text
	Key     crypto.PublicKey // the key
	Binding string           // "tpm_quote", "tpm_certify", "vbs_report" (v1 vbs) or "" (not bound to the TPM)
	// Policy is the "policy key object" of the VBS protocol doc: jwk and,
	// for tpm_quote, info.tpm_quote.hash_alg; for tpm_certify,
	// info.tpm_certify.{name_alg, obj_attr, auth_policy}.
	Policy map[string]any
}

// Result is what VerifyRequest established.
type Result struct {
	Version      int
	AttType      string
	AIK          crypto.PublicKey
	AIKCert      *x509.Certificate // nil when the request sent none
	AIKValidated bool
	Quote        *QuoteResult
	Log          *eventlog.Log // nil when the request sent no TCG log
	BootQuote    *QuoteResult  // boot_attestation, when sent
	BootLog      *eventlog.Log
	RequestKey   KeyResult
	OtherKeys    []KeyResult
	VBS          *abi.VBSReport // att_type vbs
	RPID         string
	RPData       []byte
	CustomClaims []abi.CustomClaim
}

// VerifyRequest verifies a parsed request against the challenge the service
// issued for it (from the sealed service_context). It checks, in order: the
// JWS signature by the key the request carries, the challenge, the AIK,
// the current quote (signature, qualifying data, PCR digest, required PCR
// mask), the TCG logs' replay (replayLogs: every quoted PCR explained),
// the request key's binding, other keys' certifications, the boot
// attestation (same AIK, same boot: sameBoot) and the VBS report.
func VerifyRequest(ctx context.Context, req *abi.Request, challenge []byte, opts Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(challenge) == 0 {
		return nil, evidence.Errorf(CheckOptions, "no challenge to verify against")
	}
	switch req.Version {
	case 1:
		return verifyV1(req, challenge, opts)
	case 2:
	default:
		return nil, evidence.Errorf(CheckUnsupported, "request version %d", req.Version)
	}
	d := &req.Data
	if d.SigningKey == nil || d.TPM.Current == nil {
		return nil, evidence.Errorf(CheckRequest, "request_key and current_attestation are required")
	}
	if err := verifyJWS(req, d.SigningKey.JWK.Key); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(d.Challenge, challenge) != 1 {
		return nil, evidence.Errorf(CheckChallenge, "the request's challenge is not the one issued for this service_context")
	}
	res := &Result{Version: req.Version, AttType: req.AttType, RPID: d.RPID, RPData: bytes.Clone(d.RPData), CustomClaims: d.CustomClaims}
	cur := d.TPM.Current
	ak, cert, validated, err := establishAIK(cur.AIKCert, cur.AIKPub, opts)
	if err != nil {
		return nil, err
	}
	res.AIK, res.AIKCert, res.AIKValidated = ak, cert, validated

	// The request key must be bound to the TPM: by the quote's
	// qualifyingData (tpm_quote) or by a TPM2_Certify (then the quote's
	// qualifyingData is the challenge itself).
	rk := d.SigningKey
	nonce := challenge
	switch {
	case rk.Quote != nil:
		h, err := bindingHash(rk.Quote.HashAlg)
		if err != nil {
			return nil, evidence.Errorf(CheckKeyBinding, "%v", err)
		}
		hh := h.New()
		hh.Write(rk.JWK.Raw)
		hh.Write([]byte{0})
		hh.Write(challenge)
		nonce = hh.Sum(nil)
	case rk.Certify != nil:
	default:
		return nil, evidence.Errorf(CheckKeyBinding, "request_key has neither info.tpm_quote nor info.tpm_certify: it is not bound to the TPM")
	}
	q, err := VerifyQuote(ak, cur.Quote, cur.Signature, nonce, cur.PCRs)
	if err != nil {
		return nil, err
	}
	mask := DefaultRequiredPCRMask
	if opts.RequiredPCRMask != nil {
		mask = *opts.RequiredPCRMask
	}
	if missing := mask &^ q.Mask; missing != 0 {
		return nil, evidence.Errorf(CheckPCRMask, "required_pcr_mask %#x: PCRs %v are not quoted", mask, maskString(missing))
	}
	res.Quote = q
	if res.Log, err = replayLogs(cur.Logs, q.PCRs); err != nil {
		return nil, err
	}
	if res.RequestKey, err = verifyKey(rk, ak, challenge); err != nil {
		return nil, err
	}
	for i := range d.OtherKeys {
		k, err := verifyKey(&d.OtherKeys[i], ak, challenge)
		if err != nil {
			return nil, err
		}
		res.OtherKeys = append(res.OtherKeys, k)
	}
	if boot := d.TPM.Boot; boot != nil {
		// The boot quote was taken before a hibernation, so it cannot carry
		// this challenge; it must be signed by the same AIK and its PCR
		// values and logs must be consistent.
		a, err := abi.ParseAttest(boot.Quote)
		if err != nil {
			return nil, &evidence.Error{Check: CheckQuote, Err: fmt.Errorf("boot_attestation: %w", err)}
		}
		bq, err := VerifyQuote(ak, boot.Quote, boot.Signature, a.ExtraData.Buffer, boot.PCRs)
		if err != nil {
			return nil, err
		}
		if err := sameBoot(bq, q, "boot_attestation", "current_attestation"); err != nil {
			return nil, err
		}
		res.BootQuote = bq
		if res.BootLog, err = replayLogs(boot.Logs, bq.PCRs); err != nil {
			return nil, fmt.Errorf("boot_attestation: %w", err)
		}
	}
	if req.AttType == abi.AttTypeVBS {
		if res.VBS, err = verifyVBS(req, opts); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func bindingHash(name string) (crypto.Hash, error) {
	switch name {
	case "sha-1":
		return crypto.SHA1, nil
	case "sha-256":
		return crypto.SHA256, nil
	case "sha-384":
		return crypto.SHA384, nil
	case "sha-512":
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("tpm_quote.hash_alg %q is not supported", name)
}

// verifyJWS checks the request's JWS signature (PS256 or RS256) with key.
func verifyJWS(req *abi.Request, key crypto.PublicKey) error {
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return evidence.Errorf(CheckRequestSignature, "alg %s needs an RSA signing key, the request key is %T", req.Alg, key)
	}
	sum := sha256.Sum256(req.SigningInput)
	var err error
	if req.Alg == "PS256" {
		// RFC 7518 §3.5: the salt is as long as the hash.
		err = rsa.VerifyPSS(pub, crypto.SHA256, sum[:], req.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], req.Signature)
	}
	if err != nil {
		return evidence.Errorf(CheckRequestSignature, "the JWS is not signed by its request key: %v", err)
	}
	return nil
}

// establishAIK finds the AIK (aik_cert's key, which aik_pub must equal
// when both are sent, or aik_pub) and whether it is validated: a
// certificate that chains to opts.Roots, or a key in opts.TrustedAKs. v1
// and v2 requests carry the same two members.
func establishAIK(aikCert []byte, aikPub *abi.JWK, opts Options) (crypto.PublicKey, *x509.Certificate, bool, error) {
	var key crypto.PublicKey
	var cert *x509.Certificate
	var chainErr error
	if len(aikCert) > 0 {
		c, err := x509.ParseCertificate(aikCert)
		if err != nil {
			return nil, nil, false, evidence.Errorf(CheckAIKChain, "aik_cert: %v", err)
		}
		cert, key = c, c.PublicKey
		if aikPub != nil && !samePublicKey(aikPub.Key, key) {
			return nil, nil, false, evidence.Errorf(CheckAIKKey, "aik_pub is not the key of aik_cert")
		}
		chainErr = verifyChain(c, opts)
	} else if aikPub != nil {
		key = aikPub.Key
		chainErr = errors.New("no aik_cert was sent")
	} else {
		return nil, nil, false, evidence.Errorf(CheckAIKKey, "the attestation has neither aik_cert nor aik_pub")
	}
	if chainErr == nil {
		return key, cert, true, nil
	}
	for _, t := range opts.TrustedAKs {
		if samePublicKey(t, key) {
			return key, cert, true, nil
		}
	}
	if opts.AllowUnvalidatedAIK {
		return key, cert, false, nil
	}
	return nil, nil, false, evidence.Errorf(CheckAIKChain, "the AIK is not trusted: %v, and it is not a configured trusted AK", chainErr)
}

func verifyChain(c *x509.Certificate, opts Options) error {
	if opts.Roots == nil {
		return errors.New("no TPM roots are configured")
	}
	if opts.Now.IsZero() {
		return evidence.Errorf(CheckOptions, "Options.Now is zero")
	}
	c = acceptTCGSubjectAltName(c)
	_, err := c.Verify(x509.VerifyOptions{
		Roots: opts.Roots, Intermediates: opts.Intermediates, CurrentTime: opts.Now,
		// AK certificates carry TCG-specific or no extended key usages.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("aik_cert does not chain to a configured root: %w", err)
	}
	return nil
}

// oidSubjectAltName is id-ce-subjectAltName.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// acceptTCGSubjectAltName returns c, or a shallow copy of c whose critical
// subjectAltName no longer counts as unhandled when it is a well-formed
// GeneralNames made only of directoryName entries. TCG's EK/AK credential
// profile (§3.2.9) puts the TPM manufacturer, model and version there as a
// directoryName and marks the extension critical because the subject is
// empty or generic; crypto/x509 does not interpret directoryName SANs and
// would otherwise refuse every such certificate. Names are not used for
// authorisation here, so accepting them unread loses nothing.
func acceptTCGSubjectAltName(c *x509.Certificate) *x509.Certificate {
	idx := -1
	for i, oid := range c.UnhandledCriticalExtensions {
		if oid.Equal(oidSubjectAltName) {
			idx = i
		}
	}
	if idx < 0 {
		return c
	}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &names); err != nil || len(rest) != 0 || len(names) == 0 {
			return c
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != 4 { // directoryName [4]
				return c
			}
		}
	}
	cc := *c
	cc.UnhandledCriticalExtensions = append(append([]asn1.ObjectIdentifier(nil), c.UnhandledCriticalExtensions[:idx]...), c.UnhandledCriticalExtensions[idx+1:]...)
	return &cc
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// imaPCR is the PCR Linux IMA extends (CONFIG_IMA_MEASURE_PCR_IDX).
const imaPCR = 10

// replayLogs replays the request's TCG logs (combined, in order) against
// the quoted PCRs and requires every quoted PCR they measure nothing into
// to hold its reset value (unexplained, as v1), so that leaving all of
// a PCR's events out of the unsigned log cannot make a claim read their
// absence. No TCG log: nil, and no claim reads events.
//
// PCR 10 is exempt from that rule. Linux IMA extends it after boot and
// records that in its own measurement list, never in the TCG log, so on a
// Linux machine running IMA the TCG log explains nothing of PCR 10 and
// the rule would refuse it — whether or not the client also sends its IMA
// list (the real GCE COS vector carries none; the default
// required_pcr_mask quotes PCR 10). Replaying the IMA list against PCR 10
// is not done either: its binary format only carries the SHA-1 template
// hash, and what a kernel extends into the SHA-256 bank (the zero-padded
// SHA-1 before Linux 5.8, a per-bank hash of the template data since,
// 0xFF… for violations) depends on kernel version and template, and IMA
// appends to its list and extends PCR 10 non-atomically, so a list read
// around the quote may run past it; a replay written here would refuse
// real machines it misjudges, and the wire contract does not say which
// list format (binary or ASCII) a client sends. The exemption gives no
// claim away: the rule protects claims read from TCG log events, firmware
// and Windows measure nothing into PCR 10, IMA entries are not read, so no
// claim rests on PCR 10's events (events the TCG log does carry for PCR 10
// must still replay), and PCR 10's quoted value reaches policy as "pcrs",
// authenticated by the quote.
func replayLogs(logs []abi.Log, pcrs []eventlog.PCR) (*eventlog.Log, error) {
	var tcg [][]byte
	for _, l := range logs {
		if l.Type == "TCG" {
			tcg = append(tcg, l.Data)
		}
	}
	if len(tcg) == 0 {
		return nil, nil
	}
	raw := tcg[0]
	if len(tcg) > 1 {
		var err error
		if raw, err = attest.AppendEvents(tcg[0], tcg[1:]...); err != nil {
			return nil, evidence.Errorf(CheckEventLogReplay, "combining %d TCG logs: %v", len(tcg), err)
		}
	}
	return ReplayQuotedPCRs(raw, pcrs)
}

// ReplayQuotedPCRs replays a TCG log against the quoted PCRs and refuses
// (CheckEventLogReplay) one that does not replay or that measures nothing
// into a quoted PCR whose value is not its reset value, PCRs 17–22
// (dynamic launch, logged in a DRTM log) and PCR 10 (Linux IMA, logged in
// IMA's list) aside: the rule of v2's replayLogs (see there), which
// AzureGuest's vTPM quote and log follow too. v1 requests, from Windows
// only, do not exempt PCR 10.
func ReplayQuotedPCRs(raw []byte, pcrs []eventlog.PCR) (*eventlog.Log, error) {
	return replayExplained(raw, pcrs, func(i int) bool { return isDRTM(i) || i == imaPCR })
}

// verifyKey checks a key object's binding and builds its policy object.
func verifyKey(k *abi.Key, ak crypto.PublicKey, challenge []byte) (KeyResult, error) {
	r := KeyResult{JWK: bytes.Clone(k.JWK.Raw), Key: k.JWK.Key, Policy: map[string]any{"jwk": jsonRaw(k.JWK.Raw)}}
	switch {
	case k.Quote != nil:
		r.Binding = "tpm_quote"
		r.Policy["info"] = map[string]any{"tpm_quote": map[string]any{"hash_alg": k.Quote.HashAlg}}
	case k.Certify != nil:
		info, err := VerifyCertify(ak, k.Certify, k.JWK.Key, challenge)
		if err != nil {
			return r, err
		}
		r.Binding = "tpm_certify"
		r.Policy["info"] = map[string]any{"tpm_certify": info}
	}
	return r, nil
}

// VerifyCertify checks a tpm_certify binding: certification is a
// TPMS_ATTEST of type CERTIFY signed by the AIK, whose qualifyingData is the
// challenge and whose certified Name is the Name of public (the key's
// TPMT_PUBLIC), and public's key is jwkKey. It returns the policy view
// {name_alg, obj_attr, auth_policy}.
func VerifyCertify(ak crypto.PublicKey, c *abi.CertifyBinding, jwkKey crypto.PublicKey, challenge []byte) (map[string]any, error) {
	pub, err := abi.ParsePublic(c.Public)
	if err != nil {
		return nil, &evidence.Error{Check: CheckCertify, Err: err}
	}
	a, err := abi.ParseAttest(c.Certification)
	if err != nil {
		return nil, &evidence.Error{Check: CheckCertify, Err: err}
	}
	if a.Type != tpm2.TPMSTAttestCertify {
		return nil, evidence.Errorf(CheckCertify, "certification type %#x, want TPM_ST_ATTEST_CERTIFY", uint16(a.Type))
	}
	if err := VerifySignature(CheckCertify, ak, c.Certification, c.Signature); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(a.ExtraData.Buffer, challenge) != 1 {
		return nil, evidence.Errorf(CheckCertify, "certification qualifyingData is not the challenge")
	}
	info, err := a.Attested.Certify()
	if err != nil {
		return nil, &evidence.Error{Check: CheckCertify, Err: err}
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, evidence.Errorf(CheckCertify, "computing the key's Name: %v", err)
	}
	if !bytes.Equal(name.Buffer, info.Name.Buffer) {
		return nil, evidence.Errorf(CheckCertify, "the certified Name is not the Name of the sent TPMT_PUBLIC")
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, evidence.Errorf(CheckCertify, "TPMT_PUBLIC key: %v", err)
	}
	if !samePublicKey(k, jwkKey) {
		return nil, evidence.Errorf(CheckCertify, "the certified TPMT_PUBLIC is not the key of the jwk")
	}
	attr := binary.BigEndian.Uint32(tpm2.Marshal(pub.ObjectAttributes))
	out := map[string]any{"name_alg": int64(pub.NameAlg), "obj_attr": int64(attr)}
	if len(pub.AuthPolicy.Buffer) > 0 {
		out["auth_policy"] = base64.RawURLEncoding.EncodeToString(pub.AuthPolicy.Buffer)
	}
	return out, nil
}

func verifyVBS(req *abi.Request, opts Options) (*abi.VBSReport, error) {
	r, err := abi.ParseVBSReport(req.VSMReport)
	if err != nil {
		return nil, &evidence.Error{Check: CheckVBSReport, Err: err}
	}
	want := sha512.Sum512(req.ReportSigned)
	if subtle.ConstantTimeCompare(r.EnclaveData[:], want[:]) != 1 {
		return nil, evidence.Errorf(CheckVBSReport, "EnclaveData is not SHA-512(report_signed)")
	}
	if len(opts.VBSSigningKeys) == 0 {
		return nil, evidence.Errorf(CheckVBSReport, "no VSM identity key is configured to verify the report signature")
	}
	sum := sha256.Sum256(r.SignedStatement)
	for _, k := range opts.VBSSigningKeys {
		if rsa.VerifyPSS(k, crypto.SHA256, sum[:], r.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
			return r, nil
		}
	}
	return nil, evidence.Errorf(CheckVBSReport, "the report signature does not verify with a configured VSM identity key")
}

// jsonRaw marks already-encoded JSON for the policy object.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }
