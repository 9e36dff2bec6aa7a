package instance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/token"
)

// AttestRequest is one decoded attest call.
type AttestRequest struct {
	Type     evidence.Type
	Evidence []byte         // quote (SgxEnclave), report (OpenEnclave, SevSnpVm), …
	Runtime  *evidence.Data // nil when absent
	InitTime *evidence.Data // nil when absent
	// EventLog is the request's event log (TdxVm "eventLog"), nil when absent.
	EventLog []byte
	// DraftPolicy, when non-nil, is policy text used for this call only;
	// the resulting token is unsigned (alg "none").
	DraftPolicy *string
	Nonce       *string
	// NonceIsNumber: the nonce was a JSON number (its decimal text in
	// Nonce); the token echoes it as a number.
	NonceIsNumber bool
}

// AttestResponse is the answer to one attest call: exactly one of Token
// (the body {"token": Token}) and Data (a protocol reply, the body
// {"data": base64url(Data)}, as MAA's Tpm protocol answers) is set.
type AttestResponse struct {
	Token string
	Data  []byte
}

// TpmNoPolicyMessage is real MAA's answer to /attest/Tpm before a Tpm policy
// was set (maa-api.md §1.3, code CodeBadRequest).
const TpmNoPolicyMessage = policy.NoTpmPolicyMessage

// compiledPolicy caches a parsed policy by its exact text.
type compiledPolicy struct {
	p    *policy.Policy
	hash string
	// draft: text supplied by the caller of one request
	// (draftPolicyForAttestation, a dry run): it runs under
	// policy.DraftLimits, lower than a stored policy's.
	draft bool
}

// limits are the evaluator's limits for this policy.
func (c *compiledPolicy) limits() policy.Limits {
	if c.draft {
		return policy.DraftLimits()
	}
	return policy.Limits{}
}

const maxCompiled = 128

// parseDraft parses caller-supplied policy text (draftPolicyForAttestation,
// dry runs) for one call. Drafts are never cached: attest calls need no
// token, so a cache keyed by draft text would let anonymous callers pin
// memory with distinct large drafts.
func parseDraft(text string) (*compiledPolicy, error) {
	p, err := policy.Parse(text)
	if err != nil {
		return nil, parseError(err)
	}
	return &compiledPolicy{p: p, hash: policy.Hash(text), draft: true}, nil
}

// compile parses the text of a policy in force, reusing an earlier parse of
// the same text. Only stored policies reach it, so the cache is bounded by
// what admins set.
func (in *Instance) compile(text string) (*compiledPolicy, error) {
	in.mu.Lock()
	c, ok := in.compiled[text]
	in.mu.Unlock()
	if ok {
		return c, nil
	}
	p, err := policy.Parse(text)
	if err != nil {
		return nil, parseError(err)
	}
	c = &compiledPolicy{p: p, hash: policy.Hash(text)}
	in.mu.Lock()
	if len(in.compiled) >= maxCompiled {
		clear(in.compiled) // many policy changes: start over, keep it bounded
	}
	in.compiled[text] = c
	in.mu.Unlock()
	return c, nil
}

// Attest runs the attest pipeline (DESIGN.md): decode (done by the API) →
// choose policy → parse evidence → configuration rules → verify → bind →
// evaluate → token. A multi-round verifier's challenge round is answered
// with its reply (AttestResponse.Data) before any policy work.
func (in *Instance) Attest(ctx context.Context, req *AttestRequest) (*AttestResponse, error) {
	if _, ok := evidence.ParseType(string(req.Type)); !ok {
		return nil, errorf(CodeInvalidParameter, "unknown attestation type %q", req.Type)
	}
	now := in.now() // one clock reading: verification instant and token times
	sel, err := in.choosePolicy(ctx, req.Type, req.DraftPolicy)
	if err != nil {
		return nil, err
	}
	v, err := in.verifier(req.Type)
	if err != nil {
		return nil, err
	}
	if len(req.Evidence) == 0 {
		return nil, errMissingEvidence(req.Type)
	}
	ereq := evidenceRequest(req, now)
	mr, _ := v.(evidence.MultiRound)
	if mr != nil {
		reply, err := in.round(ctx, mr, ereq)
		if err != nil || reply != nil {
			return reply, err
		}
	}
	cp, err := in.compileSelected(sel)
	if err != nil {
		return nil, err
	}
	out, err := runPipeline(ctx, v, cp, req, ereq, false)
	if err != nil {
		return nil, err
	}
	claims := out.claims
	if sel.active != nil && sel.active.Signer != nil {
		claims["x-ms-policy-signer"] = certJWK(sel.active.Signer)
	}
	if req.Nonce != nil && req.NonceIsNumber {
		claims["nonce"] = json.Number(*req.Nonce)
	} else if req.Nonce != nil {
		claims["nonce"] = *req.Nonce
	}
	claims["jti"] = token.NewJTI()
	claims["iss"] = in.cfg.Issuer

	opts := token.SignOptions{JKU: in.jku(), Lifetime: AttestationTokenLifetime}
	if mr != nil {
		// Protocols with the TPM's report format take header and lifetime
		// from the policy's token properties (maa-api.md §1.3); other types
		// keep MAA's fixed 8 h tokens with a jku/kid header.
		opts = tokenOptions(opts, out.result.Properties)
	}
	token.NewTimes(now, opts.Lifetime).Set(claims)
	var tok string
	if req.DraftPolicy != nil {
		tok, err = in.keys.Unsigned(opts.JKU, claims)
		if err != nil {
			return nil, &Error{Code: CodeInternal, Message: "building the draft token failed", Err: err}
		}
	} else if tok, err = in.keys.SignWith(claims, opts); err != nil {
		return nil, &Error{Code: CodeInternal, Message: "signing the token failed", Err: err}
	}
	if s, ok := out.parsed.(evidence.TokenSealer); ok {
		// The protocol answers the token encrypted to a key of the
		// attester's (AzureGuest); a draft token is sealed too, as the
		// client can read nothing else.
		if tok, err = s.SealToken(ctx, tok); err != nil {
			return nil, &Error{Code: CodeInternal, Message: "encrypting the token to the attester's key failed", Err: err}
		}
	}
	if mr != nil {
		data, err := mr.Wrap(tok)
		if err != nil {
			return nil, &Error{Code: CodeInternal, Message: "building the protocol reply failed", Err: err}
		}
		return &AttestResponse{Data: data}, nil
	}
	return &AttestResponse{Token: tok}, nil
}

// tokenOptions applies the token properties report_validity_in_minutes and
// omit_x5c (maa-api.md §1.3) to o.
func tokenOptions(o token.SignOptions, props map[string]any) token.SignOptions {
	if m, ok := props["report_validity_in_minutes"].(int64); ok && m > 0 {
		o.Lifetime = time.Duration(m) * time.Minute
	}
	if omit, ok := props["omit_x5c"].(bool); ok {
		o.Header = token.HeaderX5C
		if omit {
			o.Header = token.HeaderX5T
		}
	}
	return o
}

func evidenceRequest(req *AttestRequest, now time.Time) *evidence.Request {
	return &evidence.Request{Type: req.Type, Evidence: req.Evidence, Runtime: req.Runtime, InitTime: req.InitTime, EventLog: req.EventLog, Now: now}
}

// pipelineOutcome is what runPipeline produced.
type pipelineOutcome struct {
	// incoming are the claims the policy saw (service claims).
	incoming []policy.Claim
	// result is the policy evaluation; set even when it denied (then the
	// pipeline's error is the PolicyEvaluationError).
	result *policy.Result
	// claims are the token's claims without iss/iat/nbf/exp/jti, nonce and
	// x-ms-policy-signer; nil when the policy denied.
	claims map[string]any
	// parsed is the parsed evidence (for its optional capabilities, e.g.
	// evidence.TokenSealer).
	parsed evidence.Parsed
}

// runPipeline is the attest pipeline after the policy was chosen and
// compiled: parse, configuration rules, verification, bindings, claims,
// policy evaluation and the token's claim set. It never signs anything, so
// Attest and the policy dry run (Explain) share it. On a policy denial or
// evaluation failure it returns the outcome so far with the error.
func runPipeline(ctx context.Context, v evidence.Verifier, cp *compiledPolicy, req *AttestRequest, ereq *evidence.Request, trace bool) (*pipelineOutcome, error) {
	t := req.Type
	if len(req.Evidence) == 0 {
		return nil, errMissingEvidence(t)
	}

	// 1. Parse: structure only, before the policy spends any work on it.
	parsed, err := v.Parse(ctx, ereq)
	if err != nil {
		return nil, verificationError(ctx, err)
	}

	// 2. Configuration rules → properties the verifier reads, with the
	// verifier's defaults for what the rules leave unset (maa-policy.md §7).
	defaults := configurationDefaults(v, t)
	properties, err := cp.p.ConfigureWith(ctx, string(t), policy.EvalOptions{Defaults: defaults, Limits: cp.limits()})
	if err != nil {
		return nil, evalError(err)
	}

	// 3. Verification.
	res, err := parsed.Verify(ctx, properties)
	if err != nil {
		return nil, verificationError(ctx, err)
	}

	// 4. Bindings.
	if err := Bind(req.Runtime, req.InitTime, res); err != nil {
		return nil, evidenceError(err)
	}

	// 5. Claims: the verifier's for the policy and the token, then the
	// ones every TEE shares.
	// svc becomes the token's claims (step 7): room for the policy's and
	// the service's own, so that it is filled once, not copied.
	svc := serviceClaims(res, len(res.Claims)+16)
	incoming := make([]policy.Claim, 0, len(res.Claims))
	for _, c := range res.Claims {
		if !c.TokenOnly {
			if v, ok := scalar(c.Value); ok {
				iss := policy.IssuerService
				if c.Issuer != "" {
					iss = c.Issuer
				}
				incoming = append(incoming, policy.Claim{Type: c.Type, Value: v, Issuer: iss})
			}
		}
	}
	if req.Runtime != nil && req.Runtime.JSON {
		var v any
		if err := json.Unmarshal(req.Runtime.Bytes, &v); err != nil {
			return nil, plainEvidenceError(evidence.Errorf(evidence.CheckRuntimeJSON, "runtimeData has dataType JSON but is not valid JSON: %v", err))
		}
		svc["x-ms-runtime"] = v
	}
	if req.InitTime != nil && req.InitTime.JSON {
		var v any
		if err := json.Unmarshal(req.InitTime.Bytes, &v); err != nil {
			return nil, plainEvidenceError(evidence.Errorf(evidence.CheckInitTimeJSON, "initTimeData has dataType JSON but is not valid JSON: %v", err))
		}
		svc["x-ms-inittime"] = v
	}

	// 6. Policy.
	out := &pipelineOutcome{incoming: incoming, parsed: parsed}
	pr, err := cp.p.Evaluate(ctx, string(t), incoming, policy.EvalOptions{Trace: trace, Defaults: defaults, Limits: cp.limits()})
	out.result = pr
	if err != nil {
		return out, evalError(err)
	}

	// 7. Token claims: the service's, then the policy's at top level where
	// they collide with no service claim and all of them under x-ms-policy
	// (maa-policy.md §9; policy.AddToToken).
	claims := svc
	claims["x-ms-ver"] = "1.0"
	claims["x-ms-policy-hash"] = cp.hash
	policy.AddToToken(claims, string(t), pr.Issued)
	out.claims = claims
	return out, nil
}

// ServiceClaims are the token claims a verifier's result contributes: every
// claim but the PolicyOnly ones, a later claim of a type replacing an
// earlier one. The pipeline and "attestd verify" share it.
func ServiceClaims(res *evidence.Result) map[string]any {
	return serviceClaims(res, len(res.Claims)+4)
}

// serviceClaims is ServiceClaims in a map with room for size entries.
func serviceClaims(res *evidence.Result, size int) map[string]any {
	svc := make(map[string]any, size)
	for _, c := range res.Claims {
		if !c.PolicyOnly {
			svc[c.Type] = c.Value
		}
	}
	return svc
}

// configurationDefaults are v's defaults for t's configuration properties
// (nil when v has none).
func configurationDefaults(v evidence.Verifier, t evidence.Type) map[string]any {
	if d, ok := v.(evidence.ConfigurationDefaulter); ok {
		return d.ConfigurationDefaults(t)
	}
	return nil
}

// verificationError maps a verifier's refusal to the MAA error /attest
// answers: InvalidParameter naming the failed check.
func verificationError(ctx context.Context, err error) error {
	var ee *evidence.Error
	if errors.As(err, &ee) {
		return evidenceError(err)
	}
	if ctx.Err() != nil {
		return &Error{Code: CodeInternal, Message: "request cancelled", Err: err}
	}
	return &Error{Code: CodeInvalidParameter, Message: "evidence verification failed: " + err.Error(), Err: err}
}

// evidenceError wraps an *evidence.Error as the InvalidParameter MAA error
// "evidence verification failed at check <check>: <reason>"; errors.Is on
// the check keeps working through it.
func evidenceError(err error) error {
	var ee *evidence.Error
	if !errors.As(err, &ee) {
		return &Error{Code: CodeInvalidParameter, Message: "evidence verification failed: " + err.Error(), Err: err}
	}
	if errors.Is(err, evidence.ErrUnavailable) {
		return &Error{Code: CodeServiceUnavailable, Message: fmt.Sprintf("evidence not verified, retry later: check %s: %v", ee.Check, ee.Err), Err: err}
	}
	return &Error{Code: CodeInvalidParameter, Message: fmt.Sprintf("evidence verification failed at check %s: %v", ee.Check, ee.Err), Err: err}
}

// errMissingEvidence answers a request without evidence (check
// evidence.missing; the message is the one MAA clients have always seen).
func errMissingEvidence(t evidence.Type) error {
	return plainEvidenceError(evidence.Errorf(evidence.CheckEvidenceMissing, "the request carries no evidence (quote/report) for %s", t))
}

// plainEvidenceError is InvalidParameter with the bare reason of err as the
// message (no "failed at check" prefix), for refusals whose wording
// predates the check names.
func plainEvidenceError(err error) error {
	var ee *evidence.Error
	errors.As(err, &ee)
	return &Error{Code: CodeInvalidParameter, Message: ee.Err.Error(), Err: err}
}

// Bind checks that the evidence commits to the runtime and init-time data
// sent beside it (maa-api.md §1.1): SHA-256(runtime) == ReportData[:32] and
// SHA-256(init-time) is a prefix of InitTimeBinding. Failures are
// *evidence.Error values of CheckRuntimeBinding and CheckInitTimeBinding.
// The pipeline and "attestd verify" share it.
func Bind(runtime, initTime *evidence.Data, res *evidence.Result) error {
	if runtime != nil {
		h := sha256.Sum256(runtime.Bytes)
		if len(res.ReportData) < len(h) || !bytes.Equal(res.ReportData[:len(h)], h[:]) {
			return evidence.Errorf(evidence.CheckRuntimeBinding, "SHA-256 of runtimeData (%x) does not match the report data of the evidence", h[:])
		}
	}
	if initTime != nil {
		h := sha256.Sum256(initTime.Bytes)
		if res.InitTimeBinding == nil {
			// Accepting unbound init-time data would put attacker-chosen
			// values into x-ms-inittime of a signed token.
			return evidence.Errorf(evidence.CheckInitTimeBinding, "this evidence has no field that binds initTimeData")
		}
		if len(res.InitTimeBinding) < len(h) || !bytes.Equal(res.InitTimeBinding[:len(h)], h[:]) {
			return evidence.Errorf(evidence.CheckInitTimeBinding, "SHA-256 of initTimeData (%x) does not match the evidence's init-time binding", h[:])
		}
	}
	return nil
}

// scalar converts a verifier claim value to a policy value (bool, int64,
// string); ok is false for objects and arrays (token only).
func scalar(v any) (any, bool) {
	switch x := v.(type) {
	case bool, string, int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint8:
		return int64(x), true
	}
	return nil, false
}
