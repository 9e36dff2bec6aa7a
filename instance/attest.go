package instance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	// DraftPolicy, when non-nil, is policy text used for this call only;
	// the resulting token is unsigned (alg "none").
	DraftPolicy *string
	Nonce       *string
}

// TpmNoPolicyMessage is real MAA's answer to /attest/Tpm before a Tpm policy
// was set (maa-api.md §1.3, code CodeBadRequest).
const TpmNoPolicyMessage = policy.NoTpmPolicyMessage

// attestationTypeClaim is x-ms-attestation-type per type (maa-api.md §1.2, §4).
func attestationTypeClaim(t evidence.Type) string {
	switch t {
	case evidence.SgxEnclave, evidence.OpenEnclave:
		return "sgx"
	case evidence.Tpm:
		return "tpm"
	case evidence.SevSnpVm:
		return "sevsnpvm"
	case evidence.TdxVm:
		return "tdxvm"
	}
	return ""
}

// compiledPolicy caches a parsed policy by its exact text.
type compiledPolicy struct {
	p    *policy.Policy
	hash string
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
	return &compiledPolicy{p: p, hash: policy.Hash(text)}, nil
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

// Attest runs the attest pipeline and returns the token: the policy's
// configuration step, evidence verification by the registered verifier,
// binding of runtime/init-time data, policy evaluation and token issuance.
func (in *Instance) Attest(ctx context.Context, req *AttestRequest) (string, error) {
	if attestationTypeClaim(req.Type) == "" {
		return "", errorf(CodeInvalidParameter, "unknown attestation type %q", req.Type)
	}

	// 1. The policy: draft text, or the one in force.
	var text string
	var ap *activePolicy
	if req.DraftPolicy != nil {
		text = *req.DraftPolicy
	} else {
		var err error
		if ap, err = in.active(ctx, req.Type); err != nil {
			return "", err
		}
		if ap.None {
			return "", errorf(CodeBadRequest, "%s", TpmNoPolicyMessage)
		}
		text = ap.Text
	}
	v := in.verif[req.Type]
	if v == nil {
		return "", errorf(CodeNotSupported, "attestation type %s is not supported by this attestd: no evidence verifier is registered for it", req.Type)
	}
	if len(req.Evidence) == 0 {
		return "", errorf(CodeInvalidParameter, "the request carries no evidence (quote/report) for %s", req.Type)
	}
	var cp *compiledPolicy
	var err error
	if req.DraftPolicy != nil {
		cp, err = parseDraft(text)
	} else {
		cp, err = in.compile(text)
	}
	if err != nil {
		return "", err
	}

	// 2.–7. Configuration, evidence, bindings, claims, policy, token claims.
	out, err := runPipeline(ctx, v, cp, req, false)
	if err != nil {
		return "", err
	}
	claims := out.claims
	if ap != nil && ap.Signer != nil {
		claims["x-ms-policy-signer"] = certJWK(ap.Signer)
	}
	if req.Nonce != nil {
		claims["nonce"] = *req.Nonce
	}
	claims["jti"] = token.NewJTI()

	if req.DraftPolicy != nil {
		claims["iss"] = in.cfg.Issuer
		token.NewTimes(in.now(), AttestationTokenLifetime).Set(claims)
		tok, err := in.keys.Unsigned(in.jku(), claims)
		if err != nil {
			return "", &Error{Code: CodeInternal, Message: "building the draft token failed", Err: err}
		}
		return tok, nil
	}
	return in.sign(claims, AttestationTokenLifetime)
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
}

// runPipeline is the attest pipeline after the policy was chosen and
// compiled: configuration rules, evidence verification, bindings, claims,
// policy evaluation and the token's claim set. It never signs anything, so
// Attest and the policy dry run (Explain) share it. On a policy denial or
// evaluation failure it returns the outcome so far with the error.
func runPipeline(ctx context.Context, v evidence.Verifier, cp *compiledPolicy, req *AttestRequest, trace bool) (*pipelineOutcome, error) {
	t := req.Type

	// 2. Configuration rules → properties the verifier reads. Configure
	// returns a fresh map with the type defaults (maa-policy.md §7, e.g.
	// x-ms-sgx-tcbidentifier "azuredefault") already applied.
	properties, err := cp.p.Configure(ctx, string(t))
	if err != nil {
		return nil, evalError(err)
	}

	// 3. Evidence.
	res, err := v.Verify(ctx, &evidence.Request{Type: t, Evidence: req.Evidence, Runtime: req.Runtime, InitTime: req.InitTime, Properties: properties})
	if err != nil {
		var ee *evidence.Error
		if errors.As(err, &ee) {
			return nil, &Error{Code: CodeInvalidParameter, Message: fmt.Sprintf("evidence verification failed at check %s: %v", ee.Check, ee.Err), Err: err}
		}
		if ctx.Err() != nil {
			return nil, &Error{Code: CodeInternal, Message: "request cancelled", Err: err}
		}
		return nil, &Error{Code: CodeInvalidParameter, Message: "evidence verification failed: " + err.Error(), Err: err}
	}

	// 4. Bindings.
	if err := bind(req, res); err != nil {
		return nil, err
	}

	// 5. Claims: service claims for the policy and the token.
	svc := map[string]any{}
	var incoming []policy.Claim
	have := map[string]bool{}
	for _, c := range res.Claims {
		have[c.Type] = true
		if !c.TokenOnly {
			if v, ok := scalar(c.Value); ok {
				incoming = append(incoming, policy.Claim{Type: c.Type, Value: v, Issuer: "AttestationService"})
			}
		}
		if !c.PolicyOnly {
			svc[c.Type] = c.Value
		}
	}
	addService := func(typ string, v any) {
		if have[typ] {
			return
		}
		incoming = append(incoming, policy.Claim{Type: typ, Value: v, Issuer: "AttestationService"})
		svc[typ] = v
	}
	addService("x-ms-attestation-type", attestationTypeClaim(t))
	if (t == evidence.SgxEnclave || t == evidence.OpenEnclave) && req.Runtime != nil && !req.Runtime.JSON {
		addService("x-ms-sgx-ehd", base64.RawURLEncoding.EncodeToString(req.Runtime.Bytes))
	}
	if req.Runtime != nil && req.Runtime.JSON {
		var v any
		if err := json.Unmarshal(req.Runtime.Bytes, &v); err != nil {
			return nil, errorf(CodeInvalidParameter, "runtimeData has dataType JSON but is not valid JSON: %v", err)
		}
		svc["x-ms-runtime"] = v
	}
	if req.InitTime != nil && req.InitTime.JSON {
		var v any
		if err := json.Unmarshal(req.InitTime.Bytes, &v); err != nil {
			return nil, errorf(CodeInvalidParameter, "initTimeData has dataType JSON but is not valid JSON: %v", err)
		}
		svc["x-ms-inittime"] = v
	}

	// 6. Policy.
	out := &pipelineOutcome{incoming: incoming}
	pr, err := cp.p.Evaluate(ctx, string(t), incoming, policy.EvalOptions{Trace: trace})
	out.result = pr
	if err != nil {
		return out, evalError(err)
	}

	// 7. Token claims: the service's, then the policy's at top level where
	// they collide with no service claim and all of them under x-ms-policy
	// (maa-policy.md §9; policy.AddToToken).
	claims := make(map[string]any, len(svc)+len(pr.Issued)+12)
	for k, v := range svc {
		claims[k] = v
	}
	claims["x-ms-ver"] = "1.0"
	claims["x-ms-policy-hash"] = cp.hash
	if t == evidence.SgxEnclave || t == evidence.OpenEnclave {
		// The verifier states the TCB baseline it judged the evidence
		// against (evidence/sgx). Echoing the policy's property instead
		// would claim a baseline nobody applied, so a verifier that does
		// not report one only gets the default.
		if _, ok := svc["x-ms-sgx-tcbidentifier"]; !ok {
			id := properties["x-ms-sgx-tcbidentifier"]
			if s, _ := id.(string); !strings.EqualFold(s, "azuredefault") {
				return out, errorf(CodeInvalidParameter, "evidence verification failed at check collateral.tcb_baseline: TCB baseline %v was selected but the %s verifier does not support TCB baseline selection", id, t)
			}
			claims["x-ms-sgx-tcbidentifier"] = id
		}
	}
	policy.AddToToken(claims, string(t), pr.Issued)
	out.claims = claims
	return out, nil
}

// bind checks that the evidence commits to the runtime and init-time data
// sent beside it (maa-api.md §1.1).
func bind(req *AttestRequest, res *evidence.Result) error {
	if req.Runtime != nil {
		h := sha256.Sum256(req.Runtime.Bytes)
		if len(res.ReportData) < len(h) || !bytes.Equal(res.ReportData[:len(h)], h[:]) {
			return errorf(CodeInvalidParameter, "evidence verification failed at check runtimedata.binding: SHA-256 of runtimeData (%x) does not match the report data of the evidence", h[:])
		}
	}
	if req.InitTime != nil {
		h := sha256.Sum256(req.InitTime.Bytes)
		if res.InitTimeBinding == nil {
			// Accepting unbound init-time data would put attacker-chosen
			// values into x-ms-inittime of a signed token.
			return errorf(CodeInvalidParameter, "evidence verification failed at check inittimedata.binding: this evidence has no field that binds initTimeData")
		}
		if len(res.InitTimeBinding) < len(h) || !bytes.Equal(res.InitTimeBinding[:len(h)], h[:]) {
			return errorf(CodeInvalidParameter, "evidence verification failed at check inittimedata.binding: SHA-256 of initTimeData (%x) does not match the evidence's init-time binding", h[:])
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
