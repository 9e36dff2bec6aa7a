package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/evidence/sgx/verify"
)

// ClaimSGXVerifiedAt is the token claim (RFC 3339) that says SGX evidence
// was verified as of a configured instant (sgx.verify_at) instead of the
// time of the request.
const ClaimSGXVerifiedAt = "x-ms-sgx-verified-at"

// sgxTrust is the resolved "sgx" section: whom and when the verifier trusts.
type sgxTrust struct {
	roots      []*x509.Certificate // nil: Intel's SGX Root CA only
	custom     bool                // roots differ from Intel's alone
	configured []*x509.Certificate // the certificates read from roots/extra_roots
	verifyAt   time.Time           // zero: now
	grace      time.Duration
}

// resolveSGX reads the root PEM files and parses verify_at and grace.
func (c *Config) resolveSGX() (*sgxTrust, error) {
	t := &sgxTrust{}
	var err error
	if c.SGX.Grace != "" {
		if t.grace, err = time.ParseDuration(c.SGX.Grace); err != nil || t.grace < 0 {
			return nil, fmt.Errorf("%w: sgx.grace %q: want a non-negative Go duration such as \"24h\"", errUsage, c.SGX.Grace)
		}
	}
	if c.SGX.VerifyAt != "" {
		if t.verifyAt, err = time.Parse(time.RFC3339, c.SGX.VerifyAt); err != nil {
			return nil, fmt.Errorf("%w: sgx.verify_at: %v", errUsage, err)
		}
		t.verifyAt = t.verifyAt.UTC()
	}
	read := func(field string, files []string) ([]*x509.Certificate, error) {
		var out []*x509.Certificate
		for _, f := range files {
			b, err := os.ReadFile(c.path(f))
			if err != nil {
				return nil, fmt.Errorf("sgx.%s: %w", field, err)
			}
			certs, err := verify.ParseCertificates(b)
			if err != nil {
				return nil, fmt.Errorf("sgx.%s: %s: %w", field, c.path(f), err)
			}
			for _, crt := range certs {
				if !crt.IsCA {
					return nil, fmt.Errorf("sgx.%s: %s: %q is not a CA certificate", field, c.path(f), crt.Subject.CommonName)
				}
			}
			out = append(out, certs...)
		}
		return out, nil
	}
	roots, err := read("roots", c.SGX.Roots)
	if err != nil {
		return nil, err
	}
	extra, err := read("extra_roots", c.SGX.ExtraRoots)
	if err != nil {
		return nil, err
	}
	if len(roots) > 0 || len(extra) > 0 {
		t.configured = slices.Concat(roots, extra)
		if len(roots) == 0 {
			roots = verify.DefaultRoots()
		}
		t.roots = slices.Concat(roots, extra)
		t.custom = true
	}
	return t, nil
}

// now is the verification clock.
func (t *sgxTrust) now() func() time.Time {
	if t.verifyAt.IsZero() {
		return time.Now
	}
	at := t.verifyAt
	return func() time.Time { return at }
}

// logStartup says loudly, once, what differs from the secure defaults.
func (t *sgxTrust) logStartup(log *slog.Logger) {
	if t.custom {
		for _, r := range t.configured {
			fp := sha256.Sum256(r.Raw)
			log.Warn("SGX trusted root configured (sgx.roots/extra_roots): quotes chaining to it are accepted", "subject", r.Subject.String(), "sha256", hex.EncodeToString(fp[:]))
		}
	}
	if !t.verifyAt.IsZero() {
		log.Warn("SGX evidence is verified as of a FIXED instant, not now (sgx.verify_at); tokens carry "+ClaimSGXVerifiedAt, "verify_at", t.verifyAt.Format(time.RFC3339))
	}
	if t.grace > 0 {
		log.Warn("SGX collateral grace period enabled (sgx.grace): expired collateral is accepted; such tokens carry "+sgx.ClaimGraceUsed, "grace", t.grace.String())
	}
}

// markedVerifier wraps the SGX verifier so that verification at a
// configured instant is visible in the token and the log, and collateral
// accepted thanks to the grace period is logged on every attestation.
type markedVerifier struct {
	evidence.Verifier
	verifyAt string // RFC 3339; "" when verifying at now
	log      *slog.Logger
}

func (m *markedVerifier) Verify(ctx context.Context, req *evidence.Request) (*evidence.Result, error) {
	res, err := m.Verifier.Verify(ctx, req)
	if err != nil {
		return nil, err
	}
	if m.verifyAt != "" {
		res.Claims = append(res.Claims, evidence.Claim{Type: ClaimSGXVerifiedAt, Value: m.verifyAt})
		m.log.WarnContext(ctx, "SGX evidence verified as of the configured sgx.verify_at, not now", "type", req.Type, "verify_at", m.verifyAt)
	}
	for _, c := range res.Claims {
		if c.Type == sgx.ClaimGraceUsed {
			m.log.WarnContext(ctx, "SGX collateral accepted after its nextUpdate (sgx.grace)", "type", req.Type, "documents", c.Value)
		}
	}
	return res, nil
}

// wrap returns v, marked when the configuration departs from "now".
func (t *sgxTrust) wrap(v evidence.Verifier, log *slog.Logger) evidence.Verifier {
	if t.verifyAt.IsZero() && t.grace == 0 {
		return v
	}
	at := ""
	if !t.verifyAt.IsZero() {
		at = t.verifyAt.Format(time.RFC3339)
	}
	return &markedVerifier{Verifier: v, verifyAt: at, log: log}
}

// rootNames lists subjects for the startup log.
func rootNames(roots []*x509.Certificate) string {
	var s []string
	for _, r := range roots {
		s = append(s, r.Subject.CommonName)
	}
	return strings.Join(s, "; ")
}
