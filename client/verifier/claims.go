package verifier

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Attestation types as tokens name them in x-ms-attestation-type
// (maa-api.md §1.2; SgxEnclave and OpenEnclave both give "sgx").
const (
	TypeSGX      = "sgx"
	TypeSevSnpVM = "sevsnpvm"
	TypeTdxVM    = "tdxvm"
	TypeAzureVM  = "azurevm"
	TypeTPM      = "tpm"
	TypeVBS      = "vbs"
)

// Result is an attestation token and its typed claims. A claim the token
// lacks leaves its field zero; Claims holds everything, and String, Int,
// Bool tell an absent claim from a zero one.
type Result struct {
	// Token is the token (Raw holds the JWT to pass on).
	Token *Token
	// Unsigned is true for a draft-policy result (alg "none"): nobody
	// vouches for its claims. Verifier.Verify never returns one.
	Unsigned bool

	Issuer                       string
	IssuedAt, NotBefore, Expires time.Time
	// JTI, Nonce, Version: jti, nonce, x-ms-ver.
	JTI, Nonce, Version string
	// AttestationType is x-ms-attestation-type ("sgx" for SGX and OE).
	AttestationType string
	// ComplianceStatus is x-ms-compliance-status (SNP and TDX VMs, e.g.
	// "azure-compliant-cvm").
	ComplianceStatus string
	// PolicyHash is x-ms-policy-hash, decoded: SHA-256 of the base64url
	// of the policy text that decided.
	PolicyHash []byte
	// PolicySigner is the certificate that signed the policy in force
	// (x-ms-policy-signer), nil for unsigned policies.
	PolicySigner *x509.Certificate
	// PolicyClaims are the claims the policy issued (x-ms-policy).
	PolicyClaims map[string]any
	// RuntimeClaims / InitTimeClaims are x-ms-runtime / x-ms-inittime (JSON
	// runtime / init-time data). Secure key release takes the attester's
	// key from here: the service bound the data's SHA-256 to the TEE's
	// report data before signing.
	RuntimeClaims, InitTimeClaims map[string]any
	// EnclaveHeldData is x-ms-sgx-ehd, decoded (binary runtime data).
	EnclaveHeldData []byte

	// SGX claims (x-ms-sgx-*); MREnclave, MRSigner, ReportData as lower-case hex.
	MREnclave, MRSigner string
	ProductID, SVN      int64
	IsDebuggable        bool
	ReportData          string
	TCBStatus           string   // x-ms-sgx-tcb-status (not emitted by every MAA version)
	AdvisoryIDs         []string // x-ms-sgx-advisory-ids
	Collateral          map[string]any
	// KSS enclaves only: x-ms-sgx-config-id (hex), -config-svn,
	// -isv-extended-product-id and -isv-family-id (hex).
	ConfigID                  string
	ConfigSVN                 int64
	ISVExtProductID, FamilyID string

	// SevSnp, Tdx and Tpm are the claims of those TEEs, nil unless the
	// token is of that type (x-ms-attestation-type, or for TPM the
	// presence of its claims).
	SevSnp *SevSnpClaims
	Tdx    *TdxClaims
	Tpm    *TpmClaims

	// Claims are all the token's claims (numbers as json.Number).
	Claims map[string]any
}

// SevSnpClaims are the x-ms-sevsnpvm-* claims of an AMD SEV-SNP VM
// (maa-api.md §1.2). Hex fields are lower-case hex as in the token.
type SevSnpClaims struct {
	AuthorKeyDigest, IDKeyDigest string // SHA-384 of the author / ID keys
	FamilyID, ImageID            string // 16 bytes each
	HostData                     string // 32 bytes the host set at launch
	LaunchMeasurement            string // MEASUREMENT, 48 bytes
	ReportData                   string // REPORT_DATA, 64 bytes
	ReportID                     string
	BootloaderSVN, GuestSVN      int64
	MicrocodeSVN, SNPFwSVN       int64
	TeeSVN, VMPL                 int64
	IsDebuggable                 bool
	MigrationAllowed, SMTAllowed bool
}

// TdxClaims are the EAT-profile claims of an Intel TDX VM (maa-api.md
// §1.2, ../samples/docs/tdxvm_token_payload.json). Hex fields as in the
// token.
type TdxClaims struct {
	TCBStatus    string // attester_tcb_status
	AdvisoryIDs  []string
	DbgStat      string // "disabled" unless the TD is debuggable
	EATProfile   string
	IntUse       string
	MRConfigID   string
	MROwner      string
	MROwnerConf  string
	MRSeam       string
	MRSignerSeam string
	MRTD         string
	RTMR         [4]string
	ReportData   string
	SeamAttrs    string
	SeamSVN      int64
	TDAttrs      string
	// The decoded TD attribute bits.
	Debug, KeyLocker, Perfmon, ProtectionKeys, SeptVEDisable bool
	TeeTCBSVN                                                string
	XFAM                                                     string
}

// TpmClaims are what a TPM/VBS report carries (maa-api.md §1.3): the
// attested key (cnf), rp_data, and the policy's issued claims under the
// names of MAA's incoming TPM claims when the policy issued them.
type TpmClaims struct {
	// ConfirmationJWK is cnf.jwk (RFC 7800): the key the TPM attested.
	ConfirmationJWK map[string]any
	RPData          string
	// Issued incoming claims (false/zero/empty also when not issued; use
	// Result.Bool etc. to tell).
	AIKValidated, SecureBootEnabled, VBSReportPresent bool
	AIKPubHash                                        string
	TPMVersion                                        int64
	EnclaveAuthorID, EnclaveImageID                   string
	EnclaveOwnerID, EnclaveFamilyID                   string
	EnclaveSVN                                        int64
}

// String returns the string claim name; ok is false when it is absent or
// not a string.
func (r *Result) String(name string) (string, bool) {
	s, ok := r.Claims[name].(string)
	return s, ok
}

// Int returns the integer claim name; ok is false when it is absent or not
// an integer.
func (r *Result) Int(name string) (int64, bool) {
	n, ok := r.Claims[name].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	return v, err == nil
}

// Bool returns the boolean claim name; ok is false when it is absent or
// not a boolean.
func (r *Result) Bool(name string) (value, ok bool) {
	value, ok = r.Claims[name].(bool)
	return value, ok
}

// claimReader reads typed claims and collects every type mismatch.
type claimReader struct {
	claims map[string]any
	errs   []error
}

func (c *claimReader) str(name string, dst *string) {
	if v, ok := c.claims[name]; ok {
		s, ok := v.(string)
		if !ok {
			c.errs = append(c.errs, fmt.Errorf("claim %s is %T, want string", name, v))
		}
		*dst = s
	}
}

func (c *claimReader) obj(name string) map[string]any {
	v, ok := c.claims[name]
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.errs = append(c.errs, fmt.Errorf("claim %s is %T, want object", name, v))
	}
	return m
}

func (c *claimReader) num(name string, dst *int64) {
	if v, ok := c.claims[name]; ok {
		n, ok := v.(json.Number)
		var err error
		if ok {
			*dst, err = strconv.ParseInt(string(n), 10, 64)
		}
		if !ok || err != nil {
			c.errs = append(c.errs, fmt.Errorf("claim %s = %v is not an integer", name, v))
		}
	}
}

func (c *claimReader) boolean(name string, dst *bool) {
	if v, ok := c.claims[name]; ok {
		b, ok := v.(bool)
		if !ok {
			c.errs = append(c.errs, fmt.Errorf("claim %s is %T, want bool", name, v))
		}
		*dst = b
	}
}

func (c *claimReader) bin(name string) []byte {
	var s string
	c.str(name, &s)
	if s == "" {
		return nil
	}
	b, err := B64URL(s)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("claim %s is not base64url", name))
	}
	return b
}

func (c *claimReader) strs(name string) []string {
	v, ok := c.claims[name]
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	var out []string
	for _, a := range arr {
		s, isStr := a.(string)
		ok = ok && isStr
		out = append(out, s)
	}
	if !ok {
		c.errs = append(c.errs, fmt.Errorf("claim %s is not an array of strings", name))
	}
	return out
}

func (c *claimReader) has(prefix string) bool {
	for k := range c.claims {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// NewResult reads the typed claims of an attestation token (parsed with
// ParseToken, or validated by a Verifier or Client). It checks nothing
// about the token's authenticity. A claim of the wrong JSON type is an
// error (ReasonMalformed, every mismatch named): the claim names are MAA's,
// so a mismatch means the token is not what it claims to be.
func NewResult(t *Token) (*Result, error) {
	r := &Result{Token: t, Unsigned: !t.Signed, Claims: t.Claims,
		Issuer: t.Issuer, IssuedAt: t.IssuedAt, NotBefore: t.NotBefore, Expires: t.Expires}
	c := &claimReader{claims: t.Claims}
	c.str("jti", &r.JTI)
	c.str("nonce", &r.Nonce)
	c.str("x-ms-ver", &r.Version)
	c.str("x-ms-attestation-type", &r.AttestationType)
	c.str("x-ms-compliance-status", &r.ComplianceStatus)
	r.PolicyHash = c.bin("x-ms-policy-hash")
	r.EnclaveHeldData = c.bin("x-ms-sgx-ehd")
	r.PolicyClaims = c.obj("x-ms-policy")
	r.RuntimeClaims = c.obj("x-ms-runtime")
	r.InitTimeClaims = c.obj("x-ms-inittime")
	r.Collateral = c.obj("x-ms-sgx-collateral")
	if signer := c.obj("x-ms-policy-signer"); signer != nil {
		var jwk struct {
			X5c []string `json:"x5c"`
		}
		b, _ := json.Marshal(signer)
		if err := json.Unmarshal(b, &jwk); err != nil || len(jwk.X5c) == 0 {
			c.errs = append(c.errs, fmt.Errorf("claim x-ms-policy-signer has no x5c"))
		} else if certs, err := ParseX5C(jwk.X5c); err != nil {
			c.errs = append(c.errs, fmt.Errorf("claim x-ms-policy-signer: %v", err))
		} else {
			r.PolicySigner = certs[0]
		}
	}
	c.str("x-ms-sgx-mrenclave", &r.MREnclave)
	c.str("x-ms-sgx-mrsigner", &r.MRSigner)
	c.str("x-ms-sgx-report-data", &r.ReportData)
	c.str("x-ms-sgx-tcb-status", &r.TCBStatus)
	c.num("x-ms-sgx-product-id", &r.ProductID)
	c.num("x-ms-sgx-svn", &r.SVN)
	c.boolean("x-ms-sgx-is-debuggable", &r.IsDebuggable)
	r.AdvisoryIDs = c.strs("x-ms-sgx-advisory-ids")
	c.str("x-ms-sgx-config-id", &r.ConfigID)
	c.num("x-ms-sgx-config-svn", &r.ConfigSVN)
	c.str("x-ms-sgx-isv-extended-product-id", &r.ISVExtProductID)
	c.str("x-ms-sgx-isv-family-id", &r.FamilyID)

	if r.AttestationType == TypeSevSnpVM || c.has("x-ms-sevsnpvm-") {
		r.SevSnp = readSevSnp(c)
	}
	if r.AttestationType == TypeTdxVM || c.has("tdx_") {
		r.Tdx = readTdx(c)
	}
	if r.AttestationType == TypeTPM || r.AttestationType == TypeVBS || t.Claims["cnf"] != nil || t.Claims["aikValidated"] != nil {
		r.Tpm = readTpm(c)
	}
	if len(c.errs) > 0 {
		return nil, &ValidationError{Reason: ReasonMalformed, Err: fmt.Errorf("attestation token claims: %w", errors.Join(c.errs...))}
	}
	return r, nil
}

func readSevSnp(c *claimReader) *SevSnpClaims {
	s := &SevSnpClaims{}
	p := "x-ms-sevsnpvm-"
	c.str(p+"authorkeydigest", &s.AuthorKeyDigest)
	c.str(p+"idkeydigest", &s.IDKeyDigest)
	c.str(p+"familyId", &s.FamilyID)
	c.str(p+"imageId", &s.ImageID)
	c.str(p+"hostdata", &s.HostData)
	c.str(p+"launchmeasurement", &s.LaunchMeasurement)
	c.str(p+"reportdata", &s.ReportData)
	c.str(p+"reportid", &s.ReportID)
	c.num(p+"bootloader-svn", &s.BootloaderSVN)
	c.num(p+"guestsvn", &s.GuestSVN)
	c.num(p+"microcode-svn", &s.MicrocodeSVN)
	c.num(p+"snpfw-svn", &s.SNPFwSVN)
	c.num(p+"tee-svn", &s.TeeSVN)
	c.num(p+"vmpl", &s.VMPL)
	c.boolean(p+"is-debuggable", &s.IsDebuggable)
	c.boolean(p+"migration-allowed", &s.MigrationAllowed)
	c.boolean(p+"smt-allowed", &s.SMTAllowed)
	return s
}

func readTdx(c *claimReader) *TdxClaims {
	x := &TdxClaims{}
	c.str("attester_tcb_status", &x.TCBStatus)
	x.AdvisoryIDs = c.strs("attester_advisory_ids")
	c.str("dbgstat", &x.DbgStat)
	c.str("eat_profile", &x.EATProfile)
	c.str("intuse", &x.IntUse)
	c.str("tdx_mrconfigid", &x.MRConfigID)
	c.str("tdx_mrowner", &x.MROwner)
	c.str("tdx_mrownerconfig", &x.MROwnerConf)
	c.str("tdx_mrseam", &x.MRSeam)
	c.str("tdx_mrsignerseam", &x.MRSignerSeam)
	c.str("tdx_mrtd", &x.MRTD)
	for i := range x.RTMR {
		c.str("tdx_rtmr"+strconv.Itoa(i), &x.RTMR[i])
	}
	c.str("tdx_report_data", &x.ReportData)
	c.str("tdx_seam_attributes", &x.SeamAttrs)
	c.num("tdx_seamsvn", &x.SeamSVN)
	c.str("tdx_td_attributes", &x.TDAttrs)
	c.boolean("tdx_td_attributes_debug", &x.Debug)
	c.boolean("tdx_td_attributes_key_locker", &x.KeyLocker)
	c.boolean("tdx_td_attributes_perfmon", &x.Perfmon)
	c.boolean("tdx_td_attributes_protection_keys", &x.ProtectionKeys)
	c.boolean("tdx_td_attributes_septve_disable", &x.SeptVEDisable)
	c.str("tdx_tee_tcb_svn", &x.TeeTCBSVN)
	c.str("tdx_xfam", &x.XFAM)
	return x
}

func readTpm(c *claimReader) *TpmClaims {
	t := &TpmClaims{}
	if cnf := c.obj("cnf"); cnf != nil {
		jwk, ok := cnf["jwk"].(map[string]any)
		if !ok {
			c.errs = append(c.errs, errors.New("claim cnf has no jwk object"))
		}
		t.ConfirmationJWK = jwk
	}
	c.str("rp_data", &t.RPData)
	c.boolean("aikValidated", &t.AIKValidated)
	c.boolean("secureBootEnabled", &t.SecureBootEnabled)
	c.boolean("vbsReportPresent", &t.VBSReportPresent)
	c.str("aikPubHash", &t.AIKPubHash)
	c.num("tpmVersion", &t.TPMVersion)
	c.str("enclaveAuthorId", &t.EnclaveAuthorID)
	c.str("enclaveImageId", &t.EnclaveImageID)
	c.str("enclaveOwnerId", &t.EnclaveOwnerID)
	c.str("enclaveFamilyId", &t.EnclaveFamilyID)
	c.num("enclaveSvn", &t.EnclaveSVN)
	return t
}
