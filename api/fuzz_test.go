package api

import (
	"testing"

	"github.com/attestd/attestd/evidence"
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
	})
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
