package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/attestd/attestd/collateral"
)

// qvlJSON is the collateral JSON of Phala's dcap-qvl (QuoteCollateralV3):
// issuer chains as PEM text, CRLs as hex DER, tcb_info/qe_identity as the
// exact signed JSON text, signatures as hex r||s.
type qvlJSON struct {
	PCKCRLIssuerChain     bytesField `json:"pck_crl_issuer_chain"`
	RootCACRL             bytesField `json:"root_ca_crl"`
	PCKCRL                bytesField `json:"pck_crl"`
	TCBInfoIssuerChain    bytesField `json:"tcb_info_issuer_chain"`
	TCBInfo               bytesField `json:"tcb_info"`
	TCBInfoSignature      bytesField `json:"tcb_info_signature"`
	QEIdentityIssuerChain bytesField `json:"qe_identity_issuer_chain"`
	QEIdentity            bytesField `json:"qe_identity"`
	QEIdentitySignature   bytesField `json:"qe_identity_signature"`
}

// bytesField accepts a JSON string (its UTF-8 bytes) or, as serde writes a
// Vec<u8> without a custom serializer, an array of byte values.
type bytesField struct {
	b     []byte
	array bool // came as an array: raw bytes, not text
	set   bool
}

func (f *bytesField) UnmarshalJSON(b []byte) error {
	f.set = true
	if len(b) > 0 && b[0] == '[' {
		var v []byte
		var ints []int
		if err := json.Unmarshal(b, &ints); err != nil {
			return err
		}
		for _, i := range ints {
			if i < 0 || i > 255 {
				return fmt.Errorf("byte value %d out of range", i)
			}
			v = append(v, byte(i))
		}
		f.b, f.array = v, true
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	f.b = []byte(s)
	return nil
}

// ParseQVLJSON parses collateral in dcap-qvl's JSON layout. It accepts the
// encodings seen in the wild for each member: CRLs as hex DER (dcap-qvl),
// PEM or byte arrays; signatures as hex or byte arrays; tcb_info/qe_identity
// as the signed JSON text or as a whole PCS response body (whose embedded
// signature is then used). The result is checked with Collateral.Inspect.
func ParseQVLJSON(b []byte) (*collateral.Collateral, error) {
	var v qvlJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: dcap-qvl collateral JSON: %v", collateral.ErrMalformed, err)
	}
	for _, f := range []struct {
		name string
		f    *bytesField
	}{
		{"pck_crl_issuer_chain", &v.PCKCRLIssuerChain}, {"root_ca_crl", &v.RootCACRL}, {"pck_crl", &v.PCKCRL},
		{"tcb_info_issuer_chain", &v.TCBInfoIssuerChain}, {"tcb_info", &v.TCBInfo},
		{"qe_identity_issuer_chain", &v.QEIdentityIssuerChain}, {"qe_identity", &v.QEIdentity},
	} {
		if len(f.f.b) == 0 {
			return nil, fmt.Errorf("%w: dcap-qvl collateral JSON: %s is missing or empty", collateral.ErrMalformed, f.name)
		}
	}
	c := &collateral.Collateral{
		PCKCRLIssuerChain:     v.PCKCRLIssuerChain.b,
		TCBInfoIssuerChain:    v.TCBInfoIssuerChain.b,
		QEIdentityIssuerChain: v.QEIdentityIssuerChain.b,
	}
	var err error
	if c.RootCACRL, err = crlBytes(v.RootCACRL); err != nil {
		return nil, fmt.Errorf("dcap-qvl collateral JSON: root_ca_crl: %w", err)
	}
	if c.PCKCRL, err = crlBytes(v.PCKCRL); err != nil {
		return nil, fmt.Errorf("dcap-qvl collateral JSON: pck_crl: %w", err)
	}
	if c.TCBInfo, c.TCBInfoSignature, err = signedMember(v.TCBInfo, v.TCBInfoSignature, "tcbInfo", collateral.ParseTCBInfoResponse); err != nil {
		return nil, fmt.Errorf("dcap-qvl collateral JSON: tcb_info: %w", err)
	}
	if c.QEIdentity, c.QEIdentitySignature, err = signedMember(v.QEIdentity, v.QEIdentitySignature, "enclaveIdentity", collateral.ParseQEIdentityResponse); err != nil {
		return nil, fmt.Errorf("dcap-qvl collateral JSON: qe_identity: %w", err)
	}
	if _, err := c.Inspect(); err != nil {
		return nil, fmt.Errorf("dcap-qvl collateral JSON: %w", err)
	}
	return c, nil
}

func crlBytes(f bytesField) ([]byte, error) {
	info, err := collateral.ParseCRL(f.b)
	if err != nil {
		return nil, err
	}
	return info.DER, nil
}

// signedMember returns the signed document bytes and signature. If doc is a
// whole response body ({"tcbInfo":…,"signature":…}) the inner value is cut
// out; a separate signature member, if present, must then agree with it.
func signedMember(doc, sig bytesField, inner string, parseResponse func([]byte) (*collateral.SignedDocument, error)) ([]byte, []byte, error) {
	var sigBytes []byte
	if sig.set && len(sig.b) > 0 {
		if sig.array {
			sigBytes = sig.b
			if len(sigBytes) != 64 {
				return nil, nil, fmt.Errorf("%w: signature is %d bytes, want 64", collateral.ErrMalformed, len(sigBytes))
			}
		} else {
			var err error
			if sigBytes, err = collateral.ParseSignatureHex(string(sig.b)); err != nil {
				return nil, nil, err
			}
		}
	}
	if bytes.Contains(doc.b[:min(len(doc.b), 32)], []byte(`"`+inner+`"`)) {
		resp, err := parseResponse(doc.b)
		if err != nil {
			return nil, nil, err
		}
		if sigBytes != nil && !bytes.Equal(sigBytes, resp.Signature) {
			return nil, nil, fmt.Errorf("%w: separate signature differs from the one in the response body", collateral.ErrMalformed)
		}
		return resp.Body, resp.Signature, nil
	}
	if sigBytes == nil {
		return nil, nil, fmt.Errorf("%w: no signature", collateral.ErrMalformed)
	}
	return doc.b, sigBytes, nil
}

// MarshalQVLJSON writes c in dcap-qvl's JSON layout (the format ParseQVLJSON
// reads and the cache persists). Signed documents must be valid UTF-8 so they
// survive as JSON strings byte for byte.
func MarshalQVLJSON(c *collateral.Collateral) ([]byte, error) {
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"pck_crl_issuer_chain", c.PCKCRLIssuerChain}, {"tcb_info_issuer_chain", c.TCBInfoIssuerChain},
		{"qe_identity_issuer_chain", c.QEIdentityIssuerChain}, {"tcb_info", c.TCBInfo}, {"qe_identity", c.QEIdentity},
	} {
		if !utf8.Valid(f.b) {
			return nil, fmt.Errorf("dcap-qvl collateral JSON: %s is not valid UTF-8 and cannot be kept exactly in a JSON string", f.name)
		}
	}
	v := struct {
		PCKCRLIssuerChain     string `json:"pck_crl_issuer_chain"`
		RootCACRL             string `json:"root_ca_crl"`
		PCKCRL                string `json:"pck_crl"`
		TCBInfoIssuerChain    string `json:"tcb_info_issuer_chain"`
		TCBInfo               string `json:"tcb_info"`
		TCBInfoSignature      string `json:"tcb_info_signature"`
		QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
		QEIdentity            string `json:"qe_identity"`
		QEIdentitySignature   string `json:"qe_identity_signature"`
	}{
		string(c.PCKCRLIssuerChain), hex.EncodeToString(c.RootCACRL), hex.EncodeToString(c.PCKCRL),
		string(c.TCBInfoIssuerChain), string(c.TCBInfo), hex.EncodeToString(c.TCBInfoSignature),
		string(c.QEIdentityIssuerChain), string(c.QEIdentity), hex.EncodeToString(c.QEIdentitySignature),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
