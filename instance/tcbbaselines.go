package instance

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
)

// TCBBaseline is one entry of GET /tcbbaselines/{type} (maa-api.md §1.6).
// attestd knows no Intel PSW versions (Intel's collateral does not carry
// them), so the minimum PSW versions are empty strings.
type TCBBaseline struct {
	TCBIdentifier            string `json:"tcbIdentifier"`
	TCBEvaluationDataNumber  string `json:"tcbEvaluationDataNumber"`
	TCBReleaseDate           string `json:"tcbReleaseDate"`
	MinimumPSWLinuxVersion   string `json:"minimumPswLinuxVersion"`
	MinimumPSWWindowsVersion string `json:"minimumPswWindowsVersion"`
	IsSelectedTCB            bool   `json:"isSelectedTcb"`
}

// TCBBaselines is the body of GET /tcbbaselines/{type}.
type TCBBaselines struct {
	TCBBaselines []TCBBaseline `json:"tcbBaselines"`
}

// TCBBaselines lists the TCB baselines attestations of type typ can select
// (for SGX: first "azuredefault", the collateral source's standard
// documents, then every number the source can serve, newest first).
// isSelectedTcb marks the baseline the policy in force selects. The
// verifier produces the list and reads its own baseline property
// (evidence.BaselineLister); a verifier without the capability means TCB
// baselines do not apply to the type.
func (in *Instance) TCBBaselines(ctx context.Context, typ string) (*TCBBaselines, error) {
	t, err := ParseType(typ)
	if err != nil {
		return nil, err
	}
	// Without a verifier that lists baselines the type has none here
	// (Tpm; SGX when its verifier is disabled).
	v := in.verif[t]
	l, ok := v.(evidence.BaselineLister)
	if !ok {
		return nil, errorf(CodeInvalidParameter, "TCB baselines do not apply to %s attestation in this attestd (its verifier, if any, lists none)", t)
	}
	props, err := in.activeProperties(ctx, t, v)
	if err != nil {
		return nil, err
	}
	bs, err := l.ListBaselines(ctx, t, props)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Code: CodeInternal, Message: "request cancelled", Err: err}
		}
		return nil, &Error{Code: CodeNotSupported, Message: "listing TCB baselines: " + err.Error(), Err: err}
	}
	out := &TCBBaselines{TCBBaselines: []TCBBaseline{}}
	for _, b := range bs {
		e := TCBBaseline{TCBIdentifier: b.Identifier, TCBEvaluationDataNumber: strconv.Itoa(b.EvaluationDataNumber), IsSelectedTCB: b.Selected}
		if !b.ReleaseDate.IsZero() {
			e.TCBReleaseDate = b.ReleaseDate.UTC().Format(time.RFC3339)
		}
		out.TCBBaselines = append(out.TCBBaselines, e)
	}
	return out, nil
}

// activeProperties are the configuration properties of the policy in force
// for t, with v's defaults; nil when t has no policy (Tpm before a PUT).
func (in *Instance) activeProperties(ctx context.Context, t evidence.Type, v evidence.Verifier) (map[string]any, error) {
	sel, err := in.choosePolicy(ctx, t, nil)
	if err != nil {
		var ie *Error
		if errors.As(err, &ie) && ie.Code == CodeBadRequest {
			return nil, nil
		}
		return nil, err
	}
	cp, err := in.compileSelected(sel)
	if err != nil {
		return nil, err
	}
	props, err := cp.p.ConfigureWith(ctx, string(t), policy.EvalOptions{Defaults: configurationDefaults(v, t)})
	if err != nil {
		return nil, evalError(err)
	}
	return props, nil
}
