package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzFastAttestBody: whatever the one-pass decoder accepts, encoding/json
// accepts too, into the same attestBody; the common SDK shapes take the
// fast path and the unusual ones (escapes, other case, numbers, unknown or
// repeated members, trailing data) do not.
func FuzzFastAttestBody(f *testing.F) {
	fast := []string{
		`{"quote":"AQIDBAU","runtimeData":{"data":"aGVsbG8","dataType":"Binary"}}`,
		` { "report" : "AQID" , "initTimeData" : { "dataType" : "JSON" } , "nonce" : "n-1" } `,
		`{"quote":"AQIDBA==","draftPolicyForAttestation":"version=1.0; authorizationrules{=> permit();};"}`,
		`{"data":"eyJwYXlsb2FkIjp7fX0"}`, `{}`, `{"runtimeData":{}}`,
	}
	slow := []string{
		`{"quote":"A\u0041"}`, `{"Quote":"AQID"}`, `{"quote":"AQID","nonce":18446744073709551615}`,
		`{"quote":"AQID","other":1}`, `{"quote":"a","quote":"b"}`, `{"quote":"AQID"} x`, `{"quote":null}`,
		`{"quote":"é"}`, `[]`, `null`, ``, `{"runtimeData":{"data":"a","data":"b"}}`, `{"quote":"a",}`,
	}
	for _, s := range fast {
		var b attestBody
		if !fastAttestBody([]byte(s), &b) {
			f.Fatalf("not on the fast path: %s", s)
		}
		f.Add([]byte(s))
	}
	for _, s := range slow {
		var b attestBody
		if fastAttestBody([]byte(s), &b) {
			f.Fatalf("on the fast path: %s", s)
		}
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got attestBody
		if !fastAttestBody(raw, &got) {
			return
		}
		var want attestBody
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, raw)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast path %+v, encoding/json %+v for %q", got, want, raw)
		}
	})
}

// FuzzPlainASCII compares the word-at-a-time plainASCII with its
// byte-at-a-time definition, at every alignment and length.
func FuzzPlainASCII(f *testing.F) {
	for _, s := range []string{"", "AQIDBAU-_", "0123456789abcdef", "a\\b", "\x1f", "~\x7f", "é", "\x00aaaaaaaaaaaaaaa",
		"aaaaaaa\"", " !~~~~~~~~~~~~~~", "aaaaaaaaaaaaaaa\xff", "\x20\x7e\x5b\x5d\x5c"} {
		f.Add([]byte(s))
	}
	want := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 || c > 0x7e || c == '\\' {
				return false
			}
		}
		return true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := 0; i <= len(b) && i < 9; i++ {
			if got, w := plainASCII(b[i:]), want(b[i:]); got != w {
				t.Fatalf("plainASCII(%q) = %v, want %v", b[i:], got, w)
			}
		}
	})
}

// TestIsTokenText: the table agrees with the definition on every byte.
func TestIsTokenText(t *testing.T) {
	for c := range 256 {
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		if got := isTokenText("eyJ0." + string([]byte{byte(c)}) + ".x"); got != want {
			t.Fatalf("isTokenText with byte %#x = %v, want %v", c, got, want)
		}
	}
}
