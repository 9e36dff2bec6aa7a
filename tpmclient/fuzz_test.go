package tpmclient_test

import (
	"testing"

	"github.com/attestd/attestd/tpmclient"
)

// FuzzParseChallenge: the service's init reply never panics the client and
// an accepted one has a challenge and a service context.
func FuzzParseChallenge(f *testing.F) {
	f.Add([]byte(`{"payload":{"challenge":"PR1sf8sIBBObvH8ScpTvtQ","service_context":"eyJ9"}}`))
	f.Add([]byte(`{"payload":{"challenge":"","service_context":""}}`))
	f.Add([]byte(`{"payload":7}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, sc, err := tpmclient.ParseChallenge(b)
		if err == nil && (len(ch) == 0 || sc == "") {
			t.Fatalf("accepted %q", b)
		}
	})
}
