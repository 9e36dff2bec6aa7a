package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
)

// TestErrorTable: the one mapping from errors to MAA codes and statuses.
func TestErrorTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   string
		status int
	}{
		{"instance code", &instance.Error{Code: instance.CodePolicyParsingError}, instance.CodePolicyParsingError, 400},
		{"wrapped instance code", fmt.Errorf("ctx: %w", &instance.Error{Code: instance.CodeUnauthorized}), instance.CodeUnauthorized, 401},
		{"not supported", &instance.Error{Code: instance.CodeNotSupported}, instance.CodeNotSupported, 501},
		{"bare evidence check", fmt.Errorf("x: %w", evidence.Errorf(evidence.CheckRuntimeBinding, "no")), instance.CodeInvalidParameter, 400},
		{"Tpm without policy", &instance.Error{Code: instance.CodeBadRequest}, instance.CodeBadRequest, 400},
		{"anything else", errors.New("disk full"), instance.CodeInternal, 500},
		{"unknown code", &instance.Error{Code: "Whatever"}, "Whatever", http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := codeOf(tc.err); got != tc.code {
				t.Errorf("codeOf = %q, want %q", got, tc.code)
			}
			if got := statusOf(codeOf(tc.err)); got != tc.status {
				t.Errorf("status = %d, want %d", got, tc.status)
			}
		})
	}
}

// TestAttestResponseWire: a token is {"token": …}; a multi-round reply is
// {"data": base64url(…)} as MAA's Tpm protocol answers (maa-api.md §1.3).
func TestAttestResponseWire(t *testing.T) {
	for _, tc := range []struct {
		res  *instance.AttestResponse
		want string
	}{
		{&instance.AttestResponse{Token: "a.b.c"}, `{"token":"a.b.c"}`},
		{&instance.AttestResponse{Data: []byte(`{"payload":{"challenge":"x"}}`)}, `{"data":"eyJwYXlsb2FkIjp7ImNoYWxsZW5nZSI6IngifX0"}`},
	} {
		w := httptest.NewRecorder()
		writeAttestResponse(w, tc.res)
		if w.Code != 200 || w.Body.String() != tc.want || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%d %s %q, want 200 %s", w.Code, w.Header().Get("Content-Type"), w.Body, tc.want)
		}
	}
}
