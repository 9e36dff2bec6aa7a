package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// swtpmBlob is a platform claim tpmclient.PlatformClaim built from a
// swtpm's TPM2_Quote (testdata/platform-swtpm.bin; its AK and nonce are
// beside it, for the verify package's tests).
func swtpmBlob(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "platform-swtpm.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sha1Blob is a well-formed 'PADS' (SHA-1 log) blob.
func sha1Blob() []byte {
	p := &PlatformBlob{Magic: PlatformMagic, Platform: PlatformTPM20, PCRAlg: 0x0004,
		Quote: []byte("quote"), Signature: []byte("signature"), Log: []byte("log")}
	for i := range p.PCRs {
		p.PCRs[i] = bytes.Repeat([]byte{byte(i)}, 20)
	}
	return MarshalPlatformBlob(p)
}

func TestParsePlatformBlob(t *testing.T) {
	b := swtpmBlob(t)
	p, err := ParsePlatformBlob(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Magic != PlatformMagic2 || p.Platform != PlatformTPM20 || p.PCRAlg != 0x000B || len(p.PCRs[23]) != 32 ||
		!bytes.HasPrefix(p.Quote, []byte{0xff, 0x54, 0x43, 0x47}) || len(p.Signature) != 256 || len(p.Log) == 0 {
		t.Fatalf("parsed %+v", p)
	}
	if !bytes.Equal(MarshalPlatformBlob(p), b) {
		t.Error("MarshalPlatformBlob(ParsePlatformBlob(b)) != b")
	}
	if !bytes.HasPrefix(b, []byte("PAD2")) {
		t.Errorf("the '2DAP' magic is stored as %q, want \"PAD2\"", b[:4])
	}
	b[len(b)-1] ^= 0xff
	if p2, _ := ParsePlatformBlob(b); p2.Log[len(p2.Log)-1] == p.Log[len(p.Log)-1] {
		t.Error("the parsed blob shares the input's bytes")
	}
	s, err := ParsePlatformBlob(sha1Blob())
	if err != nil || s.PCRAlg != 0x0004 || string(s.Quote) != "quote" || string(s.Signature) != "signature" || string(s.Log) != "log" {
		t.Fatalf("PADS blob: %+v, %v", s, err)
	}

	put := func(b []byte, i int, v uint32) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[4*i:], v)
		return b
	}
	good := swtpmBlob(t)
	tests := []struct {
		name string
		b    []byte
		want string
		is   error
	}{
		{"empty", nil, "shorter than", nil},
		{"header only half", good[:20], "shorter than", nil},
		{"truncated", good[:len(good)-1], "add up to", nil},
		{"trailing byte", append(bytes.Clone(good), 0), "add up to", nil},
		{"key attestation magic", put(good, 0, 0x5344414B), "magic", nil},
		{"TPM 1.2", put(good, 1, PlatformTPM12), "", ErrPlatformTPM12},
		{"platform 3", put(good, 1, 3), "Platform 3", nil},
		{"PAD2 with the PADS header size", put(good, 2, 28), "HeaderSize 28", nil},
		{"PADS with the PAD2 header size", put(sha1Blob(), 2, 32), "HeaderSize 32", nil},
		{"unknown PCR bank", put(good, 7, 0x0010), "PCR algorithm 0x10", nil},
		{"PcrAlgorithmId over 16 bits", put(good, 7, 0x1000B), "not a TPM_ALG_ID", nil},
		{"cbPcrValues of another bank", put(put(good, 3, 24*20), 4, binary.LittleEndian.Uint32(good[16:])+24*12), "cbPcrValues 480", nil},
		{"sizes that wrap 32 bits", put(put(good, 4, 0xFFFFFFFF), 6, binary.LittleEndian.Uint32(good[24:])+binary.LittleEndian.Uint32(good[16:])+1), "add up to", nil},
		{"unsigned", put(put(good, 5, 0), 6, binary.LittleEndian.Uint32(good[24:])+256), "cbSignature 0", nil},
		{"no quote", put(put(good, 4, 0), 6, binary.LittleEndian.Uint32(good[24:])+binary.LittleEndian.Uint32(good[16:])), "cbQuote 0", nil},
		{"over the size limit", make([]byte, MaxPlatformBlobSize+1), "limit", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlatformBlob(tc.b)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) || tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q / %v", err, tc.want, tc.is)
			}
		})
	}
}

// FuzzParsePlatformBlob: no input panics or allocates beyond its size, and
// every accepted blob marshals back to its input.
func FuzzParsePlatformBlob(f *testing.F) {
	f.Add(swtpmBlob(f))
	f.Add(sha1Blob())
	f.Add([]byte("PAD2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlatformBlob(b)
		if err != nil {
			return
		}
		if !bytes.Equal(MarshalPlatformBlob(p), b) {
			t.Fatalf("accepted %x but it marshals back differently", b)
		}
	})
}
