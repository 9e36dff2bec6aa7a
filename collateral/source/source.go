// Package source turns collateral configuration into a collateral.Source:
// a bundle on disk, or Intel PCS / a PCCS behind a cache, optionally with an
// offline bundle as fallback. It is the one place that wires the collateral
// packages together, so the server's configuration code stays thin.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/collateral/cache"
	"github.com/attestd/attestd/collateral/pcs"
)

// Types of collateral source.
const (
	TypeBundle = "bundle"
	TypePCS    = "pcs"
	TypePCCS   = "pccs"
)

// Config is the "collateral" section of the attestd configuration (JSON).
//
//	{"type": "bundle", "path": "/etc/attestd/collateral"}
//	{"type": "pcs", "subscription_key_file": "/run/secrets/pcs-key", "cache_dir": "/var/lib/attestd/collateral"}
//	{"type": "pccs", "url": "https://pccs.internal:8081", "ca_file": "pccs-ca.pem",
//	 "cache_dir": "/var/lib/attestd/collateral", "path": "/etc/attestd/collateral-fallback"}
//
// Paths are used as given; the caller resolves relative ones.
type Config struct {
	// Type is "bundle", "pcs" or "pccs". Empty: "bundle" if Path is set.
	Type string `json:"type"`
	// Path is the bundle (file or directory, see package bundle). For pcs
	// and pccs it is optional: a bundle served when the service has no
	// collateral for a request or cannot be reached and the cache has
	// nothing valid.
	Path string `json:"path"`
	// URL is the service base URL. pcs: default pcs.IntelPCSURL; pccs:
	// required.
	URL string `json:"url"`
	// SubscriptionKeyFile holds the Ocp-Apim-Subscription-Key (pcs). The
	// key is read once by Open and never logged.
	SubscriptionKeyFile string `json:"subscription_key_file"`
	// CAFile adds TLS roots for a PCCS with a private certificate.
	CAFile string `json:"ca_file"`
	// RootCACRLURL overrides where the Root CA CRL is fetched.
	RootCACRLURL string `json:"root_ca_crl_url"`
	// TCBUpdate is PCS's update parameter: "early" or "standard".
	TCBUpdate string `json:"tcb_update"`
	// Timeout per request, a Go duration ("30s"). Empty: pcs.DefaultTimeout.
	Timeout string `json:"timeout"`
	// CacheDir persists fetched collateral across restarts. Empty: memory.
	CacheDir string `json:"cache_dir"`
	// RefreshMargin and RetryInterval tune the cache (Go durations). Empty:
	// cache.DefaultRefreshMargin, cache.DefaultRetryInterval.
	RefreshMargin string `json:"refresh_margin"`
	RetryInterval string `json:"retry_interval"`
	// Readiness says whether stale collateral makes the server not ready
	// (pcs and pccs; a bundle does not change).
	Readiness *ReadinessConfig `json:"readiness"`
}

// ReadinessConfig is the "readiness" member of a collateral source:
//
//	{"required": true, "max_expired": "1h"}
//
// With required set, /readyz fails while a document of the source is past
// its validity window by more than max_expired with its refresh failing,
// or a platform has no collateral because the service is unavailable (see
// cache.Stats.Ready). Without it the state is reported, never fatal.
type ReadinessConfig struct {
	Required   bool   `json:"required"`
	MaxExpired string `json:"max_expired"`
}

func (r *ReadinessConfig) validate() error {
	if r == nil {
		return nil
	}
	if r.MaxExpired != "" {
		if d, err := time.ParseDuration(r.MaxExpired); err != nil || d < 0 {
			return fmt.Errorf("readiness: max_expired %q: want a non-negative Go duration", r.MaxExpired)
		}
	}
	return nil
}

// stats builds the cache.Stats of a source named name.
func (r *ReadinessConfig) stats(name string) *cache.Stats {
	var rd cache.Readiness
	if r != nil {
		rd.Required = r.Required
		rd.MaxExpired, _ = time.ParseDuration(r.MaxExpired) // validated
	}
	return cache.NewStats(name, rd)
}

func (c Config) kind() string {
	if c.Type == "" && c.Path != "" {
		return TypeBundle
	}
	return c.Type
}

// Validate checks the configuration without touching disk or network.
func (c Config) Validate() error {
	switch c.kind() {
	case TypeBundle:
		if c.Path == "" {
			return errors.New("collateral: type bundle needs a path")
		}
		if c.URL != "" || c.SubscriptionKeyFile != "" || c.CacheDir != "" || c.CAFile != "" {
			return errors.New("collateral: url, subscription_key_file, ca_file and cache_dir apply to pcs/pccs, not bundle")
		}
	case TypePCS:
	case TypePCCS:
		if c.URL == "" {
			return errors.New("collateral: type pccs needs a url")
		}
	case "":
		return errors.New("collateral: no type (bundle, pcs or pccs) and no path")
	default:
		return fmt.Errorf("collateral: unknown type %q (want bundle, pcs or pccs)", c.Type)
	}
	if c.Readiness != nil && c.kind() == TypeBundle {
		return errors.New("collateral: readiness applies to pcs/pccs, not bundle")
	}
	if err := c.Readiness.validate(); err != nil {
		return fmt.Errorf("collateral: %w", err)
	}
	if c.TCBUpdate != "" && c.TCBUpdate != "early" && c.TCBUpdate != "standard" {
		return fmt.Errorf("collateral: tcb_update %q is neither early nor standard", c.TCBUpdate)
	}
	for name, v := range map[string]string{"timeout": c.Timeout, "refresh_margin": c.RefreshMargin, "retry_interval": c.RetryInterval} {
		if _, err := duration(v); err != nil {
			return fmt.Errorf("collateral: %s: %w", name, err)
		}
	}
	return nil
}

func duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", s)
	}
	return d, nil
}

// Opened is an open collateral source. Close stops background refreshes.
type Opened struct {
	collateral.Source
	// Stats reports the cache (nil for a bundle): metrics and readiness.
	Stats *cache.Stats
	close func() error
}

// Close releases the source's background work.
func (o *Opened) Close() error {
	if o.close == nil {
		return nil
	}
	return o.close()
}

// Open builds the source cfg describes. now is the clock the cache uses
// (the server passes time.Now); logger may be nil. A bundle is loaded now,
// so a bad bundle fails at startup, not at the first attestation.
func Open(cfg Config, now func() time.Time, logger *slog.Logger) (*Opened, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var fallback *bundle.Bundle
	if cfg.Path != "" {
		b, err := bundle.Load(cfg.Path)
		if err != nil {
			return nil, err
		}
		if cfg.kind() == TypeBundle {
			return &Opened{Source: b}, nil
		}
		fallback = b
	}
	pc := pcs.Config{
		BaseURL:      cfg.URL,
		PCCS:         cfg.kind() == TypePCCS,
		CAFile:       cfg.CAFile,
		RootCACRLURL: cfg.RootCACRLURL,
		TCBUpdate:    cfg.TCBUpdate,
		Logger:       logger,
	}
	if pc.BaseURL == "" {
		pc.BaseURL = pcs.IntelPCSURL
	}
	if cfg.SubscriptionKeyFile != "" {
		k, err := os.ReadFile(cfg.SubscriptionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("collateral: subscription key: %w", err)
		}
		pc.SubscriptionKey = strings.TrimSpace(string(k))
	}
	pc.Timeout, _ = duration(cfg.Timeout)
	client, err := pcs.New(pc)
	if err != nil {
		return nil, err
	}
	co := cache.Options{Now: now, Dir: cfg.CacheDir, Logger: logger, Stats: cfg.Readiness.stats(cfg.kind())}
	co.RefreshMargin, _ = duration(cfg.RefreshMargin)
	co.RetryInterval, _ = duration(cfg.RetryInterval)
	c, err := cache.New(client, co)
	if err != nil {
		return nil, err
	}
	var src collateral.Source = c
	if fallback != nil {
		src = Fallback(c, fallback)
	}
	return &Opened{Source: src, Stats: co.Stats, close: c.Close}, nil
}

// Fallback returns a Source that asks primary and, when primary fails for
// any reason, secondary. If both fail the error names both. The typical use
// is PCS/PCCS (behind a cache) with a pre-provisioned bundle for platforms
// the service does not know or for outages longer than the cache covers.
func Fallback(primary, secondary collateral.Source) collateral.Source {
	return &fallbackSource{primary, secondary}
}

type fallbackSource struct{ primary, secondary collateral.Source }

func (f *fallbackSource) Get(ctx context.Context, req collateral.Request) (*collateral.Collateral, error) {
	c, err := f.primary.Get(ctx, req)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	c, err2 := f.secondary.Get(ctx, req)
	if err2 == nil {
		return c, nil
	}
	return nil, fmt.Errorf("%w; fallback: %w", err, err2)
}

// Baselines implements collateral.BaselineLister: the union of what both
// sources list (a source that cannot list contributes nothing).
func (f *fallbackSource) Baselines(ctx context.Context, tee collateral.TEE) ([]collateral.Baseline, error) {
	var lists [][]collateral.Baseline
	for _, s := range []collateral.Source{f.primary, f.secondary} {
		l, ok := s.(collateral.BaselineLister)
		if !ok {
			continue
		}
		bs, err := l.Baselines(ctx, tee)
		if err != nil {
			return nil, err
		}
		lists = append(lists, bs)
	}
	return collateral.MergeBaselines(lists...), nil
}
