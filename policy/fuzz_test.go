package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// fuzzSeeds are inline so the corpus exists without ../shared.
var fuzzSeeds = []string{
	defaultSGX,
	defaultPermitAll,
	"version=1.0;authorizationrules{c:[type==\"$is-debuggable\"] && [value==true] => deny();\n=> permit();};issuancerules{c:[type==\"x\"] => issue(claim=c);};",
	"version=1.2;authorizationrules{![type==\"a\"] => permit();};issuancerules{c:[type==\"j\"] => issue(type=\"r\", value=JsonToClaimValue(JmesPath(c.value, \"a[?b == `1`] | length(@)\")));};",
	"version=1.2;authorizationrules{=>permit();};issuancerules{=> add(type=\"s\", value=\"x\"); c:[type==\"s\"] => add(type=\"s\", value=AppendString(c.value, c.value));};",
	"version=1.2;authorizationrules{=>permit();};issuancerules{=> issue(type=\"r\", value=JmesPath(\"[1]\", \"[@,@] | [] | [@,@] | [] | [@,@] | []\"));};",
	"version=1.1;configurationrules{=> issueproperty(type=\"required_pcr_mask\", value=15);};authorizationrules{=>permit();};",
	"version=1.2;authorizationrules{=>permit();};issuancerules{=> issue(type=\"r\", value=IsSubsetOf(ContainsOnlyValue(1, 1), NegateBool(false)));};",
	"version=1.0;/* c */ authorizationrules{ // x\n[type==\"a\\\"b\\\\\"]=>permit();};",
	"version=1.0;authorizationrules{[type==\u201ca\u201d] => permit();};",
	"version=1.2;authorizationrules{=> add(type=\"a\", value=NegateBool(NegateBool(NegateBool(NegateBool(true)))));};",
	"version=1.2;authorizationrules{=> add(type=\"a\", value=" + strings.Repeat("NegateBool(", 40) + "true" + strings.Repeat(")", 40) + ");};",
	"version=1.0;authorizationrules{=> add(type=\"a\", value=\"" + strings.Repeat("x", 70000) + "\");};",
	"version=1.2;authorizationrules{=>permit();};issuancerules{=> issue(type=\"r\", value=JmesPath(\"\\\"x\\\"\", \"" + strings.Repeat("to_string([@,@]) | ", 30) + "@\"));};",
	"version=1.0;authorizationrules{" + strings.Repeat("[]&&", 300) + "[]=>permit();};",
	"\ufeffversion = 1.2 ;authorizationrules{c:[]&&d:[type==c.type,value==c.value,issuer!=c.issuer,valueType>=c.valueType]=>permit();};",
}

var fuzzClaims = []Claim{
	svc("x-ms-sgx-is-debuggable", true), svc("x-ms-sgx-product-id", int64(1)), svc("x-ms-sgx-mrsigner", debugSigner),
	svc("$is-debuggable", false), svc("a", "x"), svc("j", `{"a":[{"b":1},{"b":2}],"Events":[{"PcrIndex":12}]}`),
	svc("events", windowsEvents), svc("pcrs", goodPCRs), {Type: "aas-ehd", Value: "AQ", Issuer: IssuerCustom},
}

// FuzzParseEvaluate: Parse never panics and reports positions inside the
// text; a parsed policy evaluates without panicking, within its limits.
func FuzzParseEvaluate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	if dir := testenv.SharedDir(); dir != "" {
		files, err := filepath.Glob(filepath.Join(dir, "spec", "policies", "*.txt"))
		if err != nil || len(files) == 0 {
			f.Fatalf("no policy vectors in %s/spec/policies (%v)", dir, err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(text)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Line < 1 || pe.Column < 1 || pe.Offset < 0 || pe.Offset > len(text) || pe.Message == "" || pe.Rule == "" {
				t.Fatalf("bad error position %+v", pe)
			}
			_ = pe.MAAMessage()
			return
		}
		if p.Text() != text {
			t.Fatal("Text does not round-trip")
		}
		for _, trace := range []bool{false, true} {
			res, err := p.Evaluate(context.Background(), "Tpm", fuzzClaims, EvalOptions{Trace: trace})
			if err != nil {
				var ee *EvalError
				if !errors.As(err, &ee) {
					t.Fatalf("error %T is not an *EvalError: %v", err, err)
				}
				_ = ee.MAAMessage()
			}
			if res != nil && trace {
				_ = res.Trace.String()
				if _, err := res.Trace.JSON(); err != nil {
					t.Fatal(err)
				}
			}
			if res != nil {
				_ = TokenClaims(res.Issued)
			}
		}
	})
}

// FuzzClaimsFromJSON: the Explain claim-set decoder never panics and yields
// only values of the claim model.
func FuzzClaimsFromJSON(f *testing.F) {
	f.Add(`{"x-ms-sgx-mrsigner":"4aea","x-ms-sgx-is-debuggable":true,"x-ms-sgx-svn":[1,2]}`)
	f.Add(`{"a":1.5}`)
	f.Add(`{"a":[[1]],"b":null}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, doc string) {
		claims, err := ClaimsFromJSON([]byte(doc))
		if err != nil {
			return
		}
		for _, c := range claims {
			switch c.Value.(type) {
			case bool, int64, string:
			default:
				t.Fatalf("claim %q has value %T", c.Type, c.Value)
			}
			if c.Issuer != IssuerService {
				t.Fatalf("issuer %q", c.Issuer)
			}
		}
	})
}
