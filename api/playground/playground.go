// Package playground serves attestd's policy playground: a static page,
// embedded in the binary, where a policy author edits a policy, feeds it a
// claim set or evidence and sees every rule decide. The page holds no
// logic of its own about the policy language beyond highlighting: it sends
// everything to the instance's policy dry run (POST
// {instance}/attestd/policies/{type}:explain) and reads the policy in
// force with GET {instance}/policies/{type}, both with the caller's own
// bearer token, so it can do nothing that token cannot.
//
// The files are public (a browser cannot attach a bearer token to a page
// load, and they are the same for every instance); every piece of data the
// page shows comes from a reader-role route. The handler only reads:
// GET and HEAD, nothing else.
package playground

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Path is where the playground lives below an instance's prefix, beside
// attestd's other routes outside MAA's names.
const Path = "/attestd/playground"

// ContentSecurityPolicy is sent with every file. Scripts, styles and
// connections are limited to the page's own origin, nothing may frame it,
// no form posts anywhere and no <base> can move relative URLs: an injected
// string can neither run nor exfiltrate the bearer token typed into the
// page. The page has no inline script or style (the tests check), so no
// 'unsafe-inline' is needed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// Errors writes the host API's error envelope, so a wrong method or a
// missing file answers like every other route of the instance.
type Errors interface {
	NotFound(w http.ResponseWriter, r *http.Request)
	MethodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string)
}

// contentTypes are fixed here rather than taken from the system's MIME
// table (mime.TypeByExtension reads /etc/mime.types), so that a module
// script is always served as JavaScript, which nosniff requires.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
}

// file is one embedded file with what its answer needs.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the files. Mount it with the mount path stripped
// (http.StripPrefix): "" is the page, "/NAME" a file beside it, "/" a
// redirect to the page (its relative URLs resolve from "…/playground").
type Handler struct {
	errs  Errors
	files map[string]file // by name: "index.html", "app.js", …
}

// New reads the embedded files once; they never change while the process
// runs.
func New(errs Errors) (*Handler, error) {
	h := &Handler{errs: errs, files: map[string]file{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("playground: %s: no content type for %q files", p, path.Ext(p))
		}
		sum := sha256.Sum256(b)
		h.files[strings.TrimPrefix(p, "static/")] = file{body: b, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Names lists the embedded files (for tests and documentation).
func (h *Handler) Names() []string {
	out := make([]string, 0, len(h.files))
	for n := range h.files {
		out = append(out, n)
	}
	return out
}

// File returns an embedded file's bytes.
func (h *Handler) File(name string) ([]byte, bool) {
	f, ok := h.files[name]
	return f.body, ok
}

// SetSecurityHeaders sets the headers every playground answer carries,
// errors included.
func SetSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SetSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.errs.MethodNotAllowed(w, r, http.MethodGet, http.MethodHead)
		return
	}
	name := r.URL.Path
	switch {
	case name == "":
		name = "index.html"
	case name == "/":
		// ".../playground/" would resolve the page's relative URLs one
		// level too deep.
		// Relative on purpose: this handler does not know the instance's
		// prefix (http.Redirect would resolve it against the stripped path).
		w.Header().Set("Location", "../playground")
		w.WriteHeader(http.StatusFound)
		return
	default:
		name = strings.TrimPrefix(name, "/")
	}
	f, ok := h.files[name]
	if !ok || name == "index.html" && r.URL.Path != "" {
		h.errs.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	// Revalidate every time: a new attestd version must never run an old
	// script against its API. The ETag keeps that cheap.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
