package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/attestd/attestd/policy/internal/jmespath"
)

// Limits; see the package documentation.
const (
	MaxPolicyBytes   = 1 << 20
	MaxRules         = 4096
	MaxConditions    = 256
	MaxProps         = 64
	MaxExprDepth     = 32
	MaxStringLiteral = 256 << 10
	MaxClaims        = 65536
	MaxValues        = 65536
	MaxValueBytes    = 1 << 20
	MaxEvalBytes     = 16 << 20
	MaxJSONInput     = 8 << 20
	JMESPathSteps    = 2_000_000
	MaxEvalWork      = 50_000_000
	maxJSONDepth     = 128
)

// ErrLimit is wrapped by every error caused by one of the limits above.
var ErrLimit = jmespath.ErrLimit

// Claim issuers (spec §5.1).
const (
	IssuerService = "AttestationService"
	IssuerPolicy  = "AttestationPolicy"
	IssuerCustom  = "CustomClaim"
)

// Claim is one claim: Value is bool, int64 or string. ReadOnly marks a
// value that may be tested and add()ed but never issued (spec §5.6); the
// service claim "pcrs" is read-only even when the flag is not set.
type Claim struct {
	Type     string `json:"type"`
	Value    any    `json:"value"`
	Issuer   string `json:"issuer"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Policy is a parsed, compiled policy. It is immutable and safe for
// concurrent use; evaluation scratch space is pooled per policy.
type Policy struct {
	text     string
	version  string
	sections [3]*section
	pool     sync.Pool // *evalState
}

// Text returns the policy text exactly as given to Parse.
func (p *Policy) Text() string { return p.text }

// Version returns the declared version: "1.0", "1.1" or "1.2".
func (p *Policy) Version() string { return p.version }

// Hash returns MAA's x-ms-policy-hash of a policy text:
// base64url(SHA-256(base64url(text))), unpadded, over the exact bytes (spec §1).
func Hash(text string) string {
	inner := base64.RawURLEncoding.EncodeToString([]byte(text))
	sum := sha256.Sum256([]byte(inner))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Hash returns Hash(p.Text()).
func (p *Policy) Hash() string { return Hash(p.text) }

// NoTpmPolicyMessage is MAA's error.message (code "Bad request", HTTP 400)
// for a Tpm attestation while no Tpm policy is set (spec §10, §11).
const NoTpmPolicyMessage = "A VBS attestation policy has not been set on the attestation provider."

// Default policy texts (spec §11).
const (
	// defaultSGX is MAA's current SgxEnclave/OpenEnclave default, byte for
	// byte (hash ViVGS4BYl70X8eUrgryHg0TtbEk9WtIc6DtTBEFxaWc, seen in real tokens).
	defaultSGX = `version= 1.1;configurationrules{=> issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault");};authorizationrules{=> permit();};issuancerules{c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);};`
	// defaultPermitAll stands in for the unpublished SevSnpVm/TdxVm defaults (spec §13-13).
	defaultPermitAll = `version= 1.0;authorizationrules{=> permit();};issuancerules{};`
)

// Default returns the default policy of an attestation type (spec §11),
// matched case-insensitively. ok is false for Tpm, which has no default
// (attestation fails until a policy is set), and for unknown types.
func Default(attestationType string) (text string, ok bool) {
	switch strings.ToLower(attestationType) {
	case "sgxenclave", "openenclave":
		return defaultSGX, true
	case "sevsnpvm", "tdxvm", "azureguest":
		return defaultPermitAll, true
	}
	return "", false
}
