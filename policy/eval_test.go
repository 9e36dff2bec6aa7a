package policy

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func svc(typ string, v any) Claim { return Claim{Type: typ, Value: v, Issuer: IssuerService} }

func mustParse(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run evaluates an issuance body under a permit-all 1.2 policy.
func runIssuance(t *testing.T, body string, claims ...Claim) (*Result, error) {
	t.Helper()
	p := mustParse(t, "version=1.2;authorizationrules{=>permit();};issuancerules{"+body+"};")
	return p.Evaluate(context.Background(), "SgxEnclave", claims, EvalOptions{Trace: true})
}

// TestEvalSemantics covers spec §5.3–§5.5 one behaviour per row; want is
// TokenClaims of the issued claims.
func TestEvalSemantics(t *testing.T) {
	multi := []Claim{svc("n", int64(1)), svc("n", int64(5)), svc("s", "a"), svc("b", true)}
	tests := []struct {
		name   string
		body   string
		claims []Claim
		want   map[string]any
	}{
		{"== equals some element", `c:[type=="n"] && [type=="n", value==c.value] => issue(type="r", value=true);`, multi, map[string]any{"r": true}},
		{"tag binds all claims", `c:[type=="n"] => issue(type="r", value=c.value);`, multi, map[string]any{"r": []any{int64(1), int64(5)}}},
		{"action runs once per rule", `c:[type=="n"] => issue(type="r", value="once");`, multi, map[string]any{"r": "once"}},
		{"!= equals no element", `c:[type=="n", value==1] && [type=="n", value!=c.value] => issue(type="r", value=true);`, multi, map[string]any{"r": true}},
		{"< <= > >=", `[type=="n", value<2] && [type=="n", value<=1] && [type=="n", value>4] && [type=="n", value>=5] => issue(type="r", value=true);`, multi, map[string]any{"r": true}},
		{"ordering on strings is false", `[type=="s", value>="a"] => issue(type="r", value=true);`, multi, map[string]any{}},
		{"ordering on booleans is false", `[type=="b", value<true] => issue(type="r", value=true);`, multi, map[string]any{}},
		{"cross-type == is false", `[type=="n", value=="1"] => issue(type="r", value=true);`, multi, map[string]any{}},
		{"cross-type != is true", `[type=="b", value!=1] => issue(type="r", value=true);`, multi, map[string]any{"r": true}},
		{"condition without type", `[value==true] => issue(type="r", value=true);`, multi, map[string]any{"r": true}},
		{"empty brackets select all", `c:[] => issue(type="r", value=c.type);`, multi, map[string]any{"r": []any{"n", "s", "b"}}},
		{"valueType", `c:[valueType=="Integer"] => issue(type="r", value=c.valueType);`, multi, map[string]any{"r": "Integer"}},
		{"issuer test", `[type=="n", issuer=="AttestationPolicy"] => issue(type="r", value=true);`, multi, map[string]any{}},
		{"case-sensitive strings", `[type=="S"] => issue(type="r", value=true);`, multi, map[string]any{}},
		{"claim visible to next rule, not own", `[type=="x"] => issue(type="first", value=true); => add(type="x", value=1); [type=="x"] => issue(type="second", value=true);`, nil, map[string]any{"second": true}},
		{"absence fires only when nothing matches", `![type=="n"] => issue(type="r1", value=true); ![type=="zz"] => issue(type="r2", value=true);`, multi, map[string]any{"r2": true}},
		{"absence sees claims of earlier rules", `=> add(type="zz", value=1); ![type=="zz"] => issue(type="r", value=true);`, nil, map[string]any{}},
		{"issue(claim=c) keeps type, value, issuer", `c:[type=="s"] => issue(claim=c);`, multi, map[string]any{"s": "a"}},
		{"cartesian type x value", `c:[type=="s"] && d:[type=="n"] => issue(type=AppendString("t-", c.value), value=d.value);`, multi, map[string]any{"t-a": []any{int64(1), int64(5)}}},
		{"empty value list is a no-op", `=> issue(type="r", value=JsonToClaimValue("null"));`, nil, map[string]any{}},
		{"duplicates collapse in token", `=> issue(type="r", value=1); => issue(type="r", value=1); => issue(type="r", value=2);`, nil, map[string]any{"r": []any{int64(1), int64(2)}}},
		{"permit/deny ignored in issuance", `=> deny(); => issue(type="r", value=true);`, nil, map[string]any{"r": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runIssuance(t, tc.body, tc.claims...)
			if err != nil {
				t.Fatalf("%v\n%s", err, res.Trace)
			}
			if got := TokenClaims(res.Issued); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("issued %#v, want %#v\n%s", got, tc.want, res.Trace)
			}
		})
	}
}

func TestIssuerOfCopies(t *testing.T) {
	res, err := runIssuance(t, `c:[type=="s"] => issue(claim=c); => issue(type="p", value=1);`, svc("s", "a"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Claim{{Type: "s", Value: "a", Issuer: IssuerService}, {Type: "p", Value: int64(1), Issuer: IssuerPolicy}}
	if !reflect.DeepEqual(res.Issued, want) {
		t.Errorf("issued %#v", res.Issued)
	}
}

// TestAuthorization: spec §5.7 decisions, and issue in authorizationrules acting as add.
func TestAuthorization(t *testing.T) {
	tests := []struct {
		name, authz string
		want        Decision
		line        int
	}{
		{"permit", `=> permit();`, DecisionPermit, 0},
		{"empty section", ``, DecisionNoPermit, 0},
		{"no match", `[type=="zz"] => permit();`, DecisionNoPermit, 0},
		{"deny after permit wins", "=> permit();\n[type==\"s\"] => deny();", DecisionDeny, 2},
		{"deny before permit wins", "=> deny();\n=> permit();", DecisionDeny, 1},
		{"first deny decides", "=> permit(); => deny();\n=> deny();", DecisionDeny, 1},
		{"issue in authz is visible, not issued", `=> issue(type="k", value=1); [type=="k"] => permit();`, DecisionPermit, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, "version=1.0;authorizationrules{"+tc.authz+"};issuancerules{};")
			res, err := p.Evaluate(context.Background(), "SgxEnclave", []Claim{svc("s", "a")}, EvalOptions{})
			if res.Decision != tc.want {
				t.Fatalf("decision %s, want %s (%v)", res.Decision, tc.want, err)
			}
			var ee *EvalError
			if tc.want == DecisionDeny && (!errors.As(err, &ee) || ee.Line != tc.line) {
				t.Errorf("deny at %v, want line %d", err, tc.line)
			}
			if len(res.Issued) != 0 {
				t.Errorf("issued %v", res.Issued)
			}
		})
	}
}

// TestConfiguration: spec §5.2 step 1 and §7.
func TestConfiguration(t *testing.T) {
	ctx := context.Background()
	p := mustParse(t, `version=1.1;configurationrules{
[type=="x-ms-sgx-mrsigner"] => issueproperty(type="x-ms-sgx-tcbidentifier", value="never");
=> add(type="scratch", value=15);
c:[type=="scratch"] => issueproperty(type="required_pcr_mask", value=c.value);
=> issueproperty(type="unknown_property", value=1);
=> issueproperty(type="report_validity_in_minutes", value=60);
=> permit();
};authorizationrules{[type=="scratch"] => deny(); => permit();};
issuancerules{=> issueproperty(type="omit_x5c", value=true); => issueproperty(type="require_valid_aik_cert", value=false);};`)
	props, err := p.Configure(ctx, "Tpm")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"require_valid_aik_cert": true, "required_pcr_mask": int64(15), "report_validity_in_minutes": int64(60), "omit_x5c": false}
	if !reflect.DeepEqual(props, want) {
		t.Errorf("Configure = %#v, want %#v", props, want)
	}
	res, err := p.Evaluate(ctx, "Tpm", []Claim{svc("x-ms-sgx-mrsigner", "s")}, EvalOptions{})
	if err != nil {
		t.Fatal(err) // the config scratch claim must not reach authorizationrules
	}
	want["omit_x5c"] = true // token property: effective from issuancerules; the engine property is not
	if !reflect.DeepEqual(res.Properties, want) {
		t.Errorf("Properties = %#v, want %#v", res.Properties, want)
	}
	// The policy package knows no TEE's defaults: the pipeline passes the
	// verifier's, which the configuration rules override.
	if sgx, _ := p.Configure(ctx, "SgxEnclave"); sgx["x-ms-sgx-tcbidentifier"] != nil {
		t.Errorf("Configure(SgxEnclave) invented a tcbidentifier: %v", sgx["x-ms-sgx-tcbidentifier"])
	}
	sgx, _ := p.ConfigureWith(ctx, "SgxEnclave", EvalOptions{Defaults: map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}})
	if sgx["x-ms-sgx-tcbidentifier"] != "azuredefault" {
		t.Errorf("SGX default tcbidentifier = %v", sgx["x-ms-sgx-tcbidentifier"])
	}
	over := mustParse(t, `version=1.1;configurationrules{=> issueproperty(type="x-ms-sgx-tcbidentifier", value="11");};authorizationrules{=>permit();};`)
	if got, _ := over.ConfigureWith(ctx, "SgxEnclave", EvalOptions{Defaults: map[string]any{"x-ms-sgx-tcbidentifier": "azuredefault"}}); got["x-ms-sgx-tcbidentifier"] != "11" {
		t.Errorf("configuration rule did not override the default: %v", got["x-ms-sgx-tcbidentifier"])
	}
	for _, bad := range []string{
		`=> issueproperty(type="omit_x5c", value="yes");`,
		`=> issueproperty(type="required_pcr_mask", value=16777216);`,
		`=> issueproperty(type="report_validity_in_minutes", value=525601);`,
		`=> issueproperty(type="x-ms-sgx-tcbidentifier", value=11);`,
	} {
		p := mustParse(t, "version=1.1;configurationrules{"+bad+"};authorizationrules{=>permit();};")
		_, err := p.Configure(ctx, "Tpm")
		var ee *EvalError
		if !errors.As(err, &ee) || ee.Kind != Runtime || ee.Section != "configurationrules" || ee.Line != 1 {
			t.Errorf("%s: want Runtime error, got %v", bad, err)
		}
	}
}

// TestReadOnly: spec §5.6 and conformance §12.1-5.
func TestReadOnly(t *testing.T) {
	pcrs := svc("pcrs", goodPCRs)
	tests := []struct {
		name, body string
		fails      bool
	}{
		{"issue derived from pcrs", `c:[type=="pcrs"] => issue(type="x", value=JmesPath(c.value, "PCRs[0].Index"));`, true},
		{"issue pcrs itself", `c:[type=="pcrs"] => issue(claim=c);`, true},
		{"issueproperty derived", `c:[type=="pcrs"] => issueproperty(type="x", value=AppendString(c.value, ""));`, true},
		{"add propagates", `c:[type=="pcrs"] => add(type="y", value=JsonToClaimValue(JmesPath(c.value, "PCRs[0].Index"))); c:[type=="y"] => issue(type="z", value=c.value);`, true},
		{"add and test are fine", `c:[type=="pcrs"] => add(type="y", value=JsonToClaimValue(JmesPath(c.value, "PCRs[0].Index"))); [type=="y", value==0] => issue(type="ok", value=true);`, false},
		{"set functions launder", `c:[type=="pcrs"] => issue(type="ok", value=IsSubsetOf(c.value, c.value)); c:[type=="pcrs"] => issue(type="ok2", value=ContainsOnlyValue(c.value, "x"));`, false},
		{"type is not read-only", `c:[type=="pcrs"] => issue(type="t", value=c.type);`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runIssuance(t, tc.body, pcrs)
			var ee *EvalError
			if tc.fails {
				if !errors.As(err, &ee) || ee.Kind != Runtime || !strings.Contains(ee.Message, "read-only") {
					t.Fatalf("want read-only error, got %v", err)
				}
				if res.Decision != DecisionError || len(res.Issued) > 0 && tc.name == "issue pcrs itself" {
					t.Errorf("decision %s", res.Decision)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	// The ReadOnly flag marks any incoming claim read-only.
	_, err := runIssuance(t, `c:[type=="k"] => issue(claim=c);`, Claim{Type: "k", Value: "v", Issuer: IssuerService, ReadOnly: true})
	if err == nil {
		t.Error("issuing a ReadOnly claim succeeded")
	}
}

// TestFunctions: spec §6 per function, including errors (§5.8).
func TestFunctions(t *testing.T) {
	tests := []struct {
		name, value string // value= expression; the claim j holds JSON
		want        any    // TokenClaims member "r"; nil: nothing issued
		err         string // substring of the Runtime error
	}{
		{"JmesPath string keeps quotes", `JmesPath("{\"foo\": \"bar\"}", "foo")`, `"bar"`, ""},
		{"JmesPath null", `JmesPath("{}", "foo")`, "null", ""},
		{"JmesPath compact document order", `JmesPath("{\"b\": 1, \"a\": [1, 2.5, true]}", "@")`, `{"b":1,"a":[1,2.5,true]}`, ""},
		{"JmesPath multiselect order", `JmesPath("{\"a\":1,\"b\":2}", "{z:b, a:a}")`, `{"z":2,"a":1}`, ""},
		{"equals_ignore_case", `JmesPath("[\"\\\\Windows\\\\WdBoot.sys\"]", "[? equals_ignore_case(@, '\\windows\\wdboot.sys')] | length(@)")`, "1", ""},
		{"equals_ignore_case non-string", `JmesPath("[1, null]", "[? equals_ignore_case(@, 'x')]")`, "[]", ""},
		{"JmesPath invalid JSON", `JmesPath("{", "a")`, nil, "invalid JSON input"},
		{"JmesPath invalid query", `JmesPath("{}", "PcrIndex == 12")`, nil, "invalid query"},
		{"JmesPath empty query", `JmesPath("{}", "")`, nil, "must not be empty"},
		{"JmesPath non-string", `JmesPath(1, "a")`, nil, "argument 1 must be a String"},
		{"JmesPath runtime type error", `JmesPath("{\"a\": 1}", "length(a)")`, nil, "invalid-type"},
		{"JsonToClaimValue int", `JsonToClaimValue("42")`, int64(42), ""},
		{"JsonToClaimValue 1.0", `JsonToClaimValue("1.0")`, int64(1), ""},
		{"JsonToClaimValue 1e2", `JsonToClaimValue("1e2")`, int64(100), ""},
		{"JsonToClaimValue big int", `JsonToClaimValue("9223372036854775807")`, int64(9223372036854775807), ""},
		{"JsonToClaimValue fraction", `JsonToClaimValue("1.5")`, nil, "not an integer"},
		{"JsonToClaimValue overflow", `JsonToClaimValue("9223372036854775808")`, nil, "not an integer"},
		{"JsonToClaimValue bool", `JsonToClaimValue("true")`, true, ""},
		{"JsonToClaimValue string", `JsonToClaimValue("\"x\"")`, "x", ""},
		{"JsonToClaimValue null", `JsonToClaimValue("null")`, nil, ""},
		{"JsonToClaimValue array", `JsonToClaimValue("[1, null, \"a\", false]")`, []any{int64(1), "a", false}, ""},
		{"JsonToClaimValue empty array", `JsonToClaimValue("[]")`, nil, ""},
		{"JsonToClaimValue object", `JsonToClaimValue("{}")`, nil, "object"},
		{"JsonToClaimValue nested", `JsonToClaimValue("[[1]]")`, nil, "nested"},
		{"JsonToClaimValue invalid", `JsonToClaimValue("tru")`, nil, "invalid JSON"},
		{"JsonToClaimValue trailing", `JsonToClaimValue("1 2")`, nil, "data after"},
		{"JsonToClaimValue non-string", `JsonToClaimValue(1)`, nil, "must be a String"},
		{"AppendString", `AppendString("", "b")`, "b", ""},
		{"AppendString int", `AppendString(1, "a")`, nil, "argument 1 must be a String, got Integer"},
		{"NegateBool", `NegateBool(false)`, true, ""},
		{"NegateBool string", `NegateBool("true")`, nil, "must be a Boolean, got String"},
		{"IsSubsetOf typed", `IsSubsetOf(1, "1")`, false, ""},
		{"IsSubsetOf empty", `IsSubsetOf(JsonToClaimValue("[]"), 1)`, true, ""},
		{"ContainsOnlyValue empty set", `ContainsOnlyValue(JsonToClaimValue("[]"), 1)`, false, ""},
		{"ContainsOnlyValue typed", `ContainsOnlyValue(1, true)`, false, ""},
		{"ContainsOnlyValue maps over v", `ContainsOnlyValue(1, JsonToClaimValue("[1, 2]"))`, []any{true, false}, ""},
		{"scalar functions map over lists", `NegateBool(JsonToClaimValue("[true, false]"))`, []any{false, true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runIssuance(t, `=> issue(type="r", value=`+tc.value+`);`)
			if tc.err != "" {
				var ee *EvalError
				if !errors.As(err, &ee) || ee.Kind != Runtime || !strings.Contains(ee.Message, tc.err) {
					t.Fatalf("want Runtime error containing %q, got %v", tc.err, err)
				}
				if ee.Line != 1 || ee.Section != "issuancerules" || !strings.Contains(ee.MAAMessage(), "Msg:[Policy Engine Exception: ") {
					t.Errorf("error position %s %d:%d, MAA %q", ee.Section, ee.Line, ee.Column, ee.MAAMessage())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := TokenClaims(res.Issued)["r"]
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("r = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// An invalid literal query is no parse error: it fails only when its rule runs (spec §6).
func TestInvalidQueryOnlyWhenRun(t *testing.T) {
	res, err := runIssuance(t, `c:[type=="events"] => issue(type="r", value=JmesPath(c.value, "Events[? PcrIndex == 12]"));`)
	if err != nil || len(res.Issued) != 0 {
		t.Fatalf("rule that did not run failed: %v", err)
	}
	_, err = runIssuance(t, `c:[type=="events"] => issue(type="r", value=JmesPath(c.value, "Events[? PcrIndex == 12]"));`, svc("events", `{"Events":[]}`))
	var ee *EvalError
	if !errors.As(err, &ee) || !strings.Contains(ee.Message, "invalid query") {
		t.Fatalf("want invalid query error, got %v", err)
	}
}

func TestRuntimeErrors(t *testing.T) {
	_, err := runIssuance(t, `c:[type=="n"] => issue(type=c.value, value=1);`, svc("n", int64(3)))
	var ee *EvalError
	if !errors.As(err, &ee) || !strings.Contains(ee.Message, "claim type must be a String") {
		t.Errorf("non-string type: %v", err)
	}
	if _, err := mustParse(t, "version=1.0;authorizationrules{=>permit();};").Evaluate(context.Background(), "SgxEnclave", []Claim{svc("x", 1.5)}, EvalOptions{}); err == nil {
		t.Error("float claim value accepted")
	}
	res, err := mustParse(t, "version=1.0;authorizationrules{=>permit();};issuancerules{c:[] => issue(claim=c);};").
		Evaluate(context.Background(), "SgxEnclave", []Claim{svc("i", 7), svc("u", uint8(2))}, EvalOptions{})
	if err != nil || res.Issued[0].Value != int64(7) || res.Issued[1].Value != int64(2) {
		t.Errorf("integer normalisation: %v %v", res, err)
	}
}

func TestCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mustParse(t, "version=1.0;authorizationrules{=>permit();};").Evaluate(ctx, "SgxEnclave", nil, EvalOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
}

// TestEvalLimits: hostile policies end in a Runtime error, quickly.
func TestEvalLimits(t *testing.T) {
	blowup := strings.Repeat("[@,@] | [] | ", 60) + "length(@)"
	doubling := strings.Repeat(`c:[type=="s"] => add(type="s", value=AppendString(c.value, c.value));`, 40)
	fan := `=> add(type="a", value=JsonToClaimValue("[` + strings.TrimSuffix(strings.Repeat("1,", 300), ",") + `]"));` +
		strings.Repeat(`c:[type=="a"] && d:[type=="a"] => add(type="a", value=AppendString("x", "y"));c:[type=="a"] && d:[type=="a"] => add(type=c.type, value=d.value);`, 4)
	tests := []struct{ name, body string }{
		{"jmespath doubling", `=> issue(type="r", value=JmesPath("[1]", "` + blowup + `"));`},
		{"jmespath to_string doubling", `=> issue(type="r", value=JmesPath("\"x\"", "` + strings.Repeat("to_string([@,@]) | ", 40) + `@"));`},
		{"string doubling", `=> add(type="s", value="xxxxxxxxxxxxxxxx");` + doubling},
		{"claim explosion", fan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := runIssuance(t, tc.body)
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Kind != Runtime {
				t.Fatalf("want Runtime error, got %v", err)
			}
			if !errors.Is(err, ErrLimit) {
				t.Errorf("error does not wrap ErrLimit: %v", err)
			}
			t.Logf("%s after %v", ee.Message, time.Since(start))
		})
	}
}

func TestTokenClaims(t *testing.T) {
	c := func(typ string, v any) Claim { return Claim{Type: typ, Value: v, Issuer: IssuerPolicy} }
	got := TokenClaims([]Claim{c("a", true), c("b", int64(1)), c("b", int64(2)), c("b", int64(1)), c("c", "x"), c("c", "x"), c("d", int64(1)), c("d", true)})
	want := map[string]any{"a": true, "b": []any{int64(1), int64(2)}, "c": "x", "d": []any{int64(1), true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TokenClaims = %#v", got)
	}
	if len(TokenClaims(nil)) != 0 {
		t.Error("TokenClaims(nil) not empty")
	}
}

func TestDefaults(t *testing.T) {
	for _, typ := range []string{"SgxEnclave", "OpenEnclave", "sgxenclave"} {
		text, ok := Default(typ)
		if !ok || Hash(text) != "ViVGS4BYl70X8eUrgryHg0TtbEk9WtIc6DtTBEFxaWc" {
			t.Errorf("Default(%s) hash %s ok %v", typ, Hash(text), ok)
		}
	}
	if text, ok := Default("Tpm"); ok || text != "" {
		t.Errorf("Default(Tpm) = %q, %v; want no default", text, ok)
	}
	if _, ok := Default("Nope"); ok {
		t.Error("Default of an unknown type")
	}
	for _, typ := range []string{"SevSnpVm", "TdxVm"} {
		text, ok := Default(typ)
		p, err := Parse(text)
		if !ok || err != nil {
			t.Fatalf("Default(%s): %v", typ, err)
		}
		res, err := p.Evaluate(context.Background(), typ, nil, EvalOptions{})
		if err != nil || len(res.Issued) != 0 {
			t.Errorf("%s default: %v", typ, err)
		}
	}
}

func TestHashKnownValues(t *testing.T) {
	// x-ms-policy-hash of the empty policy text, and of the default (spec §11).
	if h := Hash(""); h != "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU" {
		t.Errorf("Hash(\"\") = %s", h)
	}
}

func TestAddToToken(t *testing.T) {
	issued := []Claim{{Type: "iss", Value: "policy", Issuer: IssuerPolicy}, {Type: "custom", Value: int64(1), Issuer: IssuerPolicy}}
	for _, tc := range []struct {
		typ       string
		xmsPolicy bool
	}{{"SgxEnclave", true}, {"OpenEnclave", true}, {"SevSnpVm", true}, {"TdxVm", true}, {"Tpm", false}} {
		tok := map[string]any{"iss": "https://attestd.example"}
		AddToToken(tok, tc.typ, issued)
		if tok["iss"] != "https://attestd.example" || tok["custom"] != int64(1) {
			t.Errorf("%s: top level %v", tc.typ, tok)
		}
		xp, ok := tok["x-ms-policy"].(map[string]any)
		if ok != tc.xmsPolicy || (ok && (xp["iss"] != "policy" || xp["custom"] != int64(1))) {
			t.Errorf("%s: x-ms-policy %v", tc.typ, tok["x-ms-policy"])
		}
	}
	tok := map[string]any{}
	AddToToken(tok, "SgxEnclave", nil)
	if len(tok) != 0 {
		t.Errorf("nothing issued but token has %v", tok)
	}
	// Names the service owns never reach the top level from a policy, even
	// where this token has no value of its own for them.
	forged := []Claim{{Type: "x-ms-policy-signer", Value: "forged", Issuer: IssuerPolicy}, {Type: "nonce", Value: "n", Issuer: IssuerPolicy},
		{Type: "x-ms-sgx-mrsigner", Value: "00", Issuer: IssuerPolicy}, {Type: "tdx_mrtd", Value: "00", Issuer: IssuerPolicy}, {Type: "mine", Value: true, Issuer: IssuerPolicy}}
	tok = map[string]any{}
	AddToToken(tok, "SgxEnclave", forged)
	xp, _ := tok["x-ms-policy"].(map[string]any)
	if len(tok) != 2 || tok["mine"] != true || len(xp) != len(forged) || xp["x-ms-policy-signer"] != "forged" {
		t.Errorf("service-owned names: token %v", tok)
	}
}

// TestConcurrentEvaluate: one *Policy serves many goroutines (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	text, _ := Default("SgxEnclave")
	p := mustParse(t, text)
	pol42 := mustParse(t, readSample(t, "42-docs-functions-examples-as-policy.txt"))
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				signer := strings.Repeat(string(rune('a'+g)), 64)
				res, err := p.Evaluate(context.Background(), "SgxEnclave", sgxClaims(g%2 == 0, int64(i), 1, signer, debugEnclave), EvalOptions{Trace: i%10 == 0})
				if err != nil {
					done <- err
					return
				}
				tc := TokenClaims(res.Issued)
				if tc["sgx-mrsigner"] != signer || tc["product-id"] != int64(i) || tc["is-debuggable"] != (g%2 == 0) {
					done <- errors.New("claims of another evaluation leaked in")
					return
				}
				if res, err := pol42.Evaluate(context.Background(), "SgxEnclave", nil, EvalOptions{}); err != nil || len(res.Issued) != 9 {
					done <- errors.New("policy 42 result changed under concurrency")
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestNoPermitNamesPermitRules(t *testing.T) {
	for _, tc := range []struct{ authz, want string }{
		{``, "the section has no permit() rule"},
		{`[type=="zz"] => permit();`, "the permit() rule at line 1:32 did not match"},
		{"[type==\"zz\"] => permit();\n[type==\"yy\"] => permit();", "none of the permit() rules at lines 1:32, 2:1 matched"},
	} {
		p := mustParse(t, "version=1.0;authorizationrules{"+tc.authz+"};")
		_, err := p.Evaluate(context.Background(), "SgxEnclave", nil, EvalOptions{})
		var ee *EvalError
		if !errors.As(err, &ee) || ee.Kind != NoPermit || !strings.Contains(ee.Error(), tc.want) || ee.MAAMessage() != maaNoPermitMessage {
			t.Errorf("%q: %v", tc.authz, err)
		}
	}
}
