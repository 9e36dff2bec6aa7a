package sgx

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/testing/cputime"
	"github.com/attestd/attestd/testing/sgxplatform"
)

func benchPlatform(b *testing.B) (*sgxplatform.Platform, []byte) {
	p := newPlatform(b, sgxplatform.Options{})
	var rd [64]byte
	rd[0] = 1
	quote, err := p.Quote(sgxplatform.QuoteOptions{ProductID: 1, SVN: 1, ReportData: rd})
	if err != nil {
		b.Fatal(err)
	}
	return p, quote
}

func quotesPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "quotes/s")
}

// BenchmarkVerifyQuoteWarm is one SgxEnclave verification (parse, collateral
// lookup, every check, claims) with collateral and PCK chain already cached.
func BenchmarkVerifyQuoteWarm(b *testing.B) {
	p, quote := benchPlatform(b)
	v := platformVerifier(b, p)
	req := &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote, Runtime: &evidence.Data{Bytes: []byte("runtime")}}
	ctx := context.Background()
	if _, err := v.Verify(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	quotesPerSecond(b)
}

// BenchmarkVerifyQuoteCold verifies with a fresh Verifier each time: every
// chain, CRL and collateral signature is verified again.
func BenchmarkVerifyQuoteCold(b *testing.B) {
	p, quote := benchPlatform(b)
	req := &evidence.Request{Type: evidence.SgxEnclave, Evidence: quote}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := platformVerifier(b, p)
		if _, err := v.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	quotesPerSecond(b)
}

// BenchmarkCryptoFloorSGX is the cost no SGX attestation can avoid: the two
// ECDSA P-256 verifications a quote carries (quote signature by the
// attestation key, QE report signature by the PCK key) and one RS256
// (RSA-2048 PKCS#1 v1.5) signature of the resulting token. Run with -cpu 1:
// quotes/s is then per core.
func BenchmarkCryptoFloorSGX(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	cryptoFloor(b, func(digest []byte) error {
		_, err := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, digest)
		return err
	})
}

// BenchmarkCryptoFloorSGXES256 is BenchmarkCryptoFloorSGX for an instance
// with token_algorithm ES256: the same two ECDSA P-256 verifications and
// one ES256 (ECDSA P-256, SHA-256) signature of the token, the primitive
// token's ES256 signer uses.
func BenchmarkCryptoFloorSGXES256(b *testing.B) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cryptoFloor(b, func(digest []byte) error {
		_, _, err := ecdsa.Sign(rand.Reader, ecKey, digest)
		return err
	})
}

// cryptoFloor times the quote's two ECDSA P-256 verifications and sign of
// the SHA-256 of a typical token's header.payload, per quote.
func cryptoFloor(b *testing.B, sign func(digest []byte) error) {
	_, quoteBytes := benchPlatform(b)
	q, err := abi.ParseQuote(quoteBytes)
	if err != nil {
		b.Fatal(err)
	}
	ak, pckKey := floorKeys(b, q)
	signed, qeReport := q.SignedBytes(), q.QE.QEReport.Marshal()
	token := make([]byte, 1500) // a typical SGX token's header.payload size
	verify := func(pub *ecdsa.PublicKey, msg, sig []byte) bool {
		h := sha256.Sum256(msg)
		return ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer cputime.Start(b)()
	for i := 0; i < b.N; i++ {
		if !verify(ak, signed, q.Signature) || !verify(pckKey, qeReport, q.QE.QEReportSignature) {
			b.Fatal("signature")
		}
		h := sha256.Sum256(token)
		if err := sign(h[:]); err != nil {
			b.Fatal(err)
		}
	}
	quotesPerSecond(b)
}

// floorKeys are the attestation key and the PCK key of q.
func floorKeys(b *testing.B, q *abi.Quote) (ak, pck *ecdsa.PublicKey) {
	ak, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.AttestationKey...))
	if err != nil {
		b.Fatal(err)
	}
	pemChain, err := q.PCKChainPEM()
	if err != nil {
		b.Fatal(err)
	}
	blk, _ := pem.Decode(pemChain)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	return ak, c.PublicKey.(*ecdsa.PublicKey)
}

func BenchmarkParseQuote(b *testing.B) {
	_, quote := benchPlatform(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(quote)))
	for i := 0; i < b.N; i++ {
		if _, err := Parse(evidence.SgxEnclave, quote); err != nil {
			b.Fatal(err)
		}
	}
}
