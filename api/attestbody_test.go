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
