package token

import (
	"bytes"
	"testing"
)

// FuzzKEKOpen: envelopes read back from the database are untrusted bytes;
// Open must refuse every altered one without panicking and open only
// what Seal made.
func FuzzKEKOpen(f *testing.F) {
	k, err := NewKEK(bytes.Repeat([]byte{3}, KEKSize))
	if err != nil {
		f.Fatal(err)
	}
	good, err := k.Seal([]byte("pkcs8 bytes"), []byte("aad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("aad"))
	f.Add(good[:20], []byte("aad"))
	f.Add([]byte{kekVersion}, []byte(""))
	f.Add([]byte{}, []byte("aad"))
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		p, err := k.Open(sealed, aad)
		// Fuzzing processes each seal their own good envelope (random
		// nonces), so a genuine one is recognised by what it opens to.
		if err == nil && !(bytes.Equal(aad, []byte("aad")) && string(p) == "pkcs8 bytes") {
			t.Fatalf("opened a forged envelope %x (aad %q): %q", sealed, aad, p)
		}
	})
}

// FuzzParseKEK: a key-encryption key file's content never panics the
// parser, and whatever it accepts is a working 32-byte key.
func FuzzParseKEK(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, KEKSize))
	f.Add([]byte("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"))
	f.Add([]byte("not a key"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKEK(b)
		if err != nil {
			return
		}
		s, err := k.Seal([]byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := k.Open(s, nil); err != nil || string(p) != "x" {
			t.Fatalf("accepted key does not round-trip: %v", err)
		}
	})
}
