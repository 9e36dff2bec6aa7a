// Package azureguest verifies MAA's AzureGuest evidence: the guest
// attestation of an Azure confidential VM (SEV-SNP isolated) or Trusted
// Launch VM (maa-api.md §8). The chain is
//
//	hardware evidence (SNP report → VCEK → AMD root, package evidence/snp)
//	→ REPORT_DATA[0:32] = SHA-256(HCL runtime JSON)
//	→ its HCLAkPub is the AK (AikPub and the AK certificate must agree)
//	→ the AK signed the vTPM quote → the reported PCRs
//	→ the TCG log replays to them → boot claims
//
// and, for the answer, the AK certified (TPM2_Certify) a TPM-resident
// decryption key: the token is AES-GCM encrypted and its key wrapped to that
// key, so only the attested vTPM can read it. The quote carries no
// service challenge in this protocol (the real client quotes without
// qualifying data); freshness comes from that sealing: a replayed
// AttestationInfo earns a token that only the original vTPM can decrypt.
//
// The AK's attributes are not part of the evidence (AikPub's TPMT_PUBLIC
// is the client's word: nothing signs it); that HCLAkPub is a restricted
// signing key, so the guest cannot have it sign a forged TPMS_ATTEST, is
// the paravisor's guarantee (its AK template: restricted, sign, fixedTPM,
// RSASSA-SHA256), vouched for by the hardware report that binds it.
//
// TDX-isolated VMs send a TD quote instead (package evidence/tdx), whose
// REPORTDATA[0:32] binds the same runtime JSON. Trusted Launch VMs (no
// hardware isolation) have no HCL binding: their AK is trusted only
// through an AK certificate that chains to a configured root.
package azureguest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/evidence/azureguest/hcl"
	"github.com/attestd/attestd/evidence/snp"
	snpabi "github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/evidence/tdx"
	tpmabi "github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
	tpmverify "github.com/attestd/attestd/evidence/tpm/verify"
)

// Checks named by this package; the quote's checks are evidence/tpm/verify's
// (tpm.quote, tpm.quote.signature, tpm.pcr.digest, tpm.eventlog.replay) and
// the SNP report's evidence/snp's.
const (
	// CheckParse: the AttestationInfo or its hardware evidence is malformed.
	CheckParse evidence.Check = "azureguest.parse"
	// CheckIsolation: the isolation type cannot be verified by this
	// configuration (SevSnp or Tdx with the SNP or TDX verifier disabled).
	CheckIsolation evidence.Check = "azureguest.isolation"
	// CheckRuntimeBinding: SHA-256 of the HCL runtime JSON is not the
	// hardware report's REPORT_DATA[0:32].
	CheckRuntimeBinding evidence.Check = "azureguest.runtime.binding"
	// CheckRuntime: the runtime JSON is malformed or has no usable HCLAkPub.
	CheckRuntime evidence.Check = "azureguest.runtime"
	// CheckAKBinding: AikPub or the AK certificate's key is not HCLAkPub.
	CheckAKBinding evidence.Check = "azureguest.ak.binding"
	// CheckAKCert: the AK certificate does not chain to a configured root
	// (or, for Trusted Launch, none was sent or none is configured).
	CheckAKCert evidence.Check = "azureguest.ak.cert"
	// CheckTCGLog: the request carries no TCG log (the boot claims need it).
	CheckTCGLog evidence.Check = "azureguest.tcglog"
	// CheckEncKey: the ephemeral encryption key is malformed, unfit, or not
	// certified by the AK.
	CheckEncKey evidence.Check = "azureguest.enckey"
	// CheckClientPayload: ClientPayload is not a JSON object.
	CheckClientPayload evidence.Check = "azureguest.clientpayload"
)

// Options configure a Verifier. Zero Options verify nothing: no hardware
// evidence (SNP nil) and no AK certificate roots.
type Options struct {
	// SNP verifies the SEV-SNP report of SevSnp-isolated VMs (the "snp"
	// block's trust). nil: SevSnp isolation is refused.
	SNP *snp.Verifier
	// TDX verifies the TD quote of Tdx-isolated VMs (the "tdx" and
	// "collateral" blocks' trust). nil: Tdx isolation is refused.
	TDX *tdx.Verifier
	// AKRoots are the roots an AK certificate must chain to (Azure's vTPM
	// AK CA). nil: an AK certificate is checked only for its key, and
	// Trusted Launch VMs are refused.
	AKRoots         *x509.CertPool
	AKIntermediates *x509.CertPool
}

// Verifier verifies AzureGuest evidence. Safe for concurrent use.
type Verifier struct{ opts Options }

// New returns a Verifier.
func New(opts Options) *Verifier { return &Verifier{opts: opts} }

// Evidence is parsed AzureGuest evidence.
type Evidence struct {
	Info *envelope.AttestationInfo
	// SNP is the parsed hardware evidence of a SevSnp-isolated VM, TDX
	// the TD quote of a Tdx-isolated one.
	SNP *snpabi.Evidence
	TDX *tdx.Evidence
}

// Parse parses the AttestationInfo JSON (structure only).
func Parse(b []byte) (*Evidence, error) {
	ai, err := envelope.Parse(b)
	if err != nil {
		return nil, &evidence.Error{Check: CheckParse, Err: err}
	}
	ev := &Evidence{Info: ai}
	switch ai.Isolation.Type {
	case envelope.IsolationSevSnp:
		if ev.SNP, err = snp.Parse(ai.Isolation.Proof); err != nil {
			return nil, &evidence.Error{Check: CheckParse, Err: fmt.Errorf("IsolationInfo.Evidence.Proof: %w", err)}
		}
	case envelope.IsolationTdx:
		if ev.TDX, err = tdx.Parse(ai.Isolation.Proof); err != nil {
			return nil, &evidence.Error{Check: CheckParse, Err: fmt.Errorf("IsolationInfo.Evidence.Proof: %w", err)}
		}
	}
	return ev, nil
}

// Platform is what VerifyPlatform established: hardware → runtime → AK → quote.
type Platform struct {
	Evidence *Evidence
	SNP      *snp.Verified // set for SevSnp isolation
	TDX      *tdx.Verified // set for Tdx isolation
	Runtime  *hcl.Runtime  // nil without hardware isolation
	AK       *rsa.PublicKey
	// AKCertValidated: an AK certificate chained to a configured root.
	AKCertValidated bool
	Quote           *tpmverify.QuoteResult
}

// VerifyPlatform verifies the chain from the hardware evidence to the vTPM
// quote at instant now. It does not look at the TCG log or the encryption
// key (the real vectors carry neither); Verify does.
func (v *Verifier) VerifyPlatform(ctx context.Context, ev *Evidence, now time.Time) (*Platform, error) {
	// Checked here, not only by the hardware verifiers: a Trusted Launch
	// VM has no hardware evidence, so nothing else would see the context
	// (found by evidence/verifiertest's Cancelled).
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if now.IsZero() {
		return nil, evidence.Errorf(evidence.CheckVerificationTime, "azureguest: zero verification time (Request.Now is required)")
	}
	ai := ev.Info
	p := &Platform{Evidence: ev}
	switch ai.Isolation.Type {
	case envelope.IsolationSevSnp:
		if v.opts.SNP == nil {
			return nil, evidence.Errorf(CheckIsolation, "SevSnp isolation: the SEV-SNP verifier is disabled (snp.disabled)")
		}
		vd, err := v.opts.SNP.Verify(ctx, ev.SNP, now)
		if err != nil {
			return nil, err
		}
		p.SNP = vd
		if err := p.bindRuntime(snp.ReportData(vd), "SNP report's REPORT_DATA"); err != nil {
			return nil, err
		}
	case envelope.IsolationTdx:
		if v.opts.TDX == nil {
			return nil, evidence.Errorf(CheckIsolation, "Tdx isolation: the TDX verifier is disabled (tdx.disabled)")
		}
		vd, err := v.opts.TDX.VerifyEvidence(ctx, ev.TDX, now)
		if err != nil {
			return nil, err
		}
		p.TDX = vd
		if err := p.bindRuntime(ev.TDX.Quote.Body.ReportData[:], "TD quote's REPORTDATA"); err != nil {
			return nil, err
		}
	default: // Trusted Launch
		if v.opts.AKRoots == nil {
			return nil, evidence.Errorf(CheckAKCert, "a VM without hardware isolation (Trusted Launch) is trusted only through its AK certificate, and no AK roots are configured (azureguest.ak_roots)")
		}
	}
	if len(ai.TPM.AikPub) > 0 {
		pub, err := parsePublic(ai.TPM.AikPub)
		if err != nil {
			return nil, evidence.Errorf(CheckAKBinding, "AikPub: %v", err)
		}
		k, err := rsaKey(pub)
		if err != nil {
			return nil, evidence.Errorf(CheckAKBinding, "AikPub: %v", err)
		}
		if p.AK == nil {
			p.AK = k
		} else if !p.AK.Equal(k) {
			return nil, evidence.Errorf(CheckAKBinding, "AikPub is not the HCLAkPub of the runtime data")
		}
	}
	if len(ai.TPM.AikCert) > 0 {
		c, err := x509.ParseCertificate(firstDER(ai.TPM.AikCert))
		if err != nil {
			return nil, evidence.Errorf(CheckAKCert, "AikCert: %v", err)
		}
		k, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, evidence.Errorf(CheckAKBinding, "AikCert holds a %T, want the RSA AK", c.PublicKey)
		}
		if p.AK == nil {
			p.AK = k
		} else if !p.AK.Equal(k) {
			return nil, evidence.Errorf(CheckAKBinding, "the AK certificate's key is not the AK")
		}
		if v.opts.AKRoots != nil {
			if _, err := c.Verify(x509.VerifyOptions{Roots: v.opts.AKRoots, Intermediates: v.opts.AKIntermediates, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return nil, evidence.Errorf(CheckAKCert, "the AK certificate does not chain to a configured root: %v", err)
			}
			p.AKCertValidated = true
		}
	}
	if p.Runtime == nil && !p.AKCertValidated {
		return nil, evidence.Errorf(CheckAKCert, "a VM without hardware isolation (Trusted Launch) must send an AK certificate that chains to a configured root")
	}
	if p.AK == nil {
		return nil, evidence.Errorf(CheckAKBinding, "no AK: neither HCLAkPub, AikPub nor AikCert")
	}
	a, err := tpmabi.ParseAttest(ai.TPM.PcrQuote)
	if err != nil {
		return nil, &evidence.Error{Check: tpmverify.CheckQuote, Err: err}
	}
	bank := tpmabi.PCRBank{Algorithm: uint16(tpm2.TPMAlgSHA256)}
	for _, pcr := range ai.TPM.PCRs {
		bank.Values = append(bank.Values, tpmabi.PCRValue{Index: pcr.Index, Digest: pcr.Digest})
	}
	// The protocol has no service challenge: the quote's qualifying data
	// is whatever the client chose (see the package doc).
	q, err := tpmverify.VerifyQuote(p.AK, ai.TPM.PcrQuote, signature(ai.TPM.PcrSignature, p.AK), a.ExtraData.Buffer, []tpmabi.PCRBank{bank})
	if err != nil {
		return nil, err
	}
	p.Quote = q
	return p, nil
}

// firstDER returns the first DER element of b: the AK certificate is read
// from an NV index that may be larger than the certificate, and what
// follows it is padding no signature covers.
func firstDER(b []byte) []byte {
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(b, &v)
	if err != nil {
		return b // let the certificate parser name the problem
	}
	return b[:len(b)-len(rest)]
}

// bindRuntime checks SHA-256(runtime JSON) = reportData[0:32] and takes
// HCLAkPub from the runtime JSON as the AK.
func (p *Platform) bindRuntime(reportData []byte, what string) error {
	raw := p.Evidence.Info.Isolation.RuntimeData
	sum := sha256.Sum256(raw)
	if len(reportData) < 32 || subtle.ConstantTimeCompare(reportData[:32], sum[:]) != 1 {
		return evidence.Errorf(CheckRuntimeBinding, "SHA-256 of the HCL runtime data (%x) is not the %s[0:32]", sum[:], what)
	}
	rt, err := hcl.ParseRuntime(raw)
	if err != nil {
		return &evidence.Error{Check: CheckRuntime, Err: err}
	}
	if p.AK, err = rt.Key(hcl.KeyAK); err != nil {
		return &evidence.Error{Check: CheckRuntime, Err: err}
	}
	p.Runtime = rt
	return nil
}

// signature returns sig as a TPMT_SIGNATURE: the real client sends only
// the signature octets of the AK's RSASSA-SHA256 scheme (Azure's AK
// template), which are exactly the modulus size; anything else must
// already be a TPMT_SIGNATURE.
func signature(sig []byte, ak *rsa.PublicKey) []byte {
	if len(sig) != ak.Size() {
		return sig
	}
	return tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: sig}})})
}

// parsePublic reads a TPM2B_PUBLIC (what TPM2_ReadPublic and
// TPM2_CreatePrimary return; the real client's AikPub is a whole
// ReadPublic response, whose names follow the TPM2B_PUBLIC and are not
// used) or a bare TPMT_PUBLIC. It returns the TPMT_PUBLIC bytes too, whose
// Name TPM2_Certify attests.
func parsePublic(b []byte) (*tpm2.TPMTPublic, error) {
	pub, _, err := parsePublicBytes(b)
	return pub, err
}

func parsePublicBytes(b []byte) (*tpm2.TPMTPublic, []byte, error) {
	if len(b) >= 2 {
		if n := int(binary.BigEndian.Uint16(b)); n > 0 && n <= len(b)-2 {
			if pub, err := tpmabi.ParsePublic(b[2 : 2+n]); err == nil {
				return pub, b[2 : 2+n], nil
			}
		}
	}
	pub, err := tpmabi.ParsePublic(b)
	if err != nil {
		return nil, nil, err
	}
	return pub, b, nil
}

func rsaKey(pub *tpm2.TPMTPublic) (*rsa.PublicKey, error) {
	if pub.Type != tpm2.TPMAlgRSA {
		return nil, fmt.Errorf("key type %#x, want RSA", uint16(pub.Type))
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, err
	}
	r, ok := k.(*rsa.PublicKey)
	if !ok || r.N.BitLen() < 2048 {
		return nil, errors.New("not an RSA key of at least 2048 bits")
	}
	return r, nil
}

// verifyEncKey checks the ephemeral key: a TPM-generated, non-duplicable,
// unrestricted RSA decryption key (no signing) whose Name the AK
// certified. Only then is the token key wrapped to it.
func verifyEncKey(ai *envelope.AttestationInfo, ak *rsa.PublicKey) (*rsa.PublicKey, error) {
	t := &ai.TPM
	if len(t.EncKeyPub) == 0 || len(t.EncKeyCertifyInfo) == 0 || len(t.EncKeyCertifyInfoSignature) == 0 {
		return nil, evidence.Errorf(CheckEncKey, "EncKeyPub, EncKeyCertifyInfo and EncKeyCertifyInfoSignature are required (the token is sealed to that key)")
	}
	pub, _, err := parsePublicBytes(t.EncKeyPub)
	if err != nil {
		return nil, evidence.Errorf(CheckEncKey, "EncKeyPub: %v", err)
	}
	at := pub.ObjectAttributes
	if !at.Decrypt || at.SignEncrypt || at.Restricted || !at.FixedTPM || !at.FixedParent || !at.SensitiveDataOrigin {
		return nil, evidence.Errorf(CheckEncKey, "EncKeyPub is not a TPM-generated, fixedTPM/fixedParent, unrestricted decryption-only key")
	}
	key, err := rsaKey(pub)
	if err != nil {
		return nil, evidence.Errorf(CheckEncKey, "EncKeyPub: %v", err)
	}
	a, err := tpmabi.ParseAttest(t.EncKeyCertifyInfo)
	if err != nil {
		return nil, evidence.Errorf(CheckEncKey, "EncKeyCertifyInfo: %v", err)
	}
	if a.Type != tpm2.TPMSTAttestCertify {
		return nil, evidence.Errorf(CheckEncKey, "EncKeyCertifyInfo type %#x, want TPM_ST_ATTEST_CERTIFY", uint16(a.Type))
	}
	if err := tpmverify.VerifySignature(CheckEncKey, ak, t.EncKeyCertifyInfo, signature(t.EncKeyCertifyInfoSignature, ak)); err != nil {
		return nil, err
	}
	info, err := a.Attested.Certify()
	if err != nil {
		return nil, evidence.Errorf(CheckEncKey, "EncKeyCertifyInfo: %v", err)
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, evidence.Errorf(CheckEncKey, "the key's Name: %v", err)
	}
	if !bytes.Equal(name.Buffer, info.Name.Buffer) {
		return nil, evidence.Errorf(CheckEncKey, "the AK certified another key than EncKeyPub")
	}
	return key, nil
}

// Verified is AzureGuest evidence that verified completely.
type Verified struct {
	*Platform
	Log           *eventlog.Log
	EncKey        *rsa.PublicKey
	ClientPayload map[string]any
}

// Verify verifies everything: the platform chain, the TCG log against the
// quoted PCRs, the encryption key and the client payload.
func (v *Verifier) Verify(ctx context.Context, ev *Evidence, now time.Time) (*Verified, error) {
	p, err := v.VerifyPlatform(ctx, ev, now)
	if err != nil {
		return nil, err
	}
	ai := ev.Info
	out := &Verified{Platform: p, ClientPayload: map[string]any{}}
	if len(ai.TcgLogs) == 0 {
		return nil, evidence.Errorf(CheckTCGLog, "the request carries no TCG log (TcgLogs)")
	}
	// The log is unsigned: besides replaying, it may not leave out every
	// event of a quoted PCR (PCR 7's Secure Boot variables, say), or the
	// claims would read their absence.
	if out.Log, err = tpmverify.ReplayQuotedPCRs(ai.TcgLogs, p.Quote.PCRs); err != nil {
		return nil, err
	}
	if out.EncKey, err = verifyEncKey(ai, p.AK); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(ai.ClientPayload)) > 0 {
		if err := json.Unmarshal(ai.ClientPayload, &out.ClientPayload); err != nil || out.ClientPayload == nil {
			return nil, evidence.Errorf(CheckClientPayload, "ClientPayload is not a JSON object")
		}
	}
	return out, nil
}

// Event types and UEFI variable names the boot claims read.
const (
	evEFIVariableDriverConfig = 0x80000001
)

// variableMeasured reports whether PCR 7 holds an authenticated
// measurement of the Secure Boot variable name (its event data hashes to
// the replayed digest, so the content is the measured one).
func variableMeasured(l *eventlog.Log, name string) bool {
	for _, e := range l.Events {
		if e.PCR != 7 || e.Type != evEFIVariableDriverConfig {
			continue
		}
		pd := eventlog.ProcessedData(e.Type, e.Data)
		if pd == nil || pd["UnicodeName"] != name {
			continue
		}
		switch len(e.Digest) {
		case sha256.Size:
			s := sha256.Sum256(e.Data)
			if bytes.Equal(s[:], e.Digest) {
				return true
			}
		case sha1.Size:
			s := sha1.Sum(e.Data)
			if bytes.Equal(s[:], e.Digest) {
				return true
			}
		}
	}
	return false
}

// ClaimTEEPrefix prefixes the policy-only copies of x-ms-isolation-tee's
// scalar claims ("x-ms-isolation-tee.x-ms-compliance-status"), so a policy
// can test the hardware claims the token nests in one object.
const ClaimTEEPrefix = "x-ms-isolation-tee."

// Claims returns the token and policy claims of verified evidence (names
// and JSON types of a real azurevm token,
// samples/azure-guest/azurevm_token.decoded.json). MAA does not publish
// how it derives the boot claims; attestd's derivation is beside each one
// and in the README. x-ms-azurevm-default-securebootkeysvalidated (whether
// the Secure Boot keys are Microsoft's defaults) is not emitted: attestd
// has no list of those keys.
func Claims(vd *Verified) []evidence.Claim {
	ai := vd.Evidence.Info
	var c []evidence.Claim
	add := func(t string, v any) { c = append(c, evidence.Claim{Type: t, Value: v}) }
	add(evidence.ClaimAttestationType, "azurevm")
	sb, _ := vd.Log.SecureBoot()
	add("secureboot", sb)
	add("x-ms-azurevm-attestation-protocol-ver", ai.ProtocolVersion)
	var pcrs []int64
	for i := 0; i < 32; i++ {
		if vd.Quote.Mask&(1<<i) != 0 {
			pcrs = append(pcrs, int64(i))
		}
	}
	c = append(c, evidence.Claim{Type: "x-ms-azurevm-attested-pcrs", Value: pcrs, TokenOnly: true})
	windows := ai.OSType == "Windows"
	f := vd.Log.WindowsFlags()
	add("x-ms-azurevm-is-windows", windows)
	add("x-ms-azurevm-dbvalidated", variableMeasured(vd.Log, "db"))
	add("x-ms-azurevm-dbxvalidated", variableMeasured(vd.Log, "dbx"))
	// Boot properties measured by Windows' boot manager (SIPA events in
	// PCRs 12–14); a log without them (Linux) has none of these enabled.
	add("x-ms-azurevm-bootdebug-enabled", f.BootDebugging)
	add("x-ms-azurevm-kerneldebug-enabled", f.KernelDebug)
	add("x-ms-azurevm-debuggersdisabled", !f.BootDebugging && !f.KernelDebug)
	add("x-ms-azurevm-testsigning-enabled", f.TestSigning)
	// signingdisabled: Windows code integrity is not enforcing (measured
	// off, or not measured at all, as on Linux: the real Linux token says true).
	add("x-ms-azurevm-signingdisabled", !f.CodeIntegritySeen || f.CodeIntegrityOff)
	if !f.Seen {
		// ELAM, flight signing, HVCI and hypervisor debugging are Windows
		// boot settings: without Windows measurements they are off, as the
		// real Linux token reports. attestd does not derive them from a
		// Windows log (their SIPA encoding is not public), so a Windows
		// token leaves them out rather than guess.
		add("x-ms-azurevm-elam-enabled", false)
		add("x-ms-azurevm-flightsigning-enabled", false)
		add("x-ms-azurevm-hvci-policy", int64(0))
		add("x-ms-azurevm-hypervisordebug-enabled", false)
	}
	add("x-ms-azurevm-osbuild", ai.OSBuild)
	add("x-ms-azurevm-osdistro", ai.OSDistro)
	add("x-ms-azurevm-ostype", ai.OSType)
	add("x-ms-azurevm-osversion-major", int64(ai.OSVersionMajor))
	add("x-ms-azurevm-osversion-minor", int64(ai.OSVersionMinor))
	if vd.Runtime != nil && vd.Runtime.VMConfig.VMUniqueID != "" {
		add("x-ms-azurevm-vmid", vd.Runtime.VMConfig.VMUniqueID)
	}
	if vd.SNP != nil {
		tee := map[string]any{}
		for _, sc := range snp.Claims(vd.SNP) {
			if sc.PolicyOnly {
				continue
			}
			tee[sc.Type] = sc.Value
			if !sc.TokenOnly {
				c = append(c, evidence.Claim{Type: ClaimTEEPrefix + sc.Type, Value: sc.Value, PolicyOnly: true})
			}
		}
		tee["x-ms-runtime"] = vd.Runtime.Object
		c = append(c, evidence.Claim{Type: "x-ms-isolation-tee", Value: tee, TokenOnly: true})
	}
	if vd.TDX != nil {
		tee := map[string]any{}
		for _, tc := range tdx.Claims(vd.Evidence.TDX, vd.TDX) {
			if tc.PolicyOnly {
				continue
			}
			tee[tc.Type] = tc.Value
			if !tc.TokenOnly {
				if isScalar(tc.Value) {
					c = append(c, evidence.Claim{Type: ClaimTEEPrefix + tc.Type, Value: tc.Value, PolicyOnly: true})
				}
			}
		}
		tee["x-ms-runtime"] = vd.Runtime.Object
		c = append(c, evidence.Claim{Type: "x-ms-isolation-tee", Value: tee, TokenOnly: true})
	}
	c = append(c, evidence.Claim{Type: "x-ms-runtime", TokenOnly: true, Value: map[string]any{
		"client-payload": vd.ClientPayload,
		"keys":           []any{rsaJWK("TpmEphemeralEncryptionKey", vd.EncKey)},
	}})
	return c
}

func isScalar(v any) bool {
	switch v.(type) {
	case bool, int64, string:
		return true
	}
	return false
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	e := big64(uint64(k.E))
	return map[string]any{"kid": kid, "kty": "RSA", "key_ops": []string{"encrypt"},
		"e": base64.RawURLEncoding.EncodeToString(e), "n": base64.RawURLEncoding.EncodeToString(k.N.Bytes())}
}

func big64(v uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, v)
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// Parse implements evidence.Verifier.
func (v *Verifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	if req.Type != evidence.AzureGuest {
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "the AzureGuest verifier does not verify %s evidence", req.Type)
	}
	ev, err := Parse(req.Evidence)
	if err != nil {
		return nil, err
	}
	return &parsed{v: v, ev: ev, now: req.Now}, nil
}

type parsed struct {
	v   *Verifier
	ev  *Evidence
	now time.Time
	key *rsa.PublicKey // set by Verify
}

// Verify implements evidence.Parsed.
func (p *parsed) Verify(ctx context.Context, _ map[string]any) (*evidence.Result, error) {
	vd, err := p.v.Verify(ctx, p.ev, p.now)
	if err != nil {
		return nil, err
	}
	p.key = vd.EncKey
	return &evidence.Result{Claims: Claims(vd)}, nil
}

// SealToken implements evidence.TokenSealer.
func (p *parsed) SealToken(ctx context.Context, token string) (string, error) {
	if p.key == nil {
		return "", errors.New("azureguest: SealToken before a successful Verify")
	}
	return envelope.Seal(token, p.key)
}

// ClaimsSupported implements evidence.ClaimsAdvertiser.
func (v *Verifier) ClaimsSupported() []string {
	out := []string{"secureboot", "x-ms-azurevm-attestation-protocol-ver", "x-ms-azurevm-attested-pcrs",
		"x-ms-azurevm-bootdebug-enabled", "x-ms-azurevm-dbvalidated", "x-ms-azurevm-dbxvalidated",
		"x-ms-azurevm-debuggersdisabled", "x-ms-azurevm-elam-enabled", "x-ms-azurevm-flightsigning-enabled",
		"x-ms-azurevm-hvci-policy", "x-ms-azurevm-hypervisordebug-enabled", "x-ms-azurevm-is-windows",
		"x-ms-azurevm-kerneldebug-enabled", "x-ms-azurevm-osbuild", "x-ms-azurevm-osdistro", "x-ms-azurevm-ostype",
		"x-ms-azurevm-osversion-major", "x-ms-azurevm-osversion-minor", "x-ms-azurevm-signingdisabled",
		"x-ms-azurevm-testsigning-enabled", "x-ms-azurevm-vmid", "x-ms-isolation-tee", "x-ms-runtime"}
	slices.Sort(out)
	return out
}

var (
	_ evidence.Verifier         = (*Verifier)(nil)
	_ evidence.ClaimsAdvertiser = (*Verifier)(nil)
	_ evidence.TokenSealer      = (*parsed)(nil)
)
