package tpm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/evidence/verifiertest"
	"github.com/attestd/attestd/tpmclient"
)

// TestConformanceV1 runs the verifier conformance suite on v1 (attReq)
// requests from a software TPM: the good evidence is a PCP platform claim
// answering the challenge, by an AK whose certificate (the time-bounded
// collateral) chains to a test CA the verifier trusts.
func TestConformanceV1(t *testing.T) {
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
	props := v.ConfigurationDefaults(evidence.Tpm)

	challenge := bytes.Repeat([]byte{0x1c}, tpm.ChallengeSize)
	base := tpmclient.Attester{TPM: tr, AK: ak, AIKCert: conformAKCert(t, root, rootKey, ak.Pub), Log: tpmclient.EncodeLog(events),
		RequestKey: reqKey, RPData: []byte("relying party data"), Protocol: 1}
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
	editClaim := func(f func(p *abi.PlatformBlob)) func(*tpmclient.Attester) {
		return func(a *tpmclient.Attester) {
			a.Mutate = func(e *tpmclient.Evidence) {
				p, err := abi.ParsePlatformBlob(e.Claim)
				if err != nil {
					t.Fatal(err)
				}
				f(p)
				e.Claim = abi.MarshalPlatformBlob(p)
			}
		}
	}
	req := func(msg, state []byte) *evidence.Request {
		return &evidence.Request{Type: evidence.Tpm, Evidence: bytes.Clone(msg), State: bytes.Clone(state), Now: tpmConformNow, Properties: props}
	}
	good := quote(nil)
	otherChallenge := bytes.Clone(challenge)
	otherChallenge[0] ^= 1
	tampered := quote(editClaim(func(p *abi.PlatformBlob) { p.Quote[len(p.Quote)-1] ^= 1 }))
	untrusted := quote(func(a *tpmclient.Attester) { a.AIKCert = conformAKCert(t, foreign, foreignKey, ak.Pub) })
	otherPCR := quote(editClaim(func(p *abi.PlatformBlob) { p.PCRs[7] = make([]byte, 32) }))
	otherLog := quote(func(a *tpmclient.Attester) {
		a.Log = tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, selfSigned(t, "other db")))
	})
	fewPCRs := quote(func(a *tpmclient.Attester) { a.PCRMask = 1 << 7 })
	badMagic := quote(editClaim(func(p *abi.PlatformBlob) { p.Magic = 0x5344414B }))
	tpm12 := quote(editClaim(func(p *abi.PlatformBlob) { p.Platform = abi.PlatformTPM12 }))

	verifiertest.Run(t, verifiertest.Harness{
		Verifier:          v,
		Good:              func(testing.TB) *evidence.Request { return req(good, challenge) },
		Expired:           akCertNotAfter.Add(24 * time.Hour),
		ExpiredChecks:     []evidence.Check{verify.CheckAIKChain},
		NotYetValid:       akCertNotBefore.Add(-24 * time.Hour),
		NotYetValidChecks: []evidence.Check{verify.CheckAIKChain},
		NoRuntimeData:     "MAA's TPM protocol carries no runtimeData; a v1 request's attest_key is bound only in vbs requests",
		Bad: []verifiertest.Case{
			{Name: "tampered quote", ParseOK: true, Checks: []evidence.Check{verify.CheckQuoteSignature},
				Request: func(testing.TB) *evidence.Request { return req(tampered, challenge) }},
			{Name: "AK certificate of an untrusted CA", ParseOK: true, Checks: []evidence.Check{verify.CheckAIKChain},
				Request: func(testing.TB) *evidence.Request { return req(untrusted, challenge) }},
			{Name: "JWS signature flipped", ParseOK: true, Checks: []evidence.Check{verify.CheckRequestSignature},
				Request: func(testing.TB) *evidence.Request { return req(flipSignature(t, good), challenge) }},
			{Name: "answers another challenge", ParseOK: true, Checks: []evidence.Check{verify.CheckChallenge},
				Request: func(testing.TB) *evidence.Request { return req(good, otherChallenge) }},
			{Name: "no challenge opened", Checks: []evidence.Check{verify.CheckChallenge},
				Request: func(testing.TB) *evidence.Request { return req(good, nil) }},
			{Name: "PCR value the quote does not cover", ParseOK: true, Checks: []evidence.Check{verify.CheckPCRDigest},
				Request: func(testing.TB) *evidence.Request { return req(otherPCR, challenge) }},
			{Name: "srtm_boot_log of another boot", ParseOK: true, Checks: []evidence.Check{verify.CheckEventLogReplay},
				Request: func(testing.TB) *evidence.Request { return req(otherLog, challenge) }},
			{Name: "required PCRs not quoted", ParseOK: true, Checks: []evidence.Check{verify.CheckPCRMask},
				Request: func(testing.TB) *evidence.Request { return req(fewPCRs, challenge) }},
			{Name: "not a platform claim", ParseOK: true, Checks: []evidence.Check{verify.CheckPlatformClaim},
				Request: func(testing.TB) *evidence.Request { return req(badMagic, challenge) }},
			{Name: "TPM 1.2 platform claim", ParseOK: true, Checks: []evidence.Check{verify.CheckUnsupported},
				Request: func(testing.TB) *evidence.Request { return req(tpm12, challenge) }},
		},
	})
}
