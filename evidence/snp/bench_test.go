package snp_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp"
	"github.com/attestd/attestd/evidence/snp/verify"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/snpplatform"
)

// snpE2E is an in-process attestd (SQLite, RS256 key, the SEV-SNP verifier
// over a test platform, the default SevSnpVm policy) behind the real HTTP
// handler, and a request body like the ACI sidecar's.
func snpE2E(b testing.TB) (http.Handler, string, *snpplatform.Platform, []byte) {
	b.Helper()
	p, roots := platform(b)
	runtime := []byte(`{"keys":[{"kid":"TpmEphemeralEncryptionKey","kty":"RSA","n":"AQAB","e":"AQAB"}]}`)
	raw, err := p.Sign(snpplatform.Report{Version: 3, ReportData: sum(runtime)})
	if err != nil {
		b.Fatal(err)
	}
	v, err := snp.New(snp.Options{Verify: verify.Options{Roots: []verify.ProductRoots{roots}}})
	if err != nil {
		b.Fatal(err)
	}
	h := attestdtest.NewInstance(b, attestdtest.InstanceOptions{Issuer: "https://attestd.bench",
		Verifiers: map[evidence.Type]evidence.Verifier{evidence.SevSnpVm: v}}).Handler
	enc := base64.RawURLEncoding.EncodeToString
	body := `{"report":"` + enc(snpplatform.MAAReport(raw, p.ChainPEM(false), nil)) + `","runtimeData":{"data":"` + enc(runtime) + `","dataType":"JSON"}}`
	return h, body, p, raw
}

func attestOnce(b testing.TB, h http.Handler, body string) {
	attestdtest.ServeAttest(b, h, "/attest/SevSnpVm?api-version=2022-08-01", body)
}

// TestAttestSNPEndToEndSetup keeps the benchmark environment honest.
func TestAttestSNPEndToEndSetup(t *testing.T) {
	h, body, _, _ := snpE2E(t)
	attestOnce(t, h, body)
	attestOnce(t, h, body)
}

// BenchmarkAttestSNPEndToEnd is one complete in-process SEV-SNP attestation
// (HTTP decoding, policy in force, report verification with the chain
// cached, runtime binding, policy, RS256 token). Compare with
// BenchmarkCryptoFloorSNP in the same run:
// go test -bench 'CryptoFloorSNP|AttestSNPEndToEnd' -cpu 1 ./evidence/snp/
func BenchmarkAttestSNPEndToEnd(b *testing.B) {
	h, body, _, _ := snpE2E(b)
	attestOnce(b, h, body)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		attestOnce(b, h, body)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}

// BenchmarkCryptoFloorSNP is the cryptography no SEV-SNP attestation can
// avoid: one ECDSA P-384 verification of the report and one RS256 token
// signature.
func BenchmarkCryptoFloorSNP(b *testing.B) {
	_, _, p, raw := snpE2E(b)
	pub := p.Signer.Vcek.PublicKey.(*ecdsa.PublicKey)
	digest := sha512.Sum384(raw[:0x2A0])
	sig, err := ecdsa.SignASN1(rand.Reader, p.Signer.Keys.Vcek, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tok := make([]byte, 1800)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := sha512.Sum384(raw[:0x2A0])
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			b.Fatal("verify")
		}
		h := sha256.Sum256(tok)
		if _, err := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, h[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}
