package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// stdJSON is marshalJSON's encoding/json path.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// TestAppendClaimsMatchesEncodingJSON: the reflection-free encoder writes
// byte for byte what encoding/json writes, for every kind of value claims
// hold and for the strings that need escapes.
func TestAppendClaimsMatchesEncodingJSON(t *testing.T) {
	for name, m := range map[string]map[string]any{
		"empty": {},
		"sgx-like": {
			"x-ms-attestation-type": "sgx", "x-ms-sgx-is-debuggable": true, "x-ms-sgx-product-id": int64(1),
			"x-ms-sgx-svn": 7, "nonce": json.Number("18446744073709551615"), "x-ms-ver": "1.0",
			"x-ms-sgx-collateral":   map[string]string{"quotehash": "ab", "b": "c"},
			"x-ms-sgx-advisory-ids": []string{"INTEL-SA-00615"}, "empty-list": []string{}, "nil-list": []string(nil),
			"x-ms-runtime": map[string]any{"keys": []any{map[string]any{"kty": "EC", "n": 1.5, "big": 1e21, "small": 1e-7}}, "z": nil},
			"x-ms-policy":  map[string]any{"a": []any{true, false, nil, "x"}},
		},
		"escapes": {
			"quote\"": "back\\slash", "ctl": "a\x00b\x1fc\n\t\r\b\f", "html": "<a href='x'>&</a>", "del": "\x7f",
			"bad utf-8": "\xff\xfe", "line sep": "a\u2028b\u2029", "unicode": "héllo wörld ✓ 😀",
		},
		"numbers": {
			"n0": json.Number("0"), "neg": json.Number("-1.5e+10"), "emptynum": json.Number(""),
			"f": 3.0, "nan-free": math.MaxFloat64, "i": int(-42), "i64": int64(math.MinInt64),
		},
		"other types": {"u8": uint8(3), "raw": json.RawMessage(`{"b":1, "a":2}`), "struct": struct{ A int }{1}, "ptr": (*int)(nil)},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := appendClaims(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if want := stdJSON(t, m); !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
	// An invalid json.Number is refused as encoding/json refuses it.
	if _, err := appendClaims(nil, map[string]any{"n": json.Number("1x")}); err == nil {
		t.Fatal("invalid json.Number accepted")
	}
}

// FuzzAppendClaims compares the two encoders on claims decoded from
// arbitrary JSON (what x-ms-runtime and policy claims are made of) plus
// arbitrary strings as keys and values.
func FuzzAppendClaims(f *testing.F) {
	f.Add([]byte(`{"a":[1,"b",{"c":null}],"d":true}`), "key", "value")
	f.Add([]byte(`{"x":"\u2028<>&\"\\"}`), "\xff", "\x00")
	f.Add([]byte(`[1e400]`), "", "")
	f.Fuzz(func(t *testing.T, doc []byte, k, v string) {
		var parsed any
		d := json.NewDecoder(bytes.NewReader(doc))
		if len(doc)%2 == 0 {
			d.UseNumber()
		}
		if d.Decode(&parsed) != nil {
			parsed = string(doc)
		}
		m := map[string]any{"doc": parsed, k: v, "list": []string{k, v}, "map": map[string]string{v: k}}
		got, err := appendClaims(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdJSON(t, m); !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

// FuzzASCIIPlainPrefix: the word-at-a-time prefix is made of whole words,
// holds only bytes appendString writes verbatim, and stops only at a word
// holding another byte (or the tail).
func FuzzASCIIPlainPrefix(f *testing.F) {
	for _, s := range []string{"", "0123456789abcdef", "a\"bcdefghijk", "abcdefg\\hijklmno", "\x1fabcdefgh", "abcdefgh\x7f", "éabcdefghijklmn", "aaaaaaaaaaaaaaa\xff"} {
		f.Add(s)
	}
	plain := func(c byte) bool { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' }
	f.Fuzz(func(t *testing.T, s string) {
		n := asciiPlainPrefix(s)
		if n%8 != 0 || n > len(s) {
			t.Fatalf("prefix %d of %q", n, s)
		}
		for i := 0; i < n; i++ {
			if !plain(s[i]) {
				t.Fatalf("prefix %d of %q covers byte %#x", n, s, s[i])
			}
		}
		if n+8 <= len(s) {
			all := true
			for i := n; i < n+8; i++ {
				all = all && plain(s[i])
			}
			if all {
				t.Fatalf("prefix %d of %q stops before a plain word", n, s)
			}
		}
	})
}

// TestAppendClaimsObjectSizes: objects below, at and above appendObject's
// on-stack capacity encode as encoding/json does.
func TestAppendClaimsObjectSizes(t *testing.T) {
	for _, n := range []int{0, 1, 47, 48, 49, 200} {
		m := map[string]any{}
		inner := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("claim-%03d\"x", (i*37)%1000)] = i
			inner[fmt.Sprintf("k%d", n-i)] = strings.Repeat("ab", i)
		}
		m["inner"] = inner
		got, err := appendClaims(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdJSON(t, m); !bytes.Equal(got, want) {
			t.Fatalf("%d claims:\ngot  %s\nwant %s", n, got, want)
		}
	}
}
