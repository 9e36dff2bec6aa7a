package client

import (
	"bytes"
	"testing"
)

func TestParseTpmReplies(t *testing.T) {
	ch, sc, err := parseTpmChallenge([]byte(`{"payload":{"challenge":"PR1sf8sIBBObvH8ScpTvtQ","service_context":"eyJ9"}}`))
	if err != nil || len(ch) != 16 || sc != "eyJ9" {
		t.Fatalf("challenge %x %q %v", ch, sc, err)
	}
	for _, bad := range []string{`{}`, `{"payload":{"challenge":"","service_context":"x"}}`, `{"payload":{"challenge":"!!","service_context":"x"}}`,
		`{"payload":{"challenge":"AAAA"}}`, `[`, `{"payload":[]}`} {
		if _, _, err := parseTpmChallenge([]byte(bad)); err == nil {
			t.Errorf("challenge reply %s accepted", bad)
		}
	}
	if r, err := parseTpmReport([]byte(`{"payload":{"report":"a.b.c"}}`)); err != nil || r != "a.b.c" {
		t.Fatalf("report %q %v", r, err)
	}
	for _, bad := range []string{`{}`, `{"payload":{"report":""}}`, `{"payload":{"report":1}}`, `nul`} {
		if _, err := parseTpmReport([]byte(bad)); err == nil {
			t.Errorf("report reply %s accepted", bad)
		}
	}
}

// FuzzTpmReplies: the service's TPM protocol replies never panic the
// client, and an accepted challenge is non-empty with a service context.
func FuzzTpmReplies(f *testing.F) {
	f.Add([]byte(`{"payload":{"challenge":"PR1sf8sIBBObvH8ScpTvtQ","service_context":"eyJ9"}}`))
	f.Add([]byte(`{"payload":{"report":"a.b.c"}}`))
	f.Add([]byte(`{"payload":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ch, sc, err := parseTpmChallenge(b); err == nil && (len(ch) == 0 || sc == "") {
			t.Fatalf("accepted an empty challenge or context from %q", b)
		}
		if r, err := parseTpmReport(b); err == nil && r == "" {
			t.Fatalf("accepted an empty report from %q", bytes.TrimSpace(b))
		}
	})
}
