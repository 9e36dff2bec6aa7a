package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestObject(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		want    map[string]string
	}{
		{in: `{"alg":"RS256","x5c":["a"]}`, want: map[string]string{"alg": `"RS256"`, "x5c": `["a"]`}},
		{in: ` { "a" : 1 } `, want: map[string]string{"a": "1"}},
		{in: `{"\u0061lg":"none"}`, want: map[string]string{"alg": `"none"`}},
		{in: `{}`, want: map[string]string{}},
		{in: `{"alg":"RS256","alg":"none"}`, err: `duplicate member "alg"`},
		{in: `{"a":1}{"b":2}`, err: "data after"},
		{in: `{"a":1} x`, err: "data after"},
		{in: `[1]`, err: "not a JSON object"},
		{in: `"s"`, err: "not a JSON object"},
		{in: `{"a":}`, err: `member "a"`},
		{in: `{"a":1`, err: "EOF"},
		{in: ``, err: "EOF"},
	} {
		m, err := Object([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Object(%q) = %v, %v; want error containing %q", tc.in, m, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Object(%q): %v", tc.in, err)
			continue
		}
		if len(m) != len(tc.want) {
			t.Errorf("Object(%q) = %v, want %v", tc.in, m, tc.want)
		}
		for k, v := range tc.want {
			if string(m[k]) != v {
				t.Errorf("Object(%q)[%q] = %s, want %s", tc.in, k, m[k], v)
			}
		}
	}
}

func TestMember(t *testing.T) {
	m, err := Object([]byte(`{"n":3,"z":null,"s":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if ok, err := Member(m, "n", &n); !ok || err != nil || n != 3 {
		t.Errorf("n: %v %v %d", ok, err, n)
	}
	var s string
	if ok, err := Member(m, "z", &s); ok || err != nil {
		t.Errorf("null must be absent: %v %v", ok, err)
	}
	if ok, err := Member(m, "missing", &s); ok || err != nil {
		t.Errorf("missing: %v %v", ok, err)
	}
	if ok, err := Member(m, "s", &n); !ok || err == nil || !strings.Contains(err.Error(), `member "s"`) {
		t.Errorf("wrong type: %v %v", ok, err)
	}
}

// FuzzObject checks that whatever Object accepts re-encodes to an object
// with the same members that encoding/json also reads as one object.
func FuzzObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,2]}}`, `{}`, `[]`, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Object(b)
		if err != nil {
			return
		}
		var std map[string]json.RawMessage
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("Object accepted what encoding/json refuses: %v", err)
		}
		if len(std) != len(m) {
			t.Fatalf("member count %d vs encoding/json %d", len(m), len(std))
		}
	})
}
