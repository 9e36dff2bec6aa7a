package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary strings to KeySet.Verify, which parses tokens
// handed to the "attestd verify" tool: it must never panic, and only the
// genuine token may verify.
func FuzzVerify(f *testing.F) {
	c := &clock{t: t0}
	ks, err := OpenKeySet(f.TempDir(), subject, c.Now)
	if err != nil {
		f.Fatal(err)
	}
	good, err := ks.Sign(jku, map[string]any{"iss": subject, "n": 1})
	if err != nil {
		f.Fatal(err)
	}
	unsigned, err := ks.Unsigned(jku, map[string]any{"a": 1})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, unsigned, "", "a.b.c", "..", good + "x", strings.Replace(good, ".", "..", 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		payload, err := ks.Verify(tok)
		if err != nil {
			return
		}
		if string(payload) != `{"iss":"`+subject+`","n":1}` {
			t.Fatalf("Verify accepted %q with payload %s", tok, payload)
		}
	})
}

// FuzzRawP256Signature feeds arbitrary bytes to the DER → R||S conversion,
// which reads signatures an HSM returns (through crypto11): it must never
// panic, and what it accepts is 64 bytes that re-encode to the input's
// integers.
func FuzzRawP256Signature(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 4 {
		der, err := k.Sign(rand.Reader, bytes.Repeat([]byte{byte(i)}, 32), nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	for _, s := range [][]byte{nil, {0x30}, {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, {0x30, 0x06, 0x02, 0x05, 0x01, 0x02, 0x01, 0x01},
		append([]byte{0x30, 0x26, 0x02, 0x22}, make([]byte, 36)...)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		raw, err := rawP256Signature(der)
		if err != nil {
			return
		}
		if len(raw) != 64 {
			t.Fatalf("%x → %d bytes", der, len(raw))
		}
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			return // lenient on non-canonical DER; the integers below still must match when it parses
		}
		if sig.R.Sign() >= 0 && sig.S.Sign() >= 0 && (new(big.Int).SetBytes(raw[:32]).Cmp(sig.R) != 0 || new(big.Int).SetBytes(raw[32:]).Cmp(sig.S) != 0) {
			t.Fatalf("%x → %x: integers differ from ASN.1's %v %v", der, raw, sig.R, sig.S)
		}
	})
}
