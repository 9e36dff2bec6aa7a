package sgx_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// fleet is several fake SGX platforms (one per FMSPC, each under its own
// test root) behind one collateral source that counts its fetches: the
// harness's ways to make bad evidence are platforms whose collateral says
// something bad about them.
type fleet struct {
	mu      sync.Mutex
	coll    map[string]*collateral.Collateral
	fetches atomic.Int64
}

func (f *fleet) Get(ctx context.Context, req collateral.Request) (*collateral.Collateral, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.fetches.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.coll[req.FMSPC]
	if !ok {
		return nil, fmt.Errorf("fleet: FMSPC %s: %w", req.FMSPC, collateral.ErrNotFound)
	}
	return c, nil
}

var conformNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// add mints a platform with FMSPC 00906ED5000<n> whose collateral the fleet serves.
func (f *fleet) add(t testing.TB, n byte, o sgxplatform.Options) *sgxplatform.Platform {
	t.Helper()
	o.Now = conformNow
	o.FMSPC = [6]byte{0x00, 0x90, 0x6e, 0xd5, 0x00, n}
	p, err := sgxplatform.New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.coll[p.FMSPC()] = p.Collateral()
	f.mu.Unlock()
	return p
}

// sgxHarness builds the conformance harness for attestation type typ.
func sgxHarness(t *testing.T, typ evidence.Type) verifiertest.Harness {
	f := &fleet{coll: map[string]*collateral.Collateral{}}
	good := f.add(t, 1, sgxplatform.Options{})
	revoked := f.add(t, 2, sgxplatform.Options{RevokePCK: true})
	expired := f.add(t, 3, sgxplatform.Options{ExpiredCollateral: true})
	noLevel := f.add(t, 4, sgxplatform.Options{NoMatchingTCBLevel: true})
	var mrs [32]byte
	mrs[0] = 0xee
	otherQE := f.add(t, 5, sgxplatform.Options{QEIdentityMRSigner: &mrs})
	foreign, err := sgxplatform.New(sgxplatform.Options{Now: conformNow}) // its root is not trusted
	if err != nil {
		t.Fatal(err)
	}
	var roots []*x509.Certificate
	for _, p := range []*sgxplatform.Platform{good, revoked, expired, noLevel, otherQE} {
		roots = append(roots, p.Roots()...)
	}
	// No clock of its own that could agree with the requests by accident:
	// the verifier's fallback clock is far from conformNow.
	v, err := sgx.NewVerifier(sgx.Options{Collateral: f, Roots: roots, Now: func() time.Time { return conformNow.AddDate(5, 0, 0) },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runtime := []byte(`{"jwk":{"kty":"EC","crv":"P-256"}}`)
	mint := func(t testing.TB, p *sgxplatform.Platform) []byte {
		t.Helper()
		o := sgxplatform.QuoteOptions{MREnclave: sha256.Sum256([]byte("enclave")), ProductID: 3, SVN: 7}
		h := sha256.Sum256(runtime)
		copy(o.ReportData[:], h[:])
		if typ == evidence.OpenEnclave {
			ev, err := p.OEEvidence(o, []abi.CustomClaim{{Name: "runtime", Value: runtime}})
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}
		b, err := p.Quote(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	req := func(ev []byte) *evidence.Request {
		r := &evidence.Request{Type: typ, Evidence: ev, Now: conformNow}
		if typ == evidence.SgxEnclave {
			r.Runtime = &evidence.Data{Bytes: runtime, JSON: true}
		}
		return r
	}
	from := func(p *sgxplatform.Platform) func(t testing.TB) *evidence.Request {
		return func(t testing.TB) *evidence.Request { return req(mint(t, p)) }
	}
	tampered := func(t testing.TB) *evidence.Request {
		ev := mint(t, good)
		// A byte of MRENCLAVE in the signed report body (after the OE
		// headers for OpenEnclave): structure intact, signature broken.
		off := 0
		if typ == evidence.OpenEnclave {
			parsed, err := sgx.Parse(typ, ev)
			if err != nil {
				t.Fatal(err)
			}
			off = indexOf(ev, parsed.QuoteBytes)
		}
		ev[off+48+64] ^= 0x01 // header (48) + CPUSVN..ATTRIBUTES (64) → MRENCLAVE[0]
		return req(ev)
	}
	bad := []verifiertest.Case{
		{Name: "tampered report body", Request: tampered, ParseOK: true, Checks: []evidence.Check{dcap.CheckQuoteSignature}},
		{Name: "untrusted root", Request: from(foreign), ParseOK: true, Checks: []evidence.Check{dcap.CheckPCKChain}},
		{Name: "revoked PCK", Request: from(revoked), ParseOK: true, Checks: []evidence.Check{dcap.CheckPCKRevoked}},
		{Name: "expired collateral", Request: from(expired), ParseOK: true,
			Checks: []evidence.Check{dcap.CheckTCBInfoExpired, dcap.CheckQEIdentityExpired, dcap.CheckRootCRLExpired, dcap.CheckPCKCRLExpired}},
		{Name: "no matching TCB level", Request: from(noLevel), ParseOK: true, Checks: []evidence.Check{dcap.CheckTCBNoLevel}},
		{Name: "QE not the one identified", Request: from(otherQE), ParseOK: true, Checks: []evidence.Check{dcap.CheckQEIdentityMRSigner}},
		{Name: "baseline not served", Request: from(good), ParseOK: true, Properties: map[string]any{sgx.PropertyTCBIdentifier: "9"},
			Checks: []evidence.Check{evidence.CheckTCBBaseline}},
		{Name: "unknown platform", Request: func(t testing.TB) *evidence.Request {
			p, err := sgxplatform.New(sgxplatform.Options{Now: conformNow, FMSPC: [6]byte{0x00, 0x90, 0x6e, 0xd5, 0x00, 0x99}})
			if err != nil {
				t.Fatal(err)
			}
			return req(mint(t, p))
		}, ParseOK: true, Checks: []evidence.Check{dcap.CheckPCKChain, evidence.CheckCollateralUnavailable}},
	}
	if typ == evidence.OpenEnclave {
		bad = append(bad, verifiertest.Case{Name: "custom claims not bound", Checks: []evidence.Check{sgx.CheckOECustomClaimsBinding},
			Request: func(t testing.TB) *evidence.Request {
				ev := mint(t, good)
				ev[len(ev)-1] ^= 0x01 // the last byte of the custom claims buffer
				return req(ev)
			}})
	} else {
		bad = append(bad, verifiertest.Case{Name: "debug bit flipped", ParseOK: true, Checks: []evidence.Check{dcap.CheckQuoteSignature},
			Request: func(t testing.TB) *evidence.Request {
				ev := mint(t, good)
				ev[48+48] ^= 0x02 // ATTRIBUTES.DEBUG, signed
				return req(ev)
			}})
	}
	return verifiertest.Harness{
		Verifier: v,
		Good:     from(good),
		Types:    []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave},
		Expired:  conformNow.Add(31 * 24 * time.Hour),
		ExpiredChecks: []evidence.Check{dcap.CheckTCBInfoExpired, dcap.CheckQEIdentityExpired, dcap.CheckRootCRLExpired,
			dcap.CheckPCKCRLExpired, dcap.CheckPCKChainExpired},
		NotYetValid: conformNow.Add(-2 * time.Hour),
		NotYetValidChecks: []evidence.Check{dcap.CheckTCBInfoNotYetValid, dcap.CheckQEIdentityNotYetValid, dcap.CheckRootCRLNotYetValid,
			dcap.CheckPCKCRLNotYetValid, dcap.CheckPCKChainNotYetValid},
		Bad:     bad,
		Fetches: func() int { return int(f.fetches.Load()) },
	}
}

func indexOf(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	panic("indexOf: not found " + hex.EncodeToString(sub[:8]))
}

// TestConformance runs the verifier conformance suite (issue 8) against the
// SGX verifier for both attestation types it handles.
func TestConformance(t *testing.T) {
	for _, typ := range []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave} {
		t.Run(string(typ), func(t *testing.T) { verifiertest.Run(t, sgxHarness(t, typ)) })
	}
}
