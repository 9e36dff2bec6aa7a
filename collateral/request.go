package collateral

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// The PCK CAs that issue PCK certificates, as Request.CA values. They are
// also the values of the PCS "ca" query parameter.
const (
	CAProcessor = "processor"
	CAPlatform  = "platform"
)

// Normalize returns the canonical form of r (TEE upper case, FMSPC and CA
// lower case) or an error naming the invalid field. Sources key their data by
// the normalized request, so "00A067110000" and "00a067110000" are the same.
func (r Request) Normalize() (Request, error) {
	n := Request{
		TEE:   TEE(strings.ToUpper(string(r.TEE))),
		FMSPC: strings.ToLower(r.FMSPC),
		CA:    strings.ToLower(r.CA),

		TCBEvaluationDataNumber: r.TCBEvaluationDataNumber,
	}
	if n.TCBEvaluationDataNumber < 0 {
		return Request{}, fmt.Errorf("collateral request: TCB evaluation data number %d is negative", r.TCBEvaluationDataNumber)
	}
	if n.TEE != SGX && n.TEE != TDX {
		return Request{}, fmt.Errorf("collateral request: TEE %q is neither %s nor %s", r.TEE, SGX, TDX)
	}
	if err := checkFMSPC(n.FMSPC); err != nil {
		return Request{}, fmt.Errorf("collateral request: %w", err)
	}
	if n.CA != CAProcessor && n.CA != CAPlatform {
		return Request{}, fmt.Errorf("collateral request: CA %q is neither %q nor %q", r.CA, CAProcessor, CAPlatform)
	}
	return n, nil
}

// String renders r for logs and error messages.
func (r Request) String() string {
	if r.TCBEvaluationDataNumber != 0 {
		return fmt.Sprintf("%s FMSPC %s (PCK %s CA, TCB evaluation data number %d)", r.TEE, r.FMSPC, r.CA, r.TCBEvaluationDataNumber)
	}
	return fmt.Sprintf("%s FMSPC %s (PCK %s CA)", r.TEE, r.FMSPC, r.CA)
}

// Default returns r asking for the standard TCB baseline (number 0).
func (r Request) Default() Request {
	r.TCBEvaluationDataNumber = 0
	return r
}

// Serves reports whether collateral described by info answers r: same TEE,
// FMSPC and CA, and, when r selects a TCB evaluation data number, a TCB info
// and QE identity that both carry that number. Caches and verifiers use it
// so a source cannot pass off another baseline as the one asked for.
func (r Request) Serves(info *Info) error {
	if info.Request != r.Default() {
		return fmt.Errorf("%w: collateral is for %s, not %s", ErrMalformed, info.Request, r.Default())
	}
	if n := r.TCBEvaluationDataNumber; n != 0 {
		if got := info.TCBInfo.TCBEvaluationDataNumber; got != n {
			return fmt.Errorf("%w: asked for TCB evaluation data number %d, the TCB info has %d", ErrMalformed, n, got)
		}
		if got := info.QEIdentity.TCBEvaluationDataNumber; got != n {
			return fmt.Errorf("%w: asked for TCB evaluation data number %d, the QE identity has %d", ErrMalformed, n, got)
		}
	}
	return nil
}

func checkFMSPC(s string) error {
	if len(s) != 12 {
		return fmt.Errorf("FMSPC %q is not 12 hex characters", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return fmt.Errorf("FMSPC %q is not hex", s)
	}
	return nil
}
