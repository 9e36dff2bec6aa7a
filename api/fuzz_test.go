package api

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/instance"
)

// FuzzDecodeAttest feeds arbitrary attest request bodies to the decoder.
// The seed corpus (the JS 1.0.0 wire shapes, Python's data-less initTimeData,
// std base64) runs in normal `go test`.
func FuzzDecodeAttest(f *testing.F) {
	for _, seed := range []string{
		`{"quote":"AQIDBAU","runtimeData":{"data":"aGVsbG8","dataType":"Binary"}}`,
		`{"quote":"AQIDBAU","runtimeData":{"data":"eyJhIjoxfQ","dataType":"JSON"},"initTimeData":{"data":"AQI","dataType":"Binary"},"draftPolicyForAttestation":"version=1.0; authorizationrules{=> permit();};"}`,
		`{"report":"AQIDBAU","runtimeData":{"data":"aGk","dataType":"Binary"}}`,
		`{"data":"eyJwYXlsb2FkIjp7InR5cGUiOiJhaWtjZXJ0In19"}`,
		`{"quote":"AQIDBA==","initTimeData":{"dataType":"JSON"},"nonce":"n"}`,
		`{"quote":"+/+/"}`, `{}`, `[]`, `null`, ``,
	} {
		for _, t := range []string{"SgxEnclave", "OpenEnclave", "Tpm", "SevSnpVm", "TdxVm"} {
			f.Add(t, []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		et, ok := evidence.ParseType(typ)
		if !ok {
			return
		}
		req, err := decodeAttest(et, body)
		if err != nil {
			return
		}
		if req.Type != et || len(req.Evidence) == 0 {
			t.Fatalf("accepted request without evidence: %+v", req)
		}
		// What was decoded, written the way the SDKs write it, decodes to
		// the same request.
		again, err := decodeAttest(et, encodeAttest(t, req))
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip changed the request:\n got %+v\nwant %+v", again, req)
		}
	})
}

// encodeAttest writes req as an SDK would (base64url without padding,
// dataType Binary or JSON).
func encodeAttest(t *testing.T, req *instance.AttestRequest) []byte {
	field := map[evidence.Type]string{evidence.SgxEnclave: "quote", evidence.TdxVm: "quote", evidence.OpenEnclave: "report",
		evidence.SevSnpVm: "report", evidence.Tpm: "data"}[req.Type]
	m := map[string]any{field: base64.RawURLEncoding.EncodeToString(req.Evidence)}
	data := func(d *evidence.Data) map[string]string {
		typ := "Binary"
		if d.JSON {
			typ = "JSON"
		}
		return map[string]string{"data": base64.RawURLEncoding.EncodeToString(d.Bytes), "dataType": typ}
	}
	if req.Runtime != nil {
		m["runtimeData"] = data(req.Runtime)
	}
	if req.InitTime != nil {
		m["initTimeData"] = data(req.InitTime)
	}
	if req.DraftPolicy != nil {
		m["draftPolicyForAttestation"] = *req.DraftPolicy
	}
	if req.Nonce != nil {
		m["nonce"] = *req.Nonce
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeExplain feeds arbitrary explain request bodies to the decoder:
// it never panics, and an accepted request has exactly one of a claim set
// and evidence.
func FuzzDecodeExplain(f *testing.F) {
	for _, seed := range []string{
		`{"claims":{"x-ms-sgx-is-debuggable":true,"x-ms-sgx-svn":[1,2]}}`,
		`{"policy":"version=1.0; authorizationrules{=> permit();};","claims":{}}`,
		`{"evidence":{"quote":"AQIDBAU","runtimeData":{"data":"aGVsbG8","dataType":"Binary"}}}`,
		`{"policy":null,"evidence":{"report":"AQID","draftPolicyForAttestation":"x"}}`,
		`{"claims":{},"evidence":{"quote":"AQ"}}`, `{"claims":null}`, `{"claim":{}}`, `{}{}`, `[]`, ``,
	} {
		f.Add("SgxEnclave", []byte(seed))
		f.Add("OpenEnclave", []byte(seed))
	}
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		et, ok := evidence.ParseType(typ)
		if !ok {
			return
		}
		req, err := decodeExplain(et, body)
		if err != nil {
			return
		}
		if (req.Claims == nil) == (req.Evidence == nil) || (req.Evidence != nil && len(req.Evidence.Evidence) == 0) {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}
