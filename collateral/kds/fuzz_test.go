package kds

import (
	"crypto/x509"
	"testing"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/internal/testenv"
)

const (
	vcekMilan  = "vectors/virtee-sev/tests/certs_data/vcek_milan.der"
	chainMilan = "vectors/virtee-sev/tests/certs_data/cert_chain_milan"
)

// seeds are real AMD files (when the shared vectors are present) plus
// small malformed inputs; fuzzing must never panic on any of them.
func seeds(f *testing.F) {
	for _, b := range testenv.Seeds(f,
		vcekMilan, "vectors/virtee-sev/tests/certs_data/vcek_turin.der", chainMilan,
		"vectors/go-sev-guest/verify/testdata/vcek.testcer",
		"vectors/ms-confidential-sidecar-snp/pkg/attest/test_data/uvm_host_amd_certificate.json",
	) {
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Add([]byte(`{"vcekCert":"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n","certificateChain":""}`))
}

// FuzzParseKDSResponses: the parsers of KDS answers (VCEK, chain, CRL) and
// the VCEK extension parser never panic, and an accepted VCEK's key names it.
func FuzzParseKDSResponses(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseCertificate(b); err == nil {
			if ext, err := ParseVCEKExtensions(c); err == nil {
				if err := CheckVCEK(ext.Key(), c); err != nil {
					t.Fatalf("a parsed VCEK does not answer its own key: %v", err)
				}
				if err := ext.Key().Validate(); err != nil {
					t.Fatalf("a parsed VCEK has an invalid key: %v", err)
				}
			}
		}
		if ch, err := ParseChain(b); err == nil && (ch.Signer == nil || ch.ARK == nil) {
			t.Fatal("ParseChain returned an incomplete chain")
		}
		ParseCRL(b)
	})
}

// FuzzBundleFile: classifying a file of a bundle never panics.
func FuzzBundleFile(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		bd := &Bundle{vceks: map[VCEKKey]*x509.Certificate{}, arks: map[Product]*x509.Certificate{},
			asks: map[ChainKey]*x509.Certificate{}, crls: map[ChainKey]*x509.RevocationList{}}
		bd.add("fuzz/vlek-crl", b)
	})
}

// FuzzDecodeRecord: the cache's on-disk records of the three KDS families
// never panic and what they accept round-trips.
func FuzzDecodeRecord(f *testing.F) {
	seeds(f)
	for _, b := range testenv.Seeds(f, vcekMilan) {
		if c, err := x509.ParseCertificate(b); err == nil {
			if ext, err := ParseVCEKExtensions(c); err == nil {
				if r, err := collateral.EncodeRecord(VCEKCodec, ext.Key(), c); err == nil {
					f.Add(r)
				}
			}
		}
	}
	for _, b := range testenv.Seeds(f, chainMilan) {
		if ch, err := ParseChain(b); err == nil {
			if r, err := collateral.EncodeRecord(ChainCodec, ChainKey{Milan, VCEK}, ch); err == nil {
				f.Add(r)
			}
		}
	}
	f.Add([]byte(`{"attestdCollateralRecord":1,"family":"amd-kds-crl","key":"crl-milan-vcek","document":"MAA="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, d, _, err := collateral.DecodeRecord(VCEKCodec, b); err == nil {
			r, _ := collateral.EncodeRecord(VCEKCodec, k, d)
			if k2, _, _, err := collateral.DecodeRecord(VCEKCodec, r); err != nil || k2 != k {
				t.Fatalf("VCEK record round trip: %v", err)
			}
		}
		if k, d, _, err := collateral.DecodeRecord(ChainCodec, b); err == nil {
			r, _ := collateral.EncodeRecord(ChainCodec, k, d)
			if k2, _, _, err := collateral.DecodeRecord(ChainCodec, r); err != nil || k2 != k {
				t.Fatalf("chain record round trip: %v", err)
			}
		}
		collateral.DecodeRecord(CRLCodec, b)
	})
}
