package token

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendClaims appends the JSON encoding of a claims object exactly as
// marshalJSON's encoding/json path writes it (sorted keys, no HTML
// escaping), without reflection for the value kinds claims are made of:
// strings, booleans, integers, json.Number, nil, and maps and slices of
// them. Any other value (floats, structs, raw messages) and any string
// that would need escaping is written by encoding/json itself, so the
// output never differs (FuzzAppendClaims compares the two). It exists
// because, with ES256, reflection-driven encoding of the ~40 claims of an
// SGX token was one of the larger costs left beside the cryptography.
func appendClaims(b []byte, m map[string]any) ([]byte, error) {
	return appendValue(b, m)
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case json.Number:
		if !validNumber(string(x)) {
			return appendFallback(b, v)
		}
		return append(b, x...), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendObject(b, x, appendValue)
	case map[string]string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendObject(b, x, appendString)
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendArray(b, x, appendValue)
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendArray(b, x, appendString)
	}
	return appendFallback(b, v)
}

// appendObject writes a non-nil map as a JSON object with its keys sorted,
// as encoding/json does, each value written by elem. It is generic so that
// map[string]any and map[string]string share one loop without an
// interface conversion per value.
func appendObject[V any](b []byte, m map[string]V, elem func([]byte, V) ([]byte, error)) ([]byte, error) {
	// Key and value together, sorted by key: one pass over the map and no
	// lookup per key afterwards.
	type member struct {
		k string
		v V
	}
	var small [48]member // an SGX token's top level has ~40 claims
	ms := small[:0]
	if len(m) > len(small) {
		ms = make([]member, 0, len(m))
	}
	for k, v := range m {
		ms = append(ms, member{k, v})
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.k, b.k) })
	b = append(b, '{')
	for i := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendString(b, ms[i].k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = elem(b, ms[i].v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendArray writes a non-nil slice as a JSON array, each element
// written by elem.
func appendArray[V any](b []byte, s []V, elem func([]byte, V) ([]byte, error)) ([]byte, error) {
	b = append(b, '[')
	for i, e := range s {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = elem(b, e); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendString writes s quoted when no byte of it needs an escape (the
// claims attestd makes: hex, base64url, names, URLs), and through
// encoding/json otherwise.
func appendString(b []byte, s string) ([]byte, error) {
	i := asciiPlainPrefix(s)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == 0x7f {
				return appendFallback(b, s)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return appendFallback(b, s)
		}
		i += n
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

// asciiPlainPrefix returns the length of the longest prefix of s made of
// whole 8-byte words of ASCII that appendString writes verbatim (0x20–0x7e
// but '"' and '\\'), tested a word at a time as api's plainASCII does;
// appendString's byte loop checks the rest. The hex and base64url claims
// of a token are ~2.6 KB.
func asciiPlainPrefix(s string) int {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		below := (w - ones*0x20) & ^w & high       // a byte < 0x20
		above := (w + ones*(0x7f-0x7e) | w) & high // a byte > 0x7e
		q := w ^ (ones * '"')
		quote := (q - ones) & ^q & high // a byte == '"'
		x := w ^ (ones * '\\')
		backslash := (x - ones) & ^x & high // a byte == '\\'
		if below|above|quote|backslash != 0 {
			break
		}
	}
	return i
}

// appendFallback encodes v with encoding/json as marshalJSON does.
func appendFallback(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

// validNumber reports whether s is a JSON number (RFC 8259 §6), the check
// encoding/json makes before writing a json.Number verbatim.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}
