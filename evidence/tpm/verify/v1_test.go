package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
)

// platformVector is the platform claim stored in ../abi/testdata: built by
// tpmclient.PlatformClaim from a swtpm, with its AK and the nonce quoted.
func platformVector(t testing.TB) (blob []byte, ak crypto.PublicKey, nonce []byte) {
	t.Helper()
	dir := filepath.Join("..", "abi", "testdata")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	blk, _ := pem.Decode(read("platform-swtpm-ak.pem"))
	if blk == nil {
		t.Fatal("platform-swtpm-ak.pem: no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return read("platform-swtpm.bin"), k, read("platform-swtpm-nonce.txt")
}

// TestVerifyPlatformClaimVector verifies the stored swtpm claim and flips
// one thing at a time, each refused by its check.
func TestVerifyPlatformClaimVector(t *testing.T) {
	blob, ak, nonce := platformVector(t)
	q, l, err := VerifyPlatformClaim(ak, blob, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if q.Mask != abi.AllPlatformPCRs || len(q.PCRs) != 24 || l == nil || len(l.Events) == 0 {
		t.Fatalf("mask %#x, %d PCRs, log %v", q.Mask, len(q.PCRs), l)
	}
	if _, _, err := VerifyPlatformClaim(ak, blob, nil); err != nil {
		t.Errorf("as a boot claim (no challenge): %v", err)
	}
	edit := func(f func(p *abi.PlatformBlob)) []byte {
		p, err := abi.ParsePlatformBlob(blob)
		if err != nil {
			t.Fatal(err)
		}
		f(p)
		return abi.MarshalPlatformBlob(p)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		ak    crypto.PublicKey
		blob  []byte
		nonce []byte
		check evidence.Check
	}{
		{"another challenge", ak, blob, []byte("another challeng"), CheckChallenge},
		{"another AIK", &other.PublicKey, blob, nonce, CheckQuoteSignature},
		{"an EC AIK", &ecdsaKey(t).PublicKey, blob, nonce, CheckQuoteSignature},
		{"quote byte flipped", ak, edit(func(p *abi.PlatformBlob) { p.Quote[len(p.Quote)-1] ^= 1 }), nonce, CheckQuoteSignature},
		{"signature byte flipped", ak, edit(func(p *abi.PlatformBlob) { p.Signature[9] ^= 1 }), nonce, CheckQuoteSignature},
		{"PCR 7 tampered", ak, edit(func(p *abi.PlatformBlob) { p.PCRs[7] = make([]byte, 32) }), nonce, CheckPCRDigest},
		{"blob claims the SHA-384 bank", ak, edit(func(p *abi.PlatformBlob) {
			p.PCRAlg = 0x000C
			for i := range p.PCRs {
				p.PCRs[i] = make([]byte, 48)
			}
		}), nonce, CheckPCRDigest},
		{"log cut short", ak, edit(func(p *abi.PlatformBlob) { p.Log = p.Log[:len(p.Log)-40] }), nonce, CheckEventLogReplay},
		{"no log", ak, edit(func(p *abi.PlatformBlob) { p.Log = nil }), nonce, CheckEventLogReplay},
		{"truncated", ak, blob[:len(blob)-1], nonce, CheckPlatformClaim},
		{"TPM 1.2", ak, edit(func(p *abi.PlatformBlob) { p.Platform = abi.PlatformTPM12 }), nonce, CheckUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := VerifyPlatformClaim(tc.ak, tc.blob, tc.nonce)
			if got := evidence.CheckOf(err); got != string(tc.check) {
				t.Fatalf("check %q (%v), want %s", got, err, tc.check)
			}
		})
	}
}

func ecdsaKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzVerifyPlatformClaim: no blob panics or hangs the verifier.
func FuzzVerifyPlatformClaim(f *testing.F) {
	blob, ak, nonce := platformVector(f)
	f.Add(blob)
	f.Add(blob[:len(blob)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = VerifyPlatformClaim(ak, b, nonce)
	})
}

// BenchmarkVerifyPlatformClaim measures a v1 claim's verification (parse,
// RSA-2048 signature, PCR digest, log parse and replay) beside
// BenchmarkVerifyQuoteOnly, the same claim's TPM2_Quote signature alone:
// their ratio says how much the v1 structure costs over its crypto floor.
func BenchmarkVerifyPlatformClaim(b *testing.B) {
	blob, ak, nonce := platformVector(b)
	for b.Loop() {
		if _, _, err := VerifyPlatformClaim(ak, blob, nonce); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyQuoteOnly(b *testing.B) {
	blob, ak, _ := platformVector(b)
	p, err := abi.ParsePlatformBlob(blob)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		sum := sha256.Sum256(p.Quote)
		if err := rsa.VerifyPKCS1v15(ak.(*rsa.PublicKey), crypto.SHA256, sum[:], p.Signature); err != nil {
			b.Fatal(err)
		}
	}
}
