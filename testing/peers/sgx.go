package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/evidence/sgx/verify"
	"github.com/attestd/attestd/testing/cputime"
)

// attestdSGX is attestd's SGX DCAP verifier (evidence/sgx/verify) called
// in-process on one quote with its collateral at a fixed instant.
//
// Cold gives every verification a fresh Verifier: the PCK chain, both CRLs
// and the TCB info and QE identity signatures are verified again each time,
// the work a stateless verifier such as dcap-qvl does per call. Warm reuses
// one Verifier, as the server does: after the first quote of a platform
// only the quote is parsed and its two ECDSA signatures, the QE report
// binding, TCB level and QE identity matching are checked.
type attestdSGX struct {
	quote []byte
	coll  *collateral.Collateral
	at    time.Time
	roots []*x509.Certificate
	cold  bool
	warm  *verify.Verifier
}

func newAttestdSGX(quote []byte, coll *collateral.Collateral, at time.Time, cold bool) (*attestdSGX, error) {
	a := &attestdSGX{quote: quote, coll: coll, at: at, roots: verify.DefaultRoots(), cold: cold}
	if !cold {
		v, err := a.verifier()
		if err != nil {
			return nil, err
		}
		a.warm = v
	}
	return a, nil
}

func (a *attestdSGX) Name() string {
	if a.cold {
		return "attestd verify (cold: fresh verifier)"
	}
	return "attestd verify (warm: server's caches)"
}

func (a *attestdSGX) verifier() (*verify.Verifier, error) {
	at := a.at
	return verify.New(verify.Options{Roots: a.roots, Now: func() time.Time { return at }})
}

func (a *attestdSGX) once() (*verify.Result, error) {
	v := a.warm
	if a.cold {
		var err error
		if v, err = a.verifier(); err != nil {
			return nil, err
		}
	}
	q, err := abi.ParseQuote(a.quote)
	if err != nil {
		return nil, fmt.Errorf("parse quote: %w", err)
	}
	return v.Verify(a.quote, q, a.coll)
}

func (a *attestdSGX) Outcome(ctx context.Context) (Outcome, error) {
	if err := ctx.Err(); err != nil {
		return Outcome{}, err
	}
	res, err := a.once()
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Status: string(res.Status), Advisories: res.AdvisoryIDs}, nil
}

func (a *attestdSGX) Batch(ctx context.Context, n int) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return cputime.Measure(n, func() error {
		_, err := a.once()
		return err
	})
}

func (a *attestdSGX) Close() error { return nil }
