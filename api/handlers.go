package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
)

type instanceHandler struct {
	m Mount
}

func (h *instanceHandler) begin(r *http.Request) *instance.Instance {
	if rl := logInfoFrom(r.Context()); rl != nil {
		rl.instance = h.m.Instance.Name()
	}
	return h.m.Instance
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, r, apiError(codeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
}

// authorize checks the bearer token of an admin call: valid, scoped to this
// instance (or to none), with at least role need. Shared instances have no
// admin identity: their reads are public and their writes are refused by
// the instance with a clear InvalidOperation.
func (h *instanceHandler) authorize(r *http.Request, need auth.Role) (instance.Actor, error) {
	if h.m.Instance.Mode() == instance.ModeShared {
		return instance.Actor{}, nil
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return instance.Actor{}, apiError(instance.CodeUnauthorized, "more than one Authorization header")
	}
	p, err := h.m.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
	if err == nil {
		// Real MAA answers missing roles with 401 Unauthorized too (maa-api.md §5).
		err = p.Authorize(h.m.Instance.Name(), need)
	}
	if auth.ReasonOf(err) == auth.ReasonKeysUnavailable {
		// The identity provider is unreachable: not the caller's fault.
		return instance.Actor{}, &instance.Error{Code: codeUnavailable, Message: "cannot validate bearer tokens right now: " + err.Error(), Err: err}
	}
	if err != nil {
		return instance.Actor{}, &instance.Error{Code: instance.CodeUnauthorized, Message: err.Error(), Err: err}
	}
	return instance.Actor{Subject: p.Actor()}, nil
}

// writeToken answers {"token": tok}. A compact JWS (or the b64url envelope
// of a sealed token) is only base64url characters and dots, which JSON
// never escapes, so the body is written as is instead of through
// encoding/json's reflection and escape scan (the bytes are the same;
// TestWriteTokenMatchesJSON); anything else takes the general path.
func writeToken(w http.ResponseWriter, tok string) {
	if !isTokenText(tok) {
		writeJSON(w, http.StatusOK, map[string]string{"token": tok})
		return
	}
	bp := tokenBodies.Get().(*[]byte)
	b := append((*bp)[:0], `{"token":"`...)
	b = append(b, tok...)
	b = append(b, `"}`...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b) // io.Writer: Write does not keep b
	if cap(b) <= maxPooledBody {
		*bp = b
		tokenBodies.Put(bp)
	}
}

// tokenBodies recycles the buffers writeToken builds a response in (a ~4 KB
// token per attestation was ~5 % of the bytes an ES256 attestation
// allocated); buffers above maxPooledBody are left to the GC, so a rare
// huge token does not stay pinned.
var tokenBodies = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

const maxPooledBody = 64 << 10

// isTokenText reports whether s holds only base64url characters and dots.
// One table lookup per byte (tokenChars): the three-range test per byte was
// about 1.5 % of an ES256 attestation for a ~4 KB token.
func isTokenText(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// tokenChars marks the bytes of base64url and '.'; a constant table.
var tokenChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	return t
}()

// policies serves GET/PUT /policies/{type} and POST /policies/{type}:reset.
func (h *instanceHandler) policies(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	typ := r.PathValue("type")
	reset := false
	if t, ok := strings.CutSuffix(typ, ":reset"); ok {
		typ, reset = t, true
	}
	ctx := r.Context()
	switch {
	case reset && r.Method == http.MethodPost:
		h.change(w, r, func(body string, actor instance.Actor) (string, error) {
			return in.ResetPolicy(ctx, typ, body, actor)
		})
	case reset:
		methodNotAllowed(w, r, http.MethodPost)
	case r.Method == http.MethodGet:
		h.read(w, r, func() (string, error) { return in.GetPolicy(ctx, typ) })
	case r.Method == http.MethodPut:
		h.change(w, r, func(body string, actor instance.Actor) (string, error) {
			return in.SetPolicy(ctx, typ, body, actor)
		})
	default:
		methodNotAllowed(w, r, http.MethodGet, http.MethodPut)
	}
}

// read answers an admin read: reader role, then the instance's result token.
func (h *instanceHandler) read(w http.ResponseWriter, r *http.Request, get func() (string, error)) {
	if _, err := h.authorize(r, auth.RoleReader); err != nil {
		writeError(w, r, err)
		return
	}
	tok, err := get()
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeToken(w, tok)
}

// change answers an admin write: contributor role, a size-limited body, then
// the instance's result token.
func (h *instanceHandler) change(w http.ResponseWriter, r *http.Request, apply func(body string, actor instance.Actor) (string, error)) {
	actor, err := h.authorize(r, auth.RoleContributor)
	if err != nil {
		writeError(w, r, err)
		return
	}
	body, err := readBody(w, r, MaxPolicyBody)
	if err != nil {
		writeError(w, r, err)
		return
	}
	tok, err := apply(string(body), actor)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeToken(w, tok)
}

// certificates serves GET /certificates and POST /certificates:add|:remove.
func (h *instanceHandler) certificates(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	ctx := r.Context()
	op := ""
	switch {
	case strings.HasSuffix(r.URL.Path, ":add"):
		op = "add"
	case strings.HasSuffix(r.URL.Path, ":remove"):
		op = "remove"
	}
	switch {
	case op == "" && r.Method == http.MethodGet:
		h.read(w, r, func() (string, error) { return in.Certificates(ctx) })
	case op == "":
		methodNotAllowed(w, r, http.MethodGet)
	case r.Method != http.MethodPost:
		methodNotAllowed(w, r, http.MethodPost)
	case op == "add":
		h.change(w, r, func(body string, actor instance.Actor) (string, error) {
			return in.AddCertificate(ctx, body, actor)
		})
	default:
		h.change(w, r, func(body string, actor instance.Actor) (string, error) {
			return in.RemoveCertificate(ctx, body, actor)
		})
	}
}

// certs serves GET /certs: the instance's signing keys as a JWKS, with
// Content-Type application/json (the JS SDK ignores application/jwk+json).
func (h *instanceHandler) certs(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	b := in.JWKS()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

func (h *instanceHandler) openid(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	writeJSON(w, http.StatusOK, in.OpenIDConfiguration())
}

// attestBody is the union of the attest request bodies of maa-api.md §1.1,
// §1.3 and §1.6. Unknown members are ignored.
type attestBody struct {
	Quote  *string `json:"quote"`
	Report *string `json:"report"`
	Data   *string `json:"data"` // Tpm
	// AttestationInfo is AzureGuest's evidence (maa-api.md §8): capital A
	// from the real client, "attestationInfo" in the 2025-06-01 TypeSpec;
	// encoding/json matches member names case-insensitively, so one field
	// takes both.
	AttestationInfo *string   `json:"AttestationInfo"`
	RuntimeData     *dataBody `json:"runtimeData"`
	InitTime        *dataBody `json:"initTimeData"`
	Draft           *string   `json:"draftPolicyForAttestation"`
	// Nonce is a string, or a JSON number (the ACI sidecar sends a uint64).
	Nonce json.RawMessage `json:"nonce"`
	// EventLog (TdxVm, attestd beyond MAA): base64url of the TD's CCEL
	// event log, replayed against the quote's RTMRs.
	EventLog *string `json:"eventLog"`
}

type dataBody struct {
	Data     *string `json:"data"`
	DataType string  `json:"dataType"`
}

// decodeBase64 accepts base64url with or without padding (what the SDKs
// send) and standard base64 (what hand-written clients often send).
func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

func decodeData(field string, d *dataBody) (*evidence.Data, error) {
	if d == nil || d.Data == nil || *d.Data == "" {
		// Python 1.0.1 sends {"dataType":"JSON"} without data, the ACI
		// sidecar {"data":"","dataType":""}: absent, not data to bind.
		return nil, nil
	}
	b, err := decodeBase64(*d.Data)
	if err != nil {
		return nil, apiError(instance.CodeInvalidParameter, "%s.data is not base64url: %v", field, err)
	}
	out := &evidence.Data{Bytes: b}
	switch {
	case d.DataType == "" || strings.EqualFold(d.DataType, "Binary"):
	case strings.EqualFold(d.DataType, "JSON"):
		out.JSON = true
	default:
		return nil, apiError(instance.CodeInvalidParameter, "%s.dataType must be \"Binary\" or \"JSON\", got %q", field, d.DataType)
	}
	return out, nil
}

// decodeNonce reads the request's nonce: a JSON string (the SDKs) or a
// non-negative integer (the ACI sidecar's uint64), which the token echoes
// as the number it was.
func decodeNonce(raw json.RawMessage, req *instance.AttestRequest) error {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return apiError(instance.CodeInvalidParameter, "nonce: %v", err)
		}
		req.Nonce = &s
		return nil
	}
	s := string(raw)
	if len(s) > 20 || strings.Trim(s, "0123456789") != "" {
		return apiError(instance.CodeInvalidParameter, "nonce must be a string or a non-negative integer")
	}
	req.Nonce, req.NonceIsNumber = &s, true
	return nil
}

// decodeAttest turns an attest request body into an instance.AttestRequest.
func decodeAttest(t evidence.Type, raw []byte) (*instance.AttestRequest, error) {
	var b attestBody
	if !fastAttestBody(raw, &b) {
		b = attestBody{}
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, apiError(instance.CodeInvalidParameter, "request body is not a JSON attest request: %v", err)
		}
	}
	req := &instance.AttestRequest{Type: t, DraftPolicy: b.Draft}
	if err := decodeNonce(b.Nonce, req); err != nil {
		return nil, err
	}
	var field string
	var ev *string
	switch t {
	case evidence.SgxEnclave, evidence.TdxVm:
		field, ev = "quote", b.Quote
	case evidence.OpenEnclave, evidence.SevSnpVm:
		field, ev = "report", b.Report
	case evidence.Tpm:
		field, ev = "data", b.Data
	case evidence.AzureGuest:
		field, ev = "AttestationInfo", b.AttestationInfo
	}
	if ev == nil || *ev == "" {
		return nil, apiError(instance.CodeInvalidParameter, "the %s attest request has no %q", t, field)
	}
	var err error
	if req.Evidence, err = decodeBase64(*ev); err != nil {
		return nil, apiError(instance.CodeInvalidParameter, "%s is not base64url: %v", field, err)
	}
	if len(req.Evidence) == 0 {
		return nil, apiError(instance.CodeInvalidParameter, "%s is empty", field)
	}
	if req.Runtime, err = decodeData("runtimeData", b.RuntimeData); err != nil {
		return nil, err
	}
	if req.InitTime, err = decodeData("initTimeData", b.InitTime); err != nil {
		return nil, err
	}
	if b.EventLog != nil && *b.EventLog != "" {
		if t != evidence.TdxVm {
			return nil, apiError(instance.CodeInvalidParameter, "eventLog is accepted with TdxVm evidence only")
		}
		if req.EventLog, err = decodeBase64(*b.EventLog); err != nil {
			return nil, apiError(instance.CodeInvalidParameter, "eventLog is not base64url: %v", err)
		}
	}
	return req, nil
}

// attest serves POST /attest/{type}. Bearer tokens are neither required nor
// checked here: real MAA attest endpoints are anonymous, and the JS SDK only
// sends one when the caller configured a credential.
func (h *instanceHandler) attest(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	t, raw, err := typedBody(w, r, r.PathValue("type"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	req, err := decodeAttest(t, raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := in.Attest(r.Context(), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeAttestResponse(w, res)
}

// writeAttestResponse writes {"token": …}, or {"data": base64url(…)} for
// the reply of a multi-round protocol (Tpm, maa-api.md §1.3).
func writeAttestResponse(w http.ResponseWriter, res *instance.AttestResponse) {
	if res.Data != nil {
		writeJSON(w, http.StatusOK, map[string]string{"data": base64.RawURLEncoding.EncodeToString(res.Data)})
		return
	}
	writeToken(w, res.Token)
}

// DecodeAttestRequest decodes an attest request body of type t (maa-api.md
// §1.1) exactly as POST /attest does; "attestd policy explain --evidence"
// reads request files with it.
func DecodeAttestRequest(t evidence.Type, body []byte) (*instance.AttestRequest, error) {
	return decodeAttest(t, body)
}

// tcbBaselines serves GET /tcbbaselines/{type}: the TCB baselines a policy
// can select with x-ms-sgx-tcbidentifier. Reader role, as GET /policies:
// it reveals which baseline the policy in force selects.
func (h *instanceHandler) tcbBaselines(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	if _, err := h.authorize(r, auth.RoleReader); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := in.TCBBaselines(r.Context(), r.PathValue("type"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// typedBody reads what attest and the dry run share: the attestation type of
// the {type} route segment and the size-limited request body.
func typedBody(w http.ResponseWriter, r *http.Request, typ string) (evidence.Type, []byte, error) {
	t, err := instance.ParseType(typ)
	if err != nil {
		return "", nil, err
	}
	raw, err := readBody(w, r, MaxAttestBody)
	if err != nil {
		return "", nil, err
	}
	return t, raw, nil
}
