// Package evidence defines the contract between the attest pipeline and the
// per-TEE evidence verifiers (evidence/sgx, later evidence/tpm, evidence/snp,
// evidence/tdx).
//
// Data flow: the API decodes the request into a Request, the instance looks up
// the Verifier registered for the attestation type, the verifier parses and
// cryptographically verifies the evidence against configured roots and
// collateral and returns a Result (report data to bind, claims). The pipeline
// then binds SHA-256(runtime data) to Result.ReportData, evaluates the policy
// over Result.Claims and issues the token.
package evidence

import (
	"context"
	"errors"
	"fmt"
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
)

// Types lists every attestation type attestd knows, in a stable order.
var Types = []Type{SgxEnclave, OpenEnclave, Tpm, SevSnpVm, TdxVm}

// ParseType returns the Type for an exact (case-sensitive) path segment.
func ParseType(s string) (Type, bool) {
	for _, t := range Types {
		if string(t) == s {
			return t, true
		}
	}
	return "", false
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
	// Properties are the policy's configuration properties (issueproperty in
	// configurationrules), e.g. "x-ms-sgx-tcbidentifier". Verifiers read the
	// ones that apply to them and ignore the rest.
	Properties map[string]any
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
	// Claims in the order they should appear to the policy.
	Claims []Claim
}

// Verifier verifies one kind of evidence.
type Verifier interface {
	Verify(ctx context.Context, req *Request) (*Result, error)
}

// Error names the verification check that failed. Every rejection of
// evidence is an *Error so the API and the logs can say which check failed.
type Error struct {
	Check string // short stable name, e.g. "quote.signature", "collateral.tcbinfo.expired"
	Err   error  // what went wrong
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Check, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for check with a formatted reason.
func Errorf(check, format string, args ...any) error {
	return &Error{Check: check, Err: fmt.Errorf(format, args...)}
}

// CheckOf returns the failed check's name of err, or "" if err is not an *Error.
func CheckOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Check
	}
	return ""
}
