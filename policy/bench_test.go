package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// BenchmarkEvaluateDefaultSGX is the hot path: the default SGX policy,
// parsed once, evaluated per attestation request over a full SGX claim set.
func BenchmarkEvaluateDefaultSGX(b *testing.B) {
	text, _ := Default("SgxEnclave")
	p, err := Parse(text)
	if err != nil {
		b.Fatal(err)
	}
	claims := sgxClaims(true, 1, 1, debugSigner, debugEnclave)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Evaluate(ctx, "SgxEnclave", claims, EvalOptions{})
		if err != nil || len(res.Issued) != 6 {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateDefaultSGXTokenClaims adds the §9 serialisation.
func BenchmarkEvaluateDefaultSGXTokenClaims(b *testing.B) {
	text, _ := Default("SgxEnclave")
	p, _ := Parse(text)
	claims := sgxClaims(true, 1, 1, debugSigner, debugEnclave)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Evaluate(ctx, "SgxEnclave", claims, EvalOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(TokenClaims(res.Issued)) != 6 {
			b.Fatal("bad token claims")
		}
	}
}

// BenchmarkParseDefaultSGX: what a policy cache saves per request.
func BenchmarkParseDefaultSGX(b *testing.B) {
	text, _ := Default("SgxEnclave")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDSAP256Verify is the baseline: one ECDSA P-256 signature check,
// the cheapest of the several signature verifications every SGX attestation
// needs (quote, QE report, PCK chain).
func BenchmarkECDSAP256Verify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("attestd quote body"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkEvaluateDHA: the heaviest documented policy (policies/41, ~60
// rules, dozens of JMESPath queries) over a small Windows boot log.
func BenchmarkEvaluateDHA(b *testing.B) {
	p, err := Parse(readSample(b, "41-dha-csp-v1.2-windows-health.txt"))
	if err != nil {
		b.Fatal(err)
	}
	claims := tpmClaims("aikValidated", true, "events", dhaEvents)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Evaluate(context.Background(), "Tpm", claims, EvalOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
