package api

import (
	"net/http"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/instance"
)

// requireAttestToken refuses attest calls without a valid bearer token of
// the mount's issuers (scoped to this instance or to none; any role) when
// Mount.RequireAttestToken is set, and passes everything through otherwise.
// It runs inside admission control, so a flood of forged tokens costs at
// most max-inflight signature checks at a time.
func requireAttestToken(m Mount, next http.Handler) http.Handler {
	if !m.RequireAttestToken {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("Authorization")) > 1 {
			writeError(w, r, apiError(instance.CodeUnauthorized, "more than one Authorization header"))
			return
		}
		p, err := m.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err == nil {
			err = p.Authorize(m.Instance.Name(), auth.RoleNone)
		}
		if auth.ReasonOf(err) == auth.ReasonKeysUnavailable {
			writeError(w, r, &instance.Error{Code: codeUnavailable, Message: "cannot validate bearer tokens right now: " + err.Error(), Err: err})
			return
		}
		if err != nil {
			writeError(w, r, &instance.Error{Code: instance.CodeUnauthorized, Message: "this instance requires a bearer token for attest calls: " + err.Error(), Err: err})
			return
		}
		next.ServeHTTP(w, r)
	})
}
