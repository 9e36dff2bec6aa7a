package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Explain parses a policy, evaluates it over a JSON claim set and returns
// the decision with a full trace — the engine behind the explain endpoint
// and CLI verb. claimsJSON is an object whose members are incoming claims
// (issuer AttestationService), in member order:
//
//	{"x-ms-sgx-mrsigner":"4aea…","x-ms-sgx-is-debuggable":true,"x-ms-sgx-svn":1}
//
// An array value means several claims of one type. Values are booleans,
// integers or strings. A denial is not an error: Result.Decision and
// Result.Err describe it. The error is a *ParseError for a bad policy, or
// describes a malformed claim set.
func Explain(policyText string, claimsJSON []byte, attestationType string) (*Result, error) {
	p, err := Parse(policyText)
	if err != nil {
		return nil, err
	}
	claims, err := ClaimsFromJSON(claimsJSON)
	if err != nil {
		return nil, err
	}
	res, err := p.Evaluate(context.Background(), attestationType, claims, EvalOptions{Trace: true})
	var ee *EvalError
	if err != nil && !errors.As(err, &ee) {
		return nil, err
	}
	return res, nil
}

// ClaimsFromJSON decodes a claim set in the form Explain accepts.
func ClaimsFromJSON(b []byte) ([]Claim, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errors.New("claims: want a JSON object of claim type → value(s)")
	}
	var out []Claim
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("claims: %w", err)
		}
		name := kt.(string)
		var raw any
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("claims: %s: %w", name, err)
		}
		vals := []any{raw}
		if arr, ok := raw.([]any); ok {
			vals = arr
		}
		for _, v := range vals {
			cv, err := claimValueFromJSON(v)
			if err != nil {
				return nil, fmt.Errorf("claims: %s: %w", name, err)
			}
			out = append(out, Claim{Type: name, Value: cv, Issuer: IssuerService})
			if len(out) > MaxClaims {
				return nil, fmt.Errorf("claims: more than %d claims", MaxClaims)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("claims: data after the JSON object")
	}
	return out, nil
}

func claimValueFromJSON(v any) (any, error) {
	switch x := v.(type) {
	case bool, string:
		return x, nil
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return nil, fmt.Errorf("number %s is not a 64-bit integer", x)
		}
		return i, nil
	}
	return nil, fmt.Errorf("value %v is not a boolean, integer or string", v)
}
