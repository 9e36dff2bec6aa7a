// Package collateral provides the Intel DCAP collateral needed to verify SGX
// and TDX quotes (TCB info, QE identity, CRLs and their issuer chains) from
// pluggable sources: a bundle on disk (offline, air-gapped), Intel PCS v4, a
// PCCS, with a cache in front.
package collateral

import "context"

// TEE selects the TCB info / QE identity flavour.
type TEE string

const (
	SGX TEE = "SGX"
	TDX TEE = "TDX"
)

// Request identifies the collateral one quote needs.
type Request struct {
	TEE   TEE
	FMSPC string // 12 lower-case hex characters, from the PCK certificate
	// CA is the PCK CA that issued the PCK certificate: "processor" or "platform".
	CA string
	// TCBEvaluationDataNumber selects a TCB baseline: 0 asks for the
	// source's standard TCB info and QE identity (what PCS serves without
	// the parameter); N > 0 asks for the TCB info and QE identity whose
	// tcbEvaluationDataNumber is N (PCS v4's tcbEvaluationDataNumber query
	// parameter). A source that cannot serve N answers an error wrapping
	// ErrNotFound; sources never substitute another number, and verifiers
	// still check the number in the signed documents.
	TCBEvaluationDataNumber int
}

// Collateral is the set of Intel-signed documents one quote is checked
// against. The field layout follows Intel's sgx_ql_qve_collateral_t (and the
// JSON form used by dcap-qvl). Signed documents are kept as the exact bytes
// that were signed, because their signatures cover those bytes.
type Collateral struct {
	PCKCRLIssuerChain []byte // PEM: PCK Processor/Platform CA, Root CA
	RootCACRL         []byte // DER CRL issued by the Intel SGX Root CA
	PCKCRL            []byte // DER CRL issued by the PCK Processor/Platform CA

	TCBInfoIssuerChain []byte // PEM: TCB Signing cert, Root CA
	TCBInfo            []byte // exact JSON bytes of the "tcbInfo" object
	TCBInfoSignature   []byte // raw ECDSA P-256 signature r||s (64 bytes)

	QEIdentityIssuerChain []byte // PEM: TCB Signing cert, Root CA
	QEIdentity            []byte // exact JSON bytes of the "enclaveIdentity" object
	QEIdentitySignature   []byte // raw ECDSA P-256 signature r||s (64 bytes)
}

// Source fetches collateral.
type Source interface {
	Get(ctx context.Context, req Request) (*Collateral, error)
}
