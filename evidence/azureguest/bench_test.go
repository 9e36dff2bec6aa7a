package azureguest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
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

// BenchmarkCryptoFloorPlatform is the signature work VerifyPlatform cannot
// avoid on a warm SNP chain: one ECDSA P-384 verify (the report) and one
// RSA-2048 PKCS#1 v1.5 verify (the vTPM quote). Compare within one run.
func BenchmarkCryptoFloorPlatform(b *testing.B) {
	ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	d384 := sha512.Sum384([]byte("report"))
	d256 := sha256.Sum256([]byte("quote"))
	es, _ := ecdsa.SignASN1(rand.Reader, ek, d384[:])
	rs, _ := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d256[:])
	b.ResetTimer()
	for range b.N {
		if !ecdsa.VerifyASN1(&ek.PublicKey, d384[:], es) || rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, d256[:], rs) != nil {
			b.Fatal("verify")
		}
	}
}
