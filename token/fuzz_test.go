package token

import (
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
