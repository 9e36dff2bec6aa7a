// Package pcs fetches Intel DCAP collateral from the Intel Provisioning
// Certification Service (PCS) API v4 or from a PCCS, which serves the same
// v4 paths.
//
//	GET {base}/sgx/certification/v4/tcb?fmspc=…        TCB info (SGX); chain in TCB-Info-Issuer-Chain
//	GET {base}/tdx/certification/v4/tcb?fmspc=…        TCB info (TDX)
//	GET {base}/sgx/certification/v4/qe/identity        QE identity; chain in SGX-Enclave-Identity-Issuer-Chain
//	GET {base}/tdx/certification/v4/qe/identity        TD QE identity
//	GET {base}/sgx/certification/v4/pckcrl?ca=…&encoding=der   PCK CRL; chain in SGX-PCK-CRL-Issuer-Chain
//	Root CA CRL: Config.RootCACRLURL, a PCCS's /sgx/certification/v4/rootcacrl,
//	or the CRL distribution point of the root certificate in the PCK CRL chain.
//
// A Request with TCBEvaluationDataNumber N > 0 adds tcbEvaluationDataNumber=N
// to the TCB info and QE identity requests (PCS v4 and PCCS accept it on
// both; it excludes the update parameter, which is then not sent), and the
// client checks both answers carry N. PCS answers 404 (unknown number) or
// 410 (a number no longer served); both wrap collateral.ErrNotFound. PCS's
// signed list of numbers (/tcbevaluationdatanumbers) is not fetched: the
// numbers a deployment uses come from its policies.
//
// The client verifies nothing cryptographically (the verifier does); it
// checks that each answer is what was asked for (the FMSPC, TEE and CA match)
// and well formed, bounds response sizes, and applies a timeout to every
// request through its context.
package pcs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attestd/attestd/collateral"
)

// IntelPCSURL is the base URL of Intel's PCS.
const IntelPCSURL = "https://api.trustedservices.intel.com"

// Defaults for Config's zero values.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 1 << 20 // the largest real answer (a PCK CRL) is ~7 KB
)

// Response headers carrying issuer chains (URL-encoded PEM). The v3 API's
// name for the TCB info chain is accepted as a fallback.
const (
	HeaderTCBInfoIssuerChain          = "TCB-Info-Issuer-Chain"
	HeaderTCBInfoIssuerChainV3        = "SGX-TCB-Info-Issuer-Chain"
	HeaderEnclaveIdentityChain        = "SGX-Enclave-Identity-Issuer-Chain"
	HeaderPCKCRLIssuerChain           = "SGX-PCK-CRL-Issuer-Chain"
	HeaderSubscriptionKey             = "Ocp-Apim-Subscription-Key"
	headerRequestID                   = "Request-ID"
	headerErrorCode                   = "Error-Code"
	headerErrorMessage                = "Error-Message"
	pccsRootCACRLPath                 = "/sgx/certification/v4/rootcacrl"
	errorSnippetLen                   = 200
	defaultTLSMinVersion       uint16 = tls.VersionTLS12
)

// Config configures a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the PCS (IntelPCSURL) or PCCS base, without the
	// /sgx/certification/v4 part.
	BaseURL string
	// PCCS marks BaseURL as a PCCS: the Root CA CRL then comes from its
	// /sgx/certification/v4/rootcacrl unless RootCACRLURL is set.
	PCCS bool
	// SubscriptionKey is sent as Ocp-Apim-Subscription-Key, only to
	// BaseURL's host. Empty: not sent (the v4 collateral endpoints do not
	// need it). It is never logged.
	SubscriptionKey string
	// RootCACRLURL overrides where the Root CA CRL is fetched. Empty: the
	// PCCS path (PCCS) or the root certificate's CRL distribution point
	// (https://certificates.trustedservices.intel.com/IntelSGXRootCA.der).
	RootCACRLURL string
	// CAFile is a PEM file of extra TLS roots, for a PCCS with a self-signed
	// or private-CA certificate. Empty: system roots only. Not allowed with
	// HTTPClient (configure that client's transport instead).
	CAFile string
	// HTTPClient replaces the client built from CAFile. Its own Timeout, if
	// any, applies on top of Timeout.
	HTTPClient *http.Client
	// Timeout bounds each request. Zero: DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds each response body. Zero:
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// TCBUpdate is PCS's "update" parameter for TCB info and QE identity:
	// "early" or "standard". Empty: not sent (PCS default, standard).
	TCBUpdate string
	// Logger receives one debug line per request. Nil: no logging.
	Logger *slog.Logger
}

// Client fetches collateral over HTTP. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	cfg      Config
	http     *http.Client
	log      *slog.Logger
	rootCRL  string
	maxBytes int64
	timeout  time.Duration
}

var _ collateral.Source = (*Client)(nil)

// New validates cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("pcs: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.TCBUpdate != "" && cfg.TCBUpdate != "early" && cfg.TCBUpdate != "standard" {
		return nil, fmt.Errorf("pcs: TCBUpdate %q is neither \"early\" nor \"standard\"", cfg.TCBUpdate)
	}
	if cfg.Timeout < 0 || cfg.MaxResponseBytes < 0 {
		return nil, errors.New("pcs: negative Timeout or MaxResponseBytes")
	}
	c := &Client{base: u, cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger, maxBytes: cfg.MaxResponseBytes, timeout: cfg.Timeout}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxResponseBytes
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.RootCACRLURL != "":
		if r, err := url.Parse(cfg.RootCACRLURL); err != nil || (r.Scheme != "https" && r.Scheme != "http") {
			return nil, fmt.Errorf("pcs: root CA CRL URL %q is not an http(s) URL", cfg.RootCACRLURL)
		}
		c.rootCRL = cfg.RootCACRLURL
	case cfg.PCCS:
		c.rootCRL = u.String() + pccsRootCACRLPath
	}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: defaultTLSMinVersion}
		if cfg.CAFile != "" {
			pool, err := loadRoots(cfg.CAFile)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		c.http = &http.Client{Transport: tr}
	} else if cfg.CAFile != "" {
		return nil, errors.New("pcs: CAFile and HTTPClient are exclusive; set the roots on HTTPClient's transport")
	}
	// net/http drops Authorization and cookies on a redirect to another
	// host, but not custom headers: strip the subscription key ourselves.
	// The caller's client is copied, not modified.
	hc := *c.http
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != c.base.Scheme || req.URL.Host != c.base.Host {
			req.Header.Del(HeaderSubscriptionKey)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}
	c.http = &hc
	return c, nil
}

func loadRoots(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pcs: CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("pcs: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

func (c *Client) source() string { return "pcs " + c.base.String() }

// unavailable classes err as transient, carrying PCS's HTTP status (and
// Retry-After) when there was an answer, so callers can tell a 503 or 429
// from a transport failure.
func (c *Client) unavailable(err error) error {
	var gone *callerGone
	if errors.As(err, &gone) {
		return err // the caller gave up: its context's error, not an outage
	}
	ue := &collateral.UnavailableError{Source: c.source(), Err: err}
	var se *StatusError
	if errors.As(err, &se) {
		ue.Status, ue.RetryAfter = se.StatusCode, se.RetryAfter
	}
	return ue
}

// StatusError is a non-200 answer.
type StatusError struct {
	URL          string
	StatusCode   int
	RequestID    string // PCS's Request-ID header, for Intel support
	ErrorCode    string // PCS's Error-Code header
	ErrorMessage string // PCS's Error-Message header, or the start of the body
	// RetryAfter is the Retry-After header in seconds, when sent (429, 503).
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("GET %s: HTTP %d", e.URL, e.StatusCode)
	if e.ErrorCode != "" {
		s += " " + e.ErrorCode
	}
	if e.ErrorMessage != "" {
		s += ": " + e.ErrorMessage
	}
	if e.RequestID != "" {
		s += " (Request-ID " + e.RequestID + ")"
	}
	return s
}

// callerGone is a request abandoned because the caller's context ended
// (not the per-request timeout): unavailable passes it through unclassed, so
// callers see their own ctx.Err() and not "PCS is down".
type callerGone struct{ err error }

func (e *callerGone) Error() string { return e.err.Error() }
func (e *callerGone) Unwrap() error { return e.err }

type response struct {
	body   []byte
	header http.Header
}

// fetch GETs u and returns the body of a 200 answer. Other statuses give a
// *StatusError; transport failures and oversized bodies a plain error.
func (c *Client) fetch(ctx context.Context, u string) (*response, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	// The key authenticates us to PCS; a CRL distribution point on another
	// host must never see it.
	if c.cfg.SubscriptionKey != "" && req.URL.Scheme == c.base.Scheme && req.URL.Host == c.base.Host {
		req.Header.Set(HeaderSubscriptionKey, c.cfg.SubscriptionKey)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil && parent.Err() != nil {
		return nil, &callerGone{fmt.Errorf("GET %s: %w", u, parent.Err())}
	}
	if err != nil {
		c.log.DebugContext(ctx, "pcs request failed", "url", u, "err", err)
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, readErr := readLimited(resp, c.maxBytes)
	c.log.DebugContext(ctx, "pcs request", "url", u, "status", resp.StatusCode, "bytes", len(body),
		"request_id", resp.Header.Get(headerRequestID), "elapsed", time.Since(start))
	if resp.StatusCode != http.StatusOK {
		e := &StatusError{URL: u, StatusCode: resp.StatusCode, RequestID: resp.Header.Get(headerRequestID),
			ErrorCode: resp.Header.Get(headerErrorCode), ErrorMessage: resp.Header.Get(headerErrorMessage)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		if e.ErrorMessage == "" {
			e.ErrorMessage = snippet(body)
		}
		return nil, e
	}
	if readErr != nil {
		return nil, fmt.Errorf("GET %s: %w", u, readErr)
	}
	return &response{body: body, header: resp.Header}, nil
}

func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("response body of %d bytes exceeds the %d-byte limit", resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return b, fmt.Errorf("reading response body: %w", err)
	}
	if int64(len(b)) > limit {
		return b[:limit], fmt.Errorf("response body exceeds the %d-byte limit", limit)
	}
	return b, nil
}

// snippet keeps the start of an error body, printable characters only, so
// an HTML error page cannot flood or garble logs.
func snippet(b []byte) string {
	var sb strings.Builder
	for _, r := range string(b[:min(len(b), errorSnippetLen)]) {
		if r >= 0x20 && r < 0x7f {
			sb.WriteRune(r)
		} else {
			sb.WriteByte(' ')
		}
	}
	return strings.TrimSpace(sb.String())
}

// DecodeIssuerChainHeader decodes an issuer-chain response header: PEM
// certificates, URL-encoded. Path unescaping is used because a literal '+'
// must stay a '+' (base64), not become a space.
func DecodeIssuerChainHeader(name, value string) ([]byte, error) {
	if value == "" {
		return nil, fmt.Errorf("%w: response has no %s header", collateral.ErrMalformed, name)
	}
	pemText, err := url.PathUnescape(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s header is not URL-encoded: %v", collateral.ErrMalformed, name, err)
	}
	if _, err := collateral.ParseCertChain([]byte(pemText)); err != nil {
		return nil, fmt.Errorf("%s header: %w", name, err)
	}
	return []byte(pemText), nil
}

func teePath(tee collateral.TEE) string {
	if tee == collateral.TDX {
		return "/tdx/certification/v4"
	}
	return "/sgx/certification/v4"
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = q.Encode()
	return u.String()
}

// TCBInfo fetches the TCB info for (tee, fmspc): the signed document and its
// issuer chain (PEM). A 404 wraps collateral.ErrNotFound.
func (c *Client) TCBInfo(ctx context.Context, tee collateral.TEE, fmspc string) (*collateral.SignedDocument, []byte, error) {
	return c.TCBInfoBaseline(ctx, tee, fmspc, 0)
}

// baselineQuery sets update or tcbEvaluationDataNumber (PCS rejects both together).
func (c *Client) baselineQuery(q url.Values, evalNum int) {
	if evalNum > 0 {
		q.Set("tcbEvaluationDataNumber", strconv.Itoa(evalNum))
	} else if c.cfg.TCBUpdate != "" {
		q.Set("update", c.cfg.TCBUpdate)
	}
}

// notFound reports whether err is PCS saying it has no such document: 404,
// or 410 Gone for a TCB evaluation data number it no longer serves.
func notFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.StatusCode == http.StatusNotFound || se.StatusCode == http.StatusGone)
}

// TCBInfoBaseline fetches the TCB info for (tee, fmspc) whose
// tcbEvaluationDataNumber is evalNum (0: the standard one, as TCBInfo).
func (c *Client) TCBInfoBaseline(ctx context.Context, tee collateral.TEE, fmspc string, evalNum int) (*collateral.SignedDocument, []byte, error) {
	fmspc = strings.ToLower(fmspc)
	q := url.Values{"fmspc": {fmspc}}
	c.baselineQuery(q, evalNum)
	resp, err := c.fetch(ctx, c.url(teePath(tee)+"/tcb", q))
	if err != nil {
		if notFound(err) {
			return nil, nil, fmt.Errorf("%s: %w: no TCB info for FMSPC %s (%s)%s: %v", c.source(), collateral.ErrNotFound, fmspc, tee, baselineText(evalNum), err)
		}
		return nil, nil, c.unavailable(fmt.Errorf("TCB info for FMSPC %s: %w", fmspc, err))
	}
	chainHdr := resp.header.Get(HeaderTCBInfoIssuerChain)
	name := HeaderTCBInfoIssuerChain
	if chainHdr == "" && resp.header.Get(HeaderTCBInfoIssuerChainV3) != "" {
		chainHdr, name = resp.header.Get(HeaderTCBInfoIssuerChainV3), HeaderTCBInfoIssuerChainV3
	}
	chain, err := DecodeIssuerChainHeader(name, chainHdr)
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("TCB info for FMSPC %s: %w", fmspc, err))
	}
	doc, err := collateral.ParseTCBInfoResponse(resp.body)
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("TCB info for FMSPC %s: %w", fmspc, err))
	}
	h, err := collateral.ParseTCBInfoHeader(doc.Body)
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("TCB info for FMSPC %s: %w", fmspc, err))
	}
	if h.FMSPC != fmspc || h.TEE() != tee {
		return nil, nil, c.unavailable(fmt.Errorf("%w: asked for the %s TCB info of FMSPC %s, got %s FMSPC %s", collateral.ErrMalformed, tee, fmspc, h.TEE(), h.FMSPC))
	}
	if evalNum > 0 && h.TCBEvaluationDataNumber != evalNum {
		return nil, nil, c.unavailable(fmt.Errorf("%w: asked for the TCB info of FMSPC %s with TCB evaluation data number %d, got number %d", collateral.ErrMalformed, fmspc, evalNum, h.TCBEvaluationDataNumber))
	}
	return doc, chain, nil
}

func baselineText(evalNum int) string {
	if evalNum > 0 {
		return fmt.Sprintf(" with TCB evaluation data number %d", evalNum)
	}
	return ""
}

// QEIdentity fetches the QE identity (SGX) or TD QE identity (TDX) and its
// issuer chain.
func (c *Client) QEIdentity(ctx context.Context, tee collateral.TEE) (*collateral.SignedDocument, []byte, error) {
	return c.QEIdentityBaseline(ctx, tee, 0)
}

// QEIdentityBaseline fetches the QE identity whose tcbEvaluationDataNumber
// is evalNum (0: the standard one, as QEIdentity).
func (c *Client) QEIdentityBaseline(ctx context.Context, tee collateral.TEE, evalNum int) (*collateral.SignedDocument, []byte, error) {
	q := url.Values{}
	c.baselineQuery(q, evalNum)
	resp, err := c.fetch(ctx, c.url(teePath(tee)+"/qe/identity", q))
	if err != nil {
		if notFound(err) {
			return nil, nil, fmt.Errorf("%s: %w: no QE identity for %s%s: %v", c.source(), collateral.ErrNotFound, tee, baselineText(evalNum), err)
		}
		return nil, nil, c.unavailable(fmt.Errorf("%s QE identity: %w", tee, err))
	}
	chain, err := DecodeIssuerChainHeader(HeaderEnclaveIdentityChain, resp.header.Get(HeaderEnclaveIdentityChain))
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("%s QE identity: %w", tee, err))
	}
	doc, err := collateral.ParseQEIdentityResponse(resp.body)
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("%s QE identity: %w", tee, err))
	}
	h, err := collateral.ParseEnclaveIdentityHeader(doc.Body)
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("%s QE identity: %w", tee, err))
	}
	if got, _ := h.TEE(); got != tee {
		return nil, nil, c.unavailable(fmt.Errorf("%w: asked for the %s QE identity, got identity %q", collateral.ErrMalformed, tee, h.ID))
	}
	if evalNum > 0 && h.TCBEvaluationDataNumber != evalNum {
		return nil, nil, c.unavailable(fmt.Errorf("%w: asked for the %s QE identity with TCB evaluation data number %d, got number %d", collateral.ErrMalformed, tee, evalNum, h.TCBEvaluationDataNumber))
	}
	return doc, chain, nil
}

// PCKCRL fetches the CRL of the PCK Processor or Platform CA (DER) and its
// issuer chain.
func (c *Client) PCKCRL(ctx context.Context, ca string) (*collateral.CRLInfo, []byte, error) {
	resp, err := c.fetch(ctx, c.url("/sgx/certification/v4/pckcrl", url.Values{"ca": {ca}, "encoding": {"der"}}))
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return nil, nil, fmt.Errorf("%s: %w: no PCK CRL for CA %s: %v", c.source(), collateral.ErrNotFound, ca, err)
		}
		return nil, nil, c.unavailable(fmt.Errorf("PCK %s CA CRL: %w", ca, err))
	}
	chain, err := DecodeIssuerChainHeader(HeaderPCKCRLIssuerChain, resp.header.Get(HeaderPCKCRLIssuerChain))
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("PCK %s CA CRL: %w", ca, err))
	}
	info, err := collateral.ParseCRL(resp.body)
	if err != nil {
		return nil, nil, c.unavailable(fmt.Errorf("PCK %s CA CRL: %w", ca, err))
	}
	if info.CA != ca {
		return nil, nil, c.unavailable(fmt.Errorf("%w: asked for the PCK %s CA CRL, got one issued by %q", collateral.ErrMalformed, ca, info.Issuer.CommonName))
	}
	return info, chain, nil
}

// RootCACRL fetches the Intel SGX Root CA CRL from the configured URL or,
// when none is configured, from root's CRL distribution point.
func (c *Client) RootCACRL(ctx context.Context, root *x509.Certificate) (*collateral.CRLInfo, error) {
	u := c.rootCRL
	if u == "" {
		if root == nil || len(root.CRLDistributionPoints) == 0 {
			return nil, c.unavailable(errors.New("root CA CRL: no URL configured and the root certificate names no CRL distribution point"))
		}
		u = root.CRLDistributionPoints[0]
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") {
			return nil, c.unavailable(fmt.Errorf("root CA CRL: distribution point %q is not an http(s) URL", u))
		}
	}
	resp, err := c.fetch(ctx, u)
	if err != nil {
		return nil, c.unavailable(fmt.Errorf("root CA CRL: %w", err))
	}
	info, err := collateral.ParseCRL(resp.body)
	if err != nil {
		return nil, c.unavailable(fmt.Errorf("root CA CRL from %s: %w", u, err))
	}
	if info.CA != collateral.CARoot {
		return nil, c.unavailable(fmt.Errorf("%w: root CA CRL from %s is issued by %q", collateral.ErrMalformed, u, info.Issuer.CommonName))
	}
	return info, nil
}

// Get fetches a whole collateral set: TCB info, QE identity and PCK CRL in
// parallel, then the Root CA CRL (whose URL may come from the PCK CRL chain).
func (c *Client) Get(ctx context.Context, req collateral.Request) (*collateral.Collateral, error) {
	r, err := req.Normalize()
	if err != nil {
		return nil, err
	}
	var (
		wg                  sync.WaitGroup
		tcb, qe             *collateral.SignedDocument
		tcbChain, qeChain   []byte
		pck                 *collateral.CRLInfo
		pckChain            []byte
		tcbErr, qeErr, pErr error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		tcb, tcbChain, tcbErr = c.TCBInfoBaseline(ctx, r.TEE, r.FMSPC, r.TCBEvaluationDataNumber)
	}()
	go func() {
		defer wg.Done()
		qe, qeChain, qeErr = c.QEIdentityBaseline(ctx, r.TEE, r.TCBEvaluationDataNumber)
	}()
	go func() { defer wg.Done(); pck, pckChain, pErr = c.PCKCRL(ctx, r.CA) }()
	wg.Wait()
	if err := errors.Join(tcbErr, qeErr, pErr); err != nil {
		// A 404 for this FMSPC is the answer that matters most.
		if errors.Is(tcbErr, collateral.ErrNotFound) {
			return nil, tcbErr
		}
		if errors.Is(qeErr, collateral.ErrNotFound) && r.TCBEvaluationDataNumber != 0 {
			return nil, qeErr // the baseline's QE identity is not served
		}
		return nil, err
	}
	certs, _ := collateral.ParseCertChain(pckChain) // checked by DecodeIssuerChainHeader
	root, err := c.RootCACRL(ctx, certs[len(certs)-1])
	if err != nil {
		return nil, err
	}
	col := &collateral.Collateral{
		PCKCRLIssuerChain:     pckChain,
		RootCACRL:             root.DER,
		PCKCRL:                pck.DER,
		TCBInfoIssuerChain:    tcbChain,
		TCBInfo:               tcb.Body,
		TCBInfoSignature:      tcb.Signature,
		QEIdentityIssuerChain: qeChain,
		QEIdentity:            qe.Body,
		QEIdentitySignature:   qe.Signature,
	}
	if _, err := col.Inspect(); err != nil {
		return nil, c.unavailable(err)
	}
	return col, nil
}
