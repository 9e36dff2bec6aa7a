package jmespath

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Object is a JSON object that keeps its members in document order, so a
// query result serialises with keys where the evidence had them (spec §6:
// "object keys in document order"). Duplicate keys: the last value wins, at
// the position of the first occurrence.
type Object struct {
	Keys []string
	Vals []any
}

// Get returns the member named k, or nil.
func (o *Object) Get(k string) any {
	for i, kk := range o.Keys {
		if kk == k {
			return o.Vals[i]
		}
	}
	return nil
}

func (o *Object) set(k string, v any) {
	for i, kk := range o.Keys {
		if kk == k {
			o.Vals[i] = v
			return
		}
	}
	o.Keys = append(o.Keys, k)
	o.Vals = append(o.Vals, v)
}

// Values are: nil, bool, float64, string, []any, *Object.

// ErrLimit is matched (errors.Is) by every error caused by a resource limit.
var ErrLimit = errors.New("limit exceeded")

// limitErr is a resource-limit error; it reads as its own message and
// matches ErrLimit.
type limitErr string

func (e limitErr) Error() string        { return string(e) }
func (e limitErr) Is(target error) bool { return target == ErrLimit }

// maxStringBytes bounds one string built inside a query (to_string, join).
const maxStringBytes = 1 << 20

// ParseJSON decodes one JSON text (RFC 8259) into the value model above.
// maxDepth bounds nesting so hostile input cannot exhaust the stack.
func ParseJSON(s string, maxDepth int) (any, error) {
	d := jsonDec{s: s, maxDepth: maxDepth}
	d.ws()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.i != len(d.s) {
		return nil, d.errf("unexpected data after the JSON value")
	}
	return v, nil
}

type jsonDec struct {
	s        string
	i        int
	maxDepth int
}

func (d *jsonDec) errf(msg string) error {
	return errors.New("invalid JSON at offset " + strconv.Itoa(d.i) + ": " + msg)
}

func (d *jsonDec) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDec) value(depth int) (any, error) {
	if depth > d.maxDepth {
		return nil, limitErr("invalid JSON at offset " + strconv.Itoa(d.i) + ": nesting deeper than " + strconv.Itoa(d.maxDepth))
	}
	if d.i >= len(d.s) {
		return nil, d.errf("unexpected end of input")
	}
	switch c := d.s[d.i]; {
	case c == '{':
		d.i++
		o := &Object{}
		d.ws()
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			return o, nil
		}
		for {
			d.ws()
			if d.i >= len(d.s) || d.s[d.i] != '"' {
				return nil, d.errf("expected a member name")
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			d.ws()
			if d.i >= len(d.s) || d.s[d.i] != ':' {
				return nil, d.errf("expected ':'")
			}
			d.i++
			d.ws()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			o.set(k, v)
			d.ws()
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == '}' {
				d.i++
				return o, nil
			}
			return nil, d.errf("expected ',' or '}'")
		}
	case c == '[':
		d.i++
		a := []any{}
		d.ws()
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			return a, nil
		}
		for {
			d.ws()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			d.ws()
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == ']' {
				d.i++
				return a, nil
			}
			return nil, d.errf("expected ',' or ']'")
		}
	case c == '"':
		return d.str()
	case c == 't' && len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "true":
		d.i += 4
		return true, nil
	case c == 'f' && len(d.s)-d.i >= 5 && d.s[d.i:d.i+5] == "false":
		d.i += 5
		return false, nil
	case c == 'n' && len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "null":
		d.i += 4
		return nil, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return d.num()
	}
	return nil, d.errf("unexpected character " + strconv.QuoteRune(rune(d.s[d.i])))
}

func (d *jsonDec) num() (any, error) {
	start := d.i
	if d.s[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i < len(d.s) && d.s[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return nil, d.errf("invalid number")
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, d.errf("invalid number")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, d.errf("invalid number")
		}
	}
	f, err := strconv.ParseFloat(d.s[start:d.i], 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, d.errf("invalid number")
	}
	if math.IsInf(f, 0) {
		return nil, d.errf("number out of range")
	}
	return f, nil
}

func hexv(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

func (d *jsonDec) u4() (rune, bool) {
	if len(d.s)-d.i < 4 {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		h := hexv(d.s[d.i+k])
		if h < 0 {
			return 0, false
		}
		r = r<<4 | h
	}
	d.i += 4
	return r, true
}

// str decodes a JSON string; d.s[d.i] is the opening quote.
func (d *jsonDec) str() (string, error) {
	d.i++
	start := d.i
	// fast path: no escapes
	for d.i < len(d.s) {
		c := d.s[d.i]
		if c == '"' {
			s := d.s[start:d.i]
			d.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		d.i++
	}
	buf := []byte(d.s[start:d.i])
	for {
		if d.i >= len(d.s) {
			return "", d.errf("unterminated string")
		}
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(buf), nil
		case c < 0x20:
			return "", d.errf("control character in string")
		case c == '\\':
			d.i++
			if d.i >= len(d.s) {
				return "", d.errf("unterminated string")
			}
			e := d.s[d.i]
			d.i++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := d.u4()
				if !ok {
					return "", d.errf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(utf8.RuneError)
					if len(d.s)-d.i >= 6 && d.s[d.i] == '\\' && d.s[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						if lo, ok := d.u4(); ok {
							r2 = utf16.DecodeRune(r, lo)
							if r2 == utf8.RuneError {
								d.i = save
							}
						} else {
							d.i = save
						}
					}
					r = r2
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", d.errf("invalid escape")
			}
		default:
			buf = append(buf, c)
			d.i++
		}
	}
}

// AppendJSON serialises v as compact JSON (no insignificant whitespace,
// object members in document order, integral numbers without fraction).
// It fails with ErrLimit once the output would exceed maxBytes, so a result
// that shares structure (["@","@"] piped repeatedly) cannot blow up memory.
func AppendJSON(dst []byte, v any, maxBytes int) ([]byte, error) {
	e := jsonEnc{b: dst, max: len(dst) + maxBytes}
	if err := e.val(v, 0); err != nil {
		return dst, err
	}
	return e.b, nil
}

type jsonEnc struct {
	b   []byte
	max int
}

var errOutput = limitErr("JSON result too large")

func (e *jsonEnc) val(v any, depth int) error {
	if len(e.b) > e.max || depth > maxDataDepth {
		return errOutput
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case bool:
		e.b = strconv.AppendBool(e.b, x)
	case float64:
		e.b = appendNumber(e.b, x)
	case string:
		e.b = appendString(e.b, x)
	case []any:
		e.b = append(e.b, '[')
		for i, el := range x {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			if err := e.val(el, depth+1); err != nil {
				return err
			}
		}
		e.b = append(e.b, ']')
	case *Object:
		e.b = append(e.b, '{')
		for i, k := range x.Keys {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = appendString(e.b, k)
			e.b = append(e.b, ':')
			if err := e.val(x.Vals[i], depth+1); err != nil {
				return err
			}
		}
		e.b = append(e.b, '}')
	case expRef:
		return errors.New("an expression reference is not a JSON value")
	default:
		return errors.New("unsupported value type")
	}
	if len(e.b) > e.max {
		return errOutput
	}
	return nil
}

// appendNumber formats like encoding/json: integral values without a
// fraction, exponent form only for very large or very small magnitudes.
func appendNumber(b []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, f, 'e', -1, 64)
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += w
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
