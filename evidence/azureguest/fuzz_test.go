package azureguest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
)

// FuzzParse: the AzureGuest evidence parser (AttestationInfo and the SNP
// proof inside) and the verifier never panic; every refusal names a check.
func FuzzParse(f *testing.F) {
	proof, _ := json.Marshal(map[string]string{"SnpReport": base64.RawURLEncoding.EncodeToString(make([]byte, 1184))})
	for _, ai := range []*envelope.AttestationInfo{
		{ProtocolVersion: "2.0", TPM: envelope.TPMInfo{PcrQuote: []byte{0xff, 0x54, 0x43, 0x47}, PcrSignature: []byte{1}},
			Isolation: envelope.Isolation{Type: envelope.IsolationSevSnp, Proof: proof, RuntimeData: []byte(`{"keys":[]}`)}},
		{ProtocolVersion: "2.0", TPM: envelope.TPMInfo{PcrQuote: []byte{1}, PcrSignature: []byte{1}}, Isolation: envelope.Isolation{Type: envelope.IsolationNone}},
	} {
		b, _ := envelope.Marshal(ai)
		f.Add(b)
	}
	v := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := v.Parse(context.Background(), &evidence.Request{Type: evidence.AzureGuest, Evidence: b, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			if evidence.CheckOf(err) == "" {
				t.Fatalf("refusal without a check: %v", err)
			}
			return
		}
		if _, err := p.Verify(context.Background(), nil); err == nil {
			t.Fatal("verified with no trust configured")
		} else if evidence.CheckOf(err) == "" {
			t.Fatalf("refusal without a check: %v", err)
		}
	})
}
