package jmespath

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// argType is a bit set of the JMESPath types an argument accepts.
type argType uint16

const (
	aNull argType = 1 << iota
	aBool
	aNum
	aStr
	aArr
	aObj
	aExpRef
	aArrNum // array whose elements are all numbers
	aArrStr // array whose elements are all strings
	aAny    = aNull | aBool | aNum | aStr | aArr | aObj
)

type function struct {
	args     []argType
	variadic bool // the last argument repeats
	call     func(in *interp, args []any) (any, error)
}

func (f *function) check(name string, args []any) error {
	for i, a := range args {
		want := f.args[min(i, len(f.args)-1)]
		if !accepts(want, a) {
			return &RuntimeError{Msg: "invalid-type: argument " + itoa(i+1) + " of " + name + " is " + typeName(a)}
		}
	}
	return nil
}

func accepts(t argType, v any) bool {
	switch x := v.(type) {
	case nil:
		return t&aNull != 0
	case bool:
		return t&aBool != 0
	case float64:
		return t&aNum != 0
	case string:
		return t&aStr != 0
	case *Object:
		return t&aObj != 0
	case expRef:
		return t&aExpRef != 0
	case []any:
		if t&aArr != 0 {
			return true
		}
		if t&aArrNum != 0 && allOf(x, func(e any) bool { _, ok := e.(float64); return ok }) {
			return true
		}
		if t&aArrStr != 0 && allOf(x, func(e any) bool { _, ok := e.(string); return ok }) {
			return true
		}
	}
	return false
}

func allOf(a []any, f func(any) bool) bool {
	for _, e := range a {
		if !f(e) {
			return false
		}
	}
	return true
}

// functions is the built-in table of the JMESPath specification plus
// equals_ignore_case, which MAA adds (policy spec §6).
var functions map[string]*function

func init() {
	functions = map[string]*function{
		"abs":   {args: []argType{aNum}, call: num1(math.Abs)},
		"ceil":  {args: []argType{aNum}, call: num1(math.Ceil)},
		"floor": {args: []argType{aNum}, call: num1(math.Floor)},
		"avg": {args: []argType{aArrNum}, call: func(in *interp, a []any) (any, error) {
			arr := a[0].([]any)
			if len(arr) == 0 {
				return nil, nil
			}
			s := 0.0
			for _, e := range arr {
				s += e.(float64)
			}
			return s / float64(len(arr)), nil
		}},
		"sum": {args: []argType{aArrNum}, call: func(in *interp, a []any) (any, error) {
			s := 0.0
			for _, e := range a[0].([]any) {
				s += e.(float64)
			}
			return s, nil
		}},
		"contains": {args: []argType{aArr | aStr, aAny}, call: func(in *interp, a []any) (any, error) {
			if s, ok := a[0].(string); ok {
				sub, ok := a[1].(string)
				return ok && strings.Contains(s, sub), nil
			}
			for _, e := range a[0].([]any) {
				eq, err := in.equal(e, a[1], 0)
				if err != nil {
					return nil, err
				}
				if eq {
					return true, nil
				}
			}
			return false, nil
		}},
		"ends_with": {args: []argType{aStr, aStr}, call: func(in *interp, a []any) (any, error) {
			return strings.HasSuffix(a[0].(string), a[1].(string)), nil
		}},
		"starts_with": {args: []argType{aStr, aStr}, call: func(in *interp, a []any) (any, error) {
			return strings.HasPrefix(a[0].(string), a[1].(string)), nil
		}},
		"join": {args: []argType{aStr, aArrStr}, call: func(in *interp, a []any) (any, error) {
			arr := a[1].([]any)
			n := 0
			for _, e := range arr {
				n += len(e.(string)) + len(a[0].(string))
			}
			if n > maxStringBytes {
				return nil, limitErr("JMESPath join result exceeds " + itoa(maxStringBytes) + " bytes")
			}
			if err := in.b.charge(n/16 + len(arr)); err != nil {
				return nil, err
			}
			var b strings.Builder
			for i, e := range arr {
				if i > 0 {
					b.WriteString(a[0].(string))
				}
				b.WriteString(e.(string))
			}
			return b.String(), nil
		}},
		"keys": {args: []argType{aObj}, call: func(in *interp, a []any) (any, error) {
			o := a[0].(*Object)
			out := make([]any, len(o.Keys))
			for i, k := range o.Keys {
				out[i] = k
			}
			return out, in.b.charge(len(out))
		}},
		"values": {args: []argType{aObj}, call: func(in *interp, a []any) (any, error) {
			o := a[0].(*Object)
			return append([]any{}, o.Vals...), in.b.charge(len(o.Vals))
		}},
		"length": {args: []argType{aStr | aArr | aObj}, call: func(in *interp, a []any) (any, error) {
			switch x := a[0].(type) {
			case string:
				return float64(runeLen(x)), nil
			case []any:
				return float64(len(x)), nil
			default:
				return float64(len(x.(*Object).Keys)), nil
			}
		}},
		"map": {args: []argType{aExpRef, aArr}, call: func(in *interp, a []any) (any, error) {
			ref := a[0].(expRef)
			arr := a[1].([]any)
			out := make([]any, 0, len(arr))
			for _, e := range arr {
				r, err := in.eval(ref.n, e)
				if err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			return out, in.b.charge(len(arr))
		}},
		"max":    {args: []argType{aArrNum | aArrStr}, call: minmax(true)},
		"min":    {args: []argType{aArrNum | aArrStr}, call: minmax(false)},
		"max_by": {args: []argType{aArr, aExpRef}, call: minmaxBy(true)},
		"min_by": {args: []argType{aArr, aExpRef}, call: minmaxBy(false)},
		"merge": {args: []argType{aObj}, variadic: true, call: func(in *interp, a []any) (any, error) {
			o := &Object{}
			for _, x := range a {
				xo := x.(*Object)
				if err := in.b.charge(len(xo.Keys) * (len(o.Keys) + 1)); err != nil {
					return nil, err
				}
				for i, k := range xo.Keys {
					o.set(k, xo.Vals[i])
				}
			}
			return o, nil
		}},
		"not_null": {args: []argType{aAny}, variadic: true, call: func(in *interp, a []any) (any, error) {
			for _, x := range a {
				if x != nil {
					return x, nil
				}
			}
			return nil, nil
		}},
		"reverse": {args: []argType{aArr | aStr}, call: func(in *interp, a []any) (any, error) {
			if s, ok := a[0].(string); ok {
				r := []rune(s)
				for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
					r[i], r[j] = r[j], r[i]
				}
				return string(r), in.b.charge(len(s) / 16)
			}
			arr := a[0].([]any)
			out := make([]any, len(arr))
			for i, e := range arr {
				out[len(arr)-1-i] = e
			}
			return out, in.b.charge(len(out))
		}},
		"sort": {args: []argType{aArrNum | aArrStr}, call: func(in *interp, a []any) (any, error) {
			arr := append([]any{}, a[0].([]any)...)
			if err := in.b.charge(len(arr) * (1 + bitsLen(len(arr)))); err != nil {
				return nil, err
			}
			sort.SliceStable(arr, func(i, j int) bool { return less(arr[i], arr[j]) })
			return arr, nil
		}},
		"sort_by": {args: []argType{aArr, aExpRef}, call: func(in *interp, a []any) (any, error) {
			arr := a[0].([]any)
			keys, err := in.keysOf(arr, a[1].(expRef), "sort_by")
			if err != nil {
				return nil, err
			}
			if err := in.b.charge(len(arr) * (1 + bitsLen(len(arr)))); err != nil {
				return nil, err
			}
			idx := make([]int, len(arr))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(i, j int) bool { return less(keys[idx[i]], keys[idx[j]]) })
			out := make([]any, len(arr))
			for i, k := range idx {
				out[i] = arr[k]
			}
			return out, nil
		}},
		"to_array": {args: []argType{aAny}, call: func(in *interp, a []any) (any, error) {
			if arr, ok := a[0].([]any); ok {
				return arr, nil
			}
			return []any{a[0]}, nil
		}},
		"to_string": {args: []argType{aAny}, call: func(in *interp, a []any) (any, error) {
			if s, ok := a[0].(string); ok {
				return s, nil
			}
			b, err := AppendJSON(nil, a[0], min(max(in.b.Steps, 0)*16, maxStringBytes))
			if err != nil {
				return nil, err
			}
			return string(b), in.b.charge(len(b) / 16)
		}},
		"to_number": {args: []argType{aAny}, call: func(in *interp, a []any) (any, error) {
			switch x := a[0].(type) {
			case float64:
				return x, nil
			case string:
				f, err := strconv.ParseFloat(x, 64)
				if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
					return nil, nil
				}
				return f, nil
			}
			return nil, nil
		}},
		"type": {args: []argType{aAny}, call: func(in *interp, a []any) (any, error) {
			return typeName(a[0]), nil
		}},
		// equals_ignore_case is MAA's extension (policy spec §6). A non-string
		// argument (typically a missing field: null) compares unequal rather
		// than failing the whole query, so a filter over heterogeneous events
		// still works.
		"equals_ignore_case": {args: []argType{aAny, aAny}, call: func(in *interp, a []any) (any, error) {
			x, ok1 := a[0].(string)
			y, ok2 := a[1].(string)
			return ok1 && ok2 && strings.EqualFold(x, y), nil
		}},
	}
}

func bitsLen(n int) int {
	b := 0
	for n > 0 {
		b++
		n >>= 1
	}
	return b
}

func num1(f func(float64) float64) func(*interp, []any) (any, error) {
	return func(in *interp, a []any) (any, error) { return f(a[0].(float64)), nil }
}

func less(a, b any) bool {
	switch x := a.(type) {
	case float64:
		return x < b.(float64)
	case string:
		return x < b.(string)
	}
	return false
}

func minmax(isMax bool) func(*interp, []any) (any, error) {
	return func(in *interp, a []any) (any, error) {
		arr := a[0].([]any)
		if len(arr) == 0 {
			return nil, nil
		}
		best := arr[0]
		for _, e := range arr[1:] {
			if isMax == less(best, e) && !equalScalar(best, e) {
				best = e
			}
		}
		return best, nil
	}
}

func equalScalar(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	}
	return false
}

func (in *interp) keysOf(arr []any, ref expRef, name string) ([]any, error) {
	keys := make([]any, len(arr))
	var kind string
	for i, e := range arr {
		k, err := in.eval(ref.n, e)
		if err != nil {
			return nil, err
		}
		t := typeName(k)
		if t != "number" && t != "string" {
			return nil, &RuntimeError{Msg: "invalid-type: " + name + " key is " + t}
		}
		if kind != "" && t != kind {
			return nil, &RuntimeError{Msg: "invalid-type: " + name + " keys mix " + kind + " and " + t}
		}
		kind = t
		keys[i] = k
	}
	return keys, in.b.charge(len(arr))
}

func minmaxBy(isMax bool) func(*interp, []any) (any, error) {
	return func(in *interp, a []any) (any, error) {
		arr := a[0].([]any)
		if len(arr) == 0 {
			return nil, nil
		}
		keys, err := in.keysOf(arr, a[1].(expRef), map[bool]string{true: "max_by", false: "min_by"}[isMax])
		if err != nil {
			return nil, err
		}
		best := 0
		for i := 1; i < len(arr); i++ {
			if isMax == less(keys[best], keys[i]) && !equalScalar(keys[best], keys[i]) {
				best = i
			}
		}
		return arr[best], nil
	}
}
