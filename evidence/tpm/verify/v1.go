package verify

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
)

// verifyV1 verifies a v1 (attReq) request: the JWS by attest_key, the
// challenge, the AIK (aik_cert / aik_pub, as v2), current_claim (a PCP
// platform attestation blob, see abi.PlatformBlob) with the challenge,
// srtm_boot_log against current_claim's quoted PCRs when sent, boot_claim
// without a challenge but of the same boot (TPM resetCount), and the VBS
// report. Its Result has the shape of
// v2's, so the claims and policies do not depend on the version.
//
// attest_key is the key that signed the request. In a basic request nothing
// binds it to the TPM (the platform claim's nonce is the challenge alone,
// unlike v2's tpm_quote binding), so its KeyResult has no Binding and the
// report carries no cnf for it; in a vbs request the verified enclave
// report binds it (EnclaveData = SHA-512 of report_signed, which holds
// attest_key) and Binding is "vbs_report". That binds attest_key to the
// enclave, not to this TPM: nothing checked here ties the VSM identity key
// that signed the report to the AIK (MAA does it through a boot-log event
// whose encoding is not published, see the package doc), so a
// VBSSigningKeys entry is trusted for whichever TPM a request pairs it
// with.
func verifyV1(req *abi.Request, challenge []byte, opts Options) (*Result, error) {
	d := &req.Data
	v1 := d.TPM.V1
	if d.SigningKey == nil || v1 == nil || len(v1.CurrentClaim) == 0 {
		return nil, evidence.Errorf(CheckRequest, "attest_key and tpm_att_data.current_claim are required")
	}
	if err := verifyJWS(req, d.SigningKey.JWK.Key); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(d.Challenge, challenge) != 1 {
		return nil, evidence.Errorf(CheckChallenge, "the request's challenge is not the one issued for this service_context")
	}
	res := &Result{Version: req.Version, AttType: req.AttType, RPID: d.RPID, RPData: bytes.Clone(d.RPData), CustomClaims: d.CustomClaims}
	ak, cert, validated, err := establishAIK(v1.AIKCert, v1.AIKPub, opts)
	if err != nil {
		return nil, err
	}
	res.AIK, res.AIKCert, res.AIKValidated = ak, cert, validated

	if res.Quote, res.Log, err = VerifyPlatformClaim(ak, v1.CurrentClaim, challenge); err != nil {
		return nil, fmt.Errorf("current_claim: %w", err)
	}
	mask := DefaultRequiredPCRMask
	if opts.RequiredPCRMask != nil {
		mask = *opts.RequiredPCRMask
	}
	if missing := mask &^ res.Quote.Mask; missing != 0 {
		return nil, evidence.Errorf(CheckPCRMask, "required_pcr_mask %#x: PCRs %v are not quoted", mask, maskString(missing))
	}
	if len(v1.SRTMBootLog) > 0 {
		// The full boot log (Tbsi_Get_TCG_Log_Ex, TBS_TCGLOG_SRTM_BOOT)
		// must reproduce the same quoted values; it is what the claims
		// read, as MAA's policies see the machine's whole WBCL.
		l, err := replayExplained(v1.SRTMBootLog, res.Quote.PCRs, isDRTM)
		if err != nil {
			return nil, fmt.Errorf("srtm_boot_log: %w", err)
		}
		res.Log = l
	}
	if len(v1.BootClaim) > 0 {
		// The PCR state at boot, quoted before this challenge existed: it
		// must be signed by the same AIK and its log must replay.
		if res.BootQuote, res.BootLog, err = VerifyPlatformClaim(ak, v1.BootClaim, nil); err != nil {
			return nil, fmt.Errorf("boot_claim: %w", err)
		}
		if err := sameBoot(res.BootQuote, res.Quote, "boot_claim", "current_claim"); err != nil {
			return nil, err
		}
	}
	rk := d.SigningKey
	res.RequestKey = KeyResult{JWK: bytes.Clone(rk.JWK.Raw), Key: rk.JWK.Key, Policy: map[string]any{"jwk": jsonRaw(rk.JWK.Raw)}}
	if req.AttType == abi.AttTypeVBS {
		if res.VBS, err = verifyVBS(req, opts); err != nil {
			return nil, err
		}
		res.RequestKey.Binding = "vbs_report"
	}
	return res, nil
}

// VerifyPlatformClaim verifies a PCP platform attestation blob
// (NCryptCreateClaim, NCRYPT_CLAIM_PLATFORM; layout in abi.PlatformBlob)
// signed by ak, following the checks of Microsoft's reference validator
// (TSS.MSR PCPTool.v11 dll/AttestationApi.cpp
// TpmAttValidatePlatformAttestation and dll/TPM20.cpp
// ValidateQuoteContext20), stricter where the reference is lenient:
//
//   - the signature is RSASSA-PKCS1-v1_5 by the AIK over the TPMS_ATTEST.
//     The blob names no hash; the reference assumes SHA-1. A TPM computes
//     pcrDigest with the signing scheme's hash (Part 3 §18.4), so its size
//     selects the hash here (20: SHA-1, 32: SHA-256, …), which the
//     reference also does for the digest;
//   - challenge (nil for boot_claim: no nonce is checked) must be the
//     quote's qualifyingData: GeneratePlatformAttestation passes its nonce
//     verbatim as TPM2_Quote's qualifyingData, and PCPTool's own callers
//     pass SHA-1 of their nonce, so either challenge or SHA-1(challenge)
//     is accepted. The reference skips the check for a nonce that is not
//     20 bytes long; it is never skipped here;
//   - the quote selects exactly one bank, the blob's, and the blob's values
//     of the selected PCRs hash to pcrDigest;
//   - the blob's log replays to those values, measures no PCR the quote
//     leaves out (the reference's "events in the log not covered by the
//     quote"), and every quoted PCR it measures nothing into holds its
//     reset value (the reference computes each quoted PCR from the log;
//     the DRTM PCRs 17–22 aside, see unexplained).
func VerifyPlatformClaim(ak crypto.PublicKey, blob, challenge []byte) (*QuoteResult, *eventlog.Log, error) {
	p, err := abi.ParsePlatformBlob(blob)
	if errors.Is(err, abi.ErrPlatformTPM12) {
		return nil, nil, &evidence.Error{Check: CheckUnsupported, Err: err}
	}
	if err != nil {
		return nil, nil, &evidence.Error{Check: CheckPlatformClaim, Err: err}
	}
	a, err := abi.ParseAttest(p.Quote)
	if err != nil {
		return nil, nil, &evidence.Error{Check: CheckQuote, Err: err}
	}
	if a.Type != tpm2.TPMSTAttestQuote {
		return nil, nil, evidence.Errorf(CheckQuote, "TPMS_ATTEST type %#x, want TPM_ST_ATTEST_QUOTE", uint16(a.Type))
	}
	info, err := a.Attested.Quote()
	if err != nil {
		return nil, nil, &evidence.Error{Check: CheckQuote, Err: err}
	}
	var h crypto.Hash
	switch len(info.PCRDigest.Buffer) {
	case 20:
		h = crypto.SHA1
	case 32:
		h = crypto.SHA256
	case 48:
		h = crypto.SHA384
	case 64:
		h = crypto.SHA512
	default:
		return nil, nil, evidence.Errorf(CheckQuote, "pcrDigest of %d bytes names no hash", len(info.PCRDigest.Buffer))
	}
	pub, ok := ak.(*rsa.PublicKey)
	if !ok {
		return nil, nil, evidence.Errorf(CheckQuoteSignature, "platform claims are RSASSA-PKCS1-v1_5 signatures, the AIK is %T", ak)
	}
	d := h.New()
	d.Write(p.Quote)
	if err := rsa.VerifyPKCS1v15(pub, h, d.Sum(nil), p.Signature); err != nil {
		return nil, nil, evidence.Errorf(CheckQuoteSignature, "the quote signature does not verify with the AIK (RSASSA-PKCS1-v1_5, %v): %v", h, err)
	}
	if challenge != nil {
		sum := sha1.Sum(challenge)
		extra := a.ExtraData.Buffer
		if subtle.ConstantTimeCompare(extra, challenge) != 1 && subtle.ConstantTimeCompare(extra, sum[:]) != 1 {
			return nil, nil, evidence.Errorf(CheckChallenge, "quote qualifyingData (%d bytes) is neither the challenge nor its SHA-1", len(extra))
		}
	}
	sels := info.PCRSelect.PCRSelections
	if len(sels) != 1 {
		return nil, nil, evidence.Errorf(CheckPCRDigest, "the quote selects %d PCR banks, a platform claim carries one", len(sels))
	}
	if uint16(sels[0].Hash) != p.PCRAlg {
		return nil, nil, evidence.Errorf(CheckPCRDigest, "the quote selects bank %#x, the blob carries bank %#x", uint16(sels[0].Hash), p.PCRAlg)
	}
	bank := abi.PCRBank{Algorithm: p.PCRAlg}
	for i := 0; i < 8*len(sels[0].PCRSelect); i++ {
		if sels[0].PCRSelect[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		if i >= abi.PlatformPCRs {
			return nil, nil, evidence.Errorf(CheckPCRDigest, "the quote selects PCR %d, a platform claim carries PCRs 0…23", i)
		}
		bank.Values = append(bank.Values, abi.PCRValue{Index: i, Digest: p.PCRs[i]})
	}
	q, err := quotedPCRs(a, h, []abi.PCRBank{bank})
	if err != nil {
		return nil, nil, err
	}
	if len(p.Log) == 0 {
		return nil, nil, evidence.Errorf(CheckEventLogReplay, "the platform claim carries no log")
	}
	pl, err := eventlog.Parse(p.Log)
	if err != nil {
		return nil, nil, &evidence.Error{Check: CheckEventLogReplay, Err: err}
	}
	measured, err := pl.Measured()
	if err != nil {
		return nil, nil, &evidence.Error{Check: CheckEventLogReplay, Err: err}
	}
	if extra := measured &^ q.Mask & abi.AllPlatformPCRs; extra != 0 {
		return nil, nil, evidence.Errorf(CheckEventLogReplay, "the claim's log measures PCRs %v, which its quote does not cover", maskString(extra))
	}
	l, err := pl.Replay(q.PCRs)
	if err != nil {
		return nil, nil, &evidence.Error{Check: CheckEventLogReplay, Err: err}
	}
	if err := unexplained(measured, q.PCRs, isDRTM); err != nil {
		return nil, nil, err
	}
	return q, l, nil
}

// sameBoot refuses a boot quote (v1 boot_claim, v2 boot_attestation)
// taken in another boot cycle than the current quote. Without a nonce, any
// quote the AIK ever signed verifies. It must be of this boot: the TPM's
// resetCount counts TPM Resets (boots; TPM 2.0 Part 2, TPMS_CLOCK_INFO) and
// a hibernation (TPM Restart, which counts in restartCount: the case a boot
// quote exists for) keeps it, so another value is another boot's state
// offered in place of this one's. For an AIK outside the endorsement and
// platform hierarchies the TPM obfuscates resetCount by a value derived
// from that key (Part 3, introduction to the attestation commands), the
// same in both quotes, which keeps equality.
func sameBoot(boot, cur *QuoteResult, bootName, curName string) error {
	if b, c := boot.Attest.ClockInfo.ResetCount, cur.Attest.ClockInfo.ResetCount; b != c {
		return evidence.Errorf(CheckBootClaim, "%s is of another boot than %s (TPM resetCount %d, current %d)", bootName, curName, b, c)
	}
	return nil
}

// replayExplained parses log once, replays it against pcrs and applies
// unexplained to it (exempt aside). Every refusal is CheckEventLogReplay.
func replayExplained(log []byte, pcrs []eventlog.PCR, exempt func(int) bool) (*eventlog.Log, error) {
	p, err := eventlog.Parse(log)
	if err != nil {
		return nil, &evidence.Error{Check: CheckEventLogReplay, Err: err}
	}
	l, err := p.Replay(pcrs)
	if err != nil {
		return nil, &evidence.Error{Check: CheckEventLogReplay, Err: err}
	}
	measured, err := p.Measured()
	if err != nil {
		return nil, &evidence.Error{Check: CheckEventLogReplay, Err: err}
	}
	if err := unexplained(measured, pcrs, exempt); err != nil {
		return nil, err
	}
	return l, nil
}

// unexplained refuses quoted PCRs that a log extends nothing into
// (measured: eventlog.MeasuredPCRs) although their value is not the one a
// TPM resets them to. go-attestation's replay accepts a PCR without
// events whatever its value, so a client could leave every event of a PCR
// out of the log (PCR 7's Secure Boot variables, PCR 12's boot-debugging
// SIPA event) and the claims would read their absence. Microsoft's
// validator (TpmAttValidatePlatformAttestation, TpmAttiComputeSoftPCRs)
// computes each quoted PCR from the log, starting from its reset value, so
// it refuses such a log too. Reset values (PC Client PTP): zero, and for
// PCR 0 zero with the startup locality (0 or 3) in its last byte.
//
// The PCRs exempt reports are left out (eventlog.Unexplained). v1 leaves
// out PCRs 17–22 (isDRTM), unlike the reference: a dynamic launch (System
// Guard Secure Launch) extends them and logs that in the DRTM log
// (drtm_boot_log), not in the SRTM log a claim carries, so requiring their
// reset value would refuse every such machine whose quote covers them.
// Nothing is read from their events here (drtm_boot_log is not replayed),
// so no claim can rest on an absent DRTM event; their quoted values reach
// policy as "pcrs", authenticated by the quote.
func unexplained(measured uint32, pcrs []eventlog.PCR, exempt func(int) bool) error {
	if bad := eventlog.Unexplained(measured, pcrs, exempt); bad != 0 {
		return evidence.Errorf(CheckEventLogReplay, "the log measures nothing into quoted PCRs %v, whose values are not their reset values", maskString(bad))
	}
	return nil
}

// isDRTM reports the PCRs a dynamic launch extends (17–22).
func isDRTM(index int) bool { return index >= 17 && index <= 22 }
