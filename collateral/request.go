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
	return fmt.Sprintf("%s FMSPC %s (PCK %s CA)", r.TEE, r.FMSPC, r.CA)
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
