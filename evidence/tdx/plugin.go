package tdx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/attestd/attestd/collateral/source"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
)

// Config is the "tdx" block of the attestd configuration file (README.md,
// "Intel TDX"). Collateral comes from the "collateral" block, shared with
// SGX (collateral/source.Config; absent: Intel PCS cached under
// DATA/collateral).
type Config struct {
	// Disabled leaves TdxVm without a verifier (501 NotSupported).
	Disabled bool `json:"disabled"`
	// Roots are PEM files whose certificates REPLACE Intel's SGX Root CA
	// (which roots TDX too) as trusted roots; ExtraRoots are trusted in
	// addition. A test root is never trusted unless named here.
	Roots      []string `json:"roots"`
	ExtraRoots []string `json:"extra_roots"`
	// VerifyAt (RFC 3339) verifies every quote as of that instant (tokens
	// carry x-ms-tdx-verified-at); Grace accepts collateral at most that
	// long past its nextUpdate (a Go duration; tokens carry
	// x-ms-tdx-collateral-grace-used).
	VerifyAt string `json:"verify_at"`
	Grace    string `json:"grace"`
}

// OptionsFromConfig resolves a "tdx" block (roots, verify_at, grace) into
// verifier options without a collateral source. Errors wrap evidence.ErrConfig.
func OptionsFromConfig(c Config, path func(string) string) (Options, error) {
	var o Options
	var err error
	if o.VerifyAt, o.Grace, err = dcap.ParseClock("tdx", c.VerifyAt, c.Grace); err != nil {
		return o, err
	}
	if o.Roots, err = dcap.ReadRoots("tdx", "roots", path, c.Roots); err != nil {
		return o, fmt.Errorf("%w: %v", evidence.ErrConfig, err)
	}
	extra, err := dcap.ReadRoots("tdx", "extra_roots", path, c.ExtraRoots)
	if err != nil {
		return o, fmt.Errorf("%w: %v", evidence.ErrConfig, err)
	}
	if len(extra) > 0 && o.Roots == nil {
		o.Roots = dcap.DefaultRoots()
	}
	o.Roots = slices.Concat(o.Roots, extra)
	return o, nil
}

// Plugin is the TdxVm verifier for the server binary: blocks "tdx" (Config)
// and "collateral" (shared with SGX).
func Plugin() evidence.Plugin {
	return evidence.Plugin{
		Name:   "tdx",
		Blocks: []string{"tdx", "collateral"},
		Types:  []evidence.Type{evidence.TdxVm},
		Open:   openPlugin,
	}
}

func openPlugin(ctx context.Context, env evidence.PluginEnv) (evidence.Verifier, func() error, error) {
	v, closeFn, err := Open(ctx, env)
	if v == nil {
		// A nil *Verifier must not become a non-nil evidence.Verifier.
		return nil, closeFn, err
	}
	return v, closeFn, err
}

// Open builds the TDX verifier of the "tdx" and "collateral" blocks of env
// (nil when "tdx" disables it). AzureGuest, whose TDX-isolated VMs send a
// TD quote, opens its verifier with it, so one block configures Intel trust
// for both types.
func Open(ctx context.Context, env evidence.PluginEnv) (*Verifier, func() error, error) {
	var c Config
	if err := evidence.DecodeBlock(env.Block("tdx"), &c); err != nil {
		return nil, nil, fmt.Errorf("%w: tdx: %v", evidence.ErrConfig, err)
	}
	if c.Disabled {
		return nil, func() error { return nil }, nil
	}
	opts, err := OptionsFromConfig(c, env.Path)
	if err != nil {
		return nil, nil, err
	}
	sc := source.Config{Type: source.TypePCS, CacheDir: filepath.Join(env.DataDir, "collateral")}
	if raw := env.Block("collateral"); len(raw) > 0 && string(raw) != "null" {
		sc = source.Config{}
		if err := evidence.DecodeBlock(raw, &sc); err != nil {
			return nil, nil, fmt.Errorf("%w: collateral: %v", evidence.ErrConfig, err)
		}
		sc.Path, sc.SubscriptionKeyFile, sc.CAFile, sc.CacheDir = env.Path(sc.Path), env.Path(sc.SubscriptionKeyFile), env.Path(sc.CAFile), env.Path(sc.CacheDir)
	}
	now := time.Now
	if !opts.VerifyAt.IsZero() {
		at := opts.VerifyAt
		now = func() time.Time { return at }
	}
	src, err := source.Open(sc, now, env.Logger)
	if err != nil {
		return nil, nil, fmt.Errorf("collateral source: %w", err)
	}
	opts.Collateral, opts.Logger = src.Source, env.Logger
	v, err := New(opts)
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	for _, r := range opts.Roots {
		fp := sha256.Sum256(r.Raw)
		env.Logger.Warn("TDX trusted root configured (tdx.roots/extra_roots): quotes chaining to it are accepted", "subject", r.Subject.String(), "sha256", hex.EncodeToString(fp[:]))
	}
	if !opts.VerifyAt.IsZero() {
		env.Logger.Warn("TDX evidence is verified as of a FIXED instant, not now (tdx.verify_at); tokens carry "+ClaimVerifiedAt, "verify_at", opts.VerifyAt.Format(time.RFC3339))
	}
	if opts.Grace > 0 {
		env.Logger.Warn("TDX collateral grace period enabled (tdx.grace): expired collateral is accepted; such tokens carry "+ClaimGraceUsed, "grace", opts.Grace.String())
	}
	env.Logger.Info("TDX verifier", "collateral", sc.Type, "path", sc.Path, "url", sc.URL, "cache", sc.CacheDir, "custom_roots", len(opts.Roots))
	return v, src.Close, nil
}
