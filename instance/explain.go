package instance

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
)

// ExplainRequest is one policy dry run: a policy evaluated over either a
// claim set or real evidence, with a full trace and never a token. MAA has
// no such operation; it answers "why was my enclave refused?" without
// signing anything.
type ExplainRequest struct {
	Type evidence.Type
	// Policy is the policy text to evaluate. Nil means the instance's
	// policy in force (Instance.Explain) or is an error (ExplainWith).
	Policy *string
	// Exactly one of Claims and Evidence is set.
	//
	// Claims is a JSON claim set as policy.ClaimsFromJSON reads it: each
	// member an incoming claim of issuer AttestationService;
	// x-ms-attestation-type is added when absent, as attest does.
	Claims []byte
	// Evidence is an attest request: the evidence is verified by the real
	// verifier and bound to its runtime/init-time data exactly as in
	// Attest. Its DraftPolicy is used when Policy is nil.
	Evidence *AttestRequest
	// Now is the instant to verify evidence at (ExplainWith; zero: now).
	// Instance.Explain always uses the instance's clock.
	Now time.Time
}

// Policy sources reported in Explanation.PolicySource.
const (
	PolicySourceGiven   = "given"   // the request's policy text
	PolicySourceDraft   = "draft"   // the evidence's draftPolicyForAttestation
	PolicySourceCurrent = "current" // the instance's policy in force (stored or default)
)

// ExplainError is the MAA error an attest call would have returned.
type ExplainError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Explanation is the outcome of a dry run. A denial is an Explanation with
// Permitted false, not an error.
type Explanation struct {
	AttestationType string          `json:"attestationType"`
	PolicySource    string          `json:"policySource"`
	PolicyHash      string          `json:"policyHash"`
	Decision        policy.Decision `json:"decision"`
	Permitted       bool            `json:"permitted"`
	// Error is what /attest would have answered when not permitted.
	Error *ExplainError `json:"error,omitempty"`
	// Incoming are the claims the policy saw.
	Incoming []policy.Claim `json:"incomingClaims"`
	// Issued are the policy's outgoing claims, serialised as in the token's
	// x-ms-policy (maa-policy.md §9); empty when denied.
	Issued map[string]any `json:"issuedClaims,omitempty"`
	// TokenClaims (evidence only, when permitted) are the claims the token
	// would carry, without iss/iat/nbf/exp/jti, nonce and
	// x-ms-policy-signer. Nothing is signed.
	TokenClaims map[string]any `json:"tokenClaims,omitempty"`
	// Trace explains the evaluation rule by rule.
	Trace *policy.Trace `json:"trace"`
}

// Explain dry-runs a policy on this instance: req.Policy, or the draft
// policy of req.Evidence, or the policy in force. Evidence is verified by
// the instance's registered verifier. Errors are *Error values:
// PolicyParsingError for a bad policy, InvalidParameter for a malformed
// claim set or evidence that fails verification or binding, Bad request for
// Tpm without a policy, NotSupported for a type without a verifier.
func (in *Instance) Explain(ctx context.Context, req *ExplainRequest) (*Explanation, error) {
	if evidence.AttestationTypeValue(req.Type) == "" {
		return nil, errorf(CodeInvalidParameter, "unknown attestation type %q", req.Type)
	}
	r := *req
	var sel *selectedPolicy
	switch {
	case r.Policy != nil:
		sel = &selectedPolicy{text: *r.Policy, draft: true, source: PolicySourceGiven}
	default:
		var draft *string
		if r.Evidence != nil {
			draft = r.Evidence.DraftPolicy
		}
		var err error
		if sel, err = in.choosePolicy(ctx, req.Type, draft); err != nil {
			return nil, err
		}
	}
	cp, err := in.compileSelected(sel)
	if err != nil {
		return nil, err
	}
	var v evidence.Verifier
	if r.Evidence != nil {
		if v, err = in.verifier(req.Type); err != nil {
			return nil, err
		}
	}
	ex, err := explain(ctx, v, cp, &r, in.now())
	if ex != nil {
		ex.PolicySource = sel.source
	}
	return ex, err
}

// ExplainWith dry-runs req.Policy (required) without an instance, verifying
// evidence with v (which may be nil when req carries claims). It is the
// engine of "attestd policy explain".
func ExplainWith(ctx context.Context, v evidence.Verifier, req *ExplainRequest) (*Explanation, error) {
	if evidence.AttestationTypeValue(req.Type) == "" {
		return nil, errorf(CodeInvalidParameter, "unknown attestation type %q", req.Type)
	}
	if req.Policy == nil {
		return nil, errorf(CodeInvalidParameter, "no policy to explain")
	}
	cp, err := parseDraft(*req.Policy)
	if err != nil {
		return nil, err
	}
	if req.Evidence != nil && v == nil {
		return nil, errNoVerifier(req.Type)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	ex, err := explain(ctx, v, cp, req, now)
	if ex != nil {
		ex.PolicySource = PolicySourceGiven
	}
	return ex, err
}

func explain(ctx context.Context, v evidence.Verifier, cp *compiledPolicy, req *ExplainRequest, now time.Time) (*Explanation, error) {
	if (req.Claims == nil) == (req.Evidence == nil) {
		return nil, errorf(CodeInvalidParameter, "give exactly one of a claim set and evidence")
	}
	ex := &Explanation{AttestationType: string(req.Type), PolicyHash: cp.hash}
	var res *policy.Result
	var evalErr error
	if req.Claims != nil {
		claims, err := policy.ClaimsFromJSON(req.Claims)
		if err != nil {
			return nil, errorf(CodeInvalidParameter, "%v", err)
		}
		// Like the pipeline, supply x-ms-attestation-type unless the set
		// has it: every real attestation carries it.
		if !slices.ContainsFunc(claims, func(c policy.Claim) bool { return c.Type == evidence.ClaimAttestationType }) {
			claims = append(claims, policy.Claim{Type: evidence.ClaimAttestationType, Value: evidence.AttestationTypeValue(req.Type), Issuer: policy.IssuerService})
		}
		ex.Incoming = claims
		res, evalErr = cp.p.Evaluate(ctx, string(req.Type), claims, policy.EvalOptions{Trace: true, Limits: cp.limits()})
		if evalErr != nil {
			evalErr = evalError(evalErr)
		}
	} else {
		ar := *req.Evidence
		ar.Type = req.Type
		out, err := runPipeline(ctx, v, cp, &ar, evidenceRequest(&ar, now), true)
		var ie *Error
		switch {
		case out != nil && out.result != nil:
			ex.Incoming, res, evalErr = out.incoming, out.result, err
			ex.TokenClaims = out.claims
		case errors.As(err, &ie) && ie.Code == CodePolicyEvaluationError:
			// configurationrules failed right after the evidence was
			// parsed: the same evaluation without claims traces that
			// failure.
			res, evalErr = cp.p.Evaluate(ctx, string(req.Type), nil, policy.EvalOptions{Trace: true, Limits: cp.limits()})
			if evalErr == nil {
				return nil, err // cannot happen: Configure and Evaluate share the section
			}
			evalErr = evalError(evalErr)
		case err != nil:
			// Verification or binding failed: there is no evaluation to
			// explain, and the caller gets attest's error.
			return nil, err
		default:
			return nil, errorf(CodeInternal, "the pipeline produced no result")
		}
	}
	if res == nil {
		return nil, evalErr // e.g. an incoming value of an unsupported type
	}
	ex.Decision, ex.Trace = res.Decision, res.Trace
	if ex.Incoming == nil {
		ex.Incoming = []policy.Claim{}
	}
	if evalErr != nil {
		var e *Error
		if !errors.As(evalErr, &e) {
			e = &Error{Code: CodePolicyEvaluationError, Message: evalErr.Error()}
		}
		ex.Error = &ExplainError{Code: e.Code, Message: e.Message}
		ex.TokenClaims = nil
		return ex, nil
	}
	ex.Permitted = res.Decision == policy.DecisionPermit
	ex.Issued = policy.TokenClaims(res.Issued)
	return ex, nil
}
