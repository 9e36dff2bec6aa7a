package sgx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"

	"github.com/attestd/attestd/evidence/sgx/abi"
)

// FloorOpES256 returns one operation of BenchmarkCryptoFloorSGXES256 (the
// quote's two ECDSA P-256 verifications and one ES256 signature of a
// 1.5 KB header.payload), for the interleaved ratio benchmark of package
// sgx_test (BenchmarkES256FloorRatio). It is exported only to the tests of
// this directory.
func FloorOpES256(b *testing.B) func() error {
	_, quoteBytes := benchPlatform(b)
	q, err := abi.ParseQuote(quoteBytes)
	if err != nil {
		b.Fatal(err)
	}
	ak, pckKey := floorKeys(b, q)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signed, qeReport := q.SignedBytes(), q.QE.QEReport.Marshal()
	token := make([]byte, 1500)
	verify := func(pub *ecdsa.PublicKey, msg, sig []byte) bool {
		h := sha256.Sum256(msg)
		return ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	return func() error {
		if !verify(ak, signed, q.Signature) || !verify(pckKey, qeReport, q.QE.QEReportSignature) {
			return errors.New("floor: signature does not verify")
		}
		h := sha256.Sum256(token)
		_, _, err := ecdsa.Sign(rand.Reader, ecKey, h[:])
		return err
	}
}
