package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/attestd/attestd/policy/internal/jmespath"
)

// call evaluates a 1.2 function (spec §6). Arguments are evaluated left to
// right; set parameters (IsSubsetOf both, ContainsOnlyValue first) take the
// whole list, scalar parameters map over the cartesian product (spec §5.5).
func (st *evalState) call(r *rule, e *expr) ([]any, bool, *EvalError) {
	var args [2][]any
	var ro [2]bool
	for i, a := range e.args {
		l, r2, err := st.eval(r, a)
		if err != nil {
			return nil, false, err
		}
		args[i], ro[i] = l, r2
	}
	start := len(st.vals)
	fail := func(err error, format string, a ...any) ([]any, bool, *EvalError) {
		return nil, false, st.runtimeErr(r, e.line, e.col, err, funcNames[e.fn]+": "+format, a...)
	}
	push := func(v any) *EvalError {
		if len(st.vals)-start >= MaxValues {
			return st.runtimeErr(r, e.line, e.col, &LimitError{Limit: LimitValues, Max: MaxValues},
				"%s produced more than %d values (limit %s)", funcNames[e.fn], MaxValues, LimitValues)
		}
		st.vals = append(st.vals, v)
		return nil
	}
	switch e.fn {
	case fnIsSubsetOf:
		for _, a := range args[0] {
			if !containsValue(args[1], a) {
				return st.one(false), false, nil
			}
		}
		return st.one(true), false, nil
	case fnContainsOnlyValue:
		for _, v := range args[1] {
			ok := len(args[0]) > 0
			for _, s := range args[0] {
				if !sameValue(s, v) {
					ok = false
					break
				}
			}
			if err := push(ok); err != nil {
				return nil, false, err
			}
		}
		return st.vals[start:len(st.vals):len(st.vals)], false, nil
	case fnNegateBool:
		for _, v := range args[0] {
			b, ok := v.(bool)
			if !ok {
				return fail(nil, "argument must be a Boolean, got %s", valueTypeName(v))
			}
			if err := push(!b); err != nil {
				return nil, false, err
			}
		}
		return st.vals[start:len(st.vals):len(st.vals)], ro[0], nil
	case fnAppendString:
		for _, a := range args[0] {
			as, ok := a.(string)
			if !ok {
				return fail(nil, "argument 1 must be a String, got %s", valueTypeName(a))
			}
			for _, b := range args[1] {
				bs, ok := b.(string)
				if !ok {
					return fail(nil, "argument 2 must be a String, got %s", valueTypeName(b))
				}
				if err := st.account(len(as) + len(bs)); err != nil {
					return fail(err, "%s", err.Error())
				}
				if err := push(as + bs); err != nil {
					return nil, false, err
				}
			}
		}
		return st.vals[start:len(st.vals):len(st.vals)], ro[0] || ro[1], nil
	case fnJsonToClaimValue:
		for _, a := range args[0] {
			s, ok := a.(string)
			if !ok {
				return fail(nil, "argument must be a String holding JSON, got %s", valueTypeName(a))
			}
			if err := jsonToClaimValues(s, push); err != nil {
				var ee *EvalError
				if errors.As(err, &ee) {
					return nil, false, ee
				}
				return fail(err, "%s", err.Error())
			}
		}
		return st.vals[start:len(st.vals):len(st.vals)], ro[0], nil
	case fnJmesPath:
		for _, a := range args[0] {
			doc, ok := a.(string)
			if !ok {
				return fail(nil, "argument 1 must be a String holding JSON, got %s", valueTypeName(a))
			}
			for _, qv := range args[1] {
				qs, ok := qv.(string)
				if !ok {
					return fail(nil, "argument 2 must be a String holding a query, got %s", valueTypeName(qv))
				}
				if doc == "" || qs == "" {
					return fail(nil, "JSON text and query must not be empty")
				}
				q := e.query
				if q == nil {
					if e.qerr != nil {
						return fail(e.qerr, "invalid query %s: %s", quoteShort(qs), e.qerr.Error())
					}
					var err error
					if q, err = st.compile(qs); err != nil {
						return fail(err, "invalid query %s: %s", quoteShort(qs), err.Error())
					}
				}
				if st.ctx != nil {
					if err := st.ctx.Err(); err != nil {
						return fail(err, "evaluation cancelled: %s", err.Error())
					}
				}
				data, err := st.jsonOf(doc)
				if err != nil {
					return fail(err, "invalid JSON input: %s", err.Error())
				}
				out, err := q.Search(data, &st.budget)
				if err != nil && st.budget.Steps < 0 && errors.Is(err, ErrLimit) {
					err = &LimitError{Limit: LimitJMESPathSteps, Max: st.lim.JMESPathSteps}
				}
				if err != nil {
					return fail(err, "query %s failed: %s", quoteShort(qs), err.Error())
				}
				b, err := jmespath.AppendJSON(nil, out, st.lim.ValueBytes)
				if err != nil {
					return fail(err, "query %s: result: %s", quoteShort(qs), err.Error())
				}
				if err := st.account(len(b)); err != nil {
					return fail(err, "%s", err.Error())
				}
				if err := push(string(b)); err != nil {
					return nil, false, err
				}
			}
		}
		return st.vals[start:len(st.vals):len(st.vals)], ro[0] || ro[1], nil
	}
	return fail(nil, "unknown function")
}

// one returns a one-element list holding v.
func (st *evalState) one(v any) []any {
	st.vals = append(st.vals, v)
	n := len(st.vals)
	return st.vals[n-1 : n : n]
}

// account charges the bytes of a string about to be built against the
// limits, before it is built.
func (st *evalState) account(n int) error {
	if n > st.lim.ValueBytes {
		return fmt.Errorf("a string of %d bytes exceeds the limit (%s) of %d: %w", n, LimitValueBytes, st.lim.ValueBytes,
			&LimitError{Limit: LimitValueBytes, Max: st.lim.ValueBytes})
	}
	st.bytes += n
	if st.bytes > st.lim.BuiltBytes {
		return fmt.Errorf("strings built by this evaluation exceed the limit (%s) of %d bytes: %w", LimitBuiltBytes, st.lim.BuiltBytes,
			&LimitError{Limit: LimitBuiltBytes, Max: st.lim.BuiltBytes})
	}
	return nil
}

// sameValue is typed equality: 1 ≠ true ≠ "1".
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

func containsValue(list []any, v any) bool {
	for _, e := range list {
		if sameValue(e, v) {
			return true
		}
	}
	return false
}

// jsonToClaimValues converts one JSON text (spec §6 JsonToClaimValue):
// integer → Integer (also 1.0 or 1e2, spec §13-15), boolean → Boolean,
// string → String, null → nothing, array of primitives → its elements
// (nulls skipped); fractions, objects and nested arrays are errors.
func jsonToClaimValues(s string, push func(any) *EvalError) error {
	if len(s) > MaxJSONInput {
		return fmt.Errorf("JSON input of %d bytes exceeds the limit", len(s))
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("invalid JSON %s: %v", quoteShort(s), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("invalid JSON %s: data after the value", quoteShort(s))
	}
	conv := func(x any) (any, bool, error) {
		switch y := x.(type) {
		case nil:
			return nil, false, nil
		case bool, string:
			return y, true, nil
		case json.Number:
			if i, err := strconv.ParseInt(string(y), 10, 64); err == nil {
				return i, true, nil
			}
			f, err := strconv.ParseFloat(string(y), 64)
			if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
				return nil, false, fmt.Errorf("number %s is not an integer in the signed 64-bit range", y)
			}
			return int64(f), true, nil
		case map[string]any:
			return nil, false, errors.New("a JSON object cannot be a claim value")
		case []any:
			return nil, false, errors.New("a nested JSON array cannot be a claim value")
		}
		return nil, false, errors.New("unsupported JSON value")
	}
	if arr, ok := v.([]any); ok {
		for _, el := range arr {
			cv, ok, err := conv(el)
			if err != nil {
				return err
			}
			if ok {
				if e := push(cv); e != nil {
					return e
				}
			}
		}
		return nil
	}
	cv, ok, err := conv(v)
	if err != nil {
		return err
	}
	if ok {
		if e := push(cv); e != nil {
			return e
		}
	}
	return nil
}

// quoteShort quotes a value for an error message, clipped (see short).
func quoteShort(s string) string {
	return strconv.Quote(short(s))
}

// compile compiles a query built at evaluation time, once per evaluation:
// set semantics often build the same query many times (policies/41).
func (st *evalState) compile(q string) (*jmespath.Query, error) {
	if c, ok := st.queries[q]; ok {
		return c, nil
	}
	c, err := jmespath.Compile(q)
	if err != nil {
		return nil, err
	}
	if st.queries == nil {
		st.queries = make(map[string]*jmespath.Query)
	}
	if len(st.queries) < 256 {
		st.queries[q] = c
	}
	return c, nil
}
