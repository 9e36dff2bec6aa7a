// Package evidence defines the contract between the attest pipeline
// (package instance) and the per-TEE evidence verifiers (evidence/sgx, later
// evidence/tpm, evidence/snp, evidence/tdx). DESIGN.md shows it on one screen.
//
// Data flow of one attestation: the API decodes the request into a Request;
// the pipeline picks the policy and the Verifier registered for the type,
// calls Verifier.Parse (structure only: cheap, no crypto, no collateral) so
// that garbage is refused before any policy work is spent on it, runs the
// policy's configuration rules, calls Parsed.Verify with the resulting
// properties (signatures, roots, collateral), binds SHA-256(runtime data) to
// Result.ReportData and init-time data to Result.InitTimeBinding, evaluates
// the policy over Result.Claims and issues the token.
//
// A verifier owns every claim of its TEE (x-ms-attestation-type, ehd, TCB
// baseline, …); the pipeline adds only claims every TEE shares
// (x-ms-runtime, x-ms-inittime, x-ms-policy-hash, …). Everything a verifier
// may offer beyond Parse is an optional interface found by type assertion
// (capabilities.go), so a verifier without a feature never stubs it and a
// decorator must forward them (or be an option of the verifier instead).
package evidence

import (
	"context"
	"time"
)

// Type is an MAA attestation type as spelled in the URL path.
type Type string

// The attestation types of the MAA data-plane API.
const (
	SgxEnclave  Type = "SgxEnclave"
	OpenEnclave Type = "OpenEnclave"
	Tpm         Type = "Tpm"
	SevSnpVm    Type = "SevSnpVm"
	TdxVm       Type = "TdxVm"
	// AzureGuest is the guest attestation of an Azure confidential (or
	// Trusted Launch) VM: vTPM quote + TCG log + HCL report (maa-api.md §8).
	AzureGuest Type = "AzureGuest"
)

// Types lists every attestation type attestd knows, in a stable order.
var Types = []Type{SgxEnclave, OpenEnclave, Tpm, SevSnpVm, TdxVm, AzureGuest}

// ParseType returns the Type for an exact (case-sensitive) path segment.
func ParseType(s string) (Type, bool) {
	for _, t := range Types {
		if string(t) == s {
			return t, true
		}
	}
	return "", false
}

// ClaimAttestationType is the claim every verifier emits first, naming the
// TEE family (maa-api.md §1.2, §4).
const ClaimAttestationType = "x-ms-attestation-type"

// AttestationTypeValue is the x-ms-attestation-type MAA gives evidence of
// type t ("" for an unknown type). Verifiers emit the claim themselves; the
// table serves dry runs over bare claim sets, which have no verifier.
func AttestationTypeValue(t Type) string {
	switch t {
	case SgxEnclave, OpenEnclave:
		return "sgx"
	case Tpm:
		return "tpm"
	case SevSnpVm:
		return "sevsnpvm"
	case TdxVm:
		return "tdxvm"
	case AzureGuest:
		return "azurevm"
	}
	return ""
}

// Data is runtime or init-time data sent with the evidence.
type Data struct {
	Bytes []byte // raw bytes, as decoded from base64url
	JSON  bool   // dataType was "JSON": the bytes are a JSON document
}

// Request is one piece of evidence to verify.
type Request struct {
	Type     Type
	Evidence []byte // decoded quote (SgxEnclave), OE report (OpenEnclave), …
	Runtime  *Data  // nil when absent
	InitTime *Data  // nil when absent
	// EventLog is an event log sent with the evidence (TdxVm: the CCEL,
	// attestd's "eventLog" member, beyond MAA); nil when absent. The
	// verifier replays it against the evidence's registers.
	EventLog []byte
	// Now is the instant to verify at. The pipeline reads its clock once per
	// attestation and uses the same reading for the token's iat/nbf/exp, so
	// verifier and token never disagree about "now". A verifier configured
	// to verify as of another instant says so in a claim of its own.
	Now time.Time
	// Properties are the policy's configuration properties (issueproperty in
	// configurationrules, with the verifier's ConfigurationDefaults applied),
	// e.g. "x-ms-sgx-tcbidentifier". Parse never sees them (they are computed
	// after parsing); Parsed.Verify receives them.
	Properties map[string]any
	// State is the client state of an earlier round of a multi-round
	// protocol, opened (authenticated, unexpired, unused) by the pipeline
	// from the service context the request carries; nil otherwise. See
	// MultiRound.
	State []byte
}

// Claim is one claim produced from verified evidence. Value is one of bool,
// int64, string (scalars: also visible to the policy as incoming claims with
// issuer AttestationService) or a JSON-marshalable object/array (token only,
// e.g. x-ms-sgx-collateral).
type Claim struct {
	Type  string
	Value any
	// TokenOnly claims go into the token but are not offered to the policy.
	TokenOnly bool
	// PolicyOnly claims are offered to the policy but not written to the
	// token (e.g. deprecated "$"-prefixed aliases).
	PolicyOnly bool
	// Issuer is the claim's issuer as the policy sees it; "" is the
	// attestation service ("AttestationService"). The TPM protocol's
	// custom_claims come from the client ("CustomClaim").
	Issuer string
}

// Result is what a verifier established about verified evidence.
type Result struct {
	// ReportData is the evidence's user report data (64 bytes for SGX).
	// The pipeline requires SHA-256(runtime data) == ReportData[:32] when
	// runtime data is given.
	ReportData []byte
	// InitTimeBinding, when non-nil, must start with SHA-256(init-time data)
	// when init-time data is given (SGX CONFIGID, SEV-SNP HOST_DATA).
	InitTimeBinding []byte
	// Claims in the order they should appear to the policy. They include
	// every TEE-specific claim (x-ms-attestation-type first).
	Claims []Claim
}

// Verifier verifies one kind of evidence. Implementations are safe for
// concurrent use.
type Verifier interface {
	// Parse checks the structure of req.Evidence: lengths, versions, the
	// fields a later Verify needs. It does no cryptography, reads no
	// collateral and is cheap, so the pipeline calls it before any policy
	// work. Refusals are *Error values (typically CheckEvidenceParse or a
	// TEE-specific check).
	Parse(ctx context.Context, req *Request) (Parsed, error)
}

// Parsed is evidence that passed Parse, bound to its Request.
type Parsed interface {
	// Verify verifies the parsed evidence against the verifier's roots and
	// collateral at the request's Now, honouring the policy's configuration
	// properties, and returns the claims. Refusals are *Error values.
	Verify(ctx context.Context, properties map[string]any) (*Result, error)
}

// Verify parses and verifies req in one step with req.Properties: for
// callers without a policy (offline tools, tests).
func Verify(ctx context.Context, v Verifier, req *Request) (*Result, error) {
	p, err := v.Parse(ctx, req)
	if err != nil {
		return nil, err
	}
	return p.Verify(ctx, req.Properties)
}
