package dcap

// The checks a DCAP verification can fail, in the order they run. Each is the
// Check of the *evidence.Error that reports it; the names are on the wire
// (MAA's InvalidParameter message names them), so they never change.
const (
	// Quote: what the quote proves by itself.

	// CheckQEVendorID: the quote header does not name Intel's QE vendor ID.
	CheckQEVendorID = "quote.qe_vendor_id"
	// CheckCertificationData: the quote carries no PCK chain (PPID types 1-3 or none).
	CheckCertificationData = "quote.certification_data"
	// CheckPCKChain: the PCK chain does not parse, does not chain to a
	// trusted root certificate, or its leaf is not a PCK certificate.
	CheckPCKChain = "pck_chain"
	// CheckPCKExtensions: the PCK certificate's SGX extensions are malformed.
	CheckPCKExtensions = "pck.extensions"
	// CheckQEReportSignature: the QE report is not signed by the PCK key.
	CheckQEReportSignature = "qe_report.signature"
	// CheckQEReportBinding: QE report data != SHA-256(attestation key || QE auth data) || zeros.
	CheckQEReportBinding = "qe_report.binding"
	// CheckAttestationKey: the attestation key is not a P-256 point.
	CheckAttestationKey = "quote.attestation_key"
	// CheckQuoteSignature: header || body is not signed by the attestation key.
	CheckQuoteSignature = "quote.signature"

	// Collateral: issuer chains, CRLs and the signed documents.

	// CheckCollateralMissing: no collateral at all.
	CheckCollateralMissing = "collateral.missing"
	// CheckRootCRL*: the Root CA CRL is absent, does not parse, is not
	// issued or not signed by the PCK chain's root.
	CheckRootCRLMissing   = "root_crl.missing"
	CheckRootCRLParse     = "root_crl.parse"
	CheckRootCRLIssuer    = "root_crl.issuer"
	CheckRootCRLSignature = "root_crl.signature"
	// CheckPCKCRLIssuerChain: the PCK CRL issuer chain does not verify to
	// the PCK chain's root.
	CheckPCKCRLIssuerChain = "pck_crl.issuer_chain"
	// CheckPCKCRLIssuer: the PCK CRL (or its issuer chain) is not the PCK
	// certificate's CA's.
	CheckPCKCRLIssuer = "pck_crl.issuer"
	// CheckPCKCRL*: the PCK CA CRL is absent, does not parse, or its
	// signature does not verify.
	CheckPCKCRLMissing   = "pck_crl.missing"
	CheckPCKCRLParse     = "pck_crl.parse"
	CheckPCKCRLSignature = "pck_crl.signature"
	// CheckTCBInfoIssuerChain / CheckQEIdentityIssuerChain: the signing
	// chain does not verify to the PCK chain's root, or its leaf is not in
	// the TCB signing role.
	CheckTCBInfoIssuerChain    = "tcb_info.issuer_chain"
	CheckQEIdentityIssuerChain = "qe_identity.issuer_chain"
	// CheckTCBInfo* / CheckQEIdentity*: the document is absent, its
	// signature over the exact bytes does not verify, or it does not parse.
	CheckTCBInfoMissing      = "tcb_info.missing"
	CheckTCBInfoSignature    = "tcb_info.signature"
	CheckTCBInfoParse        = "tcb_info.parse"
	CheckQEIdentityMissing   = "qe_identity.missing"
	CheckQEIdentitySignature = "qe_identity.signature"
	CheckQEIdentityParse     = "qe_identity.parse"

	// Time: collateral windows (issueDate/thisUpdate .. nextUpdate [+ grace]).

	CheckTCBInfoNotYetValid    = "tcb_info.not_yet_valid"
	CheckTCBInfoExpired        = "tcb_info.expired"
	CheckQEIdentityNotYetValid = "qe_identity.not_yet_valid"
	CheckQEIdentityExpired     = "qe_identity.expired"
	CheckRootCRLNotYetValid    = "root_crl.not_yet_valid"
	CheckRootCRLExpired        = "root_crl.expired"
	CheckPCKCRLNotYetValid     = "pck_crl.not_yet_valid"
	CheckPCKCRLExpired         = "pck_crl.expired"

	// Time: certificate validity.

	CheckPCKChainNotYetValid              = "pck_chain.not_yet_valid"
	CheckPCKChainExpired                  = "pck_chain.expired"
	CheckRootCANotYetValid                = "root_ca.not_yet_valid"
	CheckRootCAExpired                    = "root_ca.expired"
	CheckCollateralSigningCertNotYetValid = "collateral_signing_cert.not_yet_valid"
	CheckCollateralSigningCertExpired     = "collateral_signing_cert.expired"

	// Revocation.

	// CheckPCKCARevoked: the Root CA CRL lists the PCK CA.
	CheckPCKCARevoked = "pck_ca.revoked"
	// CheckTCBSigningRevoked: the Root CA CRL lists a TCB signing certificate.
	CheckTCBSigningRevoked = "tcb_signing.revoked"
	// CheckPCKRevoked: the PCK CA CRL lists the PCK certificate.
	CheckPCKRevoked = "pck.revoked"

	// Platform and TCB.

	// CheckTCBInfoFMSPC / CheckTCBInfoPCEID: the TCB info is for another platform.
	CheckTCBInfoFMSPC = "tcb_info.fmspc_mismatch"
	CheckTCBInfoPCEID = "tcb_info.pceid_mismatch"
	// CheckQEIdentity*Mismatch: the QE report is not the QE the identity describes.
	CheckQEIdentityMRSigner   = "qe_identity.mrsigner_mismatch"
	CheckQEIdentityISVProdID  = "qe_identity.isvprodid_mismatch"
	CheckQEIdentityMiscSelect = "qe_identity.miscselect_mismatch"
	CheckQEIdentityAttributes = "qe_identity.attributes_mismatch"
	// CheckQEIdentityNoLevel: the QE's ISVSVN is below every QE identity level.
	CheckQEIdentityNoLevel = "qe_identity.no_matching_level"
	// CheckQEIdentityRevoked: the QE's matching level is Revoked.
	CheckQEIdentityRevoked = "qe_identity.revoked"
	// CheckTCBNoLevel: the platform TCB is below every TCB level.
	CheckTCBNoLevel = "tcb.no_matching_level"
	// CheckTCBRevoked: the platform's matching TCB level is Revoked.
	CheckTCBRevoked = "tcb.revoked"

	// TDX module (TDX TCB info only).

	// CheckTDXModuleIdentity: the TCB info has no module identity for the
	// TD's module major version (TEE_TCB_SVN[1]).
	CheckTDXModuleIdentity = "tdx_module.identity_missing"
	// CheckTDXModuleMRSigner / CheckTDXModuleAttributes: MRSIGNER_SEAM or
	// the masked SEAM attributes are not the module identity's.
	CheckTDXModuleMRSigner   = "tdx_module.mrsigner_mismatch"
	CheckTDXModuleAttributes = "tdx_module.attributes_mismatch"
	// CheckTDXModuleNoLevel: the module's ISVSVN (TEE_TCB_SVN[0]) is below
	// every level of its module identity.
	CheckTDXModuleNoLevel = "tdx_module.no_matching_level"
	// CheckTDXModuleRevoked: the module's matching level is Revoked.
	CheckTDXModuleRevoked = "tdx_module.revoked"
)
