package tpm_test

import (
	"testing"

	"github.com/attestd/attestd/evidence"
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
	c := newConformance(t, 1, 0x1c, "MAA's TPM protocol carries no runtimeData; a v1 request's attest_key is bound only in vbs requests")
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
	tampered := c.quote(editClaim(func(p *abi.PlatformBlob) { p.Quote[len(p.Quote)-1] ^= 1 }))
	otherPCR := c.quote(editClaim(func(p *abi.PlatformBlob) { p.PCRs[7] = make([]byte, 32) }))
	badMagic := c.quote(editClaim(func(p *abi.PlatformBlob) { p.Magic = 0x5344414B }))
	tpm12 := c.quote(editClaim(func(p *abi.PlatformBlob) { p.Platform = abi.PlatformTPM12 }))
	c.run("srtm_boot_log of another boot",
		verifiertest.Case{Name: "tampered quote", ParseOK: true, Checks: []evidence.Check{verify.CheckQuoteSignature}, Request: c.at(tampered, c.challenge)},
		verifiertest.Case{Name: "PCR value the quote does not cover", ParseOK: true, Checks: []evidence.Check{verify.CheckPCRDigest}, Request: c.at(otherPCR, c.challenge)},
		verifiertest.Case{Name: "not a platform claim", ParseOK: true, Checks: []evidence.Check{verify.CheckPlatformClaim}, Request: c.at(badMagic, c.challenge)},
		verifiertest.Case{Name: "TPM 1.2 platform claim", ParseOK: true, Checks: []evidence.Check{verify.CheckUnsupported}, Request: c.at(tpm12, c.challenge)},
	)
}
