package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/tpmclient"
)

// tpmConformNow is the instant the conformance evidence is judged at; the
// AK certificate is valid 2026-01-01…2027-01-01 and its CA 2025…2030, so
// the suite's expired and not-yet-valid instants fall outside the AK
// certificate only.
var (
	tpmConformNow   = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	akCertNotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	akCertNotAfter  = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

// conformCA is a test AK CA valid 2025…2030.
func conformCA(t testing.TB) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	return newCA(t, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
}

// conformAKCert issues the AK's certificate, valid akCertNotBefore…akCertNotAfter.
func conformAKCert(t testing.TB, ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey) []byte {
	t.Helper()
	return issueAKCert(t, ca, caKey, pub, akCertNotBefore, akCertNotAfter)
}

// TestConformance runs the verifier conformance suite (evidence/verifiertest,
// issue 8) against the Tpm verifier with a software TPM: the good evidence
// is a request round answering a challenge, quoted by an AK whose
// certificate chains to a test CA the verifier trusts. The request carries
// its opened State (the challenge), as the pipeline passes it after
// unsealing the service_context. The AK certificate is the time-bounded
// collateral: the suite's instants outside its validity must be refused at
// tpm.aik.chain. Each request is quoted once and handed out as copies, so
// the suite's many calls cost no TPM round trips.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	tr, events, ak := measuredTPM(ctx, t, selfSigned(t, "test db"))
	root, rootKey := conformCA(t)
	foreign, foreignKey := conformCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	reqKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v := tpm.NewVerifier(tpm.Options{Verify: verify.Options{Roots: pool}})
	props := v.ConfigurationDefaults(evidence.Tpm) // require_valid_aik_cert true

	challenge := bytes.Repeat([]byte{0xc4}, tpm.ChallengeSize)
	base := tpmclient.Attester{TPM: tr, AK: ak, AIKCert: conformAKCert(t, root, rootKey, ak.Pub), Log: tpmclient.EncodeLog(events),
		RequestKey: reqKey, RPData: []byte("relying party data")}
	// quote answers the challenge with a copy of base changed by edit.
	quote := func(edit func(*tpmclient.Attester)) []byte {
		t.Helper()
		a := base
		if edit != nil {
			edit(&a)
		}
		msg, err := a.TpmRequest(ctx, challenge, "sealed service context")
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	req := func(msg, state []byte) *evidence.Request {
		return &evidence.Request{Type: evidence.Tpm, Evidence: bytes.Clone(msg), State: bytes.Clone(state), Now: tpmConformNow, Properties: props}
	}
	good := quote(nil)
	otherChallenge := bytes.Clone(challenge)
	otherChallenge[0] ^= 1
	tamperedQuote := quote(func(a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) { e.Quote.Attest[len(e.Quote.Attest)-1] ^= 1 } // inside the signed TPMS_ATTEST
	})
	untrusted := quote(func(a *tpmclient.Attester) { a.AIKCert = conformAKCert(t, foreign, foreignKey, ak.Pub) })
	otherPCR := quote(func(a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) {
			d := bytes.Clone(e.Quote.PCRs[7])
			d[0] ^= 1
			e.Quote.PCRs[7] = d // not what the quote's pcrDigest covers
		}
	})
	otherLog := quote(func(a *tpmclient.Attester) {
		a.Log = tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, selfSigned(t, "other db")))
	})
	fewPCRs := quote(func(a *tpmclient.Attester) { a.PCRMask = 1 << 7 })
	wrongSigner := flipSignature(t, good)

	verifiertest.Run(t, verifiertest.Harness{
		Verifier:          v,
		Good:              func(testing.TB) *evidence.Request { return req(good, challenge) },
		Expired:           akCertNotAfter.Add(24 * time.Hour),
		ExpiredChecks:     []evidence.Check{verify.CheckAIKChain},
		NotYetValid:       akCertNotBefore.Add(-24 * time.Hour),
		NotYetValidChecks: []evidence.Check{verify.CheckAIKChain},
		NoRuntimeData:     "MAA's TPM protocol carries no runtimeData: the request key is bound by the quote and attested as cnf",
		Bad: []verifiertest.Case{
			{Name: "tampered quote", ParseOK: true, Checks: []evidence.Check{verify.CheckQuoteSignature},
				Request: func(testing.TB) *evidence.Request { return req(tamperedQuote, challenge) }},
			{Name: "AK certificate of an untrusted CA", ParseOK: true, Checks: []evidence.Check{verify.CheckAIKChain},
				Request: func(testing.TB) *evidence.Request { return req(untrusted, challenge) }},
			{Name: "JWS signature flipped", ParseOK: true, Checks: []evidence.Check{verify.CheckRequestSignature},
				Request: func(testing.TB) *evidence.Request { return req(wrongSigner, challenge) }},
			{Name: "answers another challenge", ParseOK: true, Checks: []evidence.Check{verify.CheckChallenge},
				Request: func(testing.TB) *evidence.Request { return req(good, otherChallenge) }},
			{Name: "no challenge opened", Checks: []evidence.Check{verify.CheckChallenge},
				Request: func(testing.TB) *evidence.Request { return req(good, nil) }},
			{Name: "PCR value the quote does not cover", ParseOK: true, Checks: []evidence.Check{verify.CheckPCRDigest},
				Request: func(testing.TB) *evidence.Request { return req(otherPCR, challenge) }},
			{Name: "event log of another boot", ParseOK: true, Checks: []evidence.Check{verify.CheckEventLogReplay},
				Request: func(testing.TB) *evidence.Request { return req(otherLog, challenge) }},
			{Name: "required PCRs not quoted", ParseOK: true, Checks: []evidence.Check{verify.CheckPCRMask},
				Request: func(testing.TB) *evidence.Request { return req(fewPCRs, challenge) }},
		},
	})
}

// TestZeroInstantRefused: a caller that forgets Request.Now is refused at
// evidence.now, even when the AK is a configured key whose trust needs no
// clock (the stored swtpm request), instead of being verified at a guessed
// instant or failing later as an untrusted AIK.
func TestZeroInstantRefused(t *testing.T) {
	msg, challenge, ak := seedRequest(t)
	v := tpm.NewVerifier(tpm.Options{Verify: verify.Options{TrustedAKs: []crypto.PublicKey{ak}}})
	props := v.ConfigurationDefaults(evidence.Tpm)
	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{{"zero", time.Time{}, false}, {"set", tpmConformNow, true}} {
		req := &evidence.Request{Type: evidence.Tpm, Evidence: msg, State: challenge, Now: tc.at}
		p, err := v.Parse(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: Parse: %v", tc.name, err)
		}
		_, err = p.Verify(context.Background(), props)
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, evidence.CheckVerificationTime) {
			t.Fatalf("%s Now: %v, want ok %v or check %s", tc.name, err, tc.ok, evidence.CheckVerificationTime)
		}
	}
}

// TestConformanceSeed runs the suite on the stored swtpm request
// (testdata/request.json), so the Tpm verifier is held to it where no
// swtpm is installed. Its AK is sent as aik_pub without a certificate and
// trusted as a configured key: nothing in it is time-bounded (NoClock).
func TestConformanceSeed(t *testing.T) {
	msg, challenge, ak := seedRequest(t)
	v := tpm.NewVerifier(tpm.Options{Verify: verify.Options{TrustedAKs: []crypto.PublicKey{ak}}})
	props := v.ConfigurationDefaults(evidence.Tpm)
	req := func(msg, state []byte) *evidence.Request {
		return &evidence.Request{Type: evidence.Tpm, Evidence: bytes.Clone(msg), State: bytes.Clone(state), Now: tpmConformNow, Properties: props}
	}
	otherChallenge := bytes.Clone(challenge)
	otherChallenge[len(otherChallenge)-1] ^= 1
	flipped := flipSignature(t, msg)
	verifiertest.Run(t, verifiertest.Harness{
		Verifier:      v,
		Good:          func(testing.TB) *evidence.Request { return req(msg, challenge) },
		NoClock:       "the AK is a configured trusted key and the request carries no certificate",
		NoRuntimeData: "MAA's TPM protocol carries no runtimeData: the request key is bound by the quote and attested as cnf",
		Bad: []verifiertest.Case{
			{Name: "JWS signature flipped", ParseOK: true, Checks: []evidence.Check{verify.CheckRequestSignature},
				Request: func(testing.TB) *evidence.Request { return req(flipped, challenge) }},
			{Name: "answers another challenge", ParseOK: true, Checks: []evidence.Check{verify.CheckChallenge},
				Request: func(testing.TB) *evidence.Request { return req(msg, otherChallenge) }},
			{Name: "no challenge opened", Checks: []evidence.Check{verify.CheckChallenge},
				Request: func(testing.TB) *evidence.Request { return req(msg, nil) }},
			{Name: "report lifetime over a year", ParseOK: true, Checks: []evidence.Check{verify.CheckOptions},
				Properties: map[string]any{"report_validity_in_minutes": int64(tpm.MaxReportValidityMinutes + 1)},
				Request:    func(testing.TB) *evidence.Request { return req(msg, challenge) }},
			{Name: "required_pcr_mask not an integer", ParseOK: true, Checks: []evidence.Check{verify.CheckOptions},
				Properties: map[string]any{"required_pcr_mask": "all"},
				Request:    func(testing.TB) *evidence.Request { return req(msg, challenge) }},
		},
	})
}
