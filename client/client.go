// Package client is a Go SDK for the Microsoft Azure Attestation (MAA)
// data-plane API (api-version 2020-10-01), usable against real MAA
// instances and attestd alike.
//
// Go has no maintained MAA data-plane client, and the official SDKs'
// token validation has pitfalls a Go client must not copy (maa-api.md §3):
// the JS SDK trusts a certificate embedded in the token header when the kid
// is unknown, and every SDK skips the signature of any token that says
// alg "none". This client instead
//
//   - verifies every token RS256 with x5c[0] of the /certs key whose kid the
//     header names (the JWKS is parsed here: MAA's keys carry only x5c, which
//     go-jose refuses), refreshing the cached /certs once on an unknown kid;
//   - never trusts header x5c/jwk unless Validation.TrustHeaderCertificates
//     says so;
//   - accepts alg "none" only for the answer to an attest call that sent a
//     draft policy, and reports such results as unsigned;
//   - checks exp and nbf with a configurable leeway and, when asked, the
//     exact issuer;
//   - checks that a policy change's x-ms-policy-token-hash is the SHA-256
//     of the body it sent, so a response cannot be replayed from another
//     change.
//
// Errors from the service are *Error with the MAA error code; token problems
// are *ValidationError.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/attestd/attestd/client/verifier"
)

// DefaultAPIVersion is the api-version the 1.0 SDKs send (maa-api.md §0.1).
const DefaultAPIVersion = "2020-10-01"

// Credential returns a bearer token for the Authorization header (for
// Azure: an Entra ID token with scope https://attest.azure.net/.default).
type Credential func(ctx context.Context) (string, error)

// Options configure a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Credential, when set, is called for every request and its token sent
	// as a bearer token. Admin calls need it; attest, /certs and OpenID
	// metadata calls work without it (as on MAA).
	Credential Credential
	// APIVersion is sent as api-version on every MAA operation that takes
	// one (not /certs and OpenID metadata); empty means DefaultAPIVersion.
	APIVersion string
	// Validation says how returned tokens are checked.
	Validation Validation
	// MaxResponseBytes caps response bodies; 0 means 8 MiB.
	MaxResponseBytes int64
	// Retry says how calls refused with 429 or 503 are repeated (honouring
	// Retry-After); the zero value retries 3 times with backoff.
	Retry Retry
}

// Validation says how the client checks the tokens the service returns.
type Validation struct {
	// Issuer, when non-empty, must equal the token's iss exactly (for an
	// MAA instance: its URL, e.g. https://myinst.weu.attest.azure.net).
	Issuer string
	// Leeway is the clock skew allowed on exp and nbf.
	Leeway time.Duration
	// SkipValidation turns every check off: tokens are only parsed, and
	// results are marked Verified=false. For debugging only.
	SkipValidation bool
	// SkipTimeValidation keeps the signature and issuer checks but ignores
	// exp and nbf (to inspect old recorded tokens).
	SkipTimeValidation bool
	// TrustHeaderCertificates lets a token whose kid is not in /certs be
	// verified with the certificate in its own header (x5c or jwk.x5c), as
	// the JS SDK does. That certificate is self-asserted: anyone can sign a
	// token that passes this way. Only for services whose /certs is
	// unusable and whose transport is trusted.
	TrustHeaderCertificates bool
	// Now is the clock for exp/nbf; nil means time.Now.
	Now func() time.Time
}

// Client calls one MAA (or attestd) instance. Safe for concurrent use.
type Client struct {
	base    string // scheme://host[/base path], no trailing slash
	http    *http.Client
	cred    Credential
	version string
	val     Validation
	max     int64
	retry   Retry
	now     func() time.Time

	// keys caches /certs for token validation (refetched hourly and on
	// an unknown kid, so a rotated key verifies from its first token).
	keys *verifier.KeyCache
}

// New returns a client for the instance at endpoint, an https URL that may
// carry a base path (https://host/tenants/t1): every operation's path is
// appended to it. Plain http is accepted for calls without a credential
// (a local test service); a bearer token is never sent over it.
func New(endpoint string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("client: endpoint: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("client: endpoint %q: scheme must be https", endpoint)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: endpoint %q: want https://host[:port][/base/path] without query, fragment or user info", endpoint)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:    u.Scheme + "://" + u.Host + u.EscapedPath(),
		http:    opts.HTTPClient,
		cred:    opts.Credential,
		version: opts.APIVersion,
		val:     opts.Validation,
		max:     opts.MaxResponseBytes,
		retry:   opts.Retry.withDefaults(),
	}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	c.http = noBearerDowngrade(c.http)
	if c.version == "" {
		c.version = DefaultAPIVersion
	}
	if c.max <= 0 {
		c.max = 8 << 20
	}
	now := c.val.Now
	if now == nil {
		now = time.Now
	}
	c.now = now
	// No cooldown: the Client validates answers to its own calls, not
	// tokens a stranger sends, so an unknown kid means a rotation.
	c.keys, err = verifier.NewKeyCache(verifier.KeyCacheOptions{Fetch: c.GetSigningCertificates, Source: c.base + "/certs",
		Now: now, MaxAge: verifier.DefaultKeysMaxAge})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// noBearerDowngrade returns a shallow copy of hc whose redirects never
// carry the Authorization header over plain http: net/http forwards it to
// the same host whatever the scheme, so an https service answering with a
// redirect to http:// would otherwise receive the bearer token in clear.
// The caller's own CheckRedirect still runs first.
func noBearerDowngrade(hc *http.Client) *http.Client {
	cp := *hc
	next := hc.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if next != nil {
			if err := next(req, via); err != nil {
				return err
			}
		} else if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.URL.Scheme != "https" && req.Header.Get("Authorization") != "" {
			return fmt.Errorf("refusing to follow a redirect to %s with a bearer token", req.URL.Scheme)
		}
		return nil
	}
	return &cp
}

// Endpoint returns the instance URL the client calls (without trailing slash).
func (c *Client) Endpoint() string { return c.base }

// Error is a non-200 answer of the service, read from MAA's error envelope
// {"error":{"code":…,"message":…}}. Code is empty when the body had none
// (real MAA answers some 401s with an empty body).
type Error struct {
	StatusCode int
	Code       string
	Message    string
	// RequestID is the x-ms-request-id response header, for support cases.
	RequestID string
	// RetryAfter is the service's Retry-After (429 and 503 answers), 0
	// when it sent none.
	RetryAfter time.Duration
	// Attempts is how many times the call was sent (more than 1 when it
	// was retried after 429 or 503).
	Attempts int
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("attestation service: %d %s", e.StatusCode, code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	return s
}

// request describes one call.
type request struct {
	method      string
	path        string // after the base, starting with "/"
	noVersion   bool   // /certs and openid-configuration carry no api-version
	version     string // api-version of this call instead of the client's ("": the client's)
	contentType string
	body        []byte
	accept      string
}

// do sends req and returns the 200 body; any other status is an *Error.
// Answers 429 and 503 are retried as c.retry says.
func (c *Client) do(ctx context.Context, req request) ([]byte, error) {
	for n := 0; ; n++ {
		b, err := c.doOnce(ctx, req)
		e, ok := err.(*Error)
		if !ok {
			return b, err
		}
		e.Attempts = n + 1
		if !retryable(e.StatusCode) {
			return nil, e
		}
		d, again := c.retry.delay(n, e)
		if !again {
			return nil, e
		}
		if werr := c.retry.Wait(ctx, d); werr != nil {
			// Cancelled while waiting: keep the service's answer (errors.As
			// finds it) and the cancellation (errors.Is finds it).
			return nil, fmt.Errorf("%w; retry abandoned: %w", e, werr)
		}
	}
}

// doOnce sends req once.
func (c *Client) doOnce(ctx context.Context, req request) ([]byte, error) {
	u := c.base + req.path
	if !req.noVersion {
		v := c.version
		if req.version != "" {
			v = req.version
		}
		u += "?api-version=" + url.QueryEscape(v)
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", req.method, req.path, err)
	}
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	accept := req.accept
	if accept == "" {
		accept = "application/json"
	}
	hr.Header.Set("Accept", accept)
	hr.Header.Set("User-Agent", "attestd-go-client/1")
	if c.cred != nil {
		tok, err := c.cred(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: credential: %w", req.method, req.path, err)
		}
		if tok != "" {
			if hr.URL.Scheme != "https" {
				// As the Azure SDKs: a bearer token is never sent in clear.
				return nil, fmt.Errorf("client: %s %s: refusing to send a bearer token over %s", req.method, req.path, hr.URL.Scheme)
			}
			hr.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", req.method, req.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: reading response: %w", req.method, req.path, err)
	}
	if int64(len(b)) > c.max {
		return nil, fmt.Errorf("client: %s %s: response exceeds %d bytes", req.method, req.path, c.max)
	}
	if resp.StatusCode != http.StatusOK {
		e := parseError(resp, b)
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		return nil, e
	}
	return b, nil
}

// parseError reads MAA's error envelope; a body that is not one becomes the
// message (truncated), so nothing the server said is lost.
func parseError(resp *http.Response, b []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("x-ms-request-id")}
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err == nil && env.Error != nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
		return e
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	e.Message = msg
	return e
}

// tokenResponse reads {"token": JWT}.
func tokenResponse(b []byte) (string, error) {
	var r struct {
		Token *string `json:"token"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("client: response is not JSON: %w", err)
	}
	if r.Token == nil || *r.Token == "" {
		return "", errors.New("client: response has no token")
	}
	return *r.Token, nil
}
