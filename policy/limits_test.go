package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// growingDraft grows strings with AppendString for rules steps, then issues
// them under 64 names: what an anonymous caller can send as
// draftPolicyForAttestation to make the token (and the memory held for it)
// grow exponentially. With fanout, every step doubles every "s" claim's
// value and also the number of "s" claims (set semantics); without, one
// value doubles per step.
func growingDraft(rules int, fanout bool) string {
	var b strings.Builder
	b.WriteString(`version=1.2;authorizationrules{=>permit();};issuancerules{=> add(type="s0", value="` + strings.Repeat("x", 1024) + `");`)
	last := "s0"
	for i := 0; i < rules; i++ {
		next := "s" + strconv.Itoa(i+1)
		if fanout {
			next = "s0"
		}
		b.WriteString(`c:[type=="` + last + `"] => add(type="` + next + `", value=AppendString(c.value, c.value));`)
		last = next
	}
	for i := 0; i < 64; i++ {
		b.WriteString(`c:[type=="` + last + `"] => issue(type="out` + strconv.Itoa(i) + `", value=c.value);`)
	}
	b.WriteString("};")
	return b.String()
}

// limitOf returns the name of the limit err reports, checking on the way
// that it is an *EvalError matching ErrLimit.
func limitOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("evaluation succeeded; want a limit error")
	}
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Kind != Runtime {
		t.Fatalf("error %v (%T) is not a Runtime *EvalError", err, err)
	}
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("errors.Is(%v, ErrLimit) = false", err)
	}
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("error %v carries no *LimitError", err)
	}
	if !strings.Contains(err.Error(), le.Limit) || !strings.Contains(ee.MAAMessage(), le.Limit) {
		t.Errorf("error text does not name the limit %s: %v", le.Limit, err)
	}
	return le.Limit
}

func TestLimitsRefuseGrowingPolicies(t *testing.T) {
	bigIncoming := svc("big", strings.Repeat("b", 300<<10))
	tests := []struct {
		name   string
		policy string
		claims []Claim
		lim    Limits
		want   string
	}{
		{"draft: doubling strings", growingDraft(20, true), nil, DraftLimits(), LimitBuiltBytes},
		{"stored: doubling strings", growingDraft(20, true), nil, Limits{}, LimitBuiltBytes},
		{"draft: one value under many names", growingDraft(6, false), nil, DraftLimits(), LimitIssuedBytes},
		{"stored: one value under many names", growingDraft(10, false), nil, Limits{}, LimitIssuedBytes},
		{"draft: value over the per-value size", growingDraft(9, false), nil, DraftLimits(), LimitValueBytes},
		{"draft: incoming value issued over the per-value size",
			`version=1.2;authorizationrules{=>permit();};issuancerules{c:[type=="big"] => issue(type="x", value=c.value);};`,
			[]Claim{bigIncoming}, DraftLimits(), LimitValueBytes},
		{"stored: many issued claims",
			`version=1.2;authorizationrules{=>permit();};issuancerules{=> issue(type="n", value=JsonToClaimValue("[` + intList(MaxIssuedClaims+1) + `]"));};`,
			nil, Limits{}, LimitIssuedClaims},
		{"draft: many issued claims",
			`version=1.2;authorizationrules{=>permit();};issuancerules{=> issue(type="n", value=JsonToClaimValue("[` + intList(1025) + `]"));};`,
			nil, DraftLimits(), LimitIssuedClaims},
		{"draft: work", `version=1.2;authorizationrules{=>permit();};issuancerules{=> add(type="n", value=JsonToClaimValue("[` + intList(40000) + `]"));` +
			strings.Repeat(`[type=="n", value==-1] => issue(type="x", value=1);`, 100) + `};`,
			nil, DraftLimits(), LimitWork},
		{"explicit work limit", `version=1.2;authorizationrules{=>permit();};issuancerules{=> add(type="n", value=JsonToClaimValue("[` + intList(100) + `]"));[type=="n"] => issue(type="x", value=1);};`,
			nil, Limits{Work: 50}, LimitWork},
		{"draft: JMESPath steps", `version=1.2;authorizationrules{=>permit();};issuancerules{=> add(type="j", value="[` + intList(30000) + `]");` +
			strings.Repeat(`c:[type=="j"] => add(type="r", value=JmesPath(c.value, "[?@ > `+"`0`"+`] | length(@)"));`, 10) + `};`,
			nil, DraftLimits(), LimitJMESPathSteps},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.policy)
			res, err := p.Evaluate(context.Background(), "SgxEnclave", tc.claims, EvalOptions{Limits: tc.lim})
			if got := limitOf(t, err); got != tc.want {
				t.Fatalf("limit %s exceeded, want %s: %v", got, tc.want, err)
			}
			if res == nil || res.Decision != DecisionError {
				t.Fatalf("result %+v, want DecisionError", res)
			}
		})
	}
}

// TestLimitsDefaultsAllowOrdinaryPolicies checks that the draft limits do
// not refuse what a policy normally does: a permitted draft issuing a
// handful of claims built with the 1.2 functions.
func TestLimitsDraftAllowsOrdinaryPolicies(t *testing.T) {
	p := mustParse(t, `version=1.2;authorizationrules{=>permit();};issuancerules{
		c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=AppendString("s-", c.value));
		c:[type=="j"] => issue(type="n", value=JmesPath(c.value, "a.b"));
		=> issue(type="list", value=JsonToClaimValue("[1,2,3]"));};`)
	claims := []Claim{svc("x-ms-sgx-mrsigner", strings.Repeat("ab", 32)), svc("j", `{"a":{"b":[1,2]}}`)}
	for _, lim := range []Limits{{}, DraftLimits()} {
		res, err := p.Evaluate(context.Background(), "SgxEnclave", claims, EvalOptions{Limits: lim})
		if err != nil {
			t.Fatalf("limits %+v: %v", lim, err)
		}
		if len(res.Issued) != 5 {
			t.Fatalf("limits %+v: issued %v, want 5 claims", lim, res.Issued)
		}
	}
}

// TestConfigureWithDraftLimits: configurationrules of a draft run under the
// draft budget too.
func TestConfigureWithDraftLimits(t *testing.T) {
	p := mustParse(t, `version=1.2;configurationrules{=> add(type="n", value=JsonToClaimValue("[`+intList(40000)+`]"));`+
		strings.Repeat(`[type=="n", value==-1] => issueproperty(type="omit_x5c", value=true);`, 100)+
		`};authorizationrules{=>permit();};`)
	if _, err := p.Configure(context.Background(), "SgxEnclave"); err != nil {
		t.Fatalf("stored limits: %v", err)
	}
	_, err := p.ConfigureWith(context.Background(), "SgxEnclave", EvalOptions{Limits: DraftLimits()})
	if got := limitOf(t, err); got != LimitWork {
		t.Fatalf("limit %s, want %s", got, LimitWork)
	}
}

// TestLimitsBoundMemory measures the bytes allocated by evaluating a
// growing draft and serialising what it issued (what the pipeline would
// put in the token): the draft limits keep it to a few MiB, where without
// them the evaluator held 16 MiB of strings and the token grew to over a
// gigabyte. The bound is generous on purpose; it is not a timing test.
func TestLimitsBoundMemory(t *testing.T) {
	for _, tc := range []struct {
		rules  int
		fanout bool
	}{{6, false}, {9, false}, {20, false}, {20, true}} {
		t.Run(fmt.Sprintf("%d-%v", tc.rules, tc.fanout), func(t *testing.T) {
			p := mustParse(t, growingDraft(tc.rules, tc.fanout))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res, err := p.Evaluate(context.Background(), "SgxEnclave", nil, EvalOptions{Limits: DraftLimits()})
			if err == nil {
				if _, err := json.Marshal(TokenClaims(res.Issued)); err != nil {
					t.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want a limit", err)
			}
			const bound = 12 << 20
			if got := after.TotalAlloc - before.TotalAlloc; got > bound {
				t.Fatalf("evaluation allocated %d bytes; want at most %d", got, bound)
			}
		})
	}
}

// TestErrorsQuoteBoundedValues: a 1 MB literal (or identifier, or claim
// value) never comes back whole in an error, its MAA message or its log
// text.
func TestErrorsQuoteBoundedValues(t *testing.T) {
	lit := strings.Repeat("é", 1<<19) // 1 MiB, two bytes per rune: clipping must not split one
	ident := strings.Repeat("a", 1<<20)
	parseCases := []struct{ name, text string }{
		{"string literal where a keyword belongs", `version=1.0;authorizationrules{"` + lit + `"};`},
		{"over-long string literal", `version=1.0;authorizationrules{=> add(type="a", value="` + lit[:MaxStringLiteral+2] + `");};`},
		{"identifier", `version=1.0;authorizationrules{` + ident + `};`},
		{"unknown function", `version=1.2;authorizationrules{=> add(type="a", value=` + ident[:600<<10] + `("x"));};`},
		{"policy over the size limit", lit + lit},
	}
	const bound = 8 << 10
	for _, tc := range parseCases {
		t.Run("parse/"+tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			checkBounded(t, bound, pe.Offending, pe.Error(), pe.MAAMessage())
			if len(pe.Offending) > 4*maxQuotedRunes+32 {
				t.Errorf("Offending holds %d bytes", len(pe.Offending))
			}
		})
	}
	evalCases := []struct {
		name   string
		policy string
		claims []Claim
	}{
		{"read-only value issued under a long type", `version=1.2;authorizationrules{=>permit();};issuancerules{c:[type=="t"] && d:[type=="pcrs"] => issue(type=c.value, value=d.value);};`,
			[]Claim{svc("t", lit[:200<<10]), svc("pcrs", "x")}},
		{"invalid JSON", `version=1.2;authorizationrules{=>permit();};issuancerules{c:[type=="t"] => issue(type="x", value=JsonToClaimValue(c.value));};`,
			[]Claim{svc("t", "{"+lit)}},
		{"invalid query", `version=1.2;authorizationrules{=>permit();};issuancerules{c:[type=="t"] => issue(type="x", value=JmesPath("{}", c.value));};`,
			[]Claim{svc("t", "["+lit)}},
		{"deny rule with a long literal", `version=1.2;authorizationrules{[type=="t", value!="` + lit[:200<<10] + `"] => deny(); => permit();};`,
			[]Claim{svc("t", "x")}},
	}
	for _, tc := range evalCases {
		t.Run("eval/"+tc.name, func(t *testing.T) {
			p := mustParse(t, tc.policy)
			res, err := p.Evaluate(context.Background(), "SgxEnclave", tc.claims, EvalOptions{Trace: true})
			var ee *EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want *EvalError", err)
			}
			checkBounded(t, bound, ee.Message, ee.Rule, ee.Error(), ee.MAAMessage(), res.Trace.Error)
		})
	}
}

func checkBounded(t *testing.T, bound int, texts ...string) {
	t.Helper()
	for i, s := range texts {
		if len(s) > bound {
			t.Errorf("text %d is %d bytes; want at most %d: %.200s…", i, len(s), bound, s)
		}
		if !utf8.ValidString(s) {
			t.Errorf("text %d is not valid UTF-8 (a multi-byte rune was split)", i)
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 64, "short"},
		{strings.Repeat("a", 64), 64, strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), 64, strings.Repeat("a", 64) + "…(65 bytes)"},
		{strings.Repeat("é", 40), 64, strings.Repeat("é", 40)}, // 80 bytes, 40 runes
		{strings.Repeat("é", 70), 64, strings.Repeat("é", 64) + "…(140 bytes)"},
		{"", 64, ""},
	}
	for _, tc := range tests {
		if got := clip(tc.in, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func intList(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// FuzzClip: clipping keeps valid UTF-8 valid, keeps a prefix of the input
// and bounds the output, for any input and length.
func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "abc", strings.Repeat("é", 100), "a\xffb", strings.Repeat("日本語", 40), "\U0001F600x"} {
		f.Add(s, uint8(64))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		got := clip(s, int(n))
		if len(s) <= int(n) {
			if got != s {
				t.Fatalf("clip(%q, %d) = %q, want it unchanged", s, n, got)
			}
			return
		}
		prefix, _, cut := strings.Cut(got, "…(")
		if !cut {
			prefix = got
		}
		if !strings.HasPrefix(s, prefix) || utf8.RuneCountInString(prefix) > int(n) {
			t.Fatalf("clip(%q, %d) = %q: not a prefix of at most %d runes", s, n, got, n)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("clip(%q, %d) = %q split a rune", s, n, got)
		}
		if len(got) > 4*int(n)+32 {
			t.Fatalf("clip(%q, %d) is %d bytes", s, n, len(got))
		}
	})
}
