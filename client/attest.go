package client

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// AttestOptions are the optional parts of an attest request (maa-api.md §1.1).
type AttestOptions struct {
	// RuntimeData is sent as runtimeData with dataType Binary; its SHA-256
	// must be the first 32 bytes of the enclave's report data. The token
	// then carries it in x-ms-sgx-ehd.
	RuntimeData []byte
	// RuntimeJSON is sent as runtimeData with dataType JSON (a JSON text);
	// the token then carries it parsed in x-ms-runtime. At most one of
	// RuntimeData and RuntimeJSON may be set.
	RuntimeJSON []byte
	// InitTimeData / InitTimeJSON: the same for initTimeData, bound to the
	// lower 32 bytes of a KSS enclave's CONFIGID.
	InitTimeData []byte
	InitTimeJSON []byte
	// DraftPolicy, when non-empty, is policy text evaluated instead of the
	// instance's policy; the result is then an UNSIGNED token (alg "none"),
	// reported as AttestationResult.Unsigned — useful for testing a policy,
	// worthless as proof.
	DraftPolicy string
	// Nonce is echoed in the token's nonce claim.
	Nonce string
}

// AttestationResult is a validated attestation token and its typed claims.
type AttestationResult struct {
	// Token is the validated token (Raw holds the JWT to pass on).
	Token *Token
	// Unsigned is true for a draft-policy result (alg "none"): nobody
	// vouches for its claims.
	Unsigned bool

	Issuer                       string
	IssuedAt, NotBefore, Expires time.Time
	// JTI, Nonce, Version: jti, nonce, x-ms-ver.
	JTI, Nonce, Version string
	// AttestationType is x-ms-attestation-type ("sgx" for SGX and OE).
	AttestationType string
	// PolicyHash is x-ms-policy-hash, decoded: SHA-256 of the base64url
	// of the policy text that decided.
	PolicyHash []byte
	// PolicySigner is the certificate that signed the policy in force
	// (x-ms-policy-signer), nil for unsigned policies.
	PolicySigner *x509.Certificate
	// PolicyClaims are the claims the policy issued (x-ms-policy).
	PolicyClaims map[string]any
	// RuntimeClaims / InitTimeClaims are x-ms-runtime / x-ms-inittime (JSON
	// runtime / init-time data).
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

	// Claims are all the token's claims (numbers as json.Number).
	Claims map[string]any
}

type attestData struct {
	Data     string `json:"data"`
	DataType string `json:"dataType"`
}

type attestRequest struct {
	Quote        string      `json:"quote,omitempty"`
	Report       string      `json:"report,omitempty"`
	RuntimeData  *attestData `json:"runtimeData,omitempty"`
	InitTimeData *attestData `json:"initTimeData,omitempty"`
	DraftPolicy  string      `json:"draftPolicyForAttestation,omitempty"`
	Nonce        string      `json:"nonce,omitempty"`
}

func dataOf(bin, js []byte, what string) (*attestData, error) {
	switch {
	case bin != nil && js != nil:
		return nil, fmt.Errorf("client: set %sData or %sJSON, not both", what, what)
	case bin != nil:
		return &attestData{Data: base64.RawURLEncoding.EncodeToString(bin), DataType: "Binary"}, nil
	case js != nil:
		if !json.Valid(js) {
			return nil, fmt.Errorf("client: %sJSON is not valid JSON", what)
		}
		return &attestData{Data: base64.RawURLEncoding.EncodeToString(js), DataType: "JSON"}, nil
	}
	return nil, nil
}

// AttestSgxEnclave sends an SGX ECDSA quote to POST /attest/SgxEnclave and
// returns the validated result.
func (c *Client) AttestSgxEnclave(ctx context.Context, quote []byte, opts *AttestOptions) (*AttestationResult, error) {
	return c.attest(ctx, "SgxEnclave", attestRequest{Quote: base64.RawURLEncoding.EncodeToString(quote)}, opts)
}

// AttestOpenEnclave sends an OpenEnclave report (or OE SGX_ECDSA evidence)
// to POST /attest/OpenEnclave and returns the validated result.
func (c *Client) AttestOpenEnclave(ctx context.Context, report []byte, opts *AttestOptions) (*AttestationResult, error) {
	return c.attest(ctx, "OpenEnclave", attestRequest{Report: base64.RawURLEncoding.EncodeToString(report)}, opts)
}

// AttestSevSnpVm sends SEV-SNP evidence to POST /attest/SevSnpVm (api
// 2022-08-01 shape, maa-api.md §1.6, §8): report is the JSON text
// {"SnpReport": b64url(report), "VcekCertChain": b64url(PEM chain),
// "Endorsements"?} the client base64url-encodes as "report" (attestd also
// takes a raw report, its hex text or configfs-tsm JSON there). Runtime
// data binds REPORT_DATA[0:32], init-time data HOST_DATA.
func (c *Client) AttestSevSnpVm(ctx context.Context, report []byte, opts *AttestOptions) (*AttestationResult, error) {
	return c.attest(ctx, "SevSnpVm", attestRequest{Report: base64.RawURLEncoding.EncodeToString(report)}, opts)
}

func (c *Client) attest(ctx context.Context, typ string, req attestRequest, opts *AttestOptions) (*AttestationResult, error) {
	if opts == nil {
		opts = &AttestOptions{}
	}
	var err error
	if req.RuntimeData, err = dataOf(opts.RuntimeData, opts.RuntimeJSON, "Runtime"); err != nil {
		return nil, err
	}
	if req.InitTimeData, err = dataOf(opts.InitTimeData, opts.InitTimeJSON, "InitTime"); err != nil {
		return nil, err
	}
	req.DraftPolicy, req.Nonce = opts.DraftPolicy, opts.Nonce
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: "POST", path: "/attest/" + typ, contentType: "application/json", body: body})
	if err != nil {
		return nil, err
	}
	raw, err := tokenResponse(resp)
	if err != nil {
		return nil, err
	}
	t, err := c.validate(ctx, raw, opts.DraftPolicy != "")
	if err != nil {
		return nil, err
	}
	if opts.Nonce != "" && !c.val.SkipValidation {
		if n, _ := t.Claims["nonce"].(string); n != opts.Nonce {
			return nil, invalid(ReasonMalformed, "token nonce %q is not the nonce sent", n)
		}
	}
	return NewAttestationResult(t)
}

// NewAttestationResult reads the typed claims of an attestation token
// (parsed with ParseToken, or validated by a Client). A claim of the wrong
// JSON type is an error: the claim names are MAA's, so a mismatch means
// the token is not what it claims to be.
func NewAttestationResult(t *Token) (*AttestationResult, error) {
	r := &AttestationResult{Token: t, Unsigned: !t.Signed, Claims: t.Claims,
		Issuer: t.Issuer, IssuedAt: t.IssuedAt, NotBefore: t.NotBefore, Expires: t.Expires}
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := t.Claims[name]; ok {
			s, ok := v.(string)
			if !ok {
				errs = append(errs, fmt.Errorf("claim %s is %T, want string", name, v))
			}
			*dst = s
		}
	}
	obj := func(name string) map[string]any {
		v, ok := t.Claims[name]
		if !ok {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("claim %s is %T, want object", name, v))
		}
		return m
	}
	num := func(name string, dst *int64) {
		if v, ok := t.Claims[name]; ok {
			n, ok := v.(json.Number)
			var err error
			if ok {
				*dst, err = strconv.ParseInt(string(n), 10, 64)
			}
			if !ok || err != nil {
				errs = append(errs, fmt.Errorf("claim %s = %v is not an integer", name, v))
			}
		}
	}
	bin := func(name string) []byte {
		var s string
		str(name, &s)
		if s == "" {
			return nil
		}
		b, err := b64url(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("claim %s is not base64url", name))
		}
		return b
	}
	str("jti", &r.JTI)
	str("nonce", &r.Nonce)
	str("x-ms-ver", &r.Version)
	str("x-ms-attestation-type", &r.AttestationType)
	r.PolicyHash = bin("x-ms-policy-hash")
	r.EnclaveHeldData = bin("x-ms-sgx-ehd")
	r.PolicyClaims = obj("x-ms-policy")
	r.RuntimeClaims = obj("x-ms-runtime")
	r.InitTimeClaims = obj("x-ms-inittime")
	r.Collateral = obj("x-ms-sgx-collateral")
	if signer := obj("x-ms-policy-signer"); signer != nil {
		var jwk struct {
			X5c []string `json:"x5c"`
		}
		b, _ := json.Marshal(signer)
		if err := json.Unmarshal(b, &jwk); err != nil || len(jwk.X5c) == 0 {
			errs = append(errs, fmt.Errorf("claim x-ms-policy-signer has no x5c"))
		} else if certs, err := parseX5c(jwk.X5c); err != nil {
			errs = append(errs, fmt.Errorf("claim x-ms-policy-signer: %v", err))
		} else {
			r.PolicySigner = certs[0]
		}
	}
	str("x-ms-sgx-mrenclave", &r.MREnclave)
	str("x-ms-sgx-mrsigner", &r.MRSigner)
	str("x-ms-sgx-report-data", &r.ReportData)
	str("x-ms-sgx-tcb-status", &r.TCBStatus)
	num("x-ms-sgx-product-id", &r.ProductID)
	num("x-ms-sgx-svn", &r.SVN)
	if v, ok := t.Claims["x-ms-sgx-is-debuggable"]; ok {
		b, ok := v.(bool)
		if !ok {
			errs = append(errs, fmt.Errorf("claim x-ms-sgx-is-debuggable is %T, want bool", v))
		}
		r.IsDebuggable = b
	}
	if v, ok := t.Claims["x-ms-sgx-advisory-ids"]; ok {
		arr, ok := v.([]any)
		for _, a := range arr {
			s, isStr := a.(string)
			ok = ok && isStr
			r.AdvisoryIDs = append(r.AdvisoryIDs, s)
		}
		if !ok {
			errs = append(errs, fmt.Errorf("claim x-ms-sgx-advisory-ids is not an array of strings"))
		}
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Reason: ReasonMalformed, Err: fmt.Errorf("attestation token claims: %w", errors.Join(errs...))}
	}
	return r, nil
}
