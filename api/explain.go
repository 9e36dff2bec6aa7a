package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
)

// ExplainPathPrefix is where attestd's own admin routes live below an
// instance's prefix: outside MAA's names, so a future MAA route can never
// collide with them.
const ExplainPathPrefix = "/attestd/policies/"

// explainBody is the body of POST {instance}/attestd/policies/{type}:explain.
type explainBody struct {
	// Policy is the policy text; absent means the policy in force (or the
	// evidence's draftPolicyForAttestation).
	Policy *string `json:"policy"`
	// Claims is a JSON claim set ({"type": value | [values]}).
	Claims json.RawMessage `json:"claims"`
	// Evidence is an attest request body of the type (maa-api.md §1.1).
	Evidence json.RawMessage `json:"evidence"`
}

// explain serves POST {instance}/attestd/policies/{type}:explain, a policy
// dry run: the decision and a rule-by-rule trace as JSON, or as text with
// ?format=text or Accept: text/plain. It needs the reader role (the same as
// GET /policies) because it reveals the policy in force and never issues a
// token. A denial is a 200 answer whose "error" is what /attest would say;
// a policy that does not parse is a 400 PolicyParsingError.
func (h *instanceHandler) explain(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	typ, ok := strings.CutSuffix(r.PathValue("type"), ":explain")
	if !ok {
		writeError(w, r, apiError(instance.CodeNotFound, "no attestd operation at %s (want %s{type}:explain)", r.URL.Path, ExplainPathPrefix))
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	if _, err := h.authorize(r, auth.RoleReader); err != nil {
		writeError(w, r, err)
		return
	}
	t, raw, err := typedBody(w, r, typ)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req, err := decodeExplain(t, raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ex, err := in.Explain(r.Context(), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if wantsText(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(ExplanationText(ex)))
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "&&" and "=>" of rule texts readable
	if err := enc.Encode(ex); err != nil {
		writeError(w, r, &instance.Error{Code: instance.CodeInternal, Message: "encoding the explanation failed", Err: err})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// decodeExplain decodes an explain request body of type t: exactly one of
// "claims" and "evidence" (an attest request body, decoded as /attest
// does), and an optional "policy". The claim set itself is decoded by the
// instance (policy.ClaimsFromJSON).
func decodeExplain(t evidence.Type, raw []byte) (*instance.ExplainRequest, error) {
	var b explainBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, apiError(instance.CodeInvalidParameter, "request body is not a JSON explain request {\"policy\", \"claims\" | \"evidence\"}: %v", err)
	}
	if dec.More() {
		return nil, apiError(instance.CodeInvalidParameter, "data after the JSON explain request")
	}
	req := &instance.ExplainRequest{Type: t, Policy: b.Policy}
	hasClaims, hasEvidence := len(b.Claims) > 0 && string(b.Claims) != "null", len(b.Evidence) > 0 && string(b.Evidence) != "null"
	switch {
	case hasClaims == hasEvidence:
		return nil, apiError(instance.CodeInvalidParameter, "give exactly one of \"claims\" (a JSON claim set) and \"evidence\" (an attest request body)")
	case hasClaims:
		req.Claims = b.Claims
	default:
		var err error
		if req.Evidence, err = decodeAttest(t, b.Evidence); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func wantsText(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return strings.EqualFold(f, "text")
	}
	a := r.Header.Get("Accept")
	return strings.Contains(a, "text/plain") && !strings.Contains(a, "application/json")
}

// ExplanationText renders an explanation for people: the verdict, the
// error /attest would return, the trace and the claims.
func ExplanationText(ex *instance.Explanation) string {
	var sb strings.Builder
	verdict := "PERMITTED"
	if !ex.Permitted {
		verdict = "DENIED"
	}
	sb.WriteString(verdict + " (policy: " + ex.PolicySource + ")\n")
	if ex.Error != nil {
		// The trace's error line carries the detail of MAA's long message.
		sb.WriteString("attest would answer: 400 " + ex.Error.Code + "\n")
	}
	if ex.Trace != nil {
		sb.WriteString(ex.Trace.String())
	}
	if len(ex.TokenClaims) > 0 {
		b, err := json.MarshalIndent(ex.TokenClaims, "", "  ")
		if err == nil {
			sb.WriteString("token claims (not signed):\n" + string(b) + "\n")
		}
	}
	return sb.String()
}
