package abi

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

const testJWK = `{"kty":"RSA","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}`

func payloadV2(attType string) string {
	return `{"att_type":"` + attType + `","att_data":{"challenge":"` + b64("chal") + `","service_context":"c2M","rp_data":"` + b64("rp") + `",
 "tpm_att_data":{"current_attestation":{"logs":[{"type":"TCG","log":"` + b64("log") + `"}],"pcrs":[{"algorithm":11,"values":[{"index":0,"digest":"` + b64(strings.Repeat("a", 32)) + `"}]}],"quote":"` + b64("q") + `","signature":"` + b64("s") + `"}},
 "request_key":{"jwk":` + testJWK + `,"info":{"tpm_quote":{"hash_alg":"sha-256"}}},"custom_claims":[{"name":"n","value":"v","value_type":"string"}]}}`
}

func jws(hdr, payload string) string { return b64(hdr) + "." + b64(payload) + "." + b64("sig") }

const hdrV2 = `{"alg":"PS256","typ":"attReqV2"}`

func TestParseRequest(t *testing.T) {
	r, err := ParseRequest(jws(hdrV2, payloadV2("basic")))
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 2 || r.AttType != "basic" || string(r.Data.Challenge) != "chal" || string(r.Data.RPData) != "rp" ||
		r.Data.SigningKey.Quote.HashAlg != "sha-256" || !bytes.Equal(r.Data.SigningKey.JWK.Raw, []byte(testJWK)) ||
		len(r.Data.TPM.Current.PCRs[0].Values) != 1 || len(r.Data.CustomClaims) != 1 {
		t.Errorf("parsed %+v", r.Data)
	}
	tests := []struct{ name, jws, want string }{
		{"two parts", "a.b", "3 parts"},
		{"alg none", jws(`{"alg":"none","typ":"attReqV2"}`, payloadV2("basic")), "alg"},
		{"typ JWT", jws(`{"alg":"PS256","typ":"JWT"}`, payloadV2("basic")), "typ"},
		{"kid", jws(`{"alg":"PS256","typ":"attReqV2","kid":"x"}`, payloadV2("basic")), "kid"},
		{"duplicate alg", jws(`{"alg":"PS256","alg":"RS256","typ":"attReqV2"}`, payloadV2("basic")), "duplicate"},
		{"unknown att_type", jws(hdrV2, strings.Replace(payloadV2("basic"), `"basic"`, `"sgx"`, 1)), `att_type "sgx"`},
		{"vbs without report", jws(hdrV2, payloadV2("vbs")), "report_signed"},
		{"duplicate challenge", jws(hdrV2, strings.Replace(payloadV2("basic"), `"challenge":`, `"challenge":"eA","challenge":`, 1)), "duplicate"},
		{"short digest", jws(hdrV2, strings.Replace(payloadV2("basic"), b64(strings.Repeat("a", 32)), b64("a"), 1)), "want 32"},
		{"bad algorithm", jws(hdrV2, strings.Replace(payloadV2("basic"), `"algorithm":11`, `"algorithm":99`, 1)), "algorithm 99"},
		{"padded base64", jws(hdrV2, strings.Replace(payloadV2("basic"), `"`+b64("chal")+`"`, `"`+b64("chal")+`=="`, 1)), "base64url"},
		{"v2 other_keys in v1", jws(`{"alg":"PS256","typ":"attReq"}`, `{"att_type":"basic","att_data":{"challenge":"eA","service_context":"eA","attest_key":`+testJWK+`,"other_keys":[],"tpm_att_data":{"current_claim":"eA"}}}`), "v2 member"},
		{"v1 key in v2", jws(hdrV2, strings.Replace(payloadV2("basic"), `"request_key"`, `"attest_key":{},"request_key"`, 1)), "v1 member"},
		{"private key", jws(hdrV2, strings.Replace(payloadV2("basic"), `"e":"AQAB"`, `"e":"AQAB","d":"AQAB"`, 1)), "private"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest(tc.jws)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	if _, err := ParseInit([]byte(`{"payload":{"type":"aikcert"}}`)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"payload":{"type":"other"}}`, `{"payload":{}}`, `{"payload":{"type":"aikcert"},"payload":{}}`, `[]`} {
		if _, err := ParseInit([]byte(bad)); err == nil {
			t.Errorf("ParseInit(%s) accepted", bad)
		}
	}
	if !IsInit([]byte(`{"payload":{"type":"aikcert"}}`)) || IsInit([]byte(`{"payload":{"request":"x"}}`)) {
		t.Error("IsInit")
	}
	if j, err := ParseRequestMessage([]byte(`{"payload":{"request":"a.b.c"}}`)); err != nil || j != "a.b.c" {
		t.Errorf("ParseRequestMessage = %q, %v", j, err)
	}
}

func TestVBSReportRoundTrip(t *testing.T) {
	r := &VBSReport{SignatureScheme: VBSSchemeRSAPSS256, ReportVersion: VBSReportVersion, Signature: []byte("signature"),
		VarData: []byte{1, 0, 0, 0, 12, 0, 0, 0, 9, 9, 9, 9}}
	r.EnclaveData[0], r.Identity.AuthorID[31], r.Identity.PlatformSvn = 1, 2, 3
	b := MarshalVBSReport(r)
	got, err := ParseVBSReport(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(MarshalVBSReport(got), b) || got.Identity != r.Identity || got.EnclaveData != r.EnclaveData {
		t.Error("round trip differs")
	}
	for name, mut := range map[string]func([]byte) []byte{
		"truncated":       func(b []byte) []byte { return b[:len(b)-1] },
		"bad version":     func(b []byte) []byte { b[4] = 2; return b },
		"bad scheme":      func(b []byte) []byte { b[8] = 7; return b },
		"reserved":        func(b []byte) []byte { b[20] = 1; return b },
		"vardata overrun": func(b []byte) []byte { b[24+224+4] = 200; return b },
	} {
		if _, err := ParseVBSReport(mut(bytes.Clone(b))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(jws(hdrV2, payloadV2("basic")))
	f.Add(jws(hdrV2, payloadV2("vbs")))
	f.Add(jws(`{"alg":"RS256","typ":"attReq"}`, `{"att_type":"basic","att_data":{"challenge":"eA","service_context":"eA","attest_key":`+testJWK+`,"tpm_att_data":{"current_claim":"eA"}}}`))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequest(s)
		if err != nil {
			return
		}
		if r.Data.SigningKey == nil || len(r.Data.Challenge) == 0 {
			t.Fatal("accepted without a signing key or challenge")
		}
	})
}

func FuzzParseTPM(f *testing.F) {
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 0, 0, 0})
	f.Add([]byte{0, 0x14, 0, 0x0b, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := ParseAttest(b); err == nil && uint32(a.Magic) != TPMGeneratedValue {
			t.Fatal("accepted a TPMS_ATTEST without the magic")
		}
		_, _ = ParseSignature(b)
		_, _ = ParsePublic(b)
		if r, err := ParseVBSReport(b); err == nil && !bytes.Equal(MarshalVBSReport(r), b) {
			t.Fatal("VBS report does not round-trip")
		}
	})
}
