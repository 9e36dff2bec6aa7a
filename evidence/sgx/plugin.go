package sgx

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral/source"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/sgx/verify"
)

// Config is the "sgx" block of the attestd configuration file (README.md,
// "Attest an SGX enclave"). The "collateral" block says where collateral
// comes from (collateral/source.Config).
type Config struct {
	// Disabled leaves SgxEnclave/OpenEnclave without a verifier (attest
	// calls answer NotSupported).
	Disabled bool `json:"disabled"`
	// Grace accepts collateral whose nextUpdate passed at most this long
	// ago (a Go duration); such tokens carry x-ms-sgx-collateral-grace-used
	// and each such attestation is logged at WARN.
	Grace string `json:"grace"`
	// Roots are PEM files whose certificates REPLACE Intel's SGX Root CA as
	// the trusted roots of PCK chains and collateral signing chains (for a
	// private PKI or the generated test platform of testing/sgxplatform).
	// Empty: Intel's SGX Root CA only. A test root is never trusted unless
	// named here or in ExtraRoots.
	Roots []string `json:"roots"`
	// ExtraRoots are PEM files trusted IN ADDITION to Intel's SGX Root CA
	// (or to Roots). Each chain must still end at one root: one root's CRL
	// and signing certificates never vouch for another root's chain.
	ExtraRoots []string `json:"extra_roots"`
	// VerifyAt, an RFC 3339 instant, verifies every quote as of that
	// instant instead of now (certificate, CRL, TCB info and QE identity
	// windows). Meant for replaying recorded evidence whose collateral has
	// expired. Tokens carry x-ms-sgx-verified-at; startup and every
	// attestation log a WARN.
	VerifyAt string `json:"verify_at"`
}

// Trust is a resolved "sgx" block: whom and when the verifier trusts.
type Trust struct {
	Roots      []*x509.Certificate // nil: Intel's SGX Root CA only
	Custom     bool                // roots differ from Intel's alone
	Configured []*x509.Certificate // the certificates read from roots/extra_roots
	VerifyAt   time.Time           // zero: now
	Grace      time.Duration
}

// Resolve reads the root PEM files (path resolves names relative to the
// configuration file) and parses verify_at and grace. Errors name the
// field; malformed values wrap evidence.ErrConfig.
func (c Config) Resolve(path func(string) string) (*Trust, error) {
	t := &Trust{}
	var err error
	if t.VerifyAt, t.Grace, err = dcap.ParseClock("sgx", c.VerifyAt, c.Grace); err != nil {
		return nil, err
	}
	t.VerifyAt = t.VerifyAt.UTC()
	roots, err := dcap.ReadRoots("sgx", "roots", path, c.Roots)
	if err != nil {
		return nil, err
	}
	extra, err := dcap.ReadRoots("sgx", "extra_roots", path, c.ExtraRoots)
	if err != nil {
		return nil, err
	}
	if len(roots) > 0 || len(extra) > 0 {
		t.Configured = slices.Concat(roots, extra)
		if len(roots) == 0 {
			roots = verify.DefaultRoots()
		}
		t.Roots = slices.Concat(roots, extra)
		t.Custom = true
	}
	return t, nil
}

// now is the clock of the collateral source: documents valid at the
// instant the verifier checks them at.
func (t *Trust) now() func() time.Time {
	if t.VerifyAt.IsZero() {
		return time.Now
	}
	at := t.VerifyAt
	return func() time.Time { return at }
}

// logStartup says loudly, once, what differs from the secure defaults.
func (t *Trust) logStartup(log *slog.Logger) {
	if t.Custom {
		for _, r := range t.Configured {
			fp := sha256.Sum256(r.Raw)
			log.Warn("SGX trusted root configured (sgx.roots/extra_roots): quotes chaining to it are accepted", "subject", r.Subject.String(), "sha256", hex.EncodeToString(fp[:]))
		}
	}
	if !t.VerifyAt.IsZero() {
		log.Warn("SGX evidence is verified as of a FIXED instant, not now (sgx.verify_at); tokens carry "+ClaimVerifiedAt, "verify_at", t.VerifyAt.Format(time.RFC3339))
	}
	if t.Grace > 0 {
		log.Warn("SGX collateral grace period enabled (sgx.grace): expired collateral is accepted; such tokens carry "+ClaimGraceUsed, "grace", t.Grace.String())
	}
}

// Plugin is the SGX/OpenEnclave verifier for the server binary: blocks
// "sgx" (Config) and "collateral" (collateral/source.Config; absent: Intel
// PCS cached under DATA/collateral).
func Plugin() evidence.Plugin {
	return evidence.Plugin{
		Name:   "sgx",
		Blocks: []string{"sgx", "collateral"},
		Types:  []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave},
		Open:   openPlugin,
	}
}

func openPlugin(ctx context.Context, env evidence.PluginEnv) (evidence.Verifier, func() error, error) {
	noop := func() error { return nil }
	var c Config
	if err := evidence.DecodeBlock(env.Block("sgx"), &c); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", evidence.ErrConfig, err)
	}
	if c.Disabled {
		return nil, noop, nil
	}
	sc := source.Config{Type: source.TypePCS, CacheDir: filepath.Join(env.DataDir, "collateral")}
	if raw := env.Block("collateral"); len(raw) > 0 && string(raw) != "null" {
		sc = source.Config{}
		if err := evidence.DecodeBlock(raw, &sc); err != nil {
			return nil, nil, fmt.Errorf("%w: collateral: %v", evidence.ErrConfig, err)
		}
		sc.Path, sc.SubscriptionKeyFile, sc.CAFile, sc.CacheDir = env.Path(sc.Path), env.Path(sc.SubscriptionKeyFile), env.Path(sc.CAFile), env.Path(sc.CacheDir)
	}
	trust, err := c.Resolve(env.Path)
	if err != nil {
		return nil, nil, err
	}
	log := env.Logger
	src, err := source.Open(sc, trust.now(), log)
	if err != nil {
		return nil, nil, fmt.Errorf("collateral source: %w", err)
	}
	if env.Collateral != nil && src.Stats != nil {
		env.Collateral(src.Stats)
	}
	v, err := NewVerifier(Options{Collateral: src.Source, Roots: trust.Roots, VerifyAt: trust.VerifyAt, Grace: trust.Grace, Logger: log})
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	roots := "Intel SGX Root CA"
	if trust.Custom {
		var s []string
		for _, r := range trust.Roots {
			s = append(s, r.Subject.CommonName)
		}
		roots = strings.Join(s, "; ")
	}
	log.Info("SGX/OpenEnclave verifier", "collateral", sc.Type, "path", sc.Path, "url", sc.URL, "cache", sc.CacheDir, "roots", roots)
	trust.logStartup(log)
	return v, src.Close, nil
}
