package tpmclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// The PCP platform attestation blob (what Windows' NCryptCreateClaim with
// NCRYPT_CLAIM_PLATFORM returns and MAA's v1 requests carry), laid out as
// Microsoft's reference implementation does: TSS.MSR PCPTool.v11,
// inc/TpmAtt.h (PCP_PLATFORM_ATTESTATION_BLOB2), dll/AttestationApi.cpp
// (TpmAttGeneratePlatformAttestation) and dll/TPM20.cpp (GenerateQuote20,
// GetPlatformPcrs20). The service side parses it in evidence/tpm/abi; this
// package builds it independently so that the two meet only on the bytes.
const (
	platformMagic2  = 0x32444150 // '2DAP': the crypto-agile blob
	platformTPM20   = 2          // TPM_VERSION_20
	platformHeader2 = 32         // sizeof(PCP_PLATFORM_ATTESTATION_BLOB2)
	platformPCRs    = 24         // AVAILABLE_PLATFORM_PCRS
)

// PlatformClaim is a PCP platform attestation blob of the SHA-256 bank
// (magic '2DAP', PcrAlgorithmId SHA-256): header, the values of PCRs 0–23
// (read with TPM2_PCR_Read, as GetPlatformPcrs20 does), the TPMS_ATTEST of
// a TPM2_Quote of mask with qualifyingData nonce (GenerateQuote20 passes
// the nonce verbatim), the AK's RSASSA signature bytes, and log filtered to
// mask (FilterLog). The AK must be an RSASSA key: the blob carries the bare
// signature, without the TPMT_SIGNATURE's scheme.
func PlatformClaim(ctx context.Context, t transport.TPM, ak *Key, nonce []byte, mask uint32, log []byte) ([]byte, error) {
	if mask == 0 || mask&^AllPCRs != 0 {
		return nil, fmt.Errorf("tpmclient: PCR mask %#x: want a non-empty subset of PCRs 0–23", mask)
	}
	filtered, err := FilterLog(log, mask)
	if err != nil {
		return nil, err
	}
	pcrs, err := readPCRs(ctx, t, tpm2.TPMAlgSHA256, AllPCRs)
	if err != nil {
		return nil, err
	}
	rsp, err := runQuote(t, ak, nonce, mask)
	if err != nil {
		return nil, err
	}
	if rsp.Signature.SigAlg != tpm2.TPMAlgRSASSA {
		return nil, fmt.Errorf("tpmclient: a platform claim needs an RSASSA AK, the quote is signed with scheme %#x", uint16(rsp.Signature.SigAlg))
	}
	sig, err := rsp.Signature.Signature.RSASSA()
	if err != nil {
		return nil, err
	}
	attest := rsp.Quoted.Bytes()
	var pcrBytes []byte
	for i := 0; i < platformPCRs; i++ {
		pcrBytes = append(pcrBytes, pcrs[i]...)
	}
	le := binary.LittleEndian
	var b []byte
	for _, v := range []uint32{platformMagic2, platformTPM20, platformHeader2, uint32(len(pcrBytes)),
		uint32(len(attest)), uint32(len(sig.Sig.Buffer)), uint32(len(filtered)), uint32(tpm2.TPMAlgSHA256)} {
		b = le.AppendUint32(b, v)
	}
	b = append(b, pcrBytes...)
	b = append(b, attest...)
	b = append(b, sig.Sig.Buffer...)
	return append(b, filtered...), nil
}

// FilterLog keeps the events of a TCG log whose PCR is in mask (0…23), and
// a crypto-agile log's "Spec ID Event03" header, as TpmAttiFilterLog
// (PCPTool.v11 dll/AttestationApi.cpp) does for a platform claim. It is
// written here because go-attestation parses logs but does not give back
// their records' bytes.
func FilterLog(log []byte, mask uint32) ([]byte, error) {
	le := binary.LittleEndian
	var out []byte
	off := 0
	need := func(n int) error {
		if n < 0 || len(log)-off < n {
			return fmt.Errorf("tpmclient: TCG log truncated at byte %d", off)
		}
		return nil
	}
	// sizes is nil for a SHA-1 (TCG 1.2 format) log, else the digest size
	// of each algorithm the crypto-agile header lists.
	var sizes map[uint16]int
	first := true
	for off < len(log) {
		start := off
		if err := need(8); err != nil {
			return nil, err
		}
		pcr, typ := le.Uint32(log[off:]), le.Uint32(log[off+4:])
		off += 8
		if sizes == nil {
			// TCG_PCClientPCREvent: SHA-1 digest, event size, event.
			if err := need(24); err != nil {
				return nil, err
			}
			size := int(le.Uint32(log[off+20:]))
			off += 24
			if err := need(size); err != nil {
				return nil, err
			}
			data := log[off : off+size]
			off += size
			if first && typ == EvNoAction && bytes.HasPrefix(data, []byte("Spec ID Event03\x00")) {
				s, err := specAlgorithms(data)
				if err != nil {
					return nil, err
				}
				sizes = s
				out = append(out, log[start:off]...)
				first = false
				continue
			}
		} else {
			// TCG_PCR_EVENT2: count, (algorithm, digest)…, event size, event.
			if err := need(4); err != nil {
				return nil, err
			}
			n := int(le.Uint32(log[off:]))
			off += 4
			if n > len(sizes) {
				return nil, fmt.Errorf("tpmclient: TCG log event at byte %d has %d digests, the header lists %d algorithms", start, n, len(sizes))
			}
			for i := 0; i < n; i++ {
				if err := need(2); err != nil {
					return nil, err
				}
				alg := le.Uint16(log[off:])
				sz, ok := sizes[alg]
				if !ok {
					return nil, fmt.Errorf("tpmclient: TCG log event at byte %d: algorithm %#x is not in the header", start, alg)
				}
				off += 2
				if err := need(sz); err != nil {
					return nil, err
				}
				off += sz
			}
			if err := need(4); err != nil {
				return nil, err
			}
			size := int(le.Uint32(log[off:]))
			off += 4
			if err := need(size); err != nil {
				return nil, err
			}
			off += size
		}
		first = false
		if pcr < platformPCRs && mask&(1<<pcr) != 0 {
			out = append(out, log[start:off]...)
		}
	}
	return out, nil
}

// specAlgorithms reads the digest sizes of a TCG_EfiSpecIDEventStruct
// (PC Client PFP §10.4.5.1): signature, platformClass, versions, uintnSize,
// numberOfAlgorithms, {algorithmId, digestSize}….
func specAlgorithms(d []byte) (map[uint16]int, error) {
	le := binary.LittleEndian
	if len(d) < 28 {
		return nil, errors.New("tpmclient: TCG log: Spec ID event truncated")
	}
	n := int(le.Uint32(d[24:]))
	if n == 0 || n > 16 || len(d) < 28+4*n {
		return nil, fmt.Errorf("tpmclient: TCG log: Spec ID event lists %d algorithms", n)
	}
	out := map[uint16]int{}
	for i := 0; i < n; i++ {
		out[le.Uint16(d[28+4*i:])] = int(le.Uint16(d[30+4*i:]))
	}
	return out, nil
}

// BuildRequestV1 builds and signs a v1 ("attReq") request: attest_key is
// r.RequestKey (it signs the JWS), tpm_att_data carries aik_cert, aik_pub,
// current_claim (PlatformClaim with qualifyingData = the challenge, PCRs
// r.PCRMask, default all), boot_claim (r.BootClaim, when set) and r.Log as
// srtm_boot_log. Nothing in a basic v1 request binds attest_key to the TPM
// (the service issues no cnf for it); a vbs one binds it by the enclave
// report over report_signed.
func BuildRequestV1(ctx context.Context, t transport.TPM, r Request) (string, error) {
	if r.AK == nil || r.RequestKey == nil || len(r.Challenge) == 0 {
		return "", errors.New("tpmclient: AK, RequestKey and Challenge are required")
	}
	if r.CertifiedKey != nil {
		return "", errors.New("tpmclient: other_keys (CertifiedKey) exist only in v2 requests")
	}
	mask := r.PCRMask
	if mask == 0 {
		mask = AllPCRs
	}
	claim, err := PlatformClaim(ctx, t, r.AK, r.Challenge, mask, r.Log)
	if err != nil {
		return "", err
	}
	ev := &Evidence{Log: r.Log, AIKPub: r.AK.Pub, Claim: claim, BootClaim: r.BootClaim}
	if r.Mutate != nil {
		r.Mutate(ev)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	akJWK, err := jose.JSONWebKey{Key: ev.AIKPub}.MarshalJSON()
	if err != nil {
		return "", err
	}
	jwk, err := jose.JSONWebKey{Key: r.RequestKey.Public()}.MarshalJSON()
	if err != nil {
		return "", err
	}
	tad := map[string]any{"aik_pub": json.RawMessage(akJWK), "current_claim": b64(ev.Claim)}
	if len(ev.BootClaim) > 0 {
		tad["boot_claim"] = b64(ev.BootClaim)
	}
	if len(ev.Log) > 0 {
		tad["srtm_boot_log"] = b64(ev.Log)
	}
	if len(r.AIKCert) > 0 {
		tad["aik_cert"] = b64(r.AIKCert)
	}
	data := map[string]any{
		"challenge":       b64(r.Challenge),
		"service_context": r.ServiceContext,
		"tpm_att_data":    tad,
		"attest_key":      json.RawMessage(jwk),
	}
	r.addOptional(data)
	return signRequest(r, abiTypV1, data)
}
