package instance

import (
	"testing"
)

// FuzzManagementBodies feeds arbitrary bytes to the readers of untrusted
// policy and certificate-management bodies. The seed corpus (every header
// variant the SDKs send, plus broken forms) runs in normal `go test`.
func FuzzManagementBodies(f *testing.F) {
	s := newSigner(f, "fuzz", false)
	ec := newSigner(f, "fuzz ec", true)
	payload := policyPayloadFor(permitAll)
	for _, seed := range []string{
		unsignedJWS(payload),
		"eyJhbGciOiJub25lIn0..",
		s.joseSign(f, payload),
		ec.joseSign(f, payload),
		s.rawSign(f, `{"alg":"RSA256","x5c":["`+s.x5c()+`"]}`, payload),
		s.rawSign(f, `{"alg": "RSA256", "jwk": {"x5c": ["`+s.x5c()+`"]}}`, payload),
		jsonString(s.joseSign(f, certPayloadFor(ec.cert))),
		s.joseSign(f, certPayloadFor(s.cert)),
		permitAll,
		"eyJ", "eyJ..", "...", `"\u0065yJ"`, "",
		// Strict-JSON cases of the review: crit, duplicate and case-variant
		// names, trailing data, and an empty-object reset payload.
		s.rawSign(f, `{"alg":"RS256","x5c":["`+s.x5c()+`"],"crit":["b64"],"b64":false}`, payload),
		s.rawSign(f, `{"alg":"RS256","alg":"none","x5c":["`+s.x5c()+`"]}`, payload),
		s.rawSign(f, `{"alg":"RS256","x5c":["`+s.x5c()+`"],"ALG":"none"}`, payload),
		s.rawSign(f, `{"alg":"RS256","x5c":["`+s.x5c()+`"]} {}`, payload),
		unsignedJWS([]byte(`{"AttestationPolicy":"eA","AttestationPolicy":"eQ"}`)),
		s.joseSign(f, []byte("{}")),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if j, err := parseJWS(body); err == nil {
			if j.Signed() != (j.Signer() != nil) {
				t.Fatalf("signed=%v but signer=%v", j.Signed(), j.Signer())
			}
		}
		if j, _, err := parsePolicyBody(body); err == nil && j != nil && !looksLikeJWS(unquoteJWS(body)) {
			t.Fatal("raw text body parsed as JWS")
		}
		if j, c, err := parseCertBody(body); err == nil && (j == nil || c == nil) {
			t.Fatal("certificate body accepted without JWS or certificate")
		}
	})
}
