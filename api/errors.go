package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
)

// Codes the API layer itself produces, besides instance.Code*.
const (
	codeMethodNotAllowed = "MethodNotAllowed"
	codeTooLarge         = "RequestEntityTooLarge"
	codeBadRequestBody   = "InvalidParameter"
	codeUnavailable      = instance.CodeServiceUnavailable
)

// statusByCode is THE table from MAA error codes to HTTP statuses: every
// code the SDKs see on a failed admin or attest call is 4xx; 5xx means
// attestd failed. Codes not listed are 500.
var statusByCode = map[string]int{
	instance.CodeBadRequest:            http.StatusBadRequest,
	instance.CodeInvalidParameter:      http.StatusBadRequest,
	instance.CodePolicyEvaluationError: http.StatusBadRequest,
	instance.CodePolicyParsingError:    http.StatusBadRequest,
	instance.CodeInvalidOperation:      http.StatusBadRequest,
	instance.CodeUnauthorized:          http.StatusUnauthorized, // also wrong role or instance (maa-api.md §5)
	instance.CodeNotFound:              http.StatusNotFound,
	codeMethodNotAllowed:               http.StatusMethodNotAllowed,
	codeTooLarge:                       http.StatusRequestEntityTooLarge,
	instance.CodeNotSupported:          http.StatusNotImplemented, // no verifier for the type: never a fake token
	codeUnavailable:                    http.StatusServiceUnavailable,
	instance.CodeInternal:              http.StatusInternalServerError,
}

// statusOf maps an MAA error code to its HTTP status (statusByCode).
func statusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeOf is the MAA code of err: an *instance.Error's own; a refused piece
// of evidence that reached the edge unwrapped (a typed check,
// *evidence.Error) is InvalidParameter; anything else is InternalError.
func codeOf(err error) string {
	var ie *instance.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	var ee *evidence.Error
	if errors.As(err, &ee) {
		return instance.CodeInvalidParameter
	}
	return instance.CodeInternal
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// InnerError repeats code and message, as real MAA's policy errors do
	// (maa-policy.md §10, verified on PolicyEvaluationError responses).
	InnerError *errorDetail `json:"innererror,omitempty"`
}

// writeJSON writes v as an application/json 200-style response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalError","message":"response encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError renders err as the MAA error envelope
// {"error":{"code","message"}} and records it for the request log. Internal
// errors are answered with a generic message naming the request id; their
// cause goes only to the log.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := codeOf(err)
	var ie *instance.Error
	msg := err.Error()
	if errors.As(err, &ie) {
		msg = ie.Message
		if msg == "" && ie.Err != nil {
			msg = ie.Err.Error()
		}
	}
	msg = clipText(msg, maxErrorMessage)
	status := statusOf(code)
	if rl := logInfoFrom(r.Context()); rl != nil {
		rl.err = err
	}
	if status == http.StatusInternalServerError {
		msg = fmt.Sprintf("internal error (request id %s); see the attestd log", w.Header().Get("x-ms-request-id"))
	}
	if code == instance.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer`)
	}
	d := errorDetail{Code: code, Message: msg}
	if code == instance.CodePolicyEvaluationError || code == instance.CodePolicyParsingError {
		d.InnerError = &errorDetail{Code: code, Message: msg}
	}
	writeJSON(w, status, errorBody{Error: d})
}

// apiError builds an *instance.Error for API-level failures.
func apiError(code, format string, args ...any) error {
	return &instance.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
