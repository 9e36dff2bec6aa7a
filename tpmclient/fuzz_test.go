package tpmclient_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/tpmclient"
)

// FuzzParseChallenge: the service's init reply never panics the client and
// an accepted one has a challenge and a service context.
func FuzzParseChallenge(f *testing.F) {
	f.Add([]byte(`{"payload":{"challenge":"PR1sf8sIBBObvH8ScpTvtQ","service_context":"eyJ9"}}`))
	f.Add([]byte(`{"payload":{"challenge":"","service_context":""}}`))
	f.Add([]byte(`{"payload":7}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, sc, err := tpmclient.ParseChallenge(b)
		if err == nil && (len(ch) == 0 || sc == "") {
			t.Fatalf("accepted %q", b)
		}
	})
}

// FuzzParseTemplate: an NV template (TPMT_PUBLIC or TPM2B_PUBLIC) never
// panics the client.
func FuzzParseTemplate(f *testing.F) {
	raw := tpm2.Marshal(tpmclient.AKTemplate(tpmclient.RSA))
	f.Add(raw)
	f.Add(append([]byte{byte(len(raw) >> 8), byte(len(raw))}, raw...))
	f.Add(tpm2.Marshal(tpmclient.AKTemplate(tpmclient.ECC)))
	f.Fuzz(func(t *testing.T, b []byte) {
		tpmclient.ParseTemplate(b) //nolint:errcheck // only panics matter
	})
}

func TestParseTemplate(t *testing.T) {
	want := tpmclient.AKTemplate(tpmclient.RSA)
	raw := tpm2.Marshal(want)
	for _, b := range [][]byte{raw, append([]byte{byte(len(raw) >> 8), byte(len(raw))}, raw...)} {
		got, err := tpmclient.ParseTemplate(b)
		if err != nil || !bytes.Equal(tpm2.Marshal(got), raw) {
			t.Fatalf("ParseTemplate: %v", err)
		}
	}
	if _, err := tpmclient.ParseTemplate([]byte{0, 1, 2}); err == nil {
		t.Fatal("garbage accepted")
	}
}

// FuzzFilterLog: no log panics FilterLog, filtering by all PCRs keeps a log
// whole unless it measures PCRs beyond 23, and filtering is idempotent.
func FuzzFilterLog(f *testing.F) {
	f.Add(tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(true, nil)), uint32(tpmclient.AllPCRs))
	f.Add(tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, []byte("db"))), uint32(0x80))
	f.Add([]byte{0, 0, 0, 0, 3, 0, 0, 0}, uint32(1))
	f.Fuzz(func(t *testing.T, log []byte, mask uint32) {
		out, err := tpmclient.FilterLog(log, mask)
		if err != nil {
			return
		}
		again, err := tpmclient.FilterLog(out, mask)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("filtering the filtered log: %v, changed %v", err, !bytes.Equal(again, out))
		}
	})
}

func TestFilterLog(t *testing.T) {
	events := tpmclient.SyntheticBootEvents(true, []byte("db"))
	log := tpmclient.EncodeLog(events)
	if out, err := tpmclient.FilterLog(log, tpmclient.AllPCRs); err != nil || !bytes.Equal(out, log) {
		t.Fatalf("all PCRs: %v, unchanged %v", err, bytes.Equal(out, log))
	}
	var pcr7 []tpmclient.Event
	for _, e := range events {
		if e.PCR == 7 {
			pcr7 = append(pcr7, e)
		}
	}
	if out, err := tpmclient.FilterLog(log, 1<<7); err != nil || !bytes.Equal(out, tpmclient.EncodeLog(pcr7)) {
		t.Fatalf("PCR 7: %v; want the header and PCR 7's events", err)
	}
	withHigh := tpmclient.EncodeLog(append(events, tpmclient.Event{PCR: 24, Type: tpmclient.EvEFIAction, Data: []byte("x")}))
	if out, err := tpmclient.FilterLog(withHigh, 0xFFFFFFFF); err != nil || !bytes.Equal(out, log) {
		t.Fatalf("PCR 24 kept (%v): platform claims carry PCRs 0–23", err)
	}
	// A SHA-1 (TCG 1.2 format) log: no header, every record kept or dropped.
	sha1Event := func(pcr, typ uint32, data string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, pcr)
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, make([]byte, 20)...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	e0, e7, e9 := sha1Event(0, tpmclient.EvSCRTMVersion, "v1"), sha1Event(7, tpmclient.EvSeparator, "\x00\x00\x00\x00"), sha1Event(9, tpmclient.EvEFIAction, "x")
	old := append(append(bytes.Clone(e0), e7...), e9...)
	if out, err := tpmclient.FilterLog(old, 1<<0|1<<9); err != nil || !bytes.Equal(out, append(bytes.Clone(e0), e9...)) {
		t.Fatalf("SHA-1 log, PCRs 0 and 9: %v", err)
	}
	for _, bad := range [][]byte{log[:len(log)-1], log[:10], append(bytes.Clone(log), 1, 2, 3)} {
		if _, err := tpmclient.FilterLog(bad, tpmclient.AllPCRs); err == nil {
			t.Errorf("FilterLog accepted a broken log of %d bytes", len(bad))
		}
	}
}
