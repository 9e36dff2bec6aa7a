// Package tpm turns a verified MAA TPM/VBS attestation (evidence/tpm/verify)
// into the incoming claims MAA's Tpm policies see (spec §1.3): aikValidated,
// aikPubHash, tpmVersion, secureBootEnabled, the Windows boot properties, the
// VBS enclave identity, the PCR values and the event log as the JSON text
// that 1.2 policies query with JmesPath ("events", "bootEvents", "pcrs"),
// and the key objects (x-ms-tpm-request-key, x-ms-tpm-other-keys).
//
// The Windows claims (bootDebuggingDisabled, notSafeMode, notWinPE,
// vbsEnabled, iommuEnabled) are emitted only when the replayed log carries
// Windows SIPA measurements; MAA does not publish how it derives them, so
// each is documented beside its computation.
package tpm

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/verify"
)

// Claims returns the incoming claims of a verified request, in a stable order.
func Claims(r *verify.Result) ([]evidence.Claim, error) {
	var out []evidence.Claim
	add := func(t string, v any) { out = append(out, evidence.Claim{Type: t, Value: v}) }
	add("tpmVersion", int64(2))
	add("aikValidated", r.AIKValidated)
	if der, err := x509.MarshalPKIXPublicKey(r.AIK); err == nil {
		// aikPubHash: SHA-256 of the AIK's SubjectPublicKeyInfo, base64url.
		sum := sha256.Sum256(der)
		add("aikPubHash", base64.RawURLEncoding.EncodeToString(sum[:]))
	}
	if r.Log != nil {
		on, _ := r.Log.SecureBoot()
		add("secureBootEnabled", on)
		if f := r.Log.WindowsFlags(); f.Seen {
			add("bootDebuggingDisabled", !f.BootDebugging)
			add("notSafeMode", !f.SafeMode)
			add("notWinPE", !f.WinPE)
			add("vbsEnabled", f.VSMRequired)
			add("iommuEnabled", f.IOMMURequired)
		}
		js, err := r.Log.JSON()
		if err != nil {
			return nil, err
		}
		out = append(out, evidence.Claim{Type: "events", Value: js, PolicyOnly: true})
	} else {
		add("secureBootEnabled", false)
	}
	if r.BootLog != nil {
		js, err := r.BootLog.JSON()
		if err != nil {
			return nil, err
		}
		out = append(out, evidence.Claim{Type: "bootEvents", Value: js, PolicyOnly: true})
	}
	pcrs, err := pcrJSON(r.Quote)
	if err != nil {
		return nil, err
	}
	out = append(out, evidence.Claim{Type: "pcrs", Value: pcrs, PolicyOnly: true})
	rk, err := json.Marshal(r.RequestKey.Policy)
	if err != nil {
		return nil, err
	}
	out = append(out, evidence.Claim{Type: "x-ms-tpm-request-key", Value: string(rk), PolicyOnly: true})
	others := make([]map[string]any, 0, len(r.OtherKeys))
	for _, k := range r.OtherKeys {
		others = append(others, k.Policy)
	}
	ok, err := json.Marshal(others)
	if err != nil {
		return nil, err
	}
	out = append(out, evidence.Claim{Type: "x-ms-tpm-other-keys", Value: string(ok), PolicyOnly: true})
	add("vbsReportPresent", r.VBS != nil)
	if v := r.VBS; v != nil {
		b64 := base64.RawURLEncoding.EncodeToString
		id := v.Identity
		add("enclaveAuthorId", b64(id.AuthorID[:]))
		add("enclaveImageId", b64(id.ImageID[:]))
		add("enclaveOwnerId", b64(id.OwnerID[:]))
		add("enclaveFamilyId", b64(id.FamilyID[:]))
		add("enclaveUniqueId", b64(id.UniqueID[:]))
		add("enclaveSvn", int64(id.EnclaveSvn))
		add("enclaveSecureKernelSvn", int64(id.SecureKernelSvn))
		add("enclavePlatformSvn", int64(id.PlatformSvn))
		add("enclaveFlags", int64(id.Flags))
	}
	return out, nil
}

// pcrJSON renders the quoted PCRs as {"PCRs":[{"Index", "Digests":{"SHA256":
// hex, …}}]} (the shape of the policy tests' "pcrs" claim), ascending index.
func pcrJSON(q *verify.QuoteResult) (string, error) {
	type entry struct {
		Index   int               `json:"Index"`
		Digests map[string]string `json:"Digests"`
	}
	byIndex := map[int]map[string]string{}
	if q != nil {
		for _, p := range q.PCRs {
			if byIndex[p.Index] == nil {
				byIndex[p.Index] = map[string]string{}
			}
			name := map[string]string{"SHA-1": "SHA1", "SHA-256": "SHA256", "SHA-384": "SHA384", "SHA-512": "SHA512"}[p.Alg.String()]
			if name == "" {
				return "", fmt.Errorf("PCR %d: unexpected bank %v", p.Index, p.Alg)
			}
			byIndex[p.Index][name] = hex.EncodeToString(p.Digest)
		}
	}
	out := struct {
		PCRs []entry `json:"PCRs"`
	}{PCRs: []entry{}}
	for i := 0; i < 32; i++ {
		if d, ok := byIndex[i]; ok {
			out.PCRs = append(out.PCRs, entry{Index: i, Digests: d})
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}
