package azureguest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/attestd/attestd/evidence/azureguest/envelope"
)

// BenchmarkVerifyPlatformReal: hardware → HCL runtime → AK → quote on the
// real az-snp-vtpm evidence (warm: the VCEK chain is verified once).
func BenchmarkVerifyPlatformReal(b *testing.B) {
	v := amdVerifier(b)
	ev := realInfo(b, "evidence-v0.json")
	ctx := context.Background()
	if _, err := v.VerifyPlatform(ctx, ev, vectorTime); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := v.VerifyPlatform(ctx, ev, vectorTime); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal: encrypting a token to a 2048-bit TPM key.
func BenchmarkSeal(b *testing.B) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tok := string(make([]byte, 3000))
	b.ResetTimer()
	for range b.N {
		if _, err := envelope.Seal(tok, &k.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}
