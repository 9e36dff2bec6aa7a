package attestdtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// InstanceOptions describe the one-instance attestd a verifier's end-to-end
// tests and benchmarks run against (NewInstance, StartInstance). They
// repeated the same setup (store, keys, instance, policy, api handler) in
// every TEE package; this is the one copy.
type InstanceOptions struct {
	// Verifiers answer the instance's attestation types.
	Verifiers map[evidence.Type]evidence.Verifier
	// Policies are set (unsigned) before the instance serves, by type;
	// types without one keep attestd's default policy.
	Policies map[evidence.Type]string
	// Issuer is the tokens' iss; empty: "https://attestd.test".
	// StartInstance sets it to the server's URL.
	Issuer string
	// DevAuth authorises admin calls with the development identity of the
	// instance's directory (Instance.Dev mints tokens); otherwise every
	// admin call is refused (attest calls need none).
	DevAuth bool
	// Logger gets the instance's and the API's log; nil: discarded.
	Logger *slog.Logger
}

// Instance is a one-instance attestd: an AAD instance named "default"
// mounted at "/", its SQLite store and signing keys under a test
// directory. Everything but the TEE is the real thing.
type Instance struct {
	Handler  http.Handler
	Instance *instance.Instance
	// Dev is the development identity (with InstanceOptions.DevAuth).
	Dev *auth.DevIdentity
	// Server and URL are set by StartInstance.
	Server *httptest.Server
	URL    string
}

// NewInstance builds the handler; the store is closed when tb ends.
func NewInstance(tb testing.TB, o InstanceOptions) *Instance {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Issuer == "" {
		o.Issuer = "https://attestd.test"
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	keys, err := token.OpenKeySet(filepath.Join(dir, "keys"), o.Issuer, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	in, err := instance.New(ctx, instance.Config{Name: "default", Mode: instance.ModeAAD, Issuer: o.Issuer},
		instance.Options{Store: db, Keys: keys, Logger: log, Verifiers: o.Verifiers})
	if err != nil {
		tb.Fatal(err)
	}
	for t, text := range o.Policies {
		if _, err := in.SetPolicy(ctx, string(t), UnsignedPolicy(text), instance.Actor{Subject: "test"}); err != nil {
			tb.Fatalf("policy for %s: %v", t, err)
		}
	}
	s := &Instance{Instance: in}
	var authn api.Authenticator = refuseAdmin{}
	if o.DevAuth {
		if s.Dev, err = auth.OpenDevIdentity(dir); err != nil {
			tb.Fatal(err)
		}
		if authn, err = auth.New(auth.Config{Issuers: []auth.Issuer{s.Dev.Issuer()}, Now: time.Now}); err != nil {
			tb.Fatal(err)
		}
	}
	if s.Handler, err = api.New(api.Options{Mounts: []api.Mount{{Instance: in, Auth: authn}}, Logger: log}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// StartInstance is NewInstance served over TLS, with the server's URL as
// the issuer; the server stops when tb ends.
func StartInstance(tb testing.TB, o InstanceOptions) *Instance {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	o.Issuer = "https://" + srv.Listener.Addr().String()
	s := NewInstance(tb, o)
	srv.Config.Handler = s.Handler
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	s.Server, s.URL = srv, o.Issuer
	return s
}

// UnsignedPolicy is the unsigned JWS (alg none) MAA's PUT /policies takes
// for text.
func UnsignedPolicy(text string) string {
	body, _ := json.Marshal(map[string]string{"AttestationPolicy": base64.RawURLEncoding.EncodeToString([]byte(text))})
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(body) + "."
}

// refuseAdmin authorises nobody: admin calls are not under test.
type refuseAdmin struct{}

func (refuseAdmin) Authenticate(context.Context, string) (*auth.Principal, error) {
	return nil, errors.New("admin calls are refused in this test server")
}

// ServeAttest posts body (JSON) to path through h in process, as the
// end-to-end benchmarks do, and fails tb unless the answer is 200.
func ServeAttest(tb testing.TB, h http.Handler, path, body string) {
	tb.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		tb.Fatalf("attest: %d %s", w.Code, w.Body)
	}
}
