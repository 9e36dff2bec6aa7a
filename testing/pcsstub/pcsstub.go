// Package pcsstub runs, for end-to-end tests of the DCAP plugins (SGX,
// TDX), a local Intel PCS (pcstest.Handler on loopback) that a test can take
// down, and opens a plugin against it the way the server binary does: its
// own block trusting a root file, a "collateral" block of type "pcs" with a
// cache directory. Both plugins' tests check the same thing (a warm cache
// answers while PCS is down, a cold one is a 503); this is the one copy of
// that set-up.
package pcsstub

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/pcs/pcstest"
	"github.com/attestd/attestd/evidence"
)

// Server is a PCS stub serving collateral sets. While down, every request
// is answered 503 "maintenance"; the Handler records requests either way.
type Server struct {
	Handler *pcstest.Handler
	URL     string
	down    atomic.Bool
}

// New starts a stub serving sets; it stops when the test ends.
func New(t testing.TB, sets ...*collateral.Collateral) *Server {
	t.Helper()
	s := &Server{}
	s.Handler = &pcstest.Handler{Sets: sets, Override: func(w http.ResponseWriter, r *http.Request) bool {
		if s.down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return true
		}
		return false
	}}
	srv := httptest.NewServer(s.Handler)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// SetDown takes the stub down (true) or brings it back (false).
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// Open opens plugin with a configuration in dir: rootsPEM written to
// dir/root.pem and named by the plugin's own block {"roots":["root.pem"]},
// and a "collateral" block fetching from the stub (its Root CA CRL at
// pcstest.RootCACRLPath) with cache_dir cacheDir (relative to dir unless
// absolute). The verifier is closed when the test ends.
func (s *Server) Open(t testing.TB, plugin evidence.Plugin, dir string, rootsPEM []byte, cacheDir string) evidence.Verifier {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), rootsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	coll, err := json.Marshal(map[string]string{
		"type":            "pcs",
		"url":             s.URL,
		"root_ca_crl_url": s.URL + pcstest.RootCACRLPath,
		"cache_dir":       cacheDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]json.RawMessage{
		plugin.Name:  json.RawMessage(`{"roots":["root.pem"]}`),
		"collateral": coll,
	}
	env := evidence.PluginEnv{
		Block: func(n string) json.RawMessage { return blocks[n] },
		Path: func(p string) string {
			if p == "" || filepath.IsAbs(p) {
				return p
			}
			return filepath.Join(dir, p)
		},
		DataDir: dir,
		Logger:  slog.New(slog.DiscardHandler),
	}
	v, closeFn, err := plugin.Open(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	return v
}
