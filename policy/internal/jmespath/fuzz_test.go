package jmespath

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	gojmespath "github.com/jmespath/go-jmespath"
)

var diffData = []string{
	`{"a":{"b":[1,2,{"c":"x"}]},"foo":[{"bar":1,"baz":[3,4]},{"bar":2,"baz":[5]}],"s":"Hello","n":null,"t":true,"e":[],"o":{}}`,
	`{"Events":[{"EventSeq":1,"EventTypeString":"EV_EFI_VARIABLE_DRIVER_CONFIG","PcrIndex":7,"ProcessedData":{"UnicodeName":"SecureBoot","VariableData":"AQ"}},{"EventSeq":2,"EventTypeString":"EV_EVENT_TAG","PcrIndex":12,"ProcessedData":{"EVENT_TRUSTBOUNDARY":{"EVENT_CODEINTEGRITY":true,"EVENT_BITLOCKER_UNLOCK":{"String":"CACHED","Value":1}}}}]}`,
	`[[1,[2,3]],[4],"x",{"k":[5,6]},-1.5,0]`,
}

var diffQueries = []string{
	"a.b[2].c", "foo[*].bar", "foo[].baz[]", "foo[?bar > `1`].baz | [0]", "a.*", "*.b", "s", "[0]", "[-1]", "[1:]", "[::-1]", "[::2]",
	"length(foo)", "sort_by(foo, &bar)[].bar", "max_by(foo, &bar).bar", "keys(a)", "to_string(a)", "to_number('12')",
	"foo[?bar == `1` || bar == `2`].bar", "!t", "t && s", "n || s", "[foo[0].bar, s]", "{x: s, y: foo[0].bar}", "foo[*].[bar, baz[0]]",
	"Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG'] | [?ProcessedData.UnicodeName == 'SecureBoot'] | length(@) == `1` && @[0].ProcessedData.VariableData == 'AQ'",
	"Events[? EventTypeString == 'EV_EVENT_TAG' && (PcrIndex == `12` || PcrIndex == `19`)].ProcessedData.EVENT_TRUSTBOUNDARY | [*].EVENT_BITLOCKER_UNLOCK | @[? Value != `0`].Value | @[0]",
	"[*][0]", "[][]", "[].k", "contains(s, 'ell')", "join(',', ['a','b'])", "reverse(s)", "avg([`1`, `2`])", "map(&bar, foo)", "not_null(n, s)",
	"type(@)", "values(a)", "merge(a, o)", "starts_with(s, 'He')", "abs(`-2`)", "ceil(`1.5`)", "floor(`1.5`)", "min([`3`,`1`])", "sum([`1`,`2`])",
	"e || o || `\"d\"`", "`[1,2]` == `[1,2]`", "o == `{}`", "`1` < `2`", "s < `2`", "foo[0:1].bar", "\"a\".\"b\"", "@.s", "a.b[?@ == `1`]",
}

func canonJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if b, err = json.Marshal(x); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// compare runs one query on both implementations. It reports a difference
// only when go-jmespath succeeds (it rejects some things we accept and
// vice versa in error class, e.g. runtime vs compile errors). It returns
// whether the two results were compared.
func compare(t *testing.T, query, doc string) bool {
	t.Helper()
	data, err := ParseJSON(doc, 64)
	if err != nil {
		return false
	}
	var ref any
	if json.Unmarshal([]byte(doc), &ref) != nil {
		return false
	}
	q, err := Compile(query)
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) && !errors.Is(err, ErrLimit) {
			t.Fatalf("compile %q: error %T %v", query, err, err)
		}
		return false
	}
	got, err := q.Search(data, &Budget{Steps: 20000})
	if err != nil {
		return false
	}
	gotJSON, err := AppendJSON(nil, got, 1<<20)
	if err != nil {
		return false
	}
	var want any
	func() {
		defer func() { _ = recover() }() // go-jmespath panics on some inputs; it is only the oracle
		want, err = gojmespath.Search(query, ref)
	}()
	if err != nil || strings.Contains(query, "equals_ignore_case") || strings.Contains(query, "to_string") && !sameJSONText(t, got, want) {
		// equals_ignore_case is ours alone; to_string output differs in
		// escaping (go-jmespath escapes <, >, & for HTML) and key order.
		return false
	}
	var gotV any
	if err := json.Unmarshal(gotJSON, &gotV); err != nil {
		t.Fatalf("%q on %s: result %s is not JSON: %v", query, doc, gotJSON, err)
	}
	if canonJSON(t, gotV) != canonJSON(t, want) && !(unorderedQuery(query) && sameElements(t, gotV, want)) && !sameJSONText(t, gotV, want) {
		t.Errorf("%q on %s: got %s, go-jmespath %s", query, doc, canonJSON(t, gotV), canonJSON(t, want))
	}
	return true
}

// unorderedQuery: object values/keys come out in document order here and in
// map order in go-jmespath; JMESPath leaves that order unspecified.
func unorderedQuery(q string) bool {
	return strings.Contains(strings.ReplaceAll(q, "[*]", ""), "*") || strings.Contains(q, "keys") || strings.Contains(q, "values")
}

// sameJSONText: to_string results that differ only in escaping (go-jmespath
// uses encoding/json, which escapes <, > and & for HTML) or key order.
func sameJSONText(t *testing.T, a, b any) bool {
	sa, ok1 := a.(string)
	sb, ok2 := b.(string)
	if !ok1 || !ok2 {
		return false
	}
	var va, vb any
	if json.Unmarshal([]byte(sa), &va) != nil || json.Unmarshal([]byte(sb), &vb) != nil {
		return false
	}
	return canonJSON(t, va) == canonJSON(t, vb)
}

func sameElements(t *testing.T, a, b any) bool {
	la, ok1 := a.([]any)
	lb, ok2 := b.([]any)
	if !ok1 || !ok2 || len(la) != len(lb) {
		return false
	}
	count := map[string]int{}
	for _, e := range la {
		count[canonJSON(t, e)]++
	}
	for _, e := range lb {
		count[canonJSON(t, e)]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestDifferential compares results with go-jmespath v0.4.0.
// compare skips a pair when either side fails, so the test also requires
// every query to be compared on at least one document: a query that always
// fails here would otherwise pass unnoticed.
func TestDifferential(t *testing.T) {
	for _, q := range diffQueries {
		compared := 0
		for _, d := range diffData {
			if compare(t, q, d) {
				compared++
			}
		}
		if compared == 0 {
			t.Errorf("%q: compared with go-jmespath on no document (one side failed on all of them)", q)
		}
	}
}

// TestDocumentOrder: objects keep evidence order, unlike go-jmespath maps.
func TestDocumentOrder(t *testing.T) {
	data, err := ParseJSON(`{"z":1,"a":{"y":2,"b":3},"m":4}`, 8)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Compile("@")
	if err != nil {
		t.Fatal(err)
	}
	v, err := q.Search(data, &Budget{Steps: 100})
	if err != nil {
		t.Fatal(err)
	}
	b, err := AppendJSON(nil, v, 100)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"z":1,"a":{"y":2,"b":3},"m":4}` {
		t.Errorf("got %s", b)
	}
}

func TestLimits(t *testing.T) {
	if _, err := Compile(strings.Repeat("(", 200) + "@" + strings.Repeat(")", 200)); !errors.Is(err, ErrLimit) {
		t.Errorf("deep query: %v", err)
	}
	if _, err := Compile(strings.Repeat("a.", MaxQueryBytes)); !errors.Is(err, ErrLimit) {
		t.Errorf("long query: %v", err)
	}
	if _, err := ParseJSON(strings.Repeat("[", 100)+strings.Repeat("]", 100), 64); !errors.Is(err, ErrLimit) {
		t.Errorf("deep JSON: %v", err)
	}
	q, err := Compile(strings.Repeat("[@,@] | [] | ", 40) + "length(@)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Search([]any{1.0}, &Budget{Steps: 1 << 20}); !errors.Is(err, ErrLimit) {
		t.Errorf("doubling: %v", err)
	}
	q, err = Compile(strings.Repeat("[@,@] | ", 200) + "@ == @")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Search(1.0, &Budget{Steps: 1 << 20}); !errors.Is(err, ErrLimit) {
		t.Errorf("deep equality over shared structure: %v", err)
	}
	q, err = Compile(strings.Repeat("[@,@] | ", 60) + "@")
	if err != nil {
		t.Fatal(err)
	}
	v, err := q.Search(1.0, &Budget{Steps: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AppendJSON(nil, v, 1<<20); !errors.Is(err, ErrLimit) {
		t.Errorf("serialising 2^60 leaves: %v", err)
	}
}

// FuzzQuery: no panic on any query and document, bounded work, and the same
// answer as go-jmespath whenever that succeeds.
func FuzzQuery(f *testing.F) {
	for _, q := range diffQueries {
		f.Add(q, diffData[0])
	}
	f.Add("[? equals_ignore_case(@, 'A')]", `["a","B"]`)
	f.Add(strings.Repeat("[@,@] | [] | ", 30)+"length(@)", `[1]`)
	f.Add("to_string([@,@]) | to_string([@,@]) | to_string([@,@])", `"x"`)
	f.Add("a[1:10:-2]", `{"a":[1,2,3]}`)
	f.Add("'\\''", `{}`)
	f.Add("`\"\\u00e9\\ud83d\\ude00\"`", `{}`)
	f.Fuzz(func(t *testing.T, query, doc string) {
		if len(query) > 4096 || len(doc) > 1<<16 {
			return
		}
		if strings.Count(query, "@")+strings.Count(query, "*")+strings.Count(query, "[") > 24 {
			// Only the oracle would blow up; ours is bounded (TestLimits).
			q, err := Compile(query)
			if err == nil {
				if data, err := ParseJSON(doc, 64); err == nil {
					q.Search(data, &Budget{Steps: 20000})
				}
			}
			return
		}
		compare(t, query, doc)
	})
}

// FuzzParseJSON: the document parser agrees with encoding/json on validity
// and on the decoded value.
func FuzzParseJSON(f *testing.F) {
	for _, d := range diffData {
		f.Add(d)
	}
	f.Add(`{"a":1,"a":2}`)
	f.Add(`"\ud83d\ude00\u00e9\/"`)
	f.Add(`[1e400]`)
	f.Add(`-0.0e-5`)
	f.Fuzz(func(t *testing.T, doc string) {
		v, err := ParseJSON(doc, 64)
		var ref any
		refErr := json.Unmarshal([]byte(doc), &ref)
		if errors.Is(err, ErrLimit) || strings.Count(doc, "[")+strings.Count(doc, "{") > 60 {
			return // encoding/json allows deeper nesting
		}
		if (err == nil) != (refErr == nil) {
			if refErr != nil && strings.Contains(refErr.Error(), "cannot unmarshal number") {
				return // out-of-range numbers: encoding/json fails to decode, the text is still JSON
			}
			t.Fatalf("%q: ParseJSON err %v, encoding/json err %v", doc, err, refErr)
		}
		if err != nil {
			return
		}
		out, err := AppendJSON(nil, v, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var back any
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("re-encoded %q is not JSON: %v", out, err)
		}
		if canonJSON(t, back) != canonJSON(t, ref) {
			t.Fatalf("%q: decoded %s, encoding/json %s", doc, canonJSON(t, back), canonJSON(t, ref))
		}
	})
}
