package azureguest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/evidence/azureguest/hcl"
	"github.com/attestd/attestd/evidence/snp"
	snpverify "github.com/attestd/attestd/evidence/snp/verify"
	tpmabi "github.com/attestd/attestd/evidence/tpm/abi"
	tpmverify "github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/internal/testenv"
)

const azsnp = "vectors/trustee-verifier/deps/verifier/test_data/az-snp-vtpm/"
const aztdx = "vectors/trustee-verifier/deps/verifier/test_data/az-tdx-vtpm/"

// vectorTime lies inside the windows of the vectors' VCEKs (2025-01-24/28
// to 2032, SOURCE.md).
var vectorTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// bytesList reads a JSON array of byte values.
func bytesList(t testing.TB, raw json.RawMessage) []byte {
	t.Helper()
	var v []int
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

// realInfo builds the AttestationInfo an Azure CVM client would send from a
// trustee az-snp-vtpm evidence file (which has no TCG log and no AK
// certificate).
func realInfo(t testing.TB, file string) *Evidence {
	t.Helper()
	var doc struct {
		Quote  trusteeQuote    `json:"quote"`
		Report json.RawMessage `json:"report"`
		VCEK   string          `json:"vcek"`
	}
	if err := json.Unmarshal(testenv.ReadShared(t, azsnp+file), &doc); err != nil {
		t.Fatal(err)
	}
	rep, err := hcl.ParseReport(bytesList(t, doc.Report))
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := json.Marshal(map[string]string{
		"SnpReport":     base64.RawURLEncoding.EncodeToString(rep.HWReport),
		"VcekCertChain": base64.RawURLEncoding.EncodeToString([]byte(doc.VCEK)),
	})
	ai := &envelope.AttestationInfo{ProtocolVersion: "2.0", Isolation: envelope.Isolation{Type: envelope.IsolationSevSnp, Proof: proof, RuntimeData: rep.RuntimeData}}
	return doc.Quote.evidence(t, ai)
}

// trusteeQuote is the vTPM quote of a trustee az-*-vtpm evidence file:
// TPMS_ATTEST, signature and PCR values, each a JSON array of bytes.
type trusteeQuote struct {
	Message   json.RawMessage   `json:"message"`
	Signature json.RawMessage   `json:"signature"`
	PCRs      []json.RawMessage `json:"pcrs"`
}

// evidence completes ai with the quote and the PCRs it selects, and
// parses it as a request would arrive.
func (q trusteeQuote) evidence(t testing.TB, ai *envelope.AttestationInfo) *Evidence {
	t.Helper()
	ai.TPM.PcrQuote = bytesList(t, q.Message)
	ai.TPM.PcrSignature = bytesList(t, q.Signature)
	setQuotedPCRs(t, ai, func(i int) []byte { return bytesList(t, q.PCRs[i]) })
	ev, err := parseInfo(ai)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// quoteOf is a mutation that puts the vTPM quote and PCRs of other in
// place of the evidence's own.
func quoteOf(other *Evidence) func(ai *envelope.AttestationInfo) {
	return func(ai *envelope.AttestationInfo) {
		ai.TPM.PcrQuote, ai.TPM.PcrSignature = other.Info.TPM.PcrQuote, other.Info.TPM.PcrSignature
		ai.TPM.PCRs, ai.TPM.PcrSet = other.Info.TPM.PCRs, other.Info.TPM.PcrSet
	}
}

// mutation is one broken link of real evidence and the check it must fail.
type mutation struct {
	name   string
	mutate func(ai *envelope.AttestationInfo)
	want   evidence.Check
}

// runMutations verifies, at the given time, fresh evidence changed by each
// mutation and wants each to fail its named check.
func runMutations(ctx context.Context, t *testing.T, v *Verifier, fresh func(testing.TB) *Evidence, at time.Time, cases []mutation) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := fresh(t)
			c.mutate(ev.Info)
			ev, err := parseInfo(ev.Info)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.VerifyPlatform(ctx, ev, at); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want check %s", err, c.want)
			}
		})
	}
}

// setQuotedPCRs reports the PCRs the quote selects, with values from get.
func setQuotedPCRs(t testing.TB, ai *envelope.AttestationInfo, get func(int) []byte) {
	t.Helper()
	a, err := tpmabi.ParseAttest(ai.TPM.PcrQuote)
	if err != nil {
		t.Fatal(err)
	}
	q, err := a.Attested.Quote()
	if err != nil {
		t.Fatal(err)
	}
	ai.TPM.PCRs, ai.TPM.PcrSet = nil, nil
	for _, sel := range q.PCRSelect.PCRSelections {
		for i := 0; i < 8*len(sel.PCRSelect); i++ {
			if sel.PCRSelect[i/8]&(1<<(i%8)) != 0 {
				ai.TPM.PCRs = append(ai.TPM.PCRs, envelope.PCR{Index: i, Digest: get(i)})
				ai.TPM.PcrSet = append(ai.TPM.PcrSet, i)
			}
		}
	}
}

// parseInfo round-trips ai through the wire encoding and Parse, as a
// request would arrive.
func parseInfo(ai *envelope.AttestationInfo) (*Evidence, error) {
	b, err := envelope.Marshal(ai)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// amdVerifier trusts AMD's roots (embedded) and never fetches.
func amdVerifier(t testing.TB) *Verifier {
	t.Helper()
	sv, err := snp.New(snp.Options{Verify: snpverify.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{SNP: sv})
}

// TestRealAzureSNPVTPM verifies the real Azure CVM evidence hardware → HCL
// runtime → AK → quote, and that each link, broken, fails its named check.
func TestRealAzureSNPVTPM(t *testing.T) {
	v := amdVerifier(t)
	ctx := context.Background()
	for _, f := range []string{"evidence-v0.json", "evidence-genoa.json"} {
		t.Run(f, func(t *testing.T) {
			p, err := v.VerifyPlatform(ctx, realInfo(t, f), vectorTime)
			if err != nil {
				t.Fatal(err)
			}
			if p.Runtime.VMConfig.VMUniqueID == "" || p.Quote.Mask == 0 || p.AKCertValidated {
				t.Fatalf("platform %+v", p)
			}
		})
	}
	genoa := realInfo(t, "evidence-genoa.json")
	fresh := func(t testing.TB) *Evidence { return realInfo(t, "evidence-v0.json") }
	runMutations(ctx, t, v, fresh, vectorTime, []mutation{
		{"swapped quote", quoteOf(genoa), tpmverify.CheckQuoteSignature},
		{"runtime JSON not hashed into REPORT_DATA", func(ai *envelope.AttestationInfo) {
			ai.Isolation.RuntimeData = append([]byte(" "), ai.Isolation.RuntimeData...)
		}, CheckRuntimeBinding},
		{"quote not signed by HCLAkPub", func(ai *envelope.AttestationInfo) {
			q := append([]byte(nil), ai.TPM.PcrQuote...)
			q[len(q)-1] ^= 1 // the quote's pcrDigest, so it still parses
			ai.TPM.PcrQuote = q
		}, tpmverify.CheckQuoteSignature},
		{"PCR values not the quoted ones", func(ai *envelope.AttestationInfo) {
			d := append([]byte(nil), ai.TPM.PCRs[0].Digest...)
			d[0] ^= 1
			ai.TPM.PCRs[0].Digest = d
		}, tpmverify.CheckPCRDigest},
		{"AikPub is not HCLAkPub", func(ai *envelope.AttestationInfo) {
			ai.TPM.AikPub = genoaAKPublic(t, genoa)
		}, CheckAKBinding},
		{"TDX isolation without TDX trust", func(ai *envelope.AttestationInfo) {
			ai.Isolation.Type = envelope.IsolationTdx
			ai.Isolation.Proof = testenv.ReadShared(t, aztdx+"td-quote.bin")
		}, CheckIsolation},
	})
	t.Run("SNP verifier disabled", func(t *testing.T) {
		_, err := New(Options{}).VerifyPlatform(ctx, realInfo(t, "evidence-v0.json"), vectorTime)
		if !errors.Is(err, CheckIsolation) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("after the VCEK expired", func(t *testing.T) {
		_, err := v.VerifyPlatform(ctx, realInfo(t, "evidence-v0.json"), time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC))
		if err == nil || evidence.CheckOf(err) == "" {
			t.Fatalf("got %v, want a named check", err)
		}
	})
}

// genoaAKPublic is the TPMT_PUBLIC of the genoa vector's HCLAkPub (another AK).
func genoaAKPublic(t *testing.T, genoa *Evidence) []byte {
	t.Helper()
	rt, err := hcl.ParseRuntime(genoa.Info.Isolation.RuntimeData)
	if err != nil {
		t.Fatal(err)
	}
	k, err := rt.Key(hcl.KeyAK)
	if err != nil {
		t.Fatal(err)
	}
	return rsaPublicArea(k)
}
