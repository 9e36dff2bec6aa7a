package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/attestd/attestd/evidence"
)

// Operation names of RequestEvent.Operation: one per kind of route, so that
// a metrics label or a log field has a small, fixed set of values whatever
// paths clients send.
const (
	OpAttest       = "attest"
	OpPolicy       = "policy"
	OpCertificates = "certificates"
	OpCerts        = "certs"
	OpOpenID       = "openid"
	OpTCBBaselines = "tcbbaselines"
	OpExplain      = "explain"
	OpAudit        = "audit"
	OpPlayground   = "playground"
	OpHealth       = "healthz"
	OpOther        = "other"
)

// RequestEvent describes one answered request, for Options.Observe
// (metrics). It never carries headers or bodies.
type RequestEvent struct {
	RequestID string
	Method    string
	Operation string // one of the Op… constants
	// Action is the admin change a successful or refused write asked for
	// ("policy.set", "policy.reset", "certificate.add", "certificate.remove"),
	// "" for reads and attest calls.
	Action   string
	Instance string // "" when the path named no instance
	// Type is the attestation type of attest, policy and explain calls as
	// the client spelled it (bounded to 64 bytes); metrics should map
	// unknown values to one label.
	Type     string
	Status   int
	Duration time.Duration
	// Code is the MAA error code answered ("" on success), Check the failed
	// evidence check (evidence.CheckOf) when the error names one.
	Code  string
	Check string
	Err   error
}

// Outcome is "ok" for a 2xx answer, else the MAA error code.
func (e RequestEvent) Outcome() string {
	if e.Status >= 200 && e.Status < 300 {
		return "ok"
	}
	if e.Code != "" {
		return e.Code
	}
	return http.StatusText(e.Status)
}

type requestIDKey struct{}

// RequestID returns the id of the request being served (the x-ms-request-id
// answered), "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// LogHandler wraps h so that every record logged with a request's context
// (Logger.InfoContext(ctx, …)) carries that request's request_id, which ties
// a component's log lines to the access log line and to the id the client
// got in x-ms-request-id.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		// The access log line names it itself: one request_id per line.
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "request_id"
			return !has
		})
		if !has {
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// markOp records which operation a route serves (and the attestation type of
// its path) for the access log and Options.Observe.
// Setting the instance here, before admission control, names it on
// requests shed with 429 too.
func markOp(op, instance string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rl := logInfoFrom(r.Context()); rl != nil {
			rl.op, rl.instance = op, instance
			if t := r.PathValue("type"); t != "" {
				t, _ = strings.CutSuffix(t, ":reset")
				rl.typ = clipText(t, 64)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// actionOf names the admin change a request asked for.
func actionOf(op, method, path string) string {
	switch {
	case op == OpPolicy && method == http.MethodPut:
		return "policy.set"
	case op == OpPolicy && method == http.MethodPost && strings.HasSuffix(path, ":reset"):
		return "policy.reset"
	case op == OpCertificates && method == http.MethodPost && strings.HasSuffix(path, ":add"):
		return "certificate.add"
	case op == OpCertificates && method == http.MethodPost && strings.HasSuffix(path, ":remove"):
		return "certificate.remove"
	}
	return ""
}

// event builds the RequestEvent of a finished request.
func (rl *requestLog) event(r *http.Request, rid string, status int, d time.Duration) RequestEvent {
	op := rl.op
	if op == "" {
		op = OpOther
	}
	e := RequestEvent{RequestID: rid, Method: r.Method, Operation: op, Action: actionOf(op, r.Method, r.URL.Path),
		Instance: rl.instance, Type: rl.typ, Status: status, Duration: d, Err: rl.err}
	if rl.err != nil {
		e.Code = codeOf(rl.err)
		e.Check = evidence.CheckOf(rl.err)
	}
	return e
}
