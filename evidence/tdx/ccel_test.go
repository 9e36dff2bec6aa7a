package tdx_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/tdx/abi"
	"github.com/attestd/attestd/internal/testenv"
)

const (
	cosQuote = "vectors/go-tdx-guest/testing/testdata/ccel/cos-113-tdx-quote.dat"
	cosCCEL  = "vectors/go-tdx-guest/testing/testdata/ccel/ccel_data.dat"
	cosColl  = "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json"
	cosAt    = "2026-06-20T00:00:00Z"
)

// ccelLog builds a TCG2 crypto-agile log (SHA-384 only) of events
// (MR index, data; digest SHA-384(data)) and the RTMRs it replays to,
// followed by 0xff padding as the ACPI CCEL area has it.
func ccelLog(events []struct {
	mr   uint32
	data string
}) ([]byte, [4][48]byte) {
	le := binary.LittleEndian
	spec := []byte("Spec ID Event03\x00")
	spec = le.AppendUint32(spec, 0)           // platform class
	spec = append(spec, 0, 2, 0, 2)           // version 2.0, errata 0, uintn 2
	spec = le.AppendUint32(spec, 1)           // one algorithm
	spec = le.AppendUint16(spec, 0x0c)        // SHA-384
	spec = le.AppendUint16(spec, 48)          //
	spec = append(spec, 0)                    // no vendor info
	b := le.AppendUint32(nil, 0)              // index
	b = le.AppendUint32(b, 3)                 // EV_NO_ACTION
	b = append(b, make([]byte, 20)...)        // SHA-1 digest
	b = le.AppendUint32(b, uint32(len(spec))) //
	b = append(b, spec...)                    //
	var rtmr [4][48]byte
	for _, e := range events {
		d := sha512.Sum384([]byte(e.data))
		b = le.AppendUint32(b, e.mr)
		b = le.AppendUint32(b, 0x0d) // EV_IPL
		b = le.AppendUint32(b, 1)
		b = le.AppendUint16(b, 0x0c)
		b = append(b, d[:]...)
		b = le.AppendUint32(b, uint32(len(e.data)))
		b = append(b, e.data...)
		if e.mr >= 1 && e.mr <= 4 {
			r := &rtmr[e.mr-1]
			*r = sha512.Sum384(append(r[:], d[:]...))
		}
	}
	return append(b, bytes.Repeat([]byte{0xff}, 512)...), rtmr
}

// TestRealCCEL replays GCP's real CCEL against its real quote (RTMR0..3)
// inside the collateral window and offers the events to policies; a log
// with one changed digest, a truncated log and garbage are refused.
func TestRealCCEL(t *testing.T) {
	ctx := context.Background()
	v := realVerifier(t, cosColl, tdx.Options{})
	quote := realQuote(t, cosQuote)
	log := testenv.ReadShared(t, cosCCEL)
	verify := func(l []byte) (*evidence.Result, error) {
		p, err := v.Parse(ctx, &evidence.Request{Type: evidence.TdxVm, Evidence: quote, EventLog: l, Now: at(cosAt)})
		if err != nil {
			t.Fatal(err)
		}
		return p.Verify(ctx, nil)
	}
	res, err := verify(log)
	if err != nil {
		t.Fatal(err)
	}
	var events string
	for _, c := range res.Claims {
		if c.Type == tdx.ClaimEvents {
			events, _ = c.Value.(string)
			if !c.PolicyOnly {
				t.Error("events reach the token")
			}
		}
	}
	got := claimsOf(res)
	if !strings.HasPrefix(events, `{"Events":[`) || got[tdx.ClaimEventLogEvents] != int64(43) || len(got[tdx.ClaimEventLogDigest].(string)) != 64 {
		t.Fatalf("events %.80s…, claims %v %v", events, got[tdx.ClaimEventLogEvents], got[tdx.ClaimEventLogDigest])
	}
	// One digest changed: the first event after the Spec ID header.
	bad := bytes.Clone(log)
	first := 32 + int(binary.LittleEndian.Uint32(log[28:]))
	bad[first+14] ^= 1
	for name, l := range map[string][]byte{"changed digest": bad, "truncated": log[:first+30], "garbage": []byte("not an event log")} {
		if _, err := verify(l); evidence.CheckOf(err) != string(tdx.CheckEventLog) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := verify(bad); err == nil || !strings.Contains(err.Error(), "RTMR0") {
		t.Errorf("the refusal does not name RTMR0: %v", err)
	}
}

// TestReplayCCEL: built logs replay to exactly the RTMRs they extend; a
// register the log measures that the TD report does not match is refused
// by name; MRTD events (index 0) are not RTMR events.
func TestReplayCCEL(t *testing.T) {
	log, rtmr := ccelLog([]struct {
		mr   uint32
		data string
	}{{0, "mrtd event"}, {1, "firmware"}, {2, "kernel"}, {2, "initrd"}, {3, "cmdline"}})
	td := &abi.TDReport{RTMR: rtmr}
	l, err := tdx.ReplayCCEL(log, td)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Events) != 4 {
		t.Fatalf("%d events", len(l.Events))
	}
	td.RTMR[1][0] ^= 1
	if _, err := tdx.ReplayCCEL(log, td); evidence.CheckOf(err) != string(tdx.CheckEventLog) || !strings.Contains(err.Error(), "RTMR1") {
		t.Fatalf("wrong RTMR1: %v", err)
	}
}

// TestReplayCCELOmittedRegister: the CCEL is unsigned and a register
// without events replays whatever its value, so a log that leaves out every
// event of an extended RTMR0–2 is refused, naming it; RTMR3, extended at
// run time and logged elsewhere, is exempt.
func TestReplayCCELOmittedRegister(t *testing.T) {
	type ev = struct {
		mr   uint32
		data string
	}
	all := []ev{{0, "mrtd event"}, {1, "firmware"}, {2, "kernel"}, {2, "initrd"}, {3, "cmdline"}, {4, "application"}}
	_, rtmr := ccelLog(all)
	td := &abi.TDReport{RTMR: rtmr}
	without := func(mr uint32) []byte {
		var keep []ev
		for _, e := range all {
			if e.mr != mr {
				keep = append(keep, e)
			}
		}
		log, _ := ccelLog(keep)
		return log
	}
	for mr, name := range map[uint32]string{1: "RTMR0", 2: "RTMR1", 3: "RTMR2"} {
		_, err := tdx.ReplayCCEL(without(mr), td)
		if evidence.CheckOf(err) != string(tdx.CheckEventLog) || !strings.Contains(err.Error(), "measures nothing into ["+name+"]") {
			t.Errorf("log without %s's events: %v, want it refused naming %s", name, err, name)
		}
	}
	if _, err := tdx.ReplayCCEL(without(4), td); err != nil {
		t.Errorf("log without RTMR3's (run-time) events: %v, want accepted", err)
	}
}

// FuzzReplayCCEL: no log panics, hangs or reads out of bounds.
func FuzzReplayCCEL(f *testing.F) {
	log, rtmr := ccelLog([]struct {
		mr   uint32
		data string
	}{{1, "a"}, {4, "b"}})
	f.Add(log)
	f.Add(log[:100])
	for _, b := range testenv.Seeds(f, cosCCEL) {
		f.Add(b[:8192])
	}
	td := &abi.TDReport{RTMR: rtmr}
	f.Fuzz(func(t *testing.T, b []byte) {
		tdx.ReplayCCEL(b, td)
	})
}
