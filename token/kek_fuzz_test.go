package token

import (
	"bytes"
	"fmt"
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

// FuzzKEKOpenWithPrevious: the same for a KEK with a previous one (the
// rewrap and replicas mid-rotation read envelopes of both) and for
// EnvelopeKEK, which the rewrap uses to sort stored values: no panic, an
// envelope of either key opens only as sealed, and EnvelopeKEK names the
// KEK ID an envelope's header carries.
func FuzzKEKOpenWithPrevious(f *testing.F) {
	prev, err := NewKEK(bytes.Repeat([]byte{4}, KEKSize))
	if err != nil {
		f.Fatal(err)
	}
	cur, err := NewKEK(bytes.Repeat([]byte{5}, KEKSize))
	if err != nil {
		f.Fatal(err)
	}
	k := cur.WithPrevious(prev)
	for _, s := range []*KEK{prev, cur} {
		good, err := s.Seal([]byte("pkcs8 bytes"), []byte("aad"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(good, []byte("aad"))
		f.Add(good[:30], []byte("aad"))
	}
	f.Add([]byte("pkcs11:id=00ff"), []byte("aad"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		if id, ok := EnvelopeKEK(sealed); ok && (len(id) != 8 || sealed[0] != kekVersion || fmt.Sprintf("%x", sealed[1:5]) != id) {
			t.Fatalf("EnvelopeKEK(%x) = %q", sealed, id)
		}
		p, err := k.Open(sealed, aad)
		if err == nil && !(bytes.Equal(aad, []byte("aad")) && string(p) == "pkcs8 bytes") {
			t.Fatalf("opened a forged envelope %x (aad %q): %q", sealed, aad, p)
		}
	})
}
