package jmespath

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Budget bounds the work of one or more searches. Every node visited,
// element produced and 16 bytes of string built cost one step; when Steps
// reaches zero the search fails with an error wrapping ErrLimit. One Budget
// may be shared by all the JmesPath calls of one policy evaluation.
type Budget struct {
	Steps int
}

var errBudget = limitErr("JMESPath evaluation exceeded its work limit")

func (b *Budget) charge(n int) error {
	b.Steps -= n
	if b.Steps < 0 {
		return errBudget
	}
	return nil
}

// RuntimeError is a query that fails on its data (wrong argument type, …).
type RuntimeError struct{ Msg string }

func (e *RuntimeError) Error() string { return "JMESPath: " + e.Msg }

type expRef struct{ n *node }

// Search evaluates the query against data (a value from ParseJSON).
func (q *Query) Search(data any, b *Budget) (any, error) {
	in := interp{b: b}
	return in.eval(q.root, data)
}

type interp struct{ b *Budget }

func (in *interp) eval(n *node, v any) (any, error) {
	if err := in.b.charge(1); err != nil {
		return nil, err
	}
	switch n.kind {
	case nCurrent:
		return v, nil
	case nField:
		if o, ok := v.(*Object); ok {
			return o.Get(n.name), nil
		}
		return nil, nil
	case nSub:
		l, err := in.eval(n.children[0], v)
		if err != nil || l == nil {
			return nil, err
		}
		return in.eval(n.children[1], l)
	case nIndex:
		a, ok := v.([]any)
		if !ok {
			return nil, nil
		}
		i := n.num
		if i < 0 {
			i += len(a)
		}
		if i < 0 || i >= len(a) {
			return nil, nil
		}
		return a[i], nil
	case nSlice:
		a, ok := v.([]any)
		if !ok {
			return nil, nil
		}
		return in.slice(a, n.slice)
	case nProject:
		l, err := in.eval(n.children[0], v)
		if err != nil {
			return nil, err
		}
		a, ok := l.([]any)
		if !ok {
			return nil, nil
		}
		return in.project(a, n.children[1])
	case nValueProj:
		l, err := in.eval(n.children[0], v)
		if err != nil {
			return nil, err
		}
		o, ok := l.(*Object)
		if !ok {
			return nil, nil
		}
		return in.project(o.Vals, n.children[1])
	case nFlatten:
		l, err := in.eval(n.children[0], v)
		if err != nil {
			return nil, err
		}
		a, ok := l.([]any)
		if !ok {
			return nil, nil
		}
		out := make([]any, 0, len(a))
		for _, el := range a {
			if sub, ok := el.([]any); ok {
				if err := in.b.charge(len(sub)); err != nil {
					return nil, err
				}
				out = append(out, sub...)
			} else {
				out = append(out, el)
			}
		}
		return out, in.b.charge(len(a))
	case nFilter:
		l, err := in.eval(n.children[0], v)
		if err != nil {
			return nil, err
		}
		a, ok := l.([]any)
		if !ok {
			return nil, nil
		}
		out := []any{}
		for _, el := range a {
			c, err := in.eval(n.children[2], el)
			if err != nil {
				return nil, err
			}
			if !truthy(c) {
				continue
			}
			r, err := in.eval(n.children[1], el)
			if err != nil {
				return nil, err
			}
			if r != nil {
				out = append(out, r)
			}
		}
		return out, nil
	case nPipe:
		l, err := in.eval(n.children[0], v)
		if err != nil {
			return nil, err
		}
		return in.eval(n.children[1], l)
	case nOr:
		l, err := in.eval(n.children[0], v)
		if err != nil || truthy(l) {
			return l, err
		}
		return in.eval(n.children[1], v)
	case nAnd:
		l, err := in.eval(n.children[0], v)
		if err != nil || !truthy(l) {
			return l, err
		}
		return in.eval(n.children[1], v)
	case nNot:
		x, err := in.eval(n.children[0], v)
		if err != nil {
			return nil, err
		}
		return !truthy(x), nil
	case nCmp:
		l, err := in.eval(n.children[0], v)
		if err != nil {
			return nil, err
		}
		r, err := in.eval(n.children[1], v)
		if err != nil {
			return nil, err
		}
		switch n.op {
		case tkEQ, tkNE:
			eq, err := in.equal(l, r, 0)
			if err != nil {
				return nil, err
			}
			return eq == (n.op == tkEQ), nil
		}
		lf, ok1 := l.(float64)
		rf, ok2 := r.(float64)
		if !ok1 || !ok2 {
			return nil, nil
		}
		switch n.op {
		case tkLT:
			return lf < rf, nil
		case tkLTE:
			return lf <= rf, nil
		case tkGT:
			return lf > rf, nil
		default:
			return lf >= rf, nil
		}
	case nList:
		if v == nil {
			return nil, nil
		}
		out := make([]any, len(n.children))
		for i, c := range n.children {
			r, err := in.eval(c, v)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, in.b.charge(len(out))
	case nHash:
		if v == nil {
			return nil, nil
		}
		o := &Object{Keys: make([]string, 0, len(n.keys)), Vals: make([]any, 0, len(n.keys))}
		for i, c := range n.children {
			r, err := in.eval(c, v)
			if err != nil {
				return nil, err
			}
			o.set(n.keys[i], r)
		}
		return o, in.b.charge(len(n.keys))
	case nLiteral:
		return n.lit, nil
	case nExpRef:
		return expRef{n.children[0]}, nil
	case nFunc:
		args := make([]any, len(n.children))
		for i, c := range n.children {
			r, err := in.eval(c, v)
			if err != nil {
				return nil, err
			}
			args[i] = r
		}
		if err := n.fn.check(n.name, args); err != nil {
			return nil, err
		}
		return n.fn.call(in, args)
	}
	return nil, errors.New("jmespath: unknown node")
}

func (in *interp) project(a []any, right *node) (any, error) {
	out := make([]any, 0, len(a))
	for _, el := range a {
		r, err := in.eval(right, el)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, in.b.charge(len(a))
}

func (in *interp) slice(a []any, s [3]*int) (any, error) {
	step := 1
	if s[2] != nil {
		step = *s[2]
	}
	n := len(a)
	cap := func(p *int, def int) int {
		if p == nil {
			return def
		}
		i := *p
		if i < 0 {
			i += n
			if i < 0 {
				if step < 0 {
					return -1
				}
				return 0
			}
		} else if i >= n {
			if step < 0 {
				return n - 1
			}
			return n
		}
		return i
	}
	var start, stop int
	if step > 0 {
		start, stop = cap(s[0], 0), cap(s[1], n)
	} else {
		start, stop = cap(s[0], n-1), cap(s[1], -1)
		if s[1] == nil {
			stop = -1
		}
	}
	out := []any{}
	if step > 0 {
		for i := start; i < stop; i += step {
			out = append(out, a[i])
		}
	} else {
		for i := start; i > stop; i += step {
			out = append(out, a[i])
		}
	}
	return out, in.b.charge(len(out))
}

// truthy implements JMESPath truthiness: false, null, "", [], {} are false.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case *Object:
		return len(x.Keys) > 0
	}
	return true
}

// equal is deep equality; it charges the budget per node so comparing two
// huge shared structures cannot run unbounded.
func (in *interp) equal(a, b any, depth int) (bool, error) {
	if err := in.b.charge(1); err != nil {
		return false, err
	}
	if depth > maxDataDepth {
		return false, limitErr("JMESPath values nested too deeply")
	}
	switch x := a.(type) {
	case nil:
		return b == nil, nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y, nil
	case float64:
		y, ok := b.(float64)
		return ok && x == y, nil
	case string:
		y, ok := b.(string)
		return ok && x == y, nil
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false, nil
		}
		for i := range x {
			eq, err := in.equal(x[i], y[i], depth+1)
			if err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	case *Object:
		y, ok := b.(*Object)
		if !ok || len(x.Keys) != len(y.Keys) {
			return false, nil
		}
		for i, k := range x.Keys {
			found := false
			for j, k2 := range y.Keys {
				if k == k2 {
					found = true
					eq, err := in.equal(x.Vals[i], y.Vals[j], depth+1)
					if err != nil || !eq {
						return false, err
					}
					break
				}
			}
			if !found {
				return false, nil
			}
		}
		return true, nil
	}
	return false, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case *Object:
		return "object"
	case expRef:
		return "expref"
	}
	return "unknown"
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func itoa(i int) string { return strconv.Itoa(i) }
