package tpmclient_test

import (
	"bytes"
	"testing"

	"github.com/google/go-tpm/tpm2"

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

// FuzzParseTemplate: an NV template (TPMT_PUBLIC or TPM2B_PUBLIC) never
// panics the client.
func FuzzParseTemplate(f *testing.F) {
	raw := tpm2.Marshal(tpmclient.AKTemplate(tpmclient.RSA))
	f.Add(raw)
	f.Add(append([]byte{byte(len(raw) >> 8), byte(len(raw))}, raw...))
	f.Add(tpm2.Marshal(tpmclient.AKTemplate(tpmclient.ECC)))
	f.Fuzz(func(t *testing.T, b []byte) {
		tpmclient.ParseTemplate(b) //nolint:errcheck // only panics matter
	})
}

func TestParseTemplate(t *testing.T) {
	want := tpmclient.AKTemplate(tpmclient.RSA)
	raw := tpm2.Marshal(want)
	for _, b := range [][]byte{raw, append([]byte{byte(len(raw) >> 8), byte(len(raw))}, raw...)} {
		got, err := tpmclient.ParseTemplate(b)
		if err != nil || !bytes.Equal(tpm2.Marshal(got), raw) {
			t.Fatalf("ParseTemplate: %v", err)
		}
	}
	if _, err := tpmclient.ParseTemplate([]byte{0, 1, 2}); err == nil {
		t.Fatal("garbage accepted")
	}
}
