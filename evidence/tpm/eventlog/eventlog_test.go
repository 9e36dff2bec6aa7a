package eventlog

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// windowsDump is the layout of go-attestation's windows_gcp_shielded_vm.json.
type windowsDump struct {
	Log struct {
		PCRs []struct {
			Index     int
			Digest    []byte
			DigestAlg crypto.Hash
		}
		Raw []byte
	}
}

func loadWindows(t testing.TB) ([]byte, []PCR) {
	var d windowsDump
	if err := json.Unmarshal(testenv.ReadShared(t, "vectors/go-attestation/attest/testdata/windows_gcp_shielded_vm.json"), &d); err != nil {
		t.Fatal(err)
	}
	var pcrs []PCR
	for _, p := range d.Log.PCRs {
		pcrs = append(pcrs, PCR{Index: p.Index, Alg: p.DigestAlg, Digest: p.Digest})
	}
	return d.Log.Raw, pcrs
}

func TestReplayWindows(t *testing.T) {
	raw, pcrs := loadWindows(t)
	l, err := Replay(raw, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Events) != 21 { // the log has 21 measured events (PCRs 0, 4, 5, 7, 11–14)
		t.Fatalf("%d events replayed", len(l.Events))
	}
	for i := 1; i < len(l.Events); i++ {
		if l.Events[i].Seq <= l.Events[i-1].Seq {
			t.Fatalf("events out of order at %d: %d after %d", i, l.Events[i].Seq, l.Events[i-1].Seq)
		}
	}
	f := l.WindowsFlags()
	if !f.Seen || !f.CodeIntegritySeen || f.BootDebugging || f.SafeMode || f.WinPE {
		t.Errorf("windows flags %+v", f)
	}
	w, err := l.Windows()
	if err != nil {
		t.Fatalf("ParseWinEvents: %v", err)
	}
	if w.BootDebuggingEnabled {
		t.Error("boot debugging reported enabled")
	}
	js, err := l.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"EventTypeString":"EV_EVENT_TAG"`, `"EVENT_TRUSTBOUNDARY"`, `"EVENT_LOADEDMODULE_AGGREGATION":[`, `"EVENT_FILEPATH":"\\`, `"UnicodeName":"SecureBoot"`, `"VariableGuid":"8BE4DF61-93CA-11D2-AA0D-00E098032B8C"`} {
		if !strings.Contains(js, want) {
			t.Errorf("events JSON lacks %s", want)
		}
	}
}

func TestReplayRefusals(t *testing.T) {
	raw, pcrs := loadWindows(t)
	tests := []struct {
		name    string
		raw     func([]byte) []byte
		pcrs    func([]PCR) []PCR
		wantPCR int // -1: a parse error
	}{
		{"PCR 0 value changed", nil, func(p []PCR) []PCR {
			for i := range p {
				if p[i].Index == 0 {
					p[i].Digest[0] ^= 1
				}
			}
			return p
		}, 0},
		{"event digest flipped", func(b []byte) []byte {
			b[10] ^= 0xff // inside the first event's SHA-1 digest (PCR 0, bytes 8–27)
			return b
		}, nil, 0},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }, nil, -1},
		{"empty", func([]byte) []byte { return nil }, nil, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := append([]byte(nil), raw...)
			p := make([]PCR, len(pcrs))
			for i, x := range pcrs {
				p[i] = PCR{Index: x.Index, Alg: x.Alg, Digest: append([]byte(nil), x.Digest...)}
			}
			if tc.raw != nil {
				r = tc.raw(r)
			}
			if tc.pcrs != nil {
				p = tc.pcrs(p)
			}
			_, err := Replay(r, p)
			if tc.wantPCR < 0 {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a ParseError", err)
				}
				return
			}
			var re *ReplayError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a ReplayError", err)
			}
			found := false
			for _, i := range re.InvalidPCRs {
				found = found || i == tc.wantPCR
			}
			if !found {
				t.Errorf("InvalidPCRs = %v, want %d among them", re.InvalidPCRs, tc.wantPCR)
			}
		})
	}
}

func TestParseSIPA(t *testing.T) {
	le := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	item := func(typ uint32, data []byte) []byte {
		return append(append(le(typ), le(uint32(len(data)))...), data...)
	}
	module := item(0x40010003, append(item(0x00070001, []byte{'a', 0, 'b', 0}), item(0x0007000A, []byte{1})...))
	body := append(append(item(0x00040001, []byte{0}), item(0x00020005, []byte{1, 0, 0, 0})...), module...)
	ev := append(append(le(0x40010001), le(uint32(len(body)))...), body...)
	got, err := ParseSIPA(ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `{"EVENT_TRUSTBOUNDARY":{"EVENT_BITLOCKER_UNLOCK":{"String":"CACHED","Value":1},"EVENT_BOOTDEBUGGING":false,"EVENT_LOADEDMODULE_AGGREGATION":[{"EVENT_FILEPATH":"ab","EVENT_IMAGEVALIDATED":true}]}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	for _, bad := range [][]byte{ev[:7], ev[:len(ev)-1], append(le(0x00050001), le(0)...)} {
		if _, err := ParseSIPA(bad); err == nil {
			t.Errorf("ParseSIPA(%x) accepted", bad)
		}
	}
}

func FuzzReplay(f *testing.F) {
	for _, s := range testenv.Seeds(f, "vectors/go-attestation/attest/testdata/crypto_agile_eventlog",
		"vectors/go-attestation/attest/testdata/short_no_action_eventlog",
		"vectors/go-tpm-tools/internal/test/eventlogs/debian-10.bin") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Replay(b, []PCR{{Index: 7, Alg: crypto.SHA256, Digest: make([]byte, 32)}, {Index: 0, Alg: crypto.SHA1, Digest: make([]byte, 20)}})
		if err != nil {
			return
		}
		if _, err := l.JSON(); err != nil {
			t.Fatal(err)
		}
		_, _ = l.SecureBoot()
		_ = l.WindowsFlags()
	})
}

// FuzzMeasuredPCRs: no log panics MeasuredPCRs, and a log it accepts names
// only PCRs 0…31 (by construction of the mask) and parses for Replay too.
func FuzzMeasuredPCRs(f *testing.F) {
	for _, s := range testenv.Seeds(f, "vectors/go-attestation/attest/testdata/crypto_agile_eventlog",
		"vectors/go-tpm-tools/internal/test/eventlogs/debian-10.bin") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := MeasuredPCRs(b); err != nil {
			return
		}
		if _, err := parse(b); err != nil {
			t.Fatalf("MeasuredPCRs accepted a log parse refuses: %v", err)
		}
	})
}

func TestMeasuredPCRs(t *testing.T) {
	raw, pcrs := loadWindows(t)
	m, err := MeasuredPCRs(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The same set as the PCRs of the events that replay against the
	// machine's quoted values (all of them: the log is whole).
	l, err := Replay(raw, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	var want uint32
	for _, e := range l.Events {
		if e.Type != evNoAction {
			want |= 1 << e.PCR
		}
	}
	if m != want || m&(1<<7) == 0 || m&(1<<12) == 0 {
		t.Errorf("mask %#x, the replayed events measure %#x", m, want)
	}
	if _, err := MeasuredPCRs([]byte("not a log")); err == nil {
		t.Error("garbage accepted")
	}
}

func FuzzParseSIPA(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0x40, 9, 0, 0, 0, 1, 0, 4, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseSIPA(b)
		if err != nil {
			return
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		_ = ProcessedData(evEFIVariableDriverConfig, b)
	})
}

func TestUnexplained(t *testing.T) {
	zero, one := make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)
	loc3 := make([]byte, 32)
	loc3[31] = 3
	set := func(i int, d []byte) PCR { return PCR{Index: i, Alg: crypto.SHA256, Digest: d} }
	for _, c := range []struct {
		name     string
		measured uint32
		pcrs     []PCR
		exempt   func(int) bool
		want     uint32
	}{
		{"measured", 1 << 7, []PCR{set(7, one)}, nil, 0},
		{"not measured, extended", 0, []PCR{set(7, one)}, nil, 1 << 7},
		{"not measured, reset", 0, []PCR{set(7, zero)}, nil, 0},
		{"PCR 0 reset at locality 3", 0, []PCR{set(0, loc3)}, nil, 0},
		{"locality byte only counts for PCR 0", 0, []PCR{set(5, loc3)}, nil, 1 << 5},
		{"exempt", 0, []PCR{set(10, one), set(12, one)}, func(i int) bool { return i == 10 }, 1 << 12},
		{"index out of range ignored", 0, []PCR{set(40, one), set(-1, one)}, nil, 0},
	} {
		if got := Unexplained(c.measured, c.pcrs, c.exempt); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
}
