package verify

import "github.com/attestd/attestd/evidence"

// The checks a TPM/VBS attestation can fail, as *evidence.Error Check
// values. They are stable names: the HTTP edge maps them to MAA errors and
// tests match them with evidence.CheckOf.
const (
	// CheckRequest: the request JWS or its payload is malformed.
	CheckRequest evidence.Check = "tpm.request"
	// CheckRequestSignature: the JWS is not signed by the attest/request key it carries.
	CheckRequestSignature evidence.Check = "tpm.request.signature"
	// CheckChallenge: the request's challenge is not the one issued, or the
	// quote's qualifyingData does not bind it.
	CheckChallenge evidence.Check = "tpm.challenge"
	// CheckAIKChain: the AIK certificate does not chain to a configured
	// root and the AIK is not a configured trusted key.
	CheckAIKChain evidence.Check = "tpm.aik.chain"
	// CheckAIKKey: no AIK public key, or aik_pub differs from the certificate's key.
	CheckAIKKey evidence.Check = "tpm.aik.key"
	// CheckQuote: the TPMS_ATTEST/TPMT_SIGNATURE bytes are malformed or not a quote.
	CheckQuote evidence.Check = "tpm.quote"
	// CheckQuoteSignature: the quote is not signed by the AIK.
	CheckQuoteSignature evidence.Check = "tpm.quote.signature"
	// CheckPCRDigest: the reported PCR values do not hash to the quote's pcrDigest.
	CheckPCRDigest evidence.Check = "tpm.pcr.digest"
	// CheckPCRMask: the quote leaves out a PCR that required_pcr_mask requires.
	CheckPCRMask evidence.Check = "tpm.pcr.mask"
	// CheckEventLogReplay: a TCG log does not parse or replay to the quoted PCRs.
	CheckEventLogReplay evidence.Check = "tpm.eventlog.replay"
	// CheckKeyBinding: the request key is bound neither by tpm_quote nor by tpm_certify.
	CheckKeyBinding evidence.Check = "tpm.key.binding"
	// CheckCertify: a tpm_certify binding does not verify (structure, AIK
	// signature, challenge, or the certified Name ≠ the key's TPMT_PUBLIC).
	CheckCertify evidence.Check = "tpm.certify"
	// CheckVBSReport: the VBS enclave report is malformed, not bound to
	// report_signed, or its signature does not verify.
	CheckVBSReport evidence.Check = "tpm.vbs.report"
	// CheckPlatformClaim: a v1 current_claim/boot_claim is not a well-formed
	// PCP platform attestation blob (magic, header, sizes, PCR bank).
	CheckPlatformClaim evidence.Check = "tpm.claim"
	// CheckBootClaim: a v1 boot_claim is not of the boot current_claim
	// attests (another TPM resetCount).
	CheckBootClaim evidence.Check = "tpm.claim.boot"
	// CheckUnsupported: a well-formed request this build cannot verify (a
	// v1 platform claim of a TPM 1.2).
	CheckUnsupported evidence.Check = "tpm.unsupported"
	// CheckOptions: the verifier was called with inconsistent options.
	CheckOptions evidence.Check = "tpm.options"
)
