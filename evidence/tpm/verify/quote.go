// Package verify checks MAA TPM/VBS attestation requests: the request JWS
// signature, the AIK (certificate chain to configured roots, or a configured
// trusted key), TPM2_Quote signatures (RSASSA, RSA-PSS, ECDSA) and their
// qualifying data, the PCR digest of the reported PCR values (SHA-1,
// SHA-256, SHA-384 and SHA-512 banks), TCG event log replay, TPM2_Certify
// bindings of other keys and VBS enclave reports. Every failure is an
// *evidence.Error whose Check is one of the constants in checks.go.
//
// Nothing is trusted by default: without Options.Roots or
// Options.TrustedAKs no AIK validates, and with require_valid_aik_cert
// (Options.AllowUnvalidatedAIK false, the default) the request is refused.
//
// VBS enclave reports: the report's EnclaveData must be
// SHA-512(UTF8(report_signed)) and its structure (winnt.h, documented) must
// parse. Its RSA-PSS signature is made by the secure kernel's identity key
// (IDK_S), which Windows measures into the boot log in a SIPA event whose
// encoding is not publicly documented; this package therefore verifies the
// signature only against keys configured in Options.VBSSigningKeys and
// refuses VBS requests when none is configured (fail closed: without the
// signature the enclave identity claims would be the client's word).
//
// v1 requests (typ attReq) carry Windows NCryptCreateClaim platform claims:
// PCP platform attestation blobs, whose layout Microsoft publishes in its
// PCP reference implementation (abi.PlatformBlob). VerifyPlatformClaim
// checks them as that reference's validator does (TPM 2.0 only: a TPM 1.2
// blob is refused with CheckUnsupported), and a v1 request yields the same
// Result as a v2 one.
package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"math/big"
	"sort"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
)

// QuoteResult is a verified TPM2_Quote.
type QuoteResult struct {
	Attest *tpm2.TPMSAttest
	// PCRs are the quoted values, authenticated by the signature, in quote
	// order (bank by bank, ascending index).
	PCRs []eventlog.PCR
	// Mask has bit n set when PCR n is quoted in at least one bank.
	Mask uint32
}

// hashOf maps a TPM_ALG_ID hash to crypto.Hash.
func hashOf(alg uint16) (crypto.Hash, error) {
	h, err := tpm2.TPMIAlgHash(alg).Hash()
	if err != nil || !h.Available() {
		return 0, fmt.Errorf("hash algorithm %#x is not supported", alg)
	}
	return h, nil
}

// VerifySignature checks a TPMT_SIGNATURE over msg with key (the AIK):
// RSASSA-PKCS1-v1_5 and RSA-PSS for RSA keys, ECDSA for EC keys, with the
// hash the signature names. check is the Check reported on failure.
func VerifySignature(check evidence.Check, key crypto.PublicKey, msg, sigBytes []byte) error {
	sig, err := abi.ParseSignature(sigBytes)
	if err != nil {
		return &evidence.Error{Check: check, Err: err}
	}
	var hashAlg tpm2.TPMIAlgHash
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		var s *tpm2.TPMSSignatureRSA
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			s, err = sig.Signature.RSASSA()
		} else {
			s, err = sig.Signature.RSAPSS()
		}
		if err != nil {
			return evidence.Errorf(check, "RSA signature: %v", err)
		}
		hashAlg = s.Hash
		h, err := hashOf(uint16(hashAlg))
		if err != nil {
			return evidence.Errorf(check, "%v", err)
		}
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return evidence.Errorf(check, "an RSA signature but the AIK is %T", key)
		}
		d := h.New()
		d.Write(msg)
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			err = rsa.VerifyPKCS1v15(pub, h, d.Sum(nil), s.Sig.Buffer)
		} else {
			// TPMs use the maximum salt length or the hash length (Part 1
			// §B.7); Auto accepts both and nothing weaker than the hash.
			err = rsa.VerifyPSS(pub, h, d.Sum(nil), s.Sig.Buffer, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		if err != nil {
			return evidence.Errorf(check, "signature does not verify with the AIK: %v", err)
		}
		return nil
	case tpm2.TPMAlgECDSA:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return evidence.Errorf(check, "ECDSA signature: %v", err)
		}
		h, err := hashOf(uint16(s.Hash))
		if err != nil {
			return evidence.Errorf(check, "%v", err)
		}
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return evidence.Errorf(check, "an ECDSA signature but the AIK is %T", key)
		}
		d := h.New()
		d.Write(msg)
		r, sv := new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(pub, d.Sum(nil), r, sv) {
			return evidence.Errorf(check, "ECDSA signature does not verify with the AIK")
		}
		return nil
	default:
		return evidence.Errorf(check, "signature scheme %#x: want RSASSA, RSAPSS or ECDSA", uint16(sig.SigAlg))
	}
}

// sigHash returns the hash a TPMT_SIGNATURE names (the quote's pcrDigest is
// computed with the signing scheme's hash, Part 3 §18.4).
func sigHash(sigBytes []byte) (crypto.Hash, error) {
	sig, err := abi.ParseSignature(sigBytes)
	if err != nil {
		return 0, err
	}
	var alg tpm2.TPMIAlgHash
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA:
		s, err := sig.Signature.RSASSA()
		if err != nil {
			return 0, err
		}
		alg = s.Hash
	case tpm2.TPMAlgRSAPSS:
		s, err := sig.Signature.RSAPSS()
		if err != nil {
			return 0, err
		}
		alg = s.Hash
	case tpm2.TPMAlgECDSA:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return 0, err
		}
		alg = s.Hash
	default:
		return 0, fmt.Errorf("signature scheme %#x", uint16(sig.SigAlg))
	}
	return hashOf(uint16(alg))
}

// VerifyQuote verifies a TPM2_Quote: attest is TPMS_ATTEST, sig its
// TPMT_SIGNATURE by ak; its extraData (qualifyingData) must equal nonce
// (nil nonce: must be empty); the reported banks must list exactly the
// quoted PCRs and hash, in selection order, to the quote's pcrDigest.
func VerifyQuote(ak crypto.PublicKey, attest, sig, nonce []byte, banks []abi.PCRBank) (*QuoteResult, error) {
	a, err := abi.ParseAttest(attest)
	if err != nil {
		return nil, &evidence.Error{Check: CheckQuote, Err: err}
	}
	if a.Type != tpm2.TPMSTAttestQuote {
		return nil, evidence.Errorf(CheckQuote, "TPMS_ATTEST type %#x, want TPM_ST_ATTEST_QUOTE", uint16(a.Type))
	}
	if err := VerifySignature(CheckQuoteSignature, ak, attest, sig); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(a.ExtraData.Buffer, nonce) != 1 {
		return nil, evidence.Errorf(CheckChallenge, "quote qualifyingData (%d bytes) does not match the expected value (%d bytes)", len(a.ExtraData.Buffer), len(nonce))
	}
	h, err := sigHash(sig)
	if err != nil {
		return nil, &evidence.Error{Check: CheckQuote, Err: err}
	}
	return quotedPCRs(a, h, banks)
}

// quotedPCRs checks a quote's PCR selection against the reported banks:
// they must list exactly the quoted PCRs and hash with h (the signing
// scheme's hash, Part 3 §18.4), in selection order, to its pcrDigest.
// v1 and v2 requests share it; they differ in where the values and the
// signature come from.
func quotedPCRs(a *tpm2.TPMSAttest, h crypto.Hash, banks []abi.PCRBank) (*QuoteResult, error) {
	info, err := a.Attested.Quote()
	if err != nil {
		return nil, &evidence.Error{Check: CheckQuote, Err: err}
	}
	reported := map[uint16]map[int][]byte{}
	for _, b := range banks {
		m := map[int][]byte{}
		for _, v := range b.Values {
			m[v.Index] = v.Digest
		}
		reported[b.Algorithm] = m
	}
	res := &QuoteResult{Attest: a}
	d := h.New()
	used := 0
	for _, sel := range info.PCRSelect.PCRSelections {
		bank, ok := reported[uint16(sel.Hash)]
		ph, herr := hashOf(uint16(sel.Hash))
		if herr != nil {
			return nil, evidence.Errorf(CheckPCRDigest, "quoted bank: %v", herr)
		}
		for i := 0; i < 8*len(sel.PCRSelect); i++ {
			if sel.PCRSelect[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			if !ok {
				return nil, evidence.Errorf(CheckPCRDigest, "the quote covers bank %#x, which the request does not report", uint16(sel.Hash))
			}
			v, ok := bank[i]
			if !ok {
				return nil, evidence.Errorf(CheckPCRDigest, "the quote covers PCR %d of bank %#x, which the request does not report", i, uint16(sel.Hash))
			}
			if len(v) != ph.Size() {
				return nil, evidence.Errorf(CheckPCRDigest, "PCR %d of bank %#x: %d bytes, want %d", i, uint16(sel.Hash), len(v), ph.Size())
			}
			d.Write(v)
			used++
			res.PCRs = append(res.PCRs, eventlog.PCR{Index: i, Alg: ph, Digest: bytes.Clone(v)})
			if i < 32 {
				res.Mask |= 1 << i
			}
		}
	}
	total := 0
	for _, b := range banks {
		total += len(b.Values)
	}
	if total != used {
		return nil, evidence.Errorf(CheckPCRDigest, "the request reports %d PCR values but the quote covers %d", total, used)
	}
	if subtle.ConstantTimeCompare(d.Sum(nil), info.PCRDigest.Buffer) != 1 {
		return nil, evidence.Errorf(CheckPCRDigest, "the reported PCR values do not hash to the quote's pcrDigest")
	}
	return res, nil
}

// maskString lists the PCR indices of a mask, for error messages.
func maskString(m uint32) []int {
	var out []int
	for i := 0; i < 32; i++ {
		if m&(1<<i) != 0 {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out
}
