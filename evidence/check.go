package evidence

import (
	"errors"
	"fmt"
)

// Check names one verification check. It is stable (logs, metrics and the
// MAA error message quote it) and implements error, so that
// errors.Is(err, evidence.CheckRuntimeBinding) is true for every *Error of
// that check however deeply it is wrapped. TEE packages declare their own
// constants (e.g. evidence/sgx's CheckTCBBaseline = CheckTCBBaseline here).
type Check string

func (c Check) Error() string { return string(c) }

// Checks the pipeline itself names, shared by every TEE.
const (
	// CheckEvidenceMissing: the request carries no evidence at all.
	CheckEvidenceMissing Check = "evidence.missing"
	// CheckEvidenceParse: the evidence is not structurally valid for its type.
	CheckEvidenceParse Check = "evidence.parse"
	// CheckEvidenceType: the verifier does not handle this attestation type.
	CheckEvidenceType Check = "evidence.type"
	// CheckRuntimeBinding: SHA-256 of the runtime data is not the evidence's
	// report data (maa-api.md §1.1).
	CheckRuntimeBinding Check = "runtimedata.binding"
	// CheckInitTimeBinding: SHA-256 of the init-time data is not the
	// evidence's init-time binding, or the evidence has none.
	CheckInitTimeBinding Check = "inittimedata.binding"
	// CheckRuntimeJSON / CheckInitTimeJSON: data of dataType JSON is not JSON.
	CheckRuntimeJSON  Check = "runtimedata.json"
	CheckInitTimeJSON Check = "inittimedata.json"
	// CheckVerificationTime: the instant to verify at is unusable (a zero
	// Request.Now from a caller without a clock). Verifiers refuse it rather
	// than guess "now": validity windows judged at a guessed instant are
	// how cached revocation data lives forever. Collateral that is not
	// valid at a usable instant fails its own window check instead
	// (e.g. tcb_info.expired, snp.endorsement.expired).
	CheckVerificationTime Check = "evidence.now"
	// CheckTCBBaseline: a TCB baseline was selected that cannot be honoured.
	CheckTCBBaseline Check = "collateral.tcb_baseline"
	// CheckCollateralUnavailable: collateral for the platform could not be had.
	CheckCollateralUnavailable Check = "collateral.unavailable"
	// CheckServiceContext*: the sealed state of a multi-round protocol
	// (service_context) was refused, with the reason.
	CheckServiceContextForged   Check = "service_context.forged"
	CheckServiceContextExpired  Check = "service_context.expired"
	CheckServiceContextReplayed Check = "service_context.replayed"
	CheckServiceContextInstance Check = "service_context.instance"
)

// ErrUnavailable marks a refusal that is not a verdict on the evidence: an
// input the verifier needs (collateral, an endorsement key) could not be
// had right now (the source is down or rate-limits, as AMD KDS does). A
// verifier wraps it in the *Error of its check; the pipeline answers 503
// ServiceUnavailable so the client retries instead of treating good
// evidence as bad.
var ErrUnavailable = errors.New("a verification input is unavailable right now")

// Error names the verification check that failed. Every rejection of
// evidence is an *Error so the API and the logs can say which check failed.
type Error struct {
	Check Check // short stable name, e.g. "quote.signature", "collateral.tcbinfo.expired"
	Err   error // what went wrong
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Check, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, someCheck) true when e failed that check.
func (e *Error) Is(target error) bool {
	c, ok := target.(Check)
	return ok && c == e.Check
}

// Errorf returns an *Error for check with a formatted reason. check may be a
// Check or any string type (TEE packages' own constants).
func Errorf[C ~string](check C, format string, args ...any) error {
	return &Error{Check: Check(check), Err: fmt.Errorf(format, args...)}
}

// CheckOf returns the failed check's name of err, or "" if err is not an *Error.
func CheckOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return string(e.Check)
	}
	return ""
}
