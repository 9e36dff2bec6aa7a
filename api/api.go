// Package api is attestd's HTTP front end: the MAA data-plane routes of every
// instance (maa-api.md §1), the MAA error envelope, request body limits,
// bearer-token authorisation of admin calls, request logging and panic
// recovery. All attestation logic lives in package instance.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/attestd/attestd/api/playground"
	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
)

// Authenticator validates the Authorization header of admin calls;
// *auth.Authenticator implements it. Its errors are reported to the caller
// (401), so they must never contain the token.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string) (*auth.Principal, error)
}

// Mount serves one instance under a path prefix.
type Mount struct {
	// Prefix is "" for the instance at the root, else "/seg[/seg…]".
	Prefix   string
	Instance *instance.Instance
	// Auth authorises admin calls. Required unless the instance is Shared
	// (whose reads are public and whose writes are refused).
	Auth Authenticator
	// Audit, when set, serves GET {prefix}/audit (reader role): the
	// instance's audit trail, newest first, in pages. Nil: 404.
	Audit AuditReader
	// RequireAttestToken makes attest calls need a valid bearer token of
	// this instance (any role), as a private MAA instance can; MAA's
	// shared instances, and the default, accept anonymous attest calls.
	RequireAttestToken bool
	// DisablePlayground stops serving the policy playground at
	// {prefix}/attestd/playground (package playground), which is on by
	// default. The playground's files are public; the routes it calls
	// keep their own roles.
	DisablePlayground bool
}

// Limits on request bodies.
const (
	MaxPolicyBody = 1 << 20 // policy set/reset and certificate changes
	MaxAttestBody = 4 << 20 // attest requests (quotes, reports, runtime data)
)

// Options configure the handler.
type Options struct {
	Mounts []Mount
	Logger *slog.Logger
	// Health, when set, is consulted by GET /healthz (e.g. a store ping).
	Health func(context.Context) error
	// Admission bounds the attest routes of every mount (see Admission);
	// nil: NewAdmission(AdmissionOptions{}), the defaults.
	Admission *Admission
	// Observe, when set, is called once per request after it was answered
	// (metrics); it must be quick and must not retain the event's Err.
	Observe func(RequestEvent)
}

// New returns the HTTP handler serving every mount.
func New(o Options) (http.Handler, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	adm := o.Admission
	if adm == nil {
		var err error
		if adm, err = NewAdmission(AdmissionOptions{}); err != nil {
			return nil, err
		}
	}
	pg, err := playground.New(playgroundErrors{})
	if err != nil {
		return nil, fmt.Errorf("api: playground: %w", err)
	}
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, m := range o.Mounts {
		p := m.Prefix
		if p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "{}: ?#")) {
			return nil, fmt.Errorf("api: instance %s: bad path prefix %q (want \"\" or \"/a/b\")", m.Instance.Name(), p)
		}
		if seen[p] {
			return nil, fmt.Errorf("api: two instances share the path prefix %q", p)
		}
		seen[p] = true
		if m.Auth == nil && m.RequireAttestToken {
			return nil, fmt.Errorf("api: instance %s requires a bearer token for attest calls but has no authenticator", m.Instance.Name())
		}
		if m.Auth == nil && m.Instance.Mode() != instance.ModeShared {
			return nil, fmt.Errorf("api: instance %s (%s) has no authenticator", m.Instance.Name(), m.Instance.Mode())
		}
		ih := &instanceHandler{m: m}
		// Patterns carry no method: the handlers answer a wrong method with
		// an MAA-shaped 405 instead of ServeMux's text/plain one.
		// Only attest passes admission control: admin, metadata and health
		// routes keep answering under an attest flood.
		name := m.Instance.Name()
		handle := func(pattern, op string, h http.Handler) { mux.Handle(p+pattern, markOp(op, name, h)) }
		handle("/attest/{type}", OpAttest, adm.Wrap(requireAttestToken(m, http.HandlerFunc(ih.attest))))
		// ServeMux cannot express "/policies/{type}:reset" (dependencies.md
		// §6): the handler splits the ":reset" suffix off {type}.
		handle("/policies/{type}", OpPolicy, http.HandlerFunc(ih.policies))
		handle("/certificates", OpCertificates, http.HandlerFunc(ih.certificates))
		handle("/certificates:add", OpCertificates, http.HandlerFunc(ih.certificates))
		handle("/certificates:remove", OpCertificates, http.HandlerFunc(ih.certificates))
		handle("/certs", OpCerts, http.HandlerFunc(ih.certs))
		handle("/.well-known/openid-configuration", OpOpenID, http.HandlerFunc(ih.openid))
		// 2022-09-01-preview / 2025-06-01 (maa-api.md §1.6).
		handle("/tcbbaselines/{type}", OpTCBBaselines, http.HandlerFunc(ih.tcbBaselines))
		// attestd's own additions (not MAA): {type}:explain, the policy dry
		// run, and the audit trail (reader role).
		handle(ExplainPathPrefix+"{type}", OpExplain, http.HandlerFunc(ih.explain))
		handle(AuditPath, OpAudit, http.HandlerFunc(ih.audit))
		if !m.DisablePlayground {
			// The page at …/playground, its files at …/playground/NAME.
			strip := http.StripPrefix(p+playground.Path, pg)
			handle(playground.Path, OpPlayground, strip)
			handle(playground.Path+"/", OpPlayground, strip)
		}
	}
	mux.Handle("/healthz", markOp(OpHealth, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Health != nil {
			if err := o.Health(r.Context()); err != nil {
				writeError(w, r, &instance.Error{Code: instance.CodeInternal, Message: "unhealthy", Err: err})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, apiError(instance.CodeNotFound, "no MAA operation at %s %s", r.Method, r.URL.Path))
	})
	return logRequests(log, o.Observe, recoverPanics(log, mux)), nil
}

// playgroundErrors answers the playground's wrong methods and missing
// files with the MAA envelope, like every other route.
type playgroundErrors struct{}

func (playgroundErrors) NotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, apiError(instance.CodeNotFound, "no playground file at %s", r.URL.Path))
}

func (playgroundErrors) MethodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) {
	methodNotAllowed(w, r, allowed...)
}

// requestLog collects what the access log line reports.
type requestLog struct {
	instance string
	op, typ  string // operation (Op…) and attestation type, set by markOp
	err      error
}

type logKey struct{}

func logInfoFrom(ctx context.Context) *requestLog {
	rl, _ := ctx.Value(logKey{}).(*requestLog)
	return rl
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (read deadlines
// of the attest routes, flushing).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests assigns a request id (answered in x-ms-request-id and kept in
// the context, see RequestID and LogHandler), writes one slog line per
// request naming the failed check of a refusal, and reports the request to
// observe (nil: nobody). It never logs headers or bodies (bearer tokens,
// evidence).
func logRequests(log *slog.Logger, observe func(RequestEvent), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var id [16]byte
		_, _ = rand.Read(id[:])
		rid := hex.EncodeToString(id[:])
		w.Header().Set("x-ms-request-id", rid)
		rl := &requestLog{}
		sw := &statusWriter{ResponseWriter: w}
		ctx := context.WithValue(context.WithValue(r.Context(), logKey{}, rl), requestIDKey{}, rid)
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.status == 0 {
			sw.status = http.StatusOK // nothing written: net/http answers 200
		}
		d := time.Since(start)
		attrs := []any{"method", clipText(r.Method, maxLoggedMethod), "path", clipText(r.URL.Path, maxLoggedPath), "status", sw.status, "bytes", sw.bytes,
			"duration_ms", float64(d.Microseconds()) / 1000, "request_id", rid, "remote", r.RemoteAddr}
		if c := r.Header.Get("x-ms-client-request-id"); c != "" && len(c) <= 64 {
			attrs = append(attrs, "client_request_id", c)
		}
		if rl.instance != "" {
			attrs = append(attrs, "instance", rl.instance)
		}
		level := slog.LevelInfo
		if rl.err != nil {
			attrs = append(attrs, "error", clipText(rl.err.Error(), maxLoggedError), "code", codeOf(rl.err))
			if c := evidence.CheckOf(rl.err); c != "" {
				attrs = append(attrs, "check", c)
			}
			if sw.status == http.StatusInternalServerError {
				level = slog.LevelError
			} else {
				level = slog.LevelWarn
			}
		}
		log.Log(ctx, level, "request", attrs...)
		if observe != nil {
			observe(rl.event(r, rid, sw.status, d))
		}
	})
}

// recoverPanics turns a handler panic into a 500 MAA error and a log entry
// with the stack, so one bad request never takes the server down.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "handler panic", "panic", fmt.Sprint(v), "path", r.URL.Path, "stack", string(debug.Stack()))
				writeError(w, r, &instance.Error{Code: instance.CodeInternal, Message: "panic", Err: fmt.Errorf("panic: %v", v)})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// readBody reads at most limit bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, apiError(codeTooLarge, "request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit)
	}
	// With a declared length read into one buffer of that size instead of
	// growing one from 512 bytes; capped, so that a declared length alone
	// (body not sent yet) never reserves more than typical evidence needs.
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, 64<<10)) + 1) // +1: ReadFrom needs room to see EOF
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	b := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiError(codeTooLarge, "request body exceeds the limit of %d bytes", limit)
		}
		return nil, apiError(codeBadRequestBody, "reading the request body failed: %v", err)
	}
	return b, nil
}
