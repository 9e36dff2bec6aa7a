package snp_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-sev-guest/kds"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp"
	"github.com/attestd/attestd/evidence/snp/verify"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/testing/snpplatform"
)

// vcekSource serves the fake platforms' VCEKs by chip ID, counting fetches
// (what AMD KDS is to a real verifier).
type vcekSource struct {
	vceks   map[[64]byte][]byte
	fetches atomic.Int64
}

func (s *vcekSource) VCEK(ctx context.Context, req verify.EndorsementRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.fetches.Add(1)
	if der, ok := s.vceks[[64]byte(req.ChipID)]; ok {
		return der, nil
	}
	return nil, errors.New("vcekSource: no VCEK for this chip")
}

var snpConformNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// TestConformance runs the verifier conformance suite (issue 8) against the
// SEV-SNP verifier: good evidence is a v3 report of the test platform sent
// without its VCEK, which the verifier fetches from a counting source.
func TestConformance(t *testing.T) {
	p, roots := platform(t) // chain created 2024-01-01, VCEK valid 7 years
	src := &vcekSource{vceks: map[[64]byte][]byte{p.ChipID: p.VCEK()}}
	v, err := snp.New(snp.Options{Verify: verify.Options{Roots: []verify.ProductRoots{roots}, Endorsements: src}})
	if err != nil {
		t.Fatal(err)
	}
	runtime := []byte(`{"keys":[{"kid":"HCLTransferKey","kty":"RSA"}]}`)
	var meas [48]byte
	meas[0] = 0x42
	sign := func(t testing.TB, p *snpplatform.Platform, r snpplatform.Report) []byte {
		t.Helper()
		if r.Version == 0 {
			r.Version = 3
		}
		r.ReportData, r.Measurement = sum(runtime), meas
		raw, err := p.Sign(r)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	req := func(body []byte) *evidence.Request {
		return &evidence.Request{Type: evidence.SevSnpVm, Evidence: body, Now: snpConformNow,
			Runtime: &evidence.Data{Bytes: runtime, JSON: true}}
	}
	good := func(t testing.TB) *evidence.Request {
		return req(snpplatform.MAAReport(sign(t, p, snpplatform.Report{}), nil, nil))
	}
	other, err := snpplatform.New(snpplatform.Options{ChipID: [64]byte{0xc0, 0xff, 0xee}})
	if err != nil {
		t.Fatal(err)
	}
	genoa, err := snpplatform.New(snpplatform.Options{ProductName: "Genoa-B1"})
	if err != nil {
		t.Fatal(err)
	}
	older := kds.TCBParts{BlSpl: 2, TeeSpl: 0, SnpSpl: 8, UcodeSpl: 115}
	bad := []verifiertest.Case{
		{Name: "tampered report", ParseOK: true, Checks: []evidence.Check{verify.CheckSignature}, Request: func(t testing.TB) *evidence.Request {
			raw := sign(t, p, snpplatform.Report{})
			raw[0x90] ^= 1 // MEASUREMENT, signed
			return req(snpplatform.MAAReport(raw, nil, nil))
		}},
		{Name: "another chip's VCEK", ParseOK: true, Checks: []evidence.Check{verify.CheckChipID, verify.CheckSignature}, Request: func(t testing.TB) *evidence.Request {
			return req(snpplatform.MAAReport(sign(t, p, snpplatform.Report{}), other.ChainPEM(false), nil))
		}},
		{Name: "chip without a VCEK", ParseOK: true, Checks: []evidence.Check{verify.CheckEndorsementMissing}, Request: func(t testing.TB) *evidence.Request {
			return req(snpplatform.MAAReport(sign(t, other, snpplatform.Report{}), nil, nil))
		}},
		{Name: "untrusted product root", ParseOK: true, Checks: []evidence.Check{verify.CheckEndorsementChain, verify.CheckProduct}, Request: func(t testing.TB) *evidence.Request {
			return req(snpplatform.MAAReport(sign(t, genoa, snpplatform.Report{}), genoa.ChainPEM(false), nil))
		}},
		{Name: "REPORTED_TCB not the VCEK's", ParseOK: true, Checks: []evidence.Check{verify.CheckTCB}, Request: func(t testing.TB) *evidence.Request {
			return req(snpplatform.MAAReport(sign(t, p, snpplatform.Report{TCB: &older}), p.ChainPEM(false), nil))
		}},
		{Name: "VLEK-signed without a VLEK", ParseOK: true, Checks: []evidence.Check{verify.CheckEndorsementMissing}, Request: func(t testing.TB) *evidence.Request {
			return req(snpplatform.MAAReport(sign(t, p, snpplatform.Report{VLEK: true}), nil, nil))
		}},
		{Name: "runtime data of another report", ParseOK: true, Checks: []evidence.Check{verify.CheckSignature}, Request: func(t testing.TB) *evidence.Request {
			raw := sign(t, p, snpplatform.Report{})
			copy(raw[0x50:0x90], bytes.Repeat([]byte{0xab}, 64)) // REPORT_DATA, signed
			return req(snpplatform.MAAReport(raw, nil, nil))
		}},
	}
	verifiertest.Run(t, verifiertest.Harness{
		Verifier:          v,
		Good:              good,
		Expired:           time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC),
		ExpiredChecks:     []evidence.Check{verify.CheckEndorsementExpired},
		NotYetValid:       time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC),
		NotYetValidChecks: []evidence.Check{verify.CheckEndorsementNotYetValid},
		Bad:               bad,
		Fetches:           func() int { return int(src.fetches.Load()) },
	})
}

// TestZeroInstantRefused: a caller that forgets Request.Now is refused at
// evidence.now instead of being verified at a guessed instant.
func TestZeroInstantRefused(t *testing.T) {
	p, roots := platform(t)
	v, err := snp.New(snp.Options{Verify: verify.Options{Roots: []verify.ProductRoots{roots}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Sign(snpplatform.Report{Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	body := snpplatform.MAAReport(raw, p.ChainPEM(false), nil)
	_, err = evidence.Verify(context.Background(), v, &evidence.Request{Type: evidence.SevSnpVm, Evidence: body})
	if !errors.Is(err, evidence.CheckVerificationTime) {
		t.Fatalf("zero Now: %v, want check %s", err, evidence.CheckVerificationTime)
	}
	if _, err := evidence.Verify(context.Background(), v, &evidence.Request{Type: evidence.SevSnpVm, Evidence: body, Now: snpConformNow}); err != nil {
		t.Fatal(err)
	}
}
