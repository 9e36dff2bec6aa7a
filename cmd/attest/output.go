package main

import (
	"errors"
	"io"

	"github.com/attestd/attestd/client"
)

// printJSONError writes err for --output json as MAA's error envelope,
// {"error":{"code","message"}}, with what else the CLI knows: the HTTP
// status, request id, Retry-After and attempts of a service error, the
// reason of a token refusal. Scripts then read one JSON document on stdout
// whatever happened (the exit status still says which kind of failure).
func printJSONError(w io.Writer, err error) {
	d := map[string]any{"message": err.Error()}
	var ce *client.Error
	var ve *client.ValidationError
	var ue *usageError
	switch {
	case errors.As(err, &ce):
		d["code"], d["message"], d["status"] = ce.Code, ce.Message, ce.StatusCode
		if ce.Code == "" {
			d["code"] = "HTTP" // real MAA answers some 401s with no body
		}
		if ce.RequestID != "" {
			d["requestId"] = ce.RequestID
		}
		if ce.RetryAfter > 0 {
			d["retryAfterSeconds"] = ce.RetryAfter.Seconds()
		}
		if ce.Attempts > 0 {
			d["attempts"] = ce.Attempts
		}
	case errors.As(err, &ve):
		d["code"], d["reason"] = "InvalidToken", ve.Reason
	case errors.As(err, &ue):
		d["code"] = "Usage"
	default:
		d["code"] = "Error"
	}
	_ = printJSON(w, map[string]any{"error": d})
}
