package instance

import (
	"errors"
	"fmt"
)

// MAA error codes (maa-api.md §2). The API layer maps each code to an HTTP
// status; the instance package never deals in HTTP statuses.
const (
	// CodeBadRequest is the code real MAA uses for "Tpm attest without a
	// Tpm policy" (note the space: the spelling is part of the wire contract).
	CodeBadRequest            = "Bad request"
	CodeInvalidParameter      = "InvalidParameter"
	CodePolicyEvaluationError = "PolicyEvaluationError"
	CodePolicyParsingError    = "PolicyParsingError"
	CodeInvalidOperation      = "InvalidOperation"
	// CodeUnauthorized (401) also answers a valid token without the needed
	// role or scoped to another instance, as real MAA does (maa-api.md §5).
	CodeUnauthorized = "Unauthorized"
	// CodeNotSupported answers an attestation type this build has no
	// evidence verifier for. It is never answered with a token.
	CodeNotSupported = "NotSupported"
	CodeNotFound     = "NotFound"
	CodeInternal     = "InternalError"
	// CodeServiceUnavailable: a verification input (collateral, an
	// endorsement key) could not be had right now; retry later (503).
	CodeServiceUnavailable = "ServiceUnavailable"
)

// Error is an MAA-coded failure of an instance operation: Code goes to the
// wire as error.code, Message as error.message. Err (optional) is the cause,
// kept for logs and errors.Is/As.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the MAA code of err, or CodeInternal when err carries none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
