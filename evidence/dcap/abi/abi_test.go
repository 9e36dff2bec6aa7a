package abi_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/attestd/attestd/evidence/dcap/abi"
)

// headers are real-shaped quote headers: an SGX v3 quote's (Intel's QE
// vendor id, key type 2) and a TDX v4 quote's (TEE type 0x81).
var headers = []string{
	"0300020000000000" + "0a000f00" + "939a7233f79c4ca9940a0db3957f0607" + "00000000000000000000000000000000000000aa",
	"0400020081000000" + "00000000" + "939a7233f79c4ca9940a0db3957f0607" + "0102030405060708090a0b0c0d0e0f1011121314",
}

func TestDecodeHeader(t *testing.T) {
	for _, tc := range []struct {
		hex  string
		want abi.Header
	}{
		{headers[0], abi.Header{Version: 3, AttestationKeyType: 2, QESVN: 10, PCESVN: 15}},
		{headers[1], abi.Header{Version: 4, AttestationKeyType: 2, TEEType: 0x81}},
	} {
		b, err := hex.DecodeString(tc.hex)
		if err != nil || len(b) != abi.HeaderSize {
			t.Fatalf("bad test vector %s (%d bytes): %v", tc.hex, len(b), err)
		}
		h := abi.DecodeHeader((*[abi.HeaderSize]byte)(b))
		got := *h
		got.QEVendorID, got.UserData = [16]byte{}, [20]byte{}
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.hex, got, tc.want)
		}
		if !bytes.Equal(h.QEVendorID[:], b[12:28]) || !bytes.Equal(h.UserData[:], b[28:48]) {
			t.Errorf("%s: vendor id / user data %x %x", tc.hex, h.QEVendorID, h.UserData)
		}
		if m := h.Marshal(); !bytes.Equal(m, b) {
			t.Errorf("Marshal %x, want %x", m, b)
		}
	}
}

// FuzzDecodeHeader: any 48 bytes decode, and Marshal gives them back.
func FuzzDecodeHeader(f *testing.F) {
	for _, s := range headers {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Add(make([]byte, abi.HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < abi.HeaderSize {
			return
		}
		h := abi.DecodeHeader((*[abi.HeaderSize]byte)(b))
		if m := h.Marshal(); !bytes.Equal(m, b[:abi.HeaderSize]) {
			t.Fatalf("round trip %x != %x", m, b[:abi.HeaderSize])
		}
	})
}
