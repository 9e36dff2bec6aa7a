package instance

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
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

// baselineLister is implemented by verifiers that can list the TCB
// baselines of their collateral source (evidence/sgx.Verifier).
type baselineLister interface {
	TCBBaselines(ctx context.Context) ([]collateral.Baseline, error)
}

// TCBBaselines lists the SGX TCB baselines attestations of type typ
// (SgxEnclave, OpenEnclave) can select with x-ms-sgx-tcbidentifier: first
// "azuredefault" (the collateral source's standard documents, with their
// number), then every number the source can serve, newest first.
// isSelectedTcb marks the baseline the policy in force selects. What a
// source can list: a bundle, the numbers it holds; PCS/PCCS behind the
// cache, the numbers fetched so far (see collateral.BaselineLister).
func (in *Instance) TCBBaselines(ctx context.Context, typ string) (*TCBBaselines, error) {
	t, err := ParseType(typ)
	if err != nil {
		return nil, err
	}
	if t != evidence.SgxEnclave && t != evidence.OpenEnclave {
		return nil, errorf(CodeInvalidParameter, "TCB baselines apply to SgxEnclave and OpenEnclave, not %s", t)
	}
	v := in.verif[t]
	if v == nil {
		return nil, errorf(CodeNotSupported, "attestation type %s is not supported by this attestd: no evidence verifier is registered for it", t)
	}
	l, ok := v.(baselineLister)
	if !ok {
		return nil, errorf(CodeNotSupported, "the %s verifier cannot list TCB baselines", t)
	}
	bs, err := l.TCBBaselines(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Code: CodeInternal, Message: "request cancelled", Err: err}
		}
		return nil, &Error{Code: CodeNotSupported, Message: "listing TCB baselines: " + err.Error(), Err: err}
	}
	selected, err := in.selectedBaseline(ctx, t)
	if err != nil {
		return nil, err
	}
	out := &TCBBaselines{TCBBaselines: []TCBBaseline{}}
	entry := func(id string, b collateral.Baseline) TCBBaseline {
		e := TCBBaseline{TCBIdentifier: id, TCBEvaluationDataNumber: strconv.Itoa(b.TCBEvaluationDataNumber), IsSelectedTCB: id == selected}
		if !b.TCBDate.IsZero() {
			e.TCBReleaseDate = b.TCBDate.UTC().Format(time.RFC3339)
		}
		return e
	}
	// The standard documents: the newest standard number if a source
	// (several FMSPCs, a cache and a fallback bundle) lists more than one.
	for _, b := range bs {
		if b.Standard {
			out.TCBBaselines = append(out.TCBBaselines, entry("azuredefault", b))
			break
		}
	}
	for _, b := range bs {
		out.TCBBaselines = append(out.TCBBaselines, entry(strconv.Itoa(b.TCBEvaluationDataNumber), b))
	}
	return out, nil
}

// selectedBaseline returns the x-ms-sgx-tcbidentifier the policy in force
// for t sets, canonical ("azuredefault" or the number without leading
// zeros), or the raw value when it is neither.
func (in *Instance) selectedBaseline(ctx context.Context, t evidence.Type) (string, error) {
	ap, err := in.active(ctx, t)
	if err != nil {
		return "", err
	}
	if ap.None {
		return "", nil
	}
	cp, err := in.compile(ap.Text)
	if err != nil {
		return "", err
	}
	props, err := cp.p.Configure(ctx, string(t))
	if err != nil {
		return "", evalError(err)
	}
	id, _ := props["x-ms-sgx-tcbidentifier"].(string)
	id = strings.TrimSpace(id)
	if id == "" || strings.EqualFold(id, "azuredefault") {
		return "azuredefault", nil
	}
	// Only ASCII digits, as evidence/sgx.ParseTCBIdentifier: strconv.Atoi
	// alone also takes "+15", which attestation refuses, and the listing
	// would then mark a baseline no attestation is judged against.
	if strings.Trim(id, "0123456789") != "" {
		return id, nil
	}
	if n, err := strconv.Atoi(id); err == nil && n > 0 {
		return strconv.Itoa(n), nil
	}
	return id, nil
}
