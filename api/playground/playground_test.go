package playground

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
)

// plainErrors records which error the handler chose.
type plainErrors struct{}

func (plainErrors) NotFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not found", http.StatusNotFound)
}

func (plainErrors) MethodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	http.Error(w, "method", http.StatusMethodNotAllowed)
}

func newHandler(t testing.TB) *Handler {
	t.Helper()
	h, err := New(plainErrors{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func serve(h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "https://attestd.test/x", nil)
	r.URL.Path = path // as http.StripPrefix leaves it
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServe(t *testing.T) {
	h := newHandler(t)
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		contentType        string // prefix
		location           string
	}{
		{name: "the page", method: "GET", path: "", status: 200, contentType: "text/html"},
		{name: "HEAD of the page", method: "HEAD", path: "", status: 200, contentType: "text/html"},
		{name: "script", method: "GET", path: "/app.js", status: 200, contentType: "text/javascript"},
		{name: "highlighter module", method: "GET", path: "/highlight.js", status: 200, contentType: "text/javascript"},
		{name: "style", method: "GET", path: "/style.css", status: 200, contentType: "text/css"},
		{name: "samples", method: "GET", path: "/samples.json", status: 200, contentType: "application/json"},
		{name: "trailing slash goes to the page", method: "GET", path: "/", status: 302, location: "../playground"},
		{name: "the page has one name only", method: "GET", path: "/index.html", status: 404},
		{name: "unknown file", method: "GET", path: "/secret.txt", status: 404},
		{name: "no directory walk", method: "GET", path: "/../playground.go", status: 404},
		{name: "nested path", method: "GET", path: "/static/app.js", status: 404},
		{name: "POST refused", method: "POST", path: "", status: 405},
		{name: "PUT refused", method: "PUT", path: "/app.js", status: 405},
		{name: "DELETE refused", method: "DELETE", path: "/app.js", status: 405},
		{name: "revalidation", method: "GET", path: "/app.js", hdr: map[string]string{"If-None-Match": etagOf(t, h, "app.js")}, status: 304},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.method, tc.path, tc.hdr)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			// Every answer, errors and redirects too, carries the policy.
			if got := w.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("CSP %q", got)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
				if w.Header().Get(k) != v {
					t.Errorf("%s = %q, want %q", k, w.Header().Get(k), v)
				}
			}
			if tc.contentType != "" && !strings.HasPrefix(w.Header().Get("Content-Type"), tc.contentType) {
				t.Errorf("Content-Type %q, want %s…", w.Header().Get("Content-Type"), tc.contentType)
			}
			if tc.location != "" && w.Header().Get("Location") != tc.location {
				t.Errorf("Location %q", w.Header().Get("Location"))
			}
			if tc.status == 405 && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			if tc.status == 200 && w.Header().Get("Cache-Control") != "no-cache" {
				t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
		})
	}
}

func etagOf(t *testing.T, h *Handler, name string) string {
	t.Helper()
	e := h.files[name].etag
	if e == "" {
		t.Fatalf("no etag for %s", name)
	}
	return e
}

// TestCSPCompatible checks what the Content-Security-Policy relies on: no
// inline script, style or event handler in the page, and no file that
// loads anything from another origin.
func TestCSPCompatible(t *testing.T) {
	h := newHandler(t)
	page, ok := h.File("index.html")
	if !ok {
		t.Fatal("no index.html")
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`),             // inline script body
		regexp.MustCompile(`(?i)<style`),                                    // inline style element
		regexp.MustCompile(`(?i)\sstyle\s*=`),                               // style attribute
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),                            // event handler attribute
		regexp.MustCompile(`(?i)(?:src|href|action)\s*=\s*"(?:[a-z]+:|//)`), // absolute URL
	} {
		if m := bad.Find(page); m != nil {
			t.Errorf("index.html: %q (%s)", m, bad)
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAll(page, -1) {
		if !regexp.MustCompile(`\ssrc="[a-z]`).Match(tag) {
			t.Errorf("index.html: script without a relative src: %q", tag)
		}
	}
	external := regexp.MustCompile(`(?i)https?://|url\(\s*["']?(?:[a-z]+:|//)|@import`)
	for _, n := range h.Names() {
		b, _ := h.File(n)
		if m := external.Find(b); m != nil {
			t.Errorf("%s references another origin: %q", n, m)
		}
		if strings.HasSuffix(n, ".js") && regexp.MustCompile(`\.innerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function`).Match(b) {
			t.Errorf("%s writes HTML or evaluates strings", n)
		}
	}
	for _, want := range []string{"index.html", "app.js", "highlight.js", "style.css", "samples.json"} {
		if !slices.Contains(h.Names(), want) {
			t.Errorf("missing %s", want)
		}
	}
}

// TestSamples: every sample policy parses with the server's parser, and
// every attestation type has one; each sample claim set is accepted.
func TestSamples(t *testing.T) {
	h := newHandler(t)
	b, _ := h.File("samples.json")
	var samples map[string]struct {
		Policy string          `json:"policy"`
		Claims json.RawMessage `json:"claims"`
	}
	if err := json.Unmarshal(b, &samples); err != nil {
		t.Fatal(err)
	}
	page, _ := h.File("index.html")
	script, _ := h.File("app.js")
	for _, typ := range evidence.Types {
		if !strings.Contains(string(page), "<option>"+string(typ)+"</option>") {
			t.Errorf("the type selector lacks %s", typ)
		}
		if !regexp.MustCompile(`\b` + string(typ) + `: "[A-Za-z]+"`).Match(script) {
			t.Errorf("app.js: EVIDENCE_FIELD lacks %s", typ)
		}
		s, ok := samples[string(typ)]
		if !ok {
			t.Errorf("no sample for %s", typ)
			continue
		}
		if _, err := policy.Parse(s.Policy); err != nil {
			t.Errorf("%s sample: %v", typ, err)
		}
		if _, err := policy.ClaimsFromJSON(s.Claims); err != nil {
			t.Errorf("%s sample claims: %v", typ, err)
		}
	}
	if len(samples) != len(evidence.Types) {
		t.Errorf("%d samples, want one per type", len(samples))
	}
}

// FuzzServe: any path and method gets a bounded answer from a fixed set of
// statuses, never a panic, and never a file outside the embedded set.
func FuzzServe(f *testing.F) {
	for _, s := range []string{"", "/", "/app.js", "/../x", "/%2e%2e/", "//app.js", "/app.js/", "/\x00", "/index.html"} {
		f.Add("GET", s)
	}
	f.Add("POST", "")
	f.Add("OPTIONS", "/style.css")
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, method, path string) {
		if !regexp.MustCompile(`^[A-Z]{1,10}$`).MatchString(method) {
			return // httptest.NewRequest rejects other methods
		}
		w := serve(h, method, path, nil)
		switch w.Code {
		case 200, 302, 404, 405:
		default:
			t.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		if w.Code == 200 {
			name := strings.TrimPrefix(path, "/")
			if path == "" {
				name = "index.html"
			}
			if want, ok := h.File(name); !ok || (method == "GET" && w.Body.String() != string(want)) {
				t.Fatalf("%s %q served something else", method, path)
			}
		}
	})
}
