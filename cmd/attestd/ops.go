package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/internal/buildinfo"
	"github.com/attestd/attestd/metrics"
	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/token"
)

// Operations routes, outside the MAA paths (like /healthz).
const (
	pathMetrics = "/metrics"
	pathReady   = "/readyz"
	pathVersion = "/version"
)

// readyTimeout bounds one readiness probe: a load balancer must get an
// answer even while the database hangs.
const readyTimeout = 5 * time.Second

// readiness is what /readyz checks: the store answers and every instance has
// a signing key whose certificate is valid now. /healthz says the process
// serves; /readyz says it can attest and sign, so a load balancer sends it
// traffic.
type readiness struct {
	store     store.Store
	instances []string
	keys      []*token.KeySet
	// collateral are the plugins' collateral sources: each is a check
	// ("collateral/sgx/pcs"), failing only for a source configured as
	// required whose collateral is stale (cache.Stats.Ready).
	collateral []metrics.CollateralSource
	now        func() time.Time
}

type readyReport struct {
	Status string            `json:"status"` // "ready" or "not ready"
	Checks map[string]string `json:"checks"` // check name → "ok" or why not
}

func (rd *readiness) check(ctx context.Context) (readyReport, bool) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	rep := readyReport{Status: "ready", Checks: map[string]string{}}
	ok := true
	fail := func(name string, err error) {
		ok = false
		rep.Checks[name] = err.Error()
	}
	rep.Checks["store"] = "ok"
	if len(rd.instances) > 0 {
		if _, err := rd.store.AuditPage(ctx, store.AuditQuery{Instance: rd.instances[0], Limit: 1}); err != nil {
			fail("store", fmt.Errorf("store unreachable: %w", err))
		}
	}
	now := rd.now()
	for i, ks := range rd.keys {
		name := "signing_key/" + rd.instances[i]
		rep.Checks[name] = "ok"
		keys := ks.Keys()
		switch {
		case len(keys) == 0 || !keys[0].Active || keys[0].Certificate == nil:
			fail(name, fmt.Errorf("no active signing key"))
		case now.After(keys[0].Certificate.NotAfter):
			fail(name, fmt.Errorf("active signing key %s expired at %s", keys[0].KID, keys[0].Certificate.NotAfter.UTC().Format(time.RFC3339)))
		case now.Before(keys[0].Certificate.NotBefore):
			fail(name, fmt.Errorf("active signing key %s is not valid before %s", keys[0].KID, keys[0].Certificate.NotBefore.UTC().Format(time.RFC3339)))
		}
	}
	for _, cs := range rd.collateral {
		name := "collateral/" + cs.Plugin + "/" + cs.Reporter.Source()
		rep.Checks[name] = "ok"
		if err := cs.Reporter.Ready(now); err != nil {
			fail(name, err)
		}
	}
	if !ok {
		rep.Status = "not ready"
	}
	return rep, ok
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rep, ok := rd.check(r.Context())
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeOpsJSON(w, status, rep)
}

func versionHandler(w http.ResponseWriter, r *http.Request) {
	writeOpsJSON(w, http.StatusOK, buildinfo.Read())
}

func writeOpsJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// opsMux serves /readyz, /version and, when withMetrics, /metrics; every
// other path goes to next (the MAA API). These routes bypass the API's
// access log: probes and scrapes every few seconds would drown it.
func opsMux(next http.Handler, rd *readiness, m *metrics.Metrics, withMetrics bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(pathReady, rd)
	mux.HandleFunc(pathVersion, versionHandler)
	if withMetrics {
		mux.Handle(pathMetrics, m.Handler())
	}
	mux.Handle("/", next)
	return mux
}

// Log formats of --log-format.
const (
	LogText = "text"
	LogJSON = "json"
)

// newLogger builds the server's logger: slog text or JSON (one object per
// line, for log shippers) at level, adding the request id of the context
// to every record logged with one (api.LogHandler).
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: log level %q: %v", errUsage, level, err)
	}
	ho := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "", LogText:
		h = slog.NewTextHandler(w, ho)
	case LogJSON:
		h = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("%w: log format %q: want text or json", errUsage, format)
	}
	return slog.New(api.LogHandler(h)), nil
}

// writeReadyFile writes the server's URL to path once it accepts
// connections (atomically: a reader never sees a partial file), so that a
// script can wait for the file instead of guessing with sleep. The file is
// removed again when the server stops.
func writeReadyFile(path, url string) (remove func(), err error) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(url+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("ready file: %w", err)
	}
	return func() { _ = os.Remove(path) }, nil
}

// metricsKeys adapts the key sets for metrics.Options.Keys.
func metricsKeys(names []string, keysets []*token.KeySet) map[string]metrics.KeySource {
	out := map[string]metrics.KeySource{}
	for i, ks := range keysets {
		out[names[i]] = ks
	}
	return out
}
