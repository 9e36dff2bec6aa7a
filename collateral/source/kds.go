package source

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/attestd/attestd/collateral/cache"
	"github.com/attestd/attestd/collateral/kds"
)

// KDSConfig is the configuration of AMD SEV-SNP collateral (JSON), the
// "kds" block beside Intel's "collateral":
//
//	{"type": "kds", "cache_dir": "/var/lib/attestd/kds"}                       AMD KDS, cached
//	{"type": "kds", "url": "https://kds-mirror.internal", "path": "/etc/attestd/amd"}  a mirror, with an offline fallback
//	{"type": "bundle", "path": "/etc/attestd/amd"}                             offline only
//
// Paths are used as given; the caller resolves relative ones.
type KDSConfig struct {
	// Type is "kds" or "bundle". Empty: "bundle" if Path is set, else "kds".
	Type string `json:"type"`
	// Path is a KDS bundle (see kds.Bundle). For kds it is optional: a
	// fallback when the service has nothing or cannot be reached.
	Path string `json:"path"`
	// URL is the KDS or a mirror. Empty: kds.AMDKDSURL.
	URL string `json:"url"`
	// Timeout per request, a Go duration. Empty: kds.DefaultTimeout.
	Timeout string `json:"timeout"`
	// CacheDir persists fetched documents across restarts (VCEKs for good,
	// chains and CRLs until they expire). Empty: memory only.
	CacheDir string `json:"cache_dir"`
	// RetryInterval is how long a failure (a 429 included) is remembered
	// before KDS is asked again. Empty: cache.DefaultRetryInterval.
	RetryInterval string `json:"retry_interval"`
	// MaxEntries bounds the VCEKs (and chains, CRLs) kept. Zero: unbounded.
	MaxEntries int `json:"max_entries"`
	// Readiness: as for Config (kds only).
	Readiness *ReadinessConfig `json:"readiness"`
}

func (c KDSConfig) kind() string {
	if c.Type == "" {
		if c.Path != "" {
			return TypeBundle
		}
		return TypeKDS
	}
	return c.Type
}

// TypeKDS is AMD's Key Distribution Service (or a mirror).
const TypeKDS = "kds"

// Validate checks the configuration without touching disk or network.
func (c KDSConfig) Validate() error {
	switch c.kind() {
	case TypeBundle:
		if c.Path == "" {
			return errors.New("kds: type bundle needs a path")
		}
		if c.URL != "" || c.CacheDir != "" {
			return errors.New("kds: url and cache_dir apply to type kds, not bundle")
		}
	case TypeKDS:
	default:
		return fmt.Errorf("kds: unknown type %q (want kds or bundle)", c.Type)
	}
	if c.Readiness != nil && c.kind() == TypeBundle {
		return errors.New("kds: readiness applies to type kds, not bundle")
	}
	if err := c.Readiness.validate(); err != nil {
		return fmt.Errorf("kds: %w", err)
	}
	if c.MaxEntries < 0 {
		return errors.New("kds: max_entries is negative")
	}
	for name, v := range map[string]string{"timeout": c.Timeout, "retry_interval": c.RetryInterval} {
		if _, err := duration(v); err != nil {
			return fmt.Errorf("kds: %s: %w", name, err)
		}
	}
	return nil
}

// OpenedKDS is an open KDS source. Close stops background refreshes.
type OpenedKDS struct {
	kds.Source
	// Stats reports the cache (nil for a bundle): metrics and readiness.
	Stats *cache.Stats
	close func() error
}

// Close releases the source's background work.
func (o *OpenedKDS) Close() error {
	if o.close == nil {
		return nil
	}
	return o.close()
}

// OpenKDS builds the source cfg describes: a bundle, or the KDS client
// behind the cache, with the bundle as fallback when Path is set. now is
// the cache's clock; client (may be nil) makes the HTTP requests.
func OpenKDS(cfg KDSConfig, now func() time.Time, client *http.Client, logger *slog.Logger) (*OpenedKDS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var fallback *kds.Bundle
	if cfg.Path != "" {
		b, err := kds.LoadBundle(cfg.Path)
		if err != nil {
			return nil, err
		}
		if cfg.kind() == TypeBundle {
			return &OpenedKDS{Source: b}, nil
		}
		fallback = b
	}
	timeout, _ := duration(cfg.Timeout)
	c, err := kds.NewClient(kds.ClientConfig{BaseURL: cfg.URL, HTTPClient: client, Timeout: timeout, Logger: logger})
	if err != nil {
		return nil, err
	}
	opts := cache.Options{Now: now, Dir: cfg.CacheDir, Logger: logger, MaxEntries: cfg.MaxEntries, Stats: cfg.Readiness.stats(TypeKDS)}
	opts.RetryInterval, _ = duration(cfg.RetryInterval)
	cached, err := kds.NewCache(c, opts)
	if err != nil {
		return nil, err
	}
	var src kds.Source = cached
	if fallback != nil {
		src = kds.Fallback(cached, fallback)
	}
	return &OpenedKDS{Source: src, Stats: opts.Stats, close: cached.Close}, nil
}
