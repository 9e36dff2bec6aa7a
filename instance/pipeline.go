package instance

import (
	"context"
	"errors"
	"slices"

	"github.com/attestd/attestd/evidence"
)

// verifier returns the verifier registered for t; a type without one is
// NotSupported, never a token. Attest, Explain and the TCB baseline listing
// all come through here.
func (in *Instance) verifier(t evidence.Type) (evidence.Verifier, error) {
	if v := in.verif[t]; v != nil {
		return v, nil
	}
	return nil, errNoVerifier(t)
}

func errNoVerifier(t evidence.Type) error {
	return errorf(CodeNotSupported, "attestation type %s is not supported by this attestd: no evidence verifier is registered for it", t)
}

// selectedPolicy is the policy one attestation or dry run runs under.
type selectedPolicy struct {
	text   string
	draft  bool          // caller-supplied text: parsed for this call only
	active *activePolicy // the policy in force; nil for drafts
	source string        // PolicySource* for Explain
}

// choosePolicy picks the policy of one call: the draft text when given,
// otherwise the instance's policy in force; Tpm without a policy is MAA's
// "Bad request". Attest and Explain share it.
func (in *Instance) choosePolicy(ctx context.Context, t evidence.Type, draft *string) (*selectedPolicy, error) {
	if draft != nil {
		return &selectedPolicy{text: *draft, draft: true, source: PolicySourceDraft}, nil
	}
	ap, err := in.active(ctx, t)
	if err != nil {
		return nil, err
	}
	if ap.None {
		return nil, errorf(CodeBadRequest, "%s", TpmNoPolicyMessage)
	}
	return &selectedPolicy{text: ap.Text, active: ap, source: PolicySourceCurrent}, nil
}

// compileSelected parses the selected policy: drafts afresh, policies in
// force through the bounded cache.
func (in *Instance) compileSelected(s *selectedPolicy) (*compiledPolicy, error) {
	if s.draft {
		return parseDraft(s.text)
	}
	return in.compile(s.text)
}

// round runs the multi-round step of a verifier that has one: a challenge
// round returns its reply (and the pipeline stops there); a continuing
// request gets its opened state in ereq.State. It returns (nil, nil) for a
// request that goes on to Parse.
func (in *Instance) round(ctx context.Context, mr evidence.MultiRound, ereq *evidence.Request) (*AttestResponse, error) {
	r, err := mr.Round(ctx, ereq)
	if err != nil {
		return nil, verificationError(ctx, err)
	}
	if r == nil {
		return nil, nil
	}
	switch {
	case r.Reply != nil:
		sc, err := in.sealer().Seal(ctx, r.State, ereq.Now)
		if err != nil {
			return nil, &Error{Code: CodeInternal, Message: "sealing the service context failed", Err: err}
		}
		data, err := r.Reply(sc)
		if err != nil {
			return nil, verificationError(ctx, err)
		}
		return &AttestResponse{Data: data}, nil
	case r.Resume != "":
		st, err := in.sealer().Open(ctx, r.Resume, ereq.Now)
		if err != nil {
			var ee *evidence.Error
			if errors.As(err, &ee) {
				return nil, evidenceError(err)
			}
			return nil, &Error{Code: CodeInternal, Message: "opening the service context failed", Err: err}
		}
		ereq.State = st
	}
	return nil, nil
}

// ClaimsSupported is the claims_supported list of the OpenID metadata: the
// claims every token can carry, then each registered verifier's own (in
// the order of evidence.Types, without repeats).
func (in *Instance) ClaimsSupported() []string {
	out := []string{"cnf", "nonce", "x-ms-ver", "x-ms-attestation-type", "x-ms-policy-hash", "x-ms-policy-signer"}
	for _, t := range evidence.Types {
		a, ok := in.verif[t].(evidence.ClaimsAdvertiser)
		if !ok {
			continue
		}
		for _, c := range a.ClaimsSupported() {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}
