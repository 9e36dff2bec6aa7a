package verify

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/tpmclient"
)

// v1Fixture re-signs the stored swtpm claim with a software AIK so that a
// test can change signed fields (clockInfo, qualifyingData) the TPM chose,
// and builds v1 requests around the result.
type v1Fixture struct {
	t     testing.TB
	blob  []byte // the stored claim, signed by the swtpm AK
	nonce []byte // the challenge it quotes
	aik   *rsa.PrivateKey
	att   *rsa.PrivateKey // attest_key
}

func newV1Fixture(t testing.TB) *v1Fixture {
	t.Helper()
	blob, _, nonce := platformVector(t)
	f := &v1Fixture{t: t, blob: blob, nonce: nonce}
	var err error
	if f.aik, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.att, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	return f
}

// claim is the stored claim with edit applied to its TPMS_ATTEST and to
// the blob, re-signed (RSASSA-SHA256, the stored quote's hash) by f.aik.
func (f *v1Fixture) claim(editAttest func(a *tpm2.TPMSAttest), editBlob func(p *abi.PlatformBlob)) []byte {
	f.t.Helper()
	p, err := abi.ParsePlatformBlob(f.blob)
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := abi.ParseAttest(p.Quote)
	if err != nil {
		f.t.Fatal(err)
	}
	if editAttest != nil {
		editAttest(a)
	}
	p.Quote = tpm2.Marshal(a)
	sum := sha256.Sum256(p.Quote)
	if p.Signature, err = rsa.SignPKCS1v15(rand.Reader, f.aik, crypto.SHA256, sum[:]); err != nil {
		f.t.Fatal(err)
	}
	if editBlob != nil {
		editBlob(p)
	}
	return abi.MarshalPlatformBlob(p)
}

// request is a basic v1 request answering f.nonce whose JWS is signed by
// f.att; tpm_att_data is v1.
func (f *v1Fixture) request(v1 *abi.TPMAttDataV1) *abi.Request {
	f.t.Helper()
	in := []byte("header.payload")
	sum := sha256.Sum256(in)
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.att, crypto.SHA256, sum[:])
	if err != nil {
		f.t.Fatal(err)
	}
	v1.AIKPub = &abi.JWK{Key: &f.aik.PublicKey, KeyTyp: "RSA"}
	return &abi.Request{Version: 1, Alg: "RS256", SigningInput: in, Signature: sig, AttType: abi.AttTypeBasic,
		Data: abi.AttData{Challenge: f.nonce, SigningKey: &abi.Key{JWK: abi.JWK{Key: &f.att.PublicKey, KeyTyp: "RSA", Raw: []byte(`{}`)}},
			TPM: abi.TPMAttData{V1: v1}}}
}

func (f *v1Fixture) options() Options {
	return Options{TrustedAKs: []crypto.PublicKey{&f.aik.PublicKey}}
}

// dropPCR is log without the events of PCR i (the client's own filter,
// as TpmAttiFilterLog would produce with i left out of the mask).
func dropPCR(t testing.TB, log []byte, i int) []byte {
	t.Helper()
	out, err := tpmclient.FilterLog(log, tpmclient.AllPCRs&^(1<<i))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withPCR is the stored claim with PCR i (of its SHA-256 bank, all 24
// quoted) set to v, the quote's pcrDigest recomputed and re-signed: what
// a TPM in that state would sign.
func (f *v1Fixture) withPCR(i int, v []byte, more ...func(p *abi.PlatformBlob)) []byte {
	f.t.Helper()
	p, err := abi.ParsePlatformBlob(f.blob)
	if err != nil {
		f.t.Fatal(err)
	}
	p.PCRs[i] = v
	d := sha256.New()
	for _, pcr := range p.PCRs {
		d.Write(pcr)
	}
	return f.claim(func(a *tpm2.TPMSAttest) {
		q, err := a.Attested.Quote()
		if err != nil {
			f.t.Fatal(err)
		}
		q.PCRDigest.Buffer = d.Sum(nil)
		a.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, q)
	}, func(b *abi.PlatformBlob) {
		b.PCRs[i] = v
		for _, m := range more {
			m(b)
		}
	})
}

// TestV1LogMustExplainQuotedPCRs: go-attestation's replay accepts a quoted
// PCR the log has no event for, whatever its value, so a client could
// leave every event of a PCR (PCR 7's Secure Boot variables, PCR 12's
// boot-debugging SIPA event) out of current_claim's log or of
// srtm_boot_log and the claims would read their absence. Microsoft's
// validator computes every quoted PCR from the log, from its reset value,
// and refuses such a log; so must attestd.
func TestV1LogMustExplainQuotedPCRs(t *testing.T) {
	f := newV1Fixture(t)
	p, err := abi.ParsePlatformBlob(f.blob)
	if err != nil {
		t.Fatal(err)
	}
	full := p.Log
	for _, tc := range []struct {
		name    string
		claim   []byte
		srtm    []byte
		wantErr bool
	}{
		{"the claim's log as filtered", f.claim(nil, nil), nil, false},
		{"srtm_boot_log complete", f.claim(nil, nil), full, false},
		{"the claim's log without PCR 7's events", f.claim(nil, func(p *abi.PlatformBlob) { p.Log = dropPCR(t, p.Log, 7) }), nil, true},
		{"the claim's log without PCR 0's events", f.claim(nil, func(p *abi.PlatformBlob) { p.Log = dropPCR(t, p.Log, 0) }), nil, true},
		{"srtm_boot_log without PCR 7's events", f.claim(nil, nil), dropPCR(t, full, 7), true},
		{"PCR 8 extended, its events not logged", f.withPCR(8, bytes.Repeat([]byte{0x5A}, 32)), nil, true},
		{"PCR 0 at its locality-3 reset value, no event", f.withPCR(0, append(make([]byte, 31), 3), func(p *abi.PlatformBlob) { p.Log = dropPCR(t, p.Log, 0) }), nil, false},
		{"PCR 0 otherwise, no event", f.withPCR(0, append(make([]byte, 31), 4), func(p *abi.PlatformBlob) { p.Log = dropPCR(t, p.Log, 0) }), nil, true},
		// A dynamic launch's PCRs are logged in drtm_boot_log, which is
		// not read: their values are not required to be explained.
		{"PCR 17 after a dynamic launch", f.withPCR(17, bytes.Repeat([]byte{0x17}, 32)), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := VerifyRequest(t.Context(), f.request(&abi.TPMAttDataV1{CurrentClaim: tc.claim, SRTMBootLog: tc.srtm}), f.nonce, f.options())
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, e := range res.Log.Events {
					if e.PCR == 7 {
						n++
					}
				}
				if n == 0 {
					t.Error("no PCR 7 event in the replayed log")
				}
				return
			}
			if got := evidence.CheckOf(err); got != string(CheckEventLogReplay) {
				t.Fatalf("check %q (%v), want %s", got, err, CheckEventLogReplay)
			}
		})
	}
}

// TestV1BootClaimSameBoot: boot_claim carries no nonce, so any claim the
// AIK ever signed verifies; one taken in another boot cycle (another TPM
// resetCount: a TPM Reset) describes another boot and would
// let a client replace this boot's state with a cleaner one's. A TPM
// Restart (hibernation, which is what boot_claim exists for) keeps
// resetCount, so equality refuses no honest claim.
func TestV1BootClaimSameBoot(t *testing.T) {
	f := newV1Fixture(t)
	cur := f.claim(nil, nil)
	atBoot := func(a *tpm2.TPMSAttest) {
		a.ExtraData.Buffer = nil
		a.ClockInfo.Clock /= 2
		a.ClockInfo.RestartCount-- // a hibernation since
	}
	for _, tc := range []struct {
		name  string
		boot  []byte
		check evidence.Check
	}{
		{"same boot", f.claim(atBoot, nil), ""},
		{"an earlier boot", f.claim(func(a *tpm2.TPMSAttest) { atBoot(a); a.ClockInfo.ResetCount-- }, nil), CheckBootClaim},
		{"a later boot", f.claim(func(a *tpm2.TPMSAttest) { atBoot(a); a.ClockInfo.ResetCount++ }, nil), CheckBootClaim},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := VerifyRequest(t.Context(), f.request(&abi.TPMAttDataV1{CurrentClaim: cur, BootClaim: tc.boot}), f.nonce, f.options())
			if got := evidence.CheckOf(err); got != string(tc.check) {
				t.Fatalf("check %q (%v), want %q", got, err, tc.check)
			}
			if tc.check == "" && res.BootLog == nil {
				t.Error("no boot log")
			}
		})
	}
}

// FuzzVerifyPlatformClaimSigned: FuzzVerifyPlatformClaim's blobs rarely
// get past the signature, so the PCR selection, digest and log checks go
// unfuzzed. Here a blob that parses has its quote re-signed by a software
// AIK first: whatever the quote, PCR values and log hold, the verifier
// returns (an error or a result), never panics or hangs.
func FuzzVerifyPlatformClaimSigned(f *testing.F) {
	blob, _, nonce := platformVector(f)
	aik, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	if p, err := abi.ParsePlatformBlob(blob); err == nil {
		p.Log = tpmclient.EncodeLog(nil)
		f.Add(abi.MarshalPlatformBlob(p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := abi.ParsePlatformBlob(b)
		if err != nil {
			return
		}
		sum := sha256.Sum256(p.Quote)
		if p.Signature, err = rsa.SignPKCS1v15(rand.Reader, aik, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
		q, l, err := VerifyPlatformClaim(&aik.PublicKey, abi.MarshalPlatformBlob(p), nonce)
		if err == nil && (q == nil || l == nil) {
			t.Fatal("accepted without a quote result and a log")
		}
	})
}

// FuzzVerifyV1Logs: a v1 request whose current_claim verifies, with
// arbitrary srtm_boot_log and boot_claim (re-signed by the AIK when it
// parses, so its quote, PCR and log checks and the same-boot check run):
// never a panic, and every refusal names its check.
func FuzzVerifyV1Logs(f *testing.F) {
	fx := newV1Fixture(f)
	p, err := abi.ParsePlatformBlob(fx.blob)
	if err != nil {
		f.Fatal(err)
	}
	cur := fx.claim(nil, nil)
	f.Add([]byte(nil), []byte(nil))
	f.Add(p.Log, cur)
	f.Add(dropPCR(f, p.Log, 7), fx.claim(func(a *tpm2.TPMSAttest) { a.ClockInfo.ResetCount++ }, nil))
	base := fx.request(&abi.TPMAttDataV1{CurrentClaim: cur})
	opts := fx.options()
	f.Fuzz(func(t *testing.T, srtm, boot []byte) {
		if bp, err := abi.ParsePlatformBlob(boot); err == nil {
			sum := sha256.Sum256(bp.Quote)
			if bp.Signature, err = rsa.SignPKCS1v15(rand.Reader, fx.aik, crypto.SHA256, sum[:]); err != nil {
				t.Fatal(err)
			}
			boot = abi.MarshalPlatformBlob(bp)
		}
		req := *base
		v1 := *base.Data.TPM.V1
		v1.SRTMBootLog, v1.BootClaim = srtm, boot
		req.Data.TPM.V1 = &v1
		_, err := VerifyRequest(t.Context(), &req, fx.nonce, opts)
		if err != nil && evidence.CheckOf(err) == "" {
			t.Fatalf("refusal without a check: %v", err)
		}
	})
}
