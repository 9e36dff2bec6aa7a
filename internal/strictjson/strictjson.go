// Package strictjson reads a JSON object by exact, unique member names.
//
// encoding/json's struct decoding matches names case-insensitively, lets the
// last of duplicate names win and (through Decoder.Decode) ignores what
// follows the value. For signed or security-relevant documents — JWS headers
// and payloads (RFC 7515 §4 wants unique header names), JWT claims (RFC 7519
// §4), Intel's signed collateral bodies — a reader that resolves "alg"/"ALG",
// a repeated "roles" or two "tcbInfo" members differently from the signer's
// library could act on something the signer did not mean. This package is
// the one place attestd splits such objects; duplicates, trailing data and
// non-objects are refused.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Object decodes b as exactly one JSON object and returns its members by
// their exact (unescaped) names, each as the raw JSON value.
func Object(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed JSON object")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("member %q: %w", name, err)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// Member decodes member name of m into v. present is false when m has no
// such member or it is JSON null, which callers treat as absent.
func Member(m map[string]json.RawMessage, name string, v any) (present bool, err error) {
	raw, ok := m[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("member %q: %w", name, err)
	}
	return true, nil
}
