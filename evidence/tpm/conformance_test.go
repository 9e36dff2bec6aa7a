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

// conformance is the set-up both swtpm conformance runs share: a software
// TPM with a measured boot, an AK certified by a trusted test CA (and a
// foreign CA beside it), a request key, the verifier with its default
// properties (require_valid_aik_cert true), and request builders for one
// protocol version. Each request is quoted once and handed out as copies,
// so the suite's many calls cost no TPM round trips.
type conformance struct {
	t                   *testing.T
	v                   *tpm.Verifier
	props               map[string]any
	challenge           []byte
	base                tpmclient.Attester
	ak                  *tpmclient.Key
	foreign             *x509.Certificate
	foreignKey          crypto.Signer
	good                []byte
	noRuntimeDataReason string
}

func newConformance(t *testing.T, protocol int, challengeByte byte, noRuntimeData string) *conformance {
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
	c := &conformance{t: t, v: v, props: v.ConfigurationDefaults(evidence.Tpm),
		challenge: bytes.Repeat([]byte{challengeByte}, tpm.ChallengeSize), ak: ak, foreign: foreign, foreignKey: foreignKey,
		base: tpmclient.Attester{TPM: tr, AK: ak, AIKCert: conformAKCert(t, root, rootKey, ak.Pub), Log: tpmclient.EncodeLog(events),
			RequestKey: reqKey, RPData: []byte("relying party data"), Protocol: protocol},
		noRuntimeDataReason: noRuntimeData}
	c.good = c.quote(nil)
	return c
}

// quote answers the challenge with a copy of the base attester changed by edit.
func (c *conformance) quote(edit func(*tpmclient.Attester)) []byte {
	c.t.Helper()
	a := c.base
	if edit != nil {
		edit(&a)
	}
	msg, err := a.TpmRequest(context.Background(), c.challenge, "sealed service context")
	if err != nil {
		c.t.Fatal(err)
	}
	return msg
}

// at is the request of msg with state as its opened service context.
func (c *conformance) at(msg, state []byte) func(testing.TB) *evidence.Request {
	return func(testing.TB) *evidence.Request {
		return &evidence.Request{Type: evidence.Tpm, Evidence: bytes.Clone(msg), State: bytes.Clone(state), Now: tpmConformNow, Properties: c.props}
	}
}

// run runs the suite with the cases every protocol shares (the AK
// certificate as the time-bounded collateral, an untrusted CA, the JWS,
// the challenge, a log of another boot, too few PCRs) and bad.
func (c *conformance) run(logCase string, bad ...verifiertest.Case) {
	t := c.t
	otherChallenge := bytes.Clone(c.challenge)
	otherChallenge[0] ^= 1
	untrusted := c.quote(func(a *tpmclient.Attester) { a.AIKCert = conformAKCert(t, c.foreign, c.foreignKey, c.ak.Pub) })
	otherLog := c.quote(func(a *tpmclient.Attester) {
		a.Log = tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, selfSigned(t, "other db")))
	})
	fewPCRs := c.quote(func(a *tpmclient.Attester) { a.PCRMask = 1 << 7 })
	shared := []verifiertest.Case{
		{Name: "AK certificate of an untrusted CA", ParseOK: true, Checks: []evidence.Check{verify.CheckAIKChain}, Request: c.at(untrusted, c.challenge)},
		{Name: "JWS signature flipped", ParseOK: true, Checks: []evidence.Check{verify.CheckRequestSignature}, Request: c.at(flipSignature(t, c.good), c.challenge)},
		{Name: "answers another challenge", ParseOK: true, Checks: []evidence.Check{verify.CheckChallenge}, Request: c.at(c.good, otherChallenge)},
		{Name: "no challenge opened", Checks: []evidence.Check{verify.CheckChallenge}, Request: c.at(c.good, nil)},
		{Name: logCase, ParseOK: true, Checks: []evidence.Check{verify.CheckEventLogReplay}, Request: c.at(otherLog, c.challenge)},
		{Name: "required PCRs not quoted", ParseOK: true, Checks: []evidence.Check{verify.CheckPCRMask}, Request: c.at(fewPCRs, c.challenge)},
	}
	verifiertest.Run(t, verifiertest.Harness{
		Verifier:          c.v,
		Good:              c.at(c.good, c.challenge),
		Expired:           akCertNotAfter.Add(24 * time.Hour),
		ExpiredChecks:     []evidence.Check{verify.CheckAIKChain},
		NotYetValid:       akCertNotBefore.Add(-24 * time.Hour),
		NotYetValidChecks: []evidence.Check{verify.CheckAIKChain},
		NoRuntimeData:     c.noRuntimeDataReason,
		Bad:               append(shared, bad...),
	})
}

// TestConformance runs the verifier conformance suite (evidence/verifiertest,
// issue 8) against the Tpm verifier with a software TPM: the good evidence
// is a v2 request round answering a challenge, quoted by an AK whose
// certificate chains to a test CA the verifier trusts. The request carries
// its opened State (the challenge), as the pipeline passes it after
// unsealing the service_context. The AK certificate is the time-bounded
// collateral: the suite's instants outside its validity must be refused at
// tpm.aik.chain.
func TestConformance(t *testing.T) {
	c := newConformance(t, 0, 0xc4, "MAA's TPM protocol carries no runtimeData: the request key is bound by the quote and attested as cnf")
	tamperedQuote := c.quote(func(a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) { e.Quote.Attest[len(e.Quote.Attest)-1] ^= 1 } // inside the signed TPMS_ATTEST
	})
	otherPCR := c.quote(func(a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) {
			d := bytes.Clone(e.Quote.PCRs[7])
			d[0] ^= 1
			e.Quote.PCRs[7] = d // not what the quote's pcrDigest covers
		}
	})
	c.run("event log of another boot",
		verifiertest.Case{Name: "tampered quote", ParseOK: true, Checks: []evidence.Check{verify.CheckQuoteSignature}, Request: c.at(tamperedQuote, c.challenge)},
		verifiertest.Case{Name: "PCR value the quote does not cover", ParseOK: true, Checks: []evidence.Check{verify.CheckPCRDigest}, Request: c.at(otherPCR, c.challenge)},
	)
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
