package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/buildinfo"
	"github.com/attestd/attestd/internal/netlimit"
	"github.com/attestd/attestd/metrics"
	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/postgres"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// serveOptions are the serve command's settings after flags, environment and
// configuration file were combined (flag > environment > file > default).
type serveOptions struct {
	Listen     string
	Data       string
	ConfigPath string
	TLSCert    string
	TLSKey     string
	LogLevel   string
	LogFormat  string // text or json
	// MetricsListen, when set, serves /metrics (and /readyz, /version) over
	// plain HTTP on this address instead of on the HTTPS listener.
	MetricsListen string
	// ReadyFile, when set, receives the server's URL once it accepts
	// connections (see writeReadyFile).
	ReadyFile string
	StoreType string
	StoreDSN  string
	Shutdown  time.Duration
	KeyReload time.Duration
	MaxConns  int                  // open connections at most
	Admission api.AdmissionOptions // attest admission control
	Keys      keyFlags             // key-encryption key, rotation, PKCS#11 (keys.go)
}

func parseServeFlags(args []string, stderr io.Writer) (*serveOptions, *Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &serveOptions{}
	fs.StringVar(&o.Listen, "listen", "", "address to listen on (env ATTESTD_LISTEN; default "+DefaultListen+")")
	fs.StringVar(&o.Data, "data", "", "data directory: database (with the signing keys), key-encryption key, TLS certificate (env ATTESTD_DATA; default "+DefaultData+")")
	fs.StringVar(&o.ConfigPath, "config", "", "JSON configuration file (env ATTESTD_CONFIG); without one the default instance runs in AAD mode trusting the development identity")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate PEM file (env ATTESTD_TLS_CERT; default: self-signed DATA/tls/cert.pem)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "TLS private key PEM file (env ATTESTD_TLS_KEY; default: DATA/tls/key.pem)")
	fs.StringVar(&o.LogLevel, "log-level", "", "log level: debug, info, warn, error (env ATTESTD_LOG_LEVEL; default info)")
	fs.StringVar(&o.LogFormat, "log-format", "", "log format: text or json, one JSON object per line (env ATTESTD_LOG_FORMAT; default text)")
	fs.StringVar(&o.MetricsListen, "metrics-listen", "", "serve /metrics, /readyz and /version over plain HTTP on this address (e.g. 127.0.0.1:9090); /metrics then leaves the HTTPS listener, /readyz and /version stay on it too (env ATTESTD_METRICS_LISTEN)")
	fs.StringVar(&o.ReadyFile, "ready-file", "", "write the server URL to this file once it accepts connections, remove it on shutdown (for scripts: wait for the file instead of sleeping)")
	fs.StringVar(&o.StoreType, "store", "", "database: sqlite or postgres (env ATTESTD_STORE; default sqlite at DATA/attestd.db, or postgres when a DSN is given)")
	fs.StringVar(&o.StoreDSN, "store-dsn", "", "PostgreSQL DSN, e.g. postgres://attestd@db:5432/attestd?sslmode=verify-full; keep the password in PGPASSWORD or ~/.pgpass (env ATTESTD_STORE_DSN); for sqlite: the database file")
	fs.DurationVar(&o.Shutdown, "shutdown-timeout", 30*time.Second, "how long in-flight requests may run after SIGTERM")
	fs.DurationVar(&o.KeyReload, "key-reload-interval", time.Minute, "how often the signing keys are reread from the database, the fallback when the store sends no change notifications (PostgreSQL does; SIGHUP rereads at once)")
	var lf limitFlags
	lf.register(fs)
	o.Keys.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: attestd [serve] [flags]\n\nServes the MAA data-plane API over HTTPS.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nExample:\n  attestd serve --config examples/local/attestd.json --ready-file /tmp/attestd.ready --log-format json\n")
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if o.ConfigPath == "" {
		o.ConfigPath = os.Getenv("ATTESTD_CONFIG")
	}
	cfg, err := LoadConfig(o.ConfigPath)
	if err != nil {
		return nil, nil, err
	}
	o.Listen = firstNonEmpty(o.Listen, os.Getenv("ATTESTD_LISTEN"), cfg.Listen, DefaultListen)
	o.Data = firstNonEmpty(o.Data, os.Getenv("ATTESTD_DATA"), cfg.path(cfg.Data), DefaultData)
	o.TLSCert = firstNonEmpty(o.TLSCert, os.Getenv("ATTESTD_TLS_CERT"), cfg.path(cfg.TLS.Cert))
	o.TLSKey = firstNonEmpty(o.TLSKey, os.Getenv("ATTESTD_TLS_KEY"), cfg.path(cfg.TLS.Key))
	o.LogLevel = firstNonEmpty(o.LogLevel, os.Getenv("ATTESTD_LOG_LEVEL"), cfg.LogLevel, "info")
	o.LogFormat = firstNonEmpty(o.LogFormat, os.Getenv("ATTESTD_LOG_FORMAT"), cfg.LogFormat, LogText)
	o.MetricsListen = firstNonEmpty(o.MetricsListen, os.Getenv("ATTESTD_METRICS_LISTEN"), cfg.MetricsListen)
	o.StoreType = firstNonEmpty(o.StoreType, os.Getenv("ATTESTD_STORE"), cfg.Store.Type)
	cfgDSN := cfg.Store.DSN
	if o.StoreType == StoreSQLite {
		cfgDSN = cfg.path(cfgDSN) // a file path, relative to the config file
	}
	o.StoreDSN = firstNonEmpty(o.StoreDSN, os.Getenv("ATTESTD_STORE_DSN"), cfgDSN)
	if o.StoreType == "" {
		o.StoreType = StoreSQLite
		if o.StoreDSN != "" {
			o.StoreType = StorePostgres
		}
	}
	switch o.StoreType {
	case StoreSQLite:
		if looksLikePostgresDSN(o.StoreDSN) {
			// As a file name it would be created and printed, password
			// and all; the DSN itself is not echoed here either.
			return nil, nil, fmt.Errorf("%w: the sqlite store takes a database file, but the DSN given (--store-dsn, ATTESTD_STORE_DSN or the \"store\" block) looks like a PostgreSQL DSN; use --store postgres or give a file path", errUsage)
		}
	case StorePostgres:
		if o.StoreDSN == "" {
			return nil, nil, fmt.Errorf("%w: the postgres store needs a DSN (--store-dsn, ATTESTD_STORE_DSN or \"store\": {\"dsn\": …})", errUsage)
		}
	default:
		return nil, nil, fmt.Errorf("%w: store type %q: want sqlite or postgres", errUsage, o.StoreType)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, nil, fmt.Errorf("%w: TLS certificate and key must be given together", errUsage)
	}
	if o.MaxConns, o.Admission, err = resolveLimits(&lf, cfg.Limits); err != nil {
		return nil, nil, err
	}
	return o, cfg, nil
}

// looksLikePostgresDSN reports whether dsn is a PostgreSQL URL or a
// keyword/value string naming a password or host, rather than a file path.
func looksLikePostgresDSN(dsn string) bool {
	l := strings.ToLower(strings.TrimSpace(dsn))
	if strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://") {
		return true
	}
	for _, f := range strings.Fields(l) {
		if strings.HasPrefix(f, "password=") || strings.HasPrefix(f, "host=") || strings.HasPrefix(f, "user=") || strings.HasPrefix(f, "dbname=") {
			return true
		}
	}
	return false
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// readyInfo is reported once the server accepts connections (tests use it).
type readyInfo struct {
	Addr    string // bound address
	TLSCert string
	Data    string
}

// serveCmd runs the server until ctx is cancelled (SIGTERM/SIGINT), then
// shuts down gracefully: the listener closes, in-flight requests finish
// (bounded by --shutdown-timeout), and the store is closed last.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(readyInfo)) error {
	o, cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	ensureProcs(log, os.Getenv)
	if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	data, err := filepath.Abs(o.Data)
	if err != nil {
		return err
	}

	certPath, keyPath := o.TLSCert, o.TLSKey
	if certPath == "" {
		var created bool
		if certPath, keyPath, created, err = ensureSelfSignedTLS(data, time.Now()); err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		if created {
			log.Info("created self-signed TLS certificate", "cert", certPath, "key", keyPath)
		}
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("TLS certificate %s / key %s: %w", certPath, keyPath, err)
	}

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	addr := ln.Addr().String()

	instances, err := cfg.resolve(addr)
	if err != nil {
		return err
	}

	st, dbDesc, err := openStore(ctx, o, data, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "error", err)
		}
	}()

	keyCfg, err := resolveKeys(&o.Keys, cfg, data, true)
	if err != nil {
		return err
	}
	defer keyCfg.close()
	if keyCfg.kekCreated {
		log.Info("created key-encryption key; replicas sharing this database need this same file (--key-encryption-key)", "file", keyCfg.kekPath)
	}
	if keyCfg.prevKEK != nil {
		log.Warn("reading values sealed under the previous key-encryption key too; run \"attestd keys rewrap\", then restart without --previous-key-encryption-key",
			"kek", keyCfg.kek.ID(), "previous_kek", keyCfg.prevKEK.ID())
	}
	if o.KeyReload > 0 && keyCfg.rot.Prepublish > 0 && keyCfg.rot.Prepublish <= o.KeyReload {
		log.Warn("signing-key pre-publication is not longer than --key-reload-interval: without database notifications a replica may sign with a key another has not published yet",
			"prepublish", keyCfg.rot.Prepublish, "key_reload_interval", o.KeyReload)
	}
	// Instance secrets (the service_context sealing key) are kept sealed
	// under the KEK too.
	sealed := store.SealSecrets(st, keyCfg.kek)
	// keysets and keyNames are index-parallel: every store key set served
	// (an instance's RSA set, and NAME/es256 for token_algorithm ES256)
	// and its store instance name, for reloads, metrics and readiness.
	var keysets []*token.KeySet
	var keyNames []string
	var collateralSources []metrics.CollateralSource
	verifiers, closeVerifiers, err := registeredVerifiersWith(ctx, cfg, data, log, func(plugin string, r evidence.CollateralReporter) {
		collateralSources = append(collateralSources, metrics.CollateralSource{Plugin: plugin, Reporter: r})
	})
	if err != nil {
		return err
	}
	defer closeVerifiers()
	var mounts []api.Mount
	for _, ri := range instances {
		ks, err := openInstanceKeys(ctx, st, ri.Name, ri.URL, data, keyCfg, log)
		if err != nil {
			return fmt.Errorf("instance %s: signing keys: %w", ri.Name, err)
		}
		keysets, keyNames = append(keysets, ks), append(keyNames, ri.Name)
		var signer instance.Signer = ks
		if ri.TokenAlgorithm == token.ES256 {
			// The ES256 attestation keys are a store key set of their own,
			// shared by every replica like the RSA set (management tokens
			// stay RS256 for MAA's SDKs).
			es, err := openInstanceKeys(ctx, st, es256Name(ri.Name), ri.URL, data, keyCfg, log)
			if err != nil {
				return fmt.Errorf("instance %s: ES256 signing keys: %w", ri.Name, err)
			}
			keysets, keyNames = append(keysets, es), append(keyNames, es256Name(ri.Name))
			signer = token.Pair{Management: ks, Attestation: es}
			log.Info("ES256 attestation keys", "instance", ri.Name, "keys", es256Name(ri.Name), "active_kid", es.ActiveKID())
		}
		in, err := instance.New(ctx, instance.Config{Name: ri.Name, Mode: ri.Mode, Issuer: ri.URL, PolicyCertificates: ri.Certs},
			instance.Options{Store: sealed, Keys: signer, Verifiers: verifiers, Now: time.Now, Logger: log})
		if err != nil {
			return err
		}
		authn, err := newAuthenticator(ctx, ri, data, log)
		if err != nil {
			return fmt.Errorf("instance %s: auth: %w", ri.Name, err)
		}
		mounts = append(mounts, api.Mount{Prefix: ri.Prefix, Instance: in, Auth: authn, Audit: st, RequireAttestToken: ri.RequireAttestToken, DisablePlayground: ri.NoPlayground})
		log.Info("instance", "name", ri.Name, "mode", ri.Mode, "url", ri.URL, "prefix", ri.Prefix,
			"signing_keys", keyCfg.private.Describe(), "active_kid", ks.ActiveKID(), "auth", authDescription(ri))
	}

	adm, err := api.NewAdmission(o.Admission)
	if err != nil {
		return err
	}
	met, err := metrics.New(metrics.Options{Version: buildinfo.Read().Short(), Admission: adm.Stats, Keys: metricsKeys(keyNames, keysets),
		Collateral: collateralSources})
	if err != nil {
		return err
	}
	h, err := api.New(api.Options{Mounts: mounts, Logger: log, Admission: adm, Observe: met.Observe, Health: func(ctx context.Context) error {
		_, err := st.Audit(ctx, instances[0].Name, 1)
		return err
	}})
	if err != nil {
		return err
	}
	rd := &readiness{store: st, instances: keyNames, keys: keysets, collateral: collateralSources, now: time.Now}
	srv := &http.Server{
		Handler:           opsMux(h, rd, met, o.MetricsListen == ""),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	log.Info("attestd listening", "url", "https://"+defaultHost(addr), "data", data, "database", dbDesc, "tls_cert", certPath)
	fmt.Fprintf(stdout, "attestd listening on https://%s\n  data directory:   %s\n  TLS certificate:  %s\n", defaultHost(addr), data, certPath)
	fmt.Fprintf(stdout, "  database:         %s\n", dbDesc)
	dev := false
	for _, ri := range instances {
		fmt.Fprintf(stdout, "  instance %-10s %-8s %s  (signing keys in the database, %s)\n", ri.Name, ri.Mode, ri.URL, keyCfg.private.Describe())
		dev = dev || ri.Auth.Dev
	}
	if dev {
		fmt.Fprintf(stdout, "  admin token:      attestd token --data %s --role contributor   (development identity in %s)\n", data, filepath.Join(data, "dev-identity"))
	}

	lln, err := netlimit.Limit(ln, o.MaxConns)
	if err != nil {
		return err
	}
	eff := adm.Effective()
	log.Info("limits", "max_connections", o.MaxConns, "max_inflight", eff.MaxInFlight, "max_queue", eff.MaxQueue,
		"queue_wait", eff.MaxWait, "retry_after", eff.RetryAfter, "attest_body_timeout", eff.BodyReadTimeout,
		"client_rate", eff.ClientRate, "client_burst", eff.ClientBurst)
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(lln, "", "") }()
	var msrv *http.Server
	if o.MetricsListen != "" {
		mln, err := net.Listen("tcp", o.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		msrv = &http.Server{Handler: opsMux(http.NotFoundHandler(), rd, met, true), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() { errc <- msrv.Serve(mln) }()
		log.Info("metrics listening", "url", "http://"+mln.Addr().String()+pathMetrics)
		fmt.Fprintf(stdout, "  metrics:          http://%s%s\n", mln.Addr(), pathMetrics)
	}
	stopReload := reloadKeys(ctx, st, keysets, keyNames, o.KeyReload, log)
	defer stopReload()
	if o.ReadyFile != "" {
		remove, err := writeReadyFile(o.ReadyFile, "https://"+defaultHost(addr))
		if err != nil {
			return err
		}
		defer remove()
	}
	if ready != nil {
		ready(readyInfo{Addr: addr, TLSCert: certPath, Data: data})
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", o.Shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), o.Shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("graceful shutdown incomplete", "error", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if msrv != nil {
		if err := msrv.Shutdown(sctx); err != nil {
			log.Error("metrics listener shutdown incomplete", "error", err)
		}
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// openStore opens the configured database. desc names it for logs and
// output: the SQLite file, or postgres://user@host:port/db without the
// DSN's password.
func openStore(ctx context.Context, o *serveOptions, data string, log *slog.Logger) (st store.Store, desc string, err error) {
	switch o.StoreType {
	case StorePostgres:
		desc = "postgres://" + postgres.Describe(o.StoreDSN)
		db, err := postgres.Open(ctx, o.StoreDSN, log)
		if err != nil {
			return nil, "", fmt.Errorf("store %s: %w", desc, err)
		}
		return db, desc, nil
	default:
		desc = o.StoreDSN
		if desc == "" {
			desc = filepath.Join(data, "attestd.db")
		}
		db, err := sqlite.Open(ctx, desc, log)
		if err != nil {
			return nil, "", fmt.Errorf("store %s: %w", desc, err)
		}
		return db, desc, nil
	}
}
