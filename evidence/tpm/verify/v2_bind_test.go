package verify

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/tpmclient"
)

// v2TPM is a swtpm with a measured boot (Secure Boot in PCR 7, a
// Windows-style PCR 12 event) and an AK, building v2 requests the way a
// client does (tpmclient.BuildRequest, then abi.ParseRequest).
type v2TPM struct {
	t      testing.TB
	ctx    context.Context
	sw     *swtpm.TPM
	ak     *tpmclient.Key
	events []tpmclient.Event
	log    []byte
	reqKey *rsa.PrivateKey
}

// pcr12Event stands for the Windows SIPA events of PCR 12 (boot debugging,
// safe mode, WinPE) that bootDebuggingDisabled and notSafeMode are read
// from: which event it is does not matter to the rule under test, only
// that PCR 12 is extended and logged.
var pcr12Event = tpmclient.Event{PCR: 12, Type: tpmclient.EvEFIAction, Data: []byte("attestd test: PCR 12 measurement")}

func newV2TPM(t testing.TB) *v2TPM {
	t.Helper()
	f := &v2TPM{t: t, ctx: context.Background(), sw: swtpm.Start(t)}
	f.events = append(tpmclient.SyntheticBootEvents(true, nil), pcr12Event)
	f.log = tpmclient.EncodeLog(f.events)
	f.boot()
	var err error
	if f.reqKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	return f
}

// boot measures f.events and (re)creates the AK: a primary key, so the
// same key in every boot of this TPM.
func (f *v2TPM) boot() {
	f.t.Helper()
	tr := f.sw.Transport()
	if err := tpmclient.Measure(f.ctx, tr, f.events); err != nil {
		f.t.Fatal(err)
	}
	f.createAK()
}

func (f *v2TPM) createAK() {
	f.t.Helper()
	if f.ak != nil {
		f.ak.Flush(f.sw.Transport()) //nolint:errcheck // gone already after a reset
	}
	var err error
	if f.ak, err = tpmclient.CreateAK(f.ctx, f.sw.Transport(), tpmclient.RSA); err != nil {
		f.t.Fatal(err)
	}
}

// restart cycles the TPM through _TPM_Init and TPM2_Startup(su): after a
// TPM2_Shutdown(STATE), TPM_SU_STATE resumes (hibernation: resetCount
// kept); TPM_SU_CLEAR is a TPM Reset (a new boot: resetCount+1, PCRs
// reset).
func (f *v2TPM) restart(shutdown, su tpm2.TPMSU) {
	f.t.Helper()
	tr := f.sw.Transport()
	if _, err := (tpm2.Shutdown{ShutdownType: shutdown}).Execute(tr); err != nil {
		f.t.Fatal(err)
	}
	if err := f.sw.Init(); err != nil {
		f.t.Fatal(err)
	}
	if _, err := (tpm2.Startup{StartupType: su}).Execute(tr); err != nil {
		f.t.Fatalf("TPM2_Startup(%v): %v", su, err)
	}
}

func (f *v2TPM) options() Options {
	return Options{TrustedAKs: []crypto.PublicKey{f.ak.Pub}}
}

// request is a v2 request answering challenge; mutate may change the
// evidence before it is signed.
func (f *v2TPM) request(t testing.TB, challenge []byte, mutate func(*tpmclient.Evidence)) *abi.Request {
	t.Helper()
	jws, err := tpmclient.BuildRequest(f.ctx, f.sw.Transport(), tpmclient.Request{AK: f.ak, RequestKey: f.reqKey, Challenge: challenge,
		ServiceContext: "service-context", Log: f.log, Mutate: mutate})
	if err != nil {
		t.Fatal(err)
	}
	req, err := abi.ParseRequest(jws)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// bootAttestation quotes all PCRs without a nonce, as a client does at boot
// for boot_attestation, with logs.
func (f *v2TPM) bootAttestation(t testing.TB, logs []abi.Log) *abi.Attestation {
	t.Helper()
	q, err := tpmclient.QuotePCRs(f.ctx, f.sw.Transport(), f.ak, nil, tpmclient.AllPCRs)
	if err != nil {
		t.Fatal(err)
	}
	bank := abi.PCRBank{Algorithm: uint16(tpm2.TPMAlgSHA256)}
	for i := 0; i < 24; i++ {
		bank.Values = append(bank.Values, abi.PCRValue{Index: i, Digest: q.PCRs[i]})
	}
	return &abi.Attestation{Logs: logs, PCRs: []abi.PCRBank{bank}, Quote: q.Attest, Signature: q.Signature}
}

func challenge(t testing.TB) []byte {
	c := make([]byte, 32)
	if _, err := rand.Read(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCheckOf(t *testing.T, err error, want evidence.Check) {
	t.Helper()
	if got := evidence.CheckOf(err); got != string(want) {
		t.Fatalf("check %q (%v), want %q", got, err, want)
	}
}

// TestV2LogMustExplainQuotedPCRs: as in v1 (TestV1LogMustExplainQuotedPCRs),
// a current_attestation or boot_attestation TCG log that leaves out every
// event of a quoted PCR is refused unless that PCR holds its reset value,
// and PCR 10 (Linux IMA's, extended outside the TCG log) is exempt.
func TestV2LogMustExplainQuotedPCRs(t *testing.T) {
	f := newV2TPM(t)
	ch := challenge(t)
	drop := func(i int) func(*tpmclient.Evidence) {
		return func(e *tpmclient.Evidence) { e.Log = dropPCR(t, e.Log, i) }
	}
	withLogs := func(logs ...abi.Log) func(*abi.Request) {
		return func(r *abi.Request) { r.Data.TPM.Current.Logs = logs }
	}
	// PCR 10 as Linux IMA leaves it: extended, with nothing in the TCG log.
	imaExtend := tpmclient.Event{PCR: 10, Type: tpmclient.EvEFIAction, Data: []byte("boot_aggregate")}
	for _, tc := range []struct {
		name   string
		before func() // TPM changes before the request is built
		mutate func(*tpmclient.Evidence)
		edit   func(*abi.Request) // after parsing (the JWS covers the sent text, not this)
		check  evidence.Check
	}{
		{name: "complete log"},
		{name: "log without PCR 12's events", mutate: drop(12), check: CheckEventLogReplay},
		{name: "log without PCR 7's events", mutate: drop(7), check: CheckEventLogReplay},
		{name: "log without PCR 0's events", mutate: drop(0), check: CheckEventLogReplay},
		{name: "log without PCR 5's events", mutate: drop(5), check: CheckEventLogReplay},
		{name: "IMA log does not exempt PCR 12", mutate: drop(12), edit: func(r *abi.Request) {
			r.Data.TPM.Current.Logs = append(r.Data.TPM.Current.Logs, abi.Log{Type: "IMA", Data: []byte("ima")})
		}, check: CheckEventLogReplay},
		{name: "no TCG log: nothing read, nothing to explain", edit: withLogs()},
		// From here on PCR 10 is extended.
		{name: "PCR 10 extended, TCG log only", before: func() {
			if err := tpmclient.Measure(f.ctx, f.sw.Transport(), []tpmclient.Event{imaExtend}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "PCR 10 extended, TCG log only, without PCR 12's events", mutate: drop(12), check: CheckEventLogReplay},
		{name: "PCR 10 extended, TCG + IMA logs", edit: func(r *abi.Request) {
			r.Data.TPM.Current.Logs = append(r.Data.TPM.Current.Logs, abi.Log{Type: "IMA", Data: []byte("ima")})
		}},
		{name: "PCR 10 extended, TCG + IMA logs, without PCR 7's events", mutate: drop(7), edit: func(r *abi.Request) {
			r.Data.TPM.Current.Logs = append(r.Data.TPM.Current.Logs, abi.Log{Type: "IMA", Data: []byte("ima")})
		}, check: CheckEventLogReplay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			req := f.request(t, ch, tc.mutate)
			if tc.edit != nil {
				tc.edit(req)
			}
			res, err := VerifyRequest(t.Context(), req, ch, f.options())
			wantCheckOf(t, err, tc.check)
			if tc.check != "" || len(req.Data.TPM.Current.Logs) == 0 {
				return
			}
			var n7, n12 int
			for _, e := range res.Log.Events {
				switch e.PCR {
				case 7:
					n7++
				case 12:
					n12++
				}
			}
			if n7 == 0 || n12 == 0 {
				t.Errorf("replayed log has %d PCR 7 and %d PCR 12 events", n7, n12)
			}
		})
	}

	// boot_attestation's log obeys the same rule.
	ch = challenge(t)
	for _, tc := range []struct {
		name  string
		log   []byte
		check evidence.Check
	}{
		{"boot log complete", f.log, ""},
		{"boot log without PCR 12's events", dropPCR(t, f.log, 12), CheckEventLogReplay},
		{"boot log without PCR 7's events", dropPCR(t, f.log, 7), CheckEventLogReplay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot := f.bootAttestation(t, []abi.Log{{Type: "TCG", Data: tc.log}, {Type: "IMA", Data: []byte("ima")}})
			req := f.request(t, ch, nil)
			req.Data.TPM.Current.Logs = append(req.Data.TPM.Current.Logs, abi.Log{Type: "IMA", Data: []byte("ima")})
			req.Data.TPM.Boot = boot
			res, err := VerifyRequest(t.Context(), req, ch, f.options())
			wantCheckOf(t, err, tc.check)
			if tc.check == "" && (res.BootQuote == nil || res.BootLog == nil) {
				t.Error("boot attestation not in the result")
			}
		})
	}
}

// TestV2BootAttestationSameBoot: boot_attestation carries no nonce, so any
// quote the AIK ever signed verifies; one of an earlier boot (a TPM Reset:
// resetCount+1) is refused with CheckBootClaim, as v1's boot_claim
// (TestV1BootClaimSameBoot). A hibernation (TPM2_Shutdown(STATE), then
// _TPM_Init and TPM2_Startup(STATE): a TPM Resume, resetCount kept), which
// is what boot_attestation exists for, is accepted. Both run on swtpm.
func TestV2BootAttestationSameBoot(t *testing.T) {
	t.Run("after a hibernation", func(t *testing.T) {
		f := newV2TPM(t)
		boot := f.bootAttestation(t, []abi.Log{{Type: "TCG", Data: f.log}})
		f.restart(tpm2.TPMSUState, tpm2.TPMSUState)
		f.createAK()
		ch := challenge(t)
		req := f.request(t, ch, nil)
		req.Data.TPM.Boot = boot
		res, err := VerifyRequest(t.Context(), req, ch, f.options())
		if err != nil {
			t.Fatal(err)
		}
		b, c := res.BootQuote.Attest.ClockInfo, res.Quote.Attest.ClockInfo
		if b.ResetCount != c.ResetCount || b.RestartCount == c.RestartCount {
			t.Fatalf("swtpm did not resume: boot reset/restart %d/%d, current %d/%d", b.ResetCount, b.RestartCount, c.ResetCount, c.RestartCount)
		}
	})
	t.Run("of an earlier boot", func(t *testing.T) {
		f := newV2TPM(t)
		boot := f.bootAttestation(t, []abi.Log{{Type: "TCG", Data: f.log}})
		f.restart(tpm2.TPMSUClear, tpm2.TPMSUClear)
		f.boot() // the same measurements again: only the boot differs
		ch := challenge(t)
		req := f.request(t, ch, nil)
		req.Data.TPM.Boot = boot
		_, err := VerifyRequest(t.Context(), req, ch, f.options())
		wantCheckOf(t, err, CheckBootClaim)

		// The control: this boot's own boot quote is accepted.
		req.Data.TPM.Boot = f.bootAttestation(t, []abi.Log{{Type: "TCG", Data: f.log}})
		if _, err := VerifyRequest(t.Context(), req, ch, f.options()); err != nil {
			t.Fatal(err)
		}
	})
}

// windowsVectorPCRs is the real Windows log (GCP shielded VM,
// go-attestation's testdata) and the SHA-1 PCR values its quote
// authenticates.
func windowsVectorPCRs(tb testing.TB) ([]byte, []eventlog.PCR) {
	tb.Helper()
	var d windowsDump
	if err := json.Unmarshal(testenv.ReadShared(tb, "vectors/go-attestation/attest/testdata/windows_gcp_shielded_vm.json"), &d); err != nil {
		tb.Fatal(err)
	}
	pub, err := abi.ParsePublic(d.AK.Public)
	if err != nil {
		tb.Fatal(err)
	}
	ak, err := tpm2.Pub(*pub)
	if err != nil {
		tb.Fatal(err)
	}
	bank := abi.PCRBank{Algorithm: 0x0004}
	for i := 0; i < 24; i++ {
		for _, p := range d.Log.PCRs {
			if p.Index == i {
				bank.Values = append(bank.Values, abi.PCRValue{Index: i, Digest: p.Digest})
			}
		}
	}
	q, err := VerifyQuote(ak, d.Quote.Quote, d.Quote.Signature, d.Quote.Nonce, []abi.PCRBank{bank})
	if err != nil {
		tb.Fatal(err)
	}
	return d.Log.Raw, q.PCRs
}

// TestWindowsVectorLogMustExplainPCRs: the real Windows log (GCP shielded
// VM, go-attestation's testdata) replays as sent, and without PCR 12's
// (boot debugging, safe mode) or PCR 7's (Secure Boot) events it is refused.
func TestWindowsVectorLogMustExplainPCRs(t *testing.T) {
	raw, pcrs := windowsVectorPCRs(t)
	for _, tc := range []struct {
		name  string
		log   []byte
		check evidence.Check
	}{
		{"as sent", raw, ""},
		{"without PCR 12's events", dropPCR(t, raw, 12), CheckEventLogReplay},
		{"without PCR 7's events", dropPCR(t, raw, 7), CheckEventLogReplay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := replayLogs([]abi.Log{{Type: "TCG", Data: tc.log}}, pcrs)
			wantCheckOf(t, err, tc.check)
		})
	}
}

// FuzzVerifyV2Logs: a v2 request whose current quote verifies (swtpm),
// with arbitrary current_attestation and boot_attestation TCG logs, with
// or without an IMA log, so that the replay, the unexplained-PCR rule and
// the same-boot check run on whatever the logs hold: never a panic, and
// every refusal names its check.
func FuzzVerifyV2Logs(f *testing.F) {
	fx := newV2TPM(f)
	ch := challenge(f)
	base := fx.request(f, ch, nil)
	boot := fx.bootAttestation(f, nil)
	opts := fx.options()
	f.Add(fx.log, fx.log, false)
	f.Add(dropPCR(f, fx.log, 12), fx.log, true)
	f.Add(fx.log, dropPCR(f, fx.log, 7), true)
	f.Add([]byte(nil), []byte(nil), false)
	f.Fuzz(func(t *testing.T, cur, bootLog []byte, ima bool) {
		logs := func(tcg []byte) []abi.Log {
			var l []abi.Log
			if len(tcg) > 0 {
				l = append(l, abi.Log{Type: "TCG", Data: tcg})
			}
			if ima {
				l = append(l, abi.Log{Type: "IMA", Data: []byte("ima")})
			}
			return l
		}
		req := *base
		c, b := *base.Data.TPM.Current, *boot
		c.Logs, b.Logs = logs(cur), logs(bootLog)
		req.Data.TPM.Current, req.Data.TPM.Boot = &c, &b
		res, err := VerifyRequest(t.Context(), &req, ch, opts)
		if err != nil {
			if evidence.CheckOf(err) == "" {
				t.Fatalf("refusal without a check: %v", err)
			}
			return
		}
		if len(cur) > 0 && res.Log == nil {
			t.Fatal("accepted a TCG log without a replayed log")
		}
	})
}

// BenchmarkReplayLogsWindows is v2's log check of the real Windows log
// (replay, then the unexplained-PCR rule, which parses the log again)
// beside BenchmarkReplayOnlyWindows, the replay alone: their ratio is what
// the rule costs.
func BenchmarkReplayLogsWindows(b *testing.B) {
	raw, pcrs := windowsVectorPCRs(b)
	logs := []abi.Log{{Type: "TCG", Data: raw}}
	for b.Loop() {
		if _, err := replayLogs(logs, pcrs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplayOnlyWindows(b *testing.B) {
	raw, pcrs := windowsVectorPCRs(b)
	for b.Loop() {
		if _, err := eventlog.Replay(raw, pcrs); err != nil {
			b.Fatal(err)
		}
	}
}
