package kds

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
)

// AMDKDSURL is AMD's Key Distribution Service.
const AMDKDSURL = "https://kdsintf.amd.com"

// Defaults for ClientConfig's zero values.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxBytes = 1 << 20 // a VCEK is ~1.3 kB, a chain ~3 kB, a CRL a few kB
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the KDS or a mirror serving its paths. Empty: AMDKDSURL.
	BaseURL string
	// HTTPClient makes the requests. Nil: a client with only Timeout.
	HTTPClient *http.Client
	// Timeout bounds each request. Zero: DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds each response body. Zero: DefaultMaxBytes.
	MaxBytes int64
	// Logger gets one debug line per request. Nil: none.
	Logger *slog.Logger
}

// Client fetches KDS documents over HTTP. It keeps no state between calls:
// put a Cache in front of it, KDS limits request rates hard. Safe for
// concurrent use.
type Client struct {
	base     *url.URL
	http     *http.Client
	timeout  time.Duration
	maxBytes int64
	log      *slog.Logger
}

var _ Source = (*Client)(nil)

// NewClient validates cfg and builds a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = AMDKDSURL
	}
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("kds: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Timeout < 0 || cfg.MaxBytes < 0 {
		return nil, errors.New("kds: negative timeout or size limit")
	}
	c := &Client{base: u, http: cfg.HTTPClient, timeout: cfg.Timeout, maxBytes: cfg.MaxBytes, log: cfg.Logger}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func (c *Client) source() string { return "kds " + c.base.String() }

// VCEKURL is the KDS URL of k's VCEK. The hardware ID is hex in lower case.
func (c *Client) VCEKURL(k VCEKKey) string {
	q := fmt.Sprintf("blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d", k.TCB.Bootloader, k.TCB.TEE, k.TCB.SNP, k.TCB.Microcode)
	if k.Product == Turin {
		q = fmt.Sprintf("fmcSPL=%d&", k.TCB.FMC) + q
	}
	return fmt.Sprintf("%s/vcek/v1/%s/%s?%s", c.base, k.Product, k.HWID, q)
}

// ChainURL is the KDS URL of k's certificate chain.
func (c *Client) ChainURL(k ChainKey) string {
	return fmt.Sprintf("%s/%s/v1/%s/cert_chain", c.base, k.Signer, k.Product)
}

// CRLURL is the KDS URL of k's CRL.
func (c *Client) CRLURL(k ChainKey) string {
	return fmt.Sprintf("%s/%s/v1/%s/crl", c.base, k.Signer, k.Product)
}

// VCEK fetches the VCEK of k. KDS answers 404 (or 400) for a chip or TCB it
// does not know: ErrNotFound.
func (c *Client) VCEK(ctx context.Context, k VCEKKey) (*x509.Certificate, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	b, err := c.get(ctx, c.VCEKURL(k), k.String())
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, c.unusable(k.String(), fmt.Errorf("%w: VCEK is not a DER certificate: %v", collateral.ErrMalformed, err))
	}
	if err := CheckVCEK(k, cert); err != nil {
		return nil, c.unusable(k.String(), err)
	}
	return cert, nil
}

// Chain fetches k's ASK (or ASVK) and ARK.
func (c *Client) Chain(ctx context.Context, k ChainKey) (*Chain, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	b, err := c.get(ctx, c.ChainURL(k), k.String()+" chain")
	if err != nil {
		return nil, err
	}
	ch, err := ParseChain(b)
	if err == nil {
		err = CheckChain(k, ch)
	}
	if err != nil {
		return nil, c.unusable(k.String()+" chain", err)
	}
	return ch, nil
}

// CRL fetches k's CRL.
func (c *Client) CRL(ctx context.Context, k ChainKey) (*x509.RevocationList, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	b, err := c.get(ctx, c.CRLURL(k), k.String()+" CRL")
	if err != nil {
		return nil, err
	}
	l, err := ParseCRL(b)
	if err == nil {
		err = CheckCRL(k, l)
	}
	if err != nil {
		return nil, c.unusable(k.String()+" CRL", err)
	}
	return l, nil
}

// unusable: a 200 answer that is not the document asked for is both
// malformed (errors.Is ErrMalformed) and a reason to try again later or
// elsewhere (ErrUnavailable), as for PCS.
func (c *Client) unusable(what string, err error) error {
	return &collateral.UnavailableError{Source: c.source(), Err: fmt.Errorf("%s: %w", what, err)}
}

// get GETs u and classifies failures: the caller's context ending is its
// error; 404 and 400 are ErrNotFound; 429, 5xx, other statuses and
// transport errors are *collateral.UnavailableError with the status and
// Retry-After.
func (c *Client) get(ctx context.Context, u, what string) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("kds: %w", err)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("kds: %s: %w", what, ctx.Err())
		}
		return nil, &collateral.UnavailableError{Source: c.source(), Err: fmt.Errorf("%s: GET %s: %w", what, u, err)}
	}
	defer resp.Body.Close()
	body, readErr := readLimited(resp.Body, c.maxBytes)
	c.log.DebugContext(ctx, "kds request", "url", u, "status", resp.StatusCode, "bytes", len(body), "elapsed", time.Since(start))
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
		return nil, fmt.Errorf("%s: %w: KDS has no %s (HTTP %d)", c.source(), collateral.ErrNotFound, what, resp.StatusCode)
	default:
		ue := &collateral.UnavailableError{Source: c.source(), Status: resp.StatusCode,
			Err: fmt.Errorf("%s: GET %s: HTTP %d", what, u, resp.StatusCode)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ue.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, ue
	}
	if readErr != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("kds: %s: %w", what, ctx.Err())
		}
		return nil, &collateral.UnavailableError{Source: c.source(), Err: fmt.Errorf("%s: %w", what, readErr)}
	}
	return body, nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading response body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response body exceeds the %d-byte limit", limit)
	}
	return b, nil
}
