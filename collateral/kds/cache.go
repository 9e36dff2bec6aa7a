package kds

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/cache"
)

// Cache is a Source caching another one (normally a Client) through the
// generic collateral cache, one cache.Of per document kind, all persisted
// in the same directory when Options.Dir is set:
//
//   - VCEKs by chip and TCB, for good: a chip at a TCB has one VCEK
//     (collateral.Window.Final), so each is fetched once, ever — which is
//     what KDS's hard rate limits call for;
//   - chains by product and signer, refreshed before the earlier NotAfter
//     of ASK/ASVK and ARK;
//   - CRLs by product and signer, refreshed before their nextUpdate.
//
// Failures (a 429 included) are remembered for Options.RetryInterval, so a
// rate-limiting KDS is asked again later, not on every attestation, and the
// error stays collateral.ErrUnavailable: a reason to retry, not a verdict on
// the evidence. Safe for concurrent use.
type Cache struct {
	vceks  *cache.Of[VCEKKey, *x509.Certificate]
	chains *cache.Of[ChainKey, *Chain]
	crls   *cache.Of[ChainKey, *x509.RevocationList]
}

var _ Source = (*Cache)(nil)

// NewCache builds a cache over src. opts.Now is required (see cache.Options).
func NewCache(src Source, opts cache.Options) (*Cache, error) {
	if src == nil {
		return nil, errors.New("kds cache: nil source")
	}
	var c Cache
	var err error
	if c.vceks, err = cache.NewOf(cache.Config[VCEKKey, *x509.Certificate]{Fetch: src.VCEK, Codec: VCEKCodec}, opts); err != nil {
		return nil, err
	}
	if c.chains, err = cache.NewOf(cache.Config[ChainKey, *Chain]{Fetch: src.Chain, Codec: ChainCodec}, opts); err != nil {
		c.vceks.Close()
		return nil, err
	}
	if c.crls, err = cache.NewOf(cache.Config[ChainKey, *x509.RevocationList]{Fetch: src.CRL, Codec: CRLCodec}, opts); err != nil {
		c.vceks.Close()
		c.chains.Close()
		return nil, err
	}
	return &c, nil
}

// Close stops background refreshes and waits for running fetches.
func (c *Cache) Close() error {
	return errors.Join(c.vceks.Close(), c.chains.Close(), c.crls.Close())
}

// VCEK implements Source.
func (c *Cache) VCEK(ctx context.Context, k VCEKKey) (*x509.Certificate, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return c.vceks.Get(ctx, k)
}

// Chain implements Source.
func (c *Cache) Chain(ctx context.Context, k ChainKey) (*Chain, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return c.chains.Get(ctx, k)
}

// CRL implements Source.
func (c *Cache) CRL(ctx context.Context, k ChainKey) (*x509.RevocationList, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return c.crls.Get(ctx, k)
}

// Fallback returns a Source that asks primary and, when primary fails for
// any reason but the caller's context ending, secondary (a KDS cache with an
// offline bundle behind it). If both fail the error wraps both.
func Fallback(primary, secondary Source) Source { return fallback{primary, secondary} }

type fallback struct{ primary, secondary Source }

func either[K any, D any](ctx context.Context, k K, a, b func(context.Context, K) (D, error)) (D, error) {
	d, err := a(ctx, k)
	if err == nil || ctx.Err() != nil {
		return d, err
	}
	d, err2 := b(ctx, k)
	if err2 == nil {
		return d, nil
	}
	var zero D
	return zero, errors.Join(err, err2)
}

func (f fallback) VCEK(ctx context.Context, k VCEKKey) (*x509.Certificate, error) {
	return either(ctx, k, f.primary.VCEK, f.secondary.VCEK)
}

func (f fallback) Chain(ctx context.Context, k ChainKey) (*Chain, error) {
	return either(ctx, k, f.primary.Chain, f.secondary.Chain)
}

func (f fallback) CRL(ctx context.Context, k ChainKey) (*x509.RevocationList, error) {
	return either(ctx, k, f.primary.CRL, f.secondary.CRL)
}

// Compile-time checks that the codecs fit the generic cache.
var _ collateral.Codec[VCEKKey, *x509.Certificate] = VCEKCodec
