package pcs

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/attestd/attestd/internal/strictjson"
)

// SignedDocument is a TCB info or enclave (QE) identity as Intel signs it:
// the exact bytes of the "tcbInfo"/"enclaveIdentity" JSON value and the raw
// ECDSA P-256 signature r||s over them.
type SignedDocument struct {
	Body      []byte
	Signature []byte
}

// ParseTCBInfoResponse cuts the signed "tcbInfo" value and its signature out
// of a PCS/PCCS TCB info response body ({"tcbInfo":{…},"signature":"hex"}).
// The body bytes are returned exactly as served, because the signature
// covers those bytes and any re-encoding would break it.
func ParseTCBInfoResponse(body []byte) (*SignedDocument, error) {
	return parseSignedResponse(body, "TCB info response", "tcbInfo")
}

// ParseEnclaveIdentityResponse does the same for an enclave identity
// response body ({"enclaveIdentity":{…},"signature":"hex"}). PCS API v2 used
// the member name "qeIdentity"; it is accepted too.
func ParseEnclaveIdentityResponse(body []byte) (*SignedDocument, error) {
	return parseSignedResponse(body, "QE identity response", "enclaveIdentity", "qeIdentity")
}

func parseSignedResponse(body []byte, what string, names ...string) (*SignedDocument, error) {
	m, err := strictjson.Object(body)
	if err != nil {
		return nil, fmt.Errorf("%s: not JSON, or not one JSON object with unique member names: %v", what, err)
	}
	var doc json.RawMessage
	for _, name := range names {
		if v, ok := m[name]; ok {
			if doc != nil {
				return nil, fmt.Errorf("%s has both %q and %q", what, names[0], name)
			}
			doc = v
		}
	}
	if doc == nil {
		return nil, fmt.Errorf("%s has no %q member", what, names[0])
	}
	if len(doc) == 0 || doc[0] != '{' {
		return nil, fmt.Errorf("%s: %q is not a JSON object", what, names[0])
	}
	rawSig, ok := m["signature"]
	if !ok {
		return nil, fmt.Errorf("%s has no \"signature\" member", what)
	}
	var sigHex string
	if err := json.Unmarshal(rawSig, &sigHex); err != nil {
		return nil, fmt.Errorf("%s: signature is not a JSON string", what)
	}
	sig, err := ParseSignatureHex(sigHex)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &SignedDocument{Body: []byte(doc), Signature: sig}, nil
}

// ParseSignatureHex decodes a hex ECDSA P-256 signature r||s (64 bytes).
func ParseSignatureHex(s string) ([]byte, error) {
	sig, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("signature is not hex: %v", err)
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("signature is %d bytes, want 64 (ECDSA P-256 r||s)", len(sig))
	}
	return sig, nil
}

// MarshalTCBInfoResponse writes a PCS TCB info response around the exact
// signed body: {"tcbInfo":body,"signature":"hex"}.
func MarshalTCBInfoResponse(body, sig []byte) ([]byte, error) {
	return marshalSignedResponse("tcbInfo", body, sig)
}

// MarshalEnclaveIdentityResponse writes {"enclaveIdentity":body,"signature":"hex"}.
func MarshalEnclaveIdentityResponse(body, sig []byte) ([]byte, error) {
	return marshalSignedResponse("enclaveIdentity", body, sig)
}

func marshalSignedResponse(name string, body, sig []byte) ([]byte, error) {
	if !json.Valid(body) || len(body) == 0 || body[0] != '{' {
		return nil, errors.New("signed body is not a JSON object")
	}
	out := make([]byte, 0, len(body)+len(sig)*2+40)
	out = append(out, `{"`+name+`":`...)
	out = append(out, body...) // verbatim: the signature covers these bytes
	out = append(out, `,"signature":"`...)
	out = hex.AppendEncode(out, sig)
	return append(out, `"}`...), nil
}
