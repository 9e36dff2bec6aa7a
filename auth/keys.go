package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxDocBytes bounds discovery documents and JWKS read from the network.
const maxDocBytes = 1 << 20

// keySource caches the signing keys of one issuer.
//
// Keys are refetched when older than RefreshInterval, and when a token
// names a kid the cache lacks (identity providers rotate keys and publish
// the new one shortly before use); both are rate-limited to one attempt per
// MinRefreshInterval, so a stream of tokens with forged kids costs the IdP
// at most one request per interval. On a failed refetch the previous keys
// stay in use.
//
// The lock is never held across a fetch: concurrent refreshes wait for the
// one fetch in flight, while tokens whose kid is already known go on being
// verified with the keys at hand (a forged kid, or a slow identity
// provider, must not stall every admin call for up to FetchTimeout).
type keySource struct {
	is     Issuer
	cfg    *Config
	logger *slog.Logger

	mu          sync.Mutex // guards the fields below; never held during I/O
	keys        []jose.JSONWebKey
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time
	lastErr     error
	flight      *keyFetch // the fetch in progress, nil when none
}

// keyFetch is one fetch of an issuer's keys; done is closed when err is set.
type keyFetch struct {
	done chan struct{}
	err  error
}

func newKeySource(is Issuer, cfg *Config, logger *slog.Logger) (*keySource, error) {
	if is.Issuer == "" {
		return nil, errors.New("auth: issuer with empty Issuer")
	}
	n := 0
	for _, s := range []string{is.DiscoveryURL, is.JWKSURL, is.JWKSFile} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("auth: issuer %q: set only one of DiscoveryURL, JWKSURL, JWKSFile", is.Issuer)
	}
	if n == 0 {
		u, err := url.JoinPath(is.Issuer, ".well-known/openid-configuration")
		if err != nil {
			return nil, fmt.Errorf("auth: issuer %q: derive discovery URL: %w", is.Issuer, err)
		}
		is.DiscoveryURL = u
	}
	for _, u := range []string{is.DiscoveryURL, is.JWKSURL} {
		if u != "" {
			if err := checkURL(u, cfg.AllowInsecureHTTP); err != nil {
				return nil, fmt.Errorf("auth: issuer %q: %w", is.Issuer, err)
			}
		}
	}
	return &keySource{is: is, cfg: cfg, logger: logger}, nil
}

func checkURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && u.Host != "" && allowHTTP:
		return nil
	}
	return fmt.Errorf("URL %q must be https", raw)
}

// keysFor returns the candidate keys for kid (all keys when kid is empty).
func (s *keySource) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	keys, fetchedAt, _ := s.snapshot()
	if keys == nil || s.cfg.Now().Sub(fetchedAt) >= s.cfg.RefreshInterval {
		_ = s.refresh(ctx, false) // failure: keep old keys, reported below if none
	}
	keys, _, lastErr := s.snapshot()
	if keys == nil {
		return nil, &Error{Reason: ReasonKeysUnavailable, Message: fmt.Sprintf("keys of issuer %s are unavailable", s.is.Issuer), Err: lastErr}
	}
	match := matchKID(keys, kid)
	if len(match) == 0 && kid != "" {
		_ = s.refresh(ctx, false)
		keys, _, _ = s.snapshot()
		match = matchKID(keys, kid)
	}
	if len(match) == 0 {
		return nil, reject(ReasonUnknownKey, "issuer %s has no signing key with kid %q", s.is.Issuer, kid)
	}
	return match, nil
}

// snapshot returns the cached keys (never modified in place: a refresh
// replaces the slice), when they were fetched and the last fetch error.
func (s *keySource) snapshot() ([]jose.JSONWebKey, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys, s.fetchedAt, s.lastErr
}

func matchKID(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if kid == "" || k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// refresh fetches the keys; force skips the rate limit. A refresh that
// finds a fetch in flight waits for that one (or for ctx) instead of
// starting another.
func (s *keySource) refresh(ctx context.Context, force bool) error {
	s.mu.Lock()
	if f := s.flight; f != nil {
		s.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := s.cfg.Now()
	if !force && !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.cfg.MinRefreshInterval {
		err := s.lastErr
		s.mu.Unlock()
		return err
	}
	s.lastAttempt = now
	f := &keyFetch{done: make(chan struct{})}
	s.flight = f
	s.mu.Unlock()

	keys, err := s.fetch(ctx)

	s.mu.Lock()
	if err != nil {
		s.lastErr = err
	} else {
		s.keys, s.fetchedAt, s.lastErr = keys, now, nil
	}
	cached := len(s.keys)
	s.flight = nil
	s.mu.Unlock()
	f.err = err
	close(f.done)
	if err != nil {
		s.logger.WarnContext(ctx, "auth: fetching issuer keys failed", "issuer", s.is.Issuer, "err", err, "cached_keys", cached)
		return err
	}
	s.logger.DebugContext(ctx, "auth: issuer keys fetched", "issuer", s.is.Issuer, "keys", len(keys))
	return nil
}

func (s *keySource) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	if s.is.JWKSFile != "" {
		b, err := os.ReadFile(s.is.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("read JWKS file: %w", err)
		}
		return s.parseJWKS(b, s.is.JWKSFile)
	}
	// The fetch outlives the request that triggered it: a client hanging up
	// must not turn into a failed attempt that blocks refetches for
	// MinRefreshInterval. FetchTimeout bounds it instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FetchTimeout)
	defer cancel()
	jwksURL := s.is.JWKSURL
	if s.is.DiscoveryURL != "" {
		b, err := s.get(ctx, s.is.DiscoveryURL)
		if err != nil {
			return nil, fmt.Errorf("OIDC discovery: %w", err)
		}
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("OIDC discovery document %s: %w", s.is.DiscoveryURL, err)
		}
		// OpenID Connect Discovery §4.3: the issuer in the document must be
		// the one we expect, or a misrouted URL could lend us foreign keys.
		if doc.Issuer != s.is.Issuer {
			return nil, fmt.Errorf("OIDC discovery document %s names issuer %q, want %q", s.is.DiscoveryURL, doc.Issuer, s.is.Issuer)
		}
		if err := checkURL(doc.JWKSURI, s.cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("OIDC discovery document %s: jwks_uri: %w", s.is.DiscoveryURL, err)
		}
		jwksURL = doc.JWKSURI
	}
	b, err := s.get(ctx, jwksURL)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	return s.parseJWKS(b, jwksURL)
}

func (s *keySource) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > maxDocBytes {
		return nil, fmt.Errorf("GET %s: body exceeds %d bytes", u, maxDocBytes)
	}
	return b, nil
}

// parseJWKS keeps the usable public signing keys of a JWKS. Keys go-jose
// cannot parse, private keys and encryption keys are skipped (logged), so
// one exotic entry does not disable an issuer.
func (s *keySource) parseJWKS(b []byte, from string) ([]jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", from, err)
	}
	keys := []jose.JSONWebKey{}
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			s.logger.Warn("auth: skipping unparsable JWKS key", "issuer", s.is.Issuer, "source", from, "index", i, "err", err)
			continue
		}
		if !k.IsPublic() || (k.Use != "" && k.Use != "sig") || !k.Valid() {
			s.logger.Warn("auth: skipping JWKS key that is not a public signing key", "issuer", s.is.Issuer, "source", from, "kid", k.KeyID)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS %s holds no usable public signing key", from)
	}
	return keys, nil
}
