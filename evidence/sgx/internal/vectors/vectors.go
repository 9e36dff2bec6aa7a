// Package vectors loads the real-hardware test vectors of ../shared for the
// SGX tests: collateral in dcap-qvl's JSON layout and the loose files some
// sets use. It is test support; production collateral loading belongs to the
// collateral package.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/attestd/attestd/collateral"
)

type dcapQVL struct {
	PCKCRLIssuerChain     string `json:"pck_crl_issuer_chain"`
	RootCACRL             string `json:"root_ca_crl"`
	PCKCRL                string `json:"pck_crl"`
	TCBInfoIssuerChain    string `json:"tcb_info_issuer_chain"`
	TCBInfo               string `json:"tcb_info"`
	TCBInfoSignature      string `json:"tcb_info_signature"`
	QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
	QEIdentity            string `json:"qe_identity"`
	QEIdentitySignature   string `json:"qe_identity_signature"`
}

func unhex(s, what string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// DCAPQVL parses collateral in dcap-qvl's JSON layout (PEM chains as text,
// CRLs and signatures as hex, signed JSON bodies as strings).
func DCAPQVL(b []byte) (*collateral.Collateral, error) {
	var j dcapQVL
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	c := &collateral.Collateral{
		PCKCRLIssuerChain:     []byte(j.PCKCRLIssuerChain),
		TCBInfoIssuerChain:    []byte(j.TCBInfoIssuerChain),
		TCBInfo:               []byte(j.TCBInfo),
		QEIdentityIssuerChain: []byte(j.QEIdentityIssuerChain),
		QEIdentity:            []byte(j.QEIdentity),
	}
	var err error
	for _, f := range []struct {
		dst  *[]byte
		src  string
		what string
	}{
		{&c.RootCACRL, j.RootCACRL, "root_ca_crl"}, {&c.PCKCRL, j.PCKCRL, "pck_crl"},
		{&c.TCBInfoSignature, j.TCBInfoSignature, "tcb_info_signature"}, {&c.QEIdentitySignature, j.QEIdentitySignature, "qe_identity_signature"},
	} {
		if *f.dst, err = unhex(f.src, f.what); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// SignedJSON splits a PCS response {"tcbInfo"|"enclaveIdentity": {...}, "signature": "hex"}
// into the exact signed body bytes and the raw signature.
func SignedJSON(b []byte) (body, sig []byte, err error) {
	var j struct {
		TCBInfo         json.RawMessage `json:"tcbInfo"`
		EnclaveIdentity json.RawMessage `json:"enclaveIdentity"`
		QEIdentity      json.RawMessage `json:"qeIdentity"`
		Signature       string          `json:"signature"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, nil, err
	}
	switch {
	case j.TCBInfo != nil:
		body = j.TCBInfo
	case j.EnclaveIdentity != nil:
		body = j.EnclaveIdentity
	case j.QEIdentity != nil:
		body = j.QEIdentity
	default:
		return nil, nil, errors.New("no tcbInfo/enclaveIdentity member")
	}
	sig, err = unhex(j.Signature, "signature")
	return append([]byte(nil), body...), sig, err
}
