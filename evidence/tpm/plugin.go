package tpm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/internal/pemfile"
	"github.com/attestd/attestd/policy"
)

// ChallengeSize is the size of the challenge of the aikcert round: 16
// random bytes, as real MAA issues (samples/recordings/tpm_init_exchange.json).
const ChallengeSize = 16

// DefaultCustomClaimPrefix is prepended to the name of each custom_claims
// entry to form its incoming claim type. MAA appends the name "to a url
// determined by the Attestation Service" without publishing the URL
// (maa-policy.md §13-19); attestd uses a URN so no domain is implied.
const DefaultCustomClaimPrefix = "urn:attestd:tpm:custom:"

// MaxReportValidityMinutes is the largest report_validity_in_minutes MAA
// accepts (one year, maa-policy.md §7).
const MaxReportValidityMinutes = 525600

// Config is the "tpm" block of the attestd configuration file (README.md,
// "TPM"). With no roots and no trusted AKs every AIK is untrusted: a
// policy must then set require_valid_aik_cert = false to get a report
// (with aikValidated false).
type Config struct {
	// Disabled leaves Tpm without a verifier (501 NotSupported).
	Disabled bool `json:"disabled"`
	// Roots are PEM files of the EK/AK CA roots an aik_cert must chain to.
	Roots []string `json:"roots"`
	// Intermediates are PEM files of CA certificates that may complete a
	// chain (requests carry only the AIK certificate).
	Intermediates []string `json:"intermediates"`
	// BuiltinRoots names root sets shipped in the binary, trusted only when
	// named here: "gce" (Google Compute Engine vTPM EK/AK CAs).
	BuiltinRoots []string `json:"builtin_roots"`
	// TrustedAKs are PEM files of AIK public keys ("PUBLIC KEY" blocks)
	// trusted without a certificate (enrolled machines).
	TrustedAKs []string `json:"trusted_aks"`
	// VBSSigningKeys are PEM files of the VSM identity keys (RSA) whose
	// signatures on VBS enclave reports are accepted. None: att_type vbs
	// is refused (check tpm.vbs.report).
	VBSSigningKeys []string `json:"vbs_signing_keys"`
	// CustomClaimPrefix replaces DefaultCustomClaimPrefix.
	CustomClaimPrefix *string `json:"custom_claim_prefix"`
}

//go:embed roots
var builtinFS embed.FS

// builtinSets are the root sets of BuiltinRoots: roots and intermediates
// per name. The GCE set is Google's published vTPM EK/AK CA hierarchy (as
// go-tpm-tools ships it in server/ca-certs).
var builtinSets = map[string]struct{ roots, intermediates []string }{
	"gce": {
		roots:         []string{"roots/gce/tpm_ek_root_1.pem", "roots/gce/gcp_ek_ak_ca_root.pem"},
		intermediates: []string{"roots/gce/tpm_ek_intermediate_2.pem", "roots/gce/tpm_ek_intermediate_3.pem", "roots/gce/gcp_ek_ak_ca_intermediate_v3.pem"},
	},
}

// BuiltinRootSets lists the names BuiltinRoots accepts.
func BuiltinRootSets() []string { return []string{"gce"} }

// Plugin is the Tpm verifier for the server binary (block "tpm").
func Plugin() evidence.Plugin {
	return evidence.Plugin{
		Name:   "tpm",
		Blocks: []string{"tpm"},
		Types:  []evidence.Type{evidence.Tpm},
		Open:   openPlugin,
	}
}

func openPlugin(ctx context.Context, env evidence.PluginEnv) (evidence.Verifier, func() error, error) {
	noop := func() error { return nil }
	var c Config
	if err := evidence.DecodeBlock(env.Block("tpm"), &c); err != nil {
		return nil, nil, fmt.Errorf("%w: tpm: %v", evidence.ErrConfig, err)
	}
	if c.Disabled {
		return nil, noop, nil
	}
	o, err := OptionsFromConfig(c, env.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", evidence.ErrConfig, err)
	}
	return NewVerifier(o), noop, nil
}

// Options configure a Verifier.
type Options struct {
	// Verify holds the trust anchors (Roots, Intermediates, TrustedAKs,
	// VBSSigningKeys); its Now and policy-derived fields are set per request.
	Verify verify.Options
	// CustomClaimPrefix is prepended to custom claim names ("" keeps
	// DefaultCustomClaimPrefix).
	CustomClaimPrefix string
}

// OptionsFromConfig resolves a "tpm" block into verifier options; path
// resolves the file names relative to the configuration file.
func OptionsFromConfig(c Config, path func(string) string) (Options, error) {
	var o Options
	addCerts := func(pool **x509.CertPool, certs []*x509.Certificate) {
		if *pool == nil {
			*pool = x509.NewCertPool()
		}
		for _, cert := range certs {
			(*pool).AddCert(cert)
		}
	}
	for _, f := range c.Roots {
		certs, err := pemfile.Certificates(path(f))
		if err != nil {
			return o, fmt.Errorf("tpm.roots: %w", err)
		}
		addCerts(&o.Verify.Roots, certs)
	}
	for _, f := range c.Intermediates {
		certs, err := pemfile.Certificates(path(f))
		if err != nil {
			return o, fmt.Errorf("tpm.intermediates: %w", err)
		}
		addCerts(&o.Verify.Intermediates, certs)
	}
	for _, name := range c.BuiltinRoots {
		set, ok := builtinSets[name]
		if !ok {
			return o, fmt.Errorf("tpm.builtin_roots: unknown set %q (known: %s)", name, strings.Join(BuiltinRootSets(), ", "))
		}
		for _, f := range set.roots {
			addCerts(&o.Verify.Roots, mustEmbedded(f))
		}
		for _, f := range set.intermediates {
			addCerts(&o.Verify.Intermediates, mustEmbedded(f))
		}
	}
	for _, f := range c.TrustedAKs {
		keys, err := publicKeys(path(f))
		if err != nil {
			return o, fmt.Errorf("tpm.trusted_aks: %w", err)
		}
		o.Verify.TrustedAKs = append(o.Verify.TrustedAKs, keys...)
	}
	for _, f := range c.VBSSigningKeys {
		keys, err := publicKeys(path(f))
		if err != nil {
			return o, fmt.Errorf("tpm.vbs_signing_keys: %w", err)
		}
		for _, k := range keys {
			rk, ok := k.(*rsa.PublicKey)
			if !ok {
				return o, fmt.Errorf("tpm.vbs_signing_keys: %s: a %T, VBS reports are signed with RSA-PSS", path(f), k)
			}
			o.Verify.VBSSigningKeys = append(o.Verify.VBSSigningKeys, rk)
		}
	}
	if c.CustomClaimPrefix != nil {
		o.CustomClaimPrefix = *c.CustomClaimPrefix
	}
	return o, nil
}

// mustEmbedded parses a certificate file shipped in the binary; the files
// are fixed at build time and covered by TestBuiltinRoots.
func mustEmbedded(name string) []*x509.Certificate {
	b, err := builtinFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	certs, err := pemfile.ParseChain(b)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return certs
}

// publicKeys reads the "PUBLIC KEY" (PKIX) blocks of a PEM file; a
// certificate's key is accepted too.
func publicKeys(file string) ([]crypto.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []crypto.PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			out = append(out, k)
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			out = append(out, c.PublicKey)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PUBLIC KEY or CERTIFICATE block", file)
	}
	return out, nil
}

// Verifier verifies MAA's TPM/VBS protocol (maa-api.md §1.3). It is an
// evidence.MultiRound verifier: the aikcert round issues a challenge that
// the pipeline seals into the service_context; the request round's quote
// must answer it.
type Verifier struct {
	opts   verify.Options
	prefix string
}

// NewVerifier returns a Verifier with o's trust anchors.
func NewVerifier(o Options) *Verifier {
	p := o.CustomClaimPrefix
	if p == "" {
		p = DefaultCustomClaimPrefix
	}
	return &Verifier{opts: o.Verify, prefix: p}
}

var (
	_ evidence.Verifier               = (*Verifier)(nil)
	_ evidence.MultiRound             = (*Verifier)(nil)
	_ evidence.ConfigurationDefaulter = (*Verifier)(nil)
	_ evidence.ClaimsAdvertiser       = (*Verifier)(nil)
)

type challengeMsg struct {
	Payload struct {
		Challenge      string `json:"challenge"`
		ServiceContext string `json:"service_context"`
	} `json:"payload"`
}

// Round implements evidence.MultiRound: an init message
// {"payload":{"type":"aikcert"}} opens a round with a fresh challenge; a
// request message continues the round named by its service_context.
func (v *Verifier) Round(ctx context.Context, req *evidence.Request) (*evidence.Round, error) {
	if abi.IsInit(req.Evidence) {
		if _, err := abi.ParseInit(req.Evidence); err != nil {
			return nil, &evidence.Error{Check: verify.CheckRequest, Err: err}
		}
		challenge := make([]byte, ChallengeSize)
		if _, err := rand.Read(challenge); err != nil {
			return nil, err
		}
		return &evidence.Round{State: challenge, Reply: func(sc string) ([]byte, error) {
			var m challengeMsg
			m.Payload.Challenge = base64.RawURLEncoding.EncodeToString(challenge)
			m.Payload.ServiceContext = sc
			return json.Marshal(m)
		}}, nil
	}
	r, err := parseMessage(req.Evidence)
	if err != nil {
		return nil, err
	}
	if r.Data.ServiceContext == "" {
		return nil, evidence.Errorf(verify.CheckChallenge, "the request carries no service_context: send the aikcert init message first")
	}
	return &evidence.Round{Resume: r.Data.ServiceContext}, nil
}

func parseMessage(b []byte) (*abi.Request, error) {
	jws, err := abi.ParseRequestMessage(b)
	if err != nil {
		return nil, &evidence.Error{Check: verify.CheckRequest, Err: err}
	}
	r, err := abi.ParseRequest(jws)
	if err != nil {
		return nil, &evidence.Error{Check: verify.CheckRequest, Err: err}
	}
	return r, nil
}

type reportMsg struct {
	Payload struct {
		Report string `json:"report"`
	} `json:"payload"`
}

// Wrap implements evidence.MultiRound: {"payload":{"report":token}}.
func (v *Verifier) Wrap(token string) ([]byte, error) {
	var m reportMsg
	m.Payload.Report = token
	return json.Marshal(m)
}

// Parse implements evidence.Verifier for the request round. The challenge
// comes from req.State, which the pipeline opened from the sealed
// service_context.
func (v *Verifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	// The pipeline routes by type, but a caller that routes wrongly (or a
	// decorator) must get a named refusal, not Tpm claims for another
	// type's request (found by evidence/verifiertest's WrongType).
	if req.Type != evidence.Tpm {
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "the Tpm verifier cannot verify %s evidence", req.Type)
	}
	if abi.IsInit(req.Evidence) {
		return nil, evidence.Errorf(verify.CheckRequest, "an aikcert message opens a round; it carries no evidence")
	}
	r, err := parseMessage(req.Evidence)
	if err != nil {
		return nil, err
	}
	if len(req.State) != ChallengeSize {
		return nil, evidence.Errorf(verify.CheckChallenge, "no challenge was opened for this request (service_context missing or of another protocol)")
	}
	return &parsed{v: v, req: r, challenge: req.State, ereq: req}, nil
}

type parsed struct {
	v         *Verifier
	req       *abi.Request
	challenge []byte
	ereq      *evidence.Request
}

// Verify implements evidence.Parsed.
func (p *parsed) Verify(ctx context.Context, props map[string]any) (*evidence.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Refused even when the trust is a configured AK (no clock needed):
	// a caller without a clock gets one answer for every configuration,
	// never a verdict at a guessed instant.
	if p.ereq.Now.IsZero() {
		return nil, evidence.Errorf(evidence.CheckVerificationTime, "the verification instant (Request.Now) is zero")
	}
	o := p.v.opts
	o.Now = p.ereq.Now
	o, err := verify.OptionsFromProperties(o, props)
	if err != nil {
		return nil, err
	}
	if m, ok := props["report_validity_in_minutes"].(int64); ok && (m < 1 || m > MaxReportValidityMinutes) {
		return nil, evidence.Errorf(verify.CheckOptions, "report_validity_in_minutes %d: want 1…%d (one year)", m, MaxReportValidityMinutes)
	}
	res, err := verify.VerifyRequest(ctx, p.req, p.challenge, o)
	if err != nil {
		return nil, err
	}
	return p.v.result(res)
}

// result turns a verified request into the pipeline's result. The TPM
// claims are the policy's input only: a Tpm report carries the policy's
// issued claims at top level and no evidence claims (maa-policy.md §9),
// besides cnf (the attested request key, RFC 7800) and rp_data.
func (v *Verifier) result(res *verify.Result) (*evidence.Result, error) {
	claims, err := Claims(res)
	if err != nil {
		return nil, err
	}
	out := []evidence.Claim{{Type: evidence.ClaimAttestationType, Value: "tpm"}}
	for _, c := range claims {
		c.PolicyOnly, c.TokenOnly = true, false
		out = append(out, c)
		if c.Type == "vbsReportPresent" {
			// The 1.2 samples spell it vsmReportPresent (maa-policy.md §13-18).
			out = append(out, evidence.Claim{Type: "vsmReportPresent", Value: c.Value, PolicyOnly: true})
		}
	}
	if res.RPID != "" {
		out = append(out, evidence.Claim{Type: "rp_id", Value: res.RPID, PolicyOnly: true})
	}
	for _, cc := range res.CustomClaims {
		val, err := customValue(cc)
		if err != nil {
			return nil, err
		}
		out = append(out, evidence.Claim{Type: v.prefix + cc.Name, Value: val, PolicyOnly: true, Issuer: policy.IssuerCustom})
	}
	// cnf asserts that the key is the attested machine's: only a key the
	// evidence binds qualifies (v2 always; a v1 basic request's attest_key
	// is bound by nothing but its own JWS signature, see verify.verifyV1).
	if res.RequestKey.Binding != "" {
		var jwk map[string]any
		if err := json.Unmarshal(res.RequestKey.JWK, &jwk); err != nil {
			return nil, evidence.Errorf(verify.CheckRequest, "request_key.jwk: %v", err)
		}
		out = append(out, evidence.Claim{Type: "cnf", Value: map[string]any{"jwk": jwk}, TokenOnly: true})
	}
	if res.RPData != nil {
		out = append(out, evidence.Claim{Type: "rp_data", Value: base64.RawURLEncoding.EncodeToString(res.RPData), TokenOnly: true})
	}
	return &evidence.Result{Claims: out}, nil
}

// customValue converts a custom claim by its value_type. The VBS protocol
// doc names the member but not its vocabulary; "boolean"/"bool" and
// "integer"/"int" are read as such, anything else (including "string" and
// absent) keeps the string.
func customValue(c abi.CustomClaim) (any, error) {
	switch strings.ToLower(c.ValueType) {
	case "boolean", "bool":
		b, err := strconv.ParseBool(c.Value)
		if err != nil {
			return nil, evidence.Errorf(verify.CheckRequest, "custom claim %q: value_type %s but value %q", c.Name, c.ValueType, c.Value)
		}
		return b, nil
	case "integer", "int":
		n, err := strconv.ParseInt(c.Value, 10, 64)
		if err != nil {
			return nil, evidence.Errorf(verify.CheckRequest, "custom claim %q: value_type %s but value %q", c.Name, c.ValueType, c.Value)
		}
		return n, nil
	}
	return c.Value, nil
}

// ConfigurationDefaults implements evidence.ConfigurationDefaulter with the
// Tpm properties of maa-policy.md §7.
func (v *Verifier) ConfigurationDefaults(t evidence.Type) map[string]any {
	if t != evidence.Tpm {
		return nil
	}
	return map[string]any{
		"require_valid_aik_cert":     true,
		"required_pcr_mask":          int64(verify.DefaultRequiredPCRMask),
		"report_validity_in_minutes": int64(1440),
		"omit_x5c":                   false,
	}
}

// ClaimsSupported implements evidence.ClaimsAdvertiser.
func (v *Verifier) ClaimsSupported() []string {
	return []string{"cnf", "rp_data"}
}
