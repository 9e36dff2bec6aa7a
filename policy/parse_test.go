package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestGrammarAccepts: one policy per grammar feature (spec §2–§4).
func TestGrammarAccepts(t *testing.T) {
	tests := []struct {
		name, text, version string
		rules               int // total rules
	}{
		{"minimal", `version=1.0;authorizationrules{};`, "1.0", 0},
		{"all sections 1.1", `version=1.1;configurationrules{};authorizationrules{};issuancerules{};`, "1.1", 0},
		{"version spacing", "version =\t1.2 ;authorizationrules{=>permit();};", "1.2", 1},
		{"leading BOM and CRLF", "\ufeff\r\nversion=1.0;\r\nauthorizationrules{=> permit();};", "1.0", 1},
		{"keywords any case", `VERSION=1.1;ConfigurationRules{=> IssueProperty(Type="omit_x5c", VALUE=TRUE);};AUTHORIZATIONRULES{=> Permit();};IssuanceRules{};`, "1.1", 2},
		{"empty condition", `version=1.0;authorizationrules{=> deny();};`, "1.0", 1},
		{"untagged condition", `version=1.0;authorizationrules{[type=="a"] => permit();};`, "1.0", 1},
		{"tagged condition, spaces", `version=1.0;authorizationrules{c :[type=="a"] => permit(); C2: [ type == "b" ] => permit();};`, "1.0", 2},
		{"empty brackets", `version=1.0;authorizationrules{[] => permit();};`, "1.0", 1},
		{"conjunction", `version=1.0;authorizationrules{[type=="a"] && c:[type=="b"] && [type=="c", value==c.value] => permit();};`, "1.0", 1},
		{"every operator", `version=1.0;authorizationrules{[value==1, value!=2, value<3, value<=4, value>-5, value>=-9223372036854775808] => permit();};`, "1.0", 1},
		{"every property", `version=1.0;authorizationrules{c:[type=="a", value==true, issuer=="AttestationService", valueType=="Boolean"] => permit();};`, "1.0", 1},
		{"add issue issueproperty", `version=1.0;authorizationrules{c:[type=="a"] => add(type="x", value=c.value); => issue(type="y", value=false, valueType="Boolean"); => issueproperty(type="omit_x5c", value=true);};`, "1.0", 3},
		{"claim= forms", `version=1.0;authorizationrules{=>permit();};issuancerules{c:[type=="a"] => issue(claim=c); d:[type=="b"] => add( claim = d ); e:[] => issueproperty(claim=e);};`, "1.0", 4},
		{"tag property refs", `version=1.0;authorizationrules{=>permit();};issuancerules{c:[type=="a"] => issue(type=c.type, value=c.issuer); c:[] => issue(type="vt", value=c.valueType);};`, "1.0", 3},
		{"negation 1.2", `version=1.2;authorizationrules{![type=="a"] => permit();};`, "1.2", 1},
		{"functions 1.2", `version=1.2;authorizationrules{=>permit();};issuancerules{c:[type=="j"] => issue(type="x", value=JsonToClaimValue(JmesPath(c.value, "a"))); c:[type=="j"] => issue(type="y", value=NegateBool(IsSubsetOf(c.value, c.value))); => issue(type="z", value=AppendString("a", "b")); c:[] => issue(type="w", value=ContainsOnlyValue(c.value, 1));};`, "1.2", 5},
		{"function in condition", `version=1.2;authorizationrules{c:[type=="j"] && [type=="k", value==JsonToClaimValue(JmesPath(c.value, "a"))] => permit();};`, "1.2", 1},
		{"function names any case", `version=1.2;authorizationrules{=> add(type="x", value=appendstring("a","b"));};`, "1.2", 1},
		{"comments", "version=1.0; // header\n/* block\n comment */ authorizationrules { // open\n => permit(); // trailing\n /* inline */ };", "1.0", 1},
		{"escapes and raw newline in string", "version=1.0;authorizationrules{[type==\"a\\\"b\\\\c\\d\nline\"] => permit();};", "1.0", 1},
		{"unicode in strings", `version=1.0;authorizationrules{[type=="ünïcødé ✓"] => permit();};`, "1.0", 1},
		{"several rules per line", `version=1.0;authorizationrules{=>permit();=>permit();[type=="x"]=>deny();};`, "1.0", 3},
		{"permit with inner space", `version=1.0;authorizationrules{=> permit( );};`, "1.0", 1},
		{"actions outside their section", `version=1.1;configurationrules{=> permit(); => add(type="a", value=1);};authorizationrules{=> issue(type="b", value=2);};issuancerules{=> deny();};`, "1.1", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range p.sections {
				if s != nil {
					n += len(s.rules)
				}
			}
			if p.Version() != tc.version || n != tc.rules || p.Text() != tc.text {
				t.Errorf("version %q rules %d, want %q %d", p.Version(), n, tc.version, tc.rules)
			}
		})
	}
}

// TestStringEscapes pins the decoding of spec §3.
func TestStringEscapes(t *testing.T) {
	p, err := Parse("version=1.0;authorizationrules{=> add(type=\"t\", value=\"q\\\"b\\\\w\\x\u201d\");};")
	if err != nil {
		t.Fatal(err)
	}
	got := p.sections[secAuthorization].rules[0].act.value.lit[0]
	if got != "q\"b\\w\\x\u201d" {
		t.Errorf("decoded %q", got)
	}
}

// TestGrammarRejects: each malformed form, with the exact error position.
func TestGrammarRejects(t *testing.T) {
	tests := []struct {
		name, text string
		line, col  int
		offending  string
		msg        string
	}{
		{"empty", ``, 1, 1, "<EOF>", "expecting 'version'"},
		{"whitespace only", "  \n ", 2, 2, "<EOF>", "expecting 'version'"},
		{"no version", `authorizationrules{};`, 1, 1, "authorizationrules", "expecting 'version'"},
		{"version without =", `version 1.0;`, 1, 9, "1.0", "expecting '='"},
		{"integer version", `version=1;`, 1, 9, "1", "expecting VERSION_NUMBER"},
		{"version 1.3", `version=1.3;`, 1, 9, "1.3", "unsupported policy version '1.3'"},
		{"missing authorizationrules", `version=1.0;`, 1, 13, "<EOF>", "expecting 'authorizationrules'"},
		{"missing authorizationrules 1.1", `version=1.1;issuancerules{};`, 1, 13, "issuancerules", "expecting {'configurationrules', 'authorizationrules'}"},
		{"duplicate section", `version=1.0;authorizationrules{};authorizationrules{};`, 1, 34, "authorizationrules", "expecting {'issuancerules', <EOF>}"},
		{"config after authz", `version=1.1;authorizationrules{};configurationrules{};`, 1, 34, "configurationrules", "expecting {'issuancerules', <EOF>}"},
		{"trailing garbage", `version=1.0;authorizationrules{};issuancerules{}; x`, 1, 51, "x", "expecting <EOF>"},
		{"missing section semicolon", `version=1.0;authorizationrules{} issuancerules{};`, 1, 34, "issuancerules", "expecting ';'"},
		{"missing rule semicolon", `version=1.0;authorizationrules{=> permit() };`, 1, 44, "}", "expecting ';'"},
		{"missing arrow", `version=1.0;authorizationrules{[type=="a"] permit();};`, 1, 44, "permit", "expecting {'&&', '=>'}"},
		{"or operator", `version=1.0;authorizationrules{[type=="a"] || [type=="b"] => permit();};`, 1, 44, "|", "token recognition error at: '|'"},
		{"parenthesised condition", `version=1.0;authorizationrules{([type=="a"]) => permit();};`, 1, 32, "(", "expecting {'[', '!', IDENT ':', '=>', '}'}"},
		{"unknown property", `version=1.0;authorizationrules{[name=="a"] => permit();};`, 1, 33, "name", "expecting {'type', 'value', 'issuer', 'valueType'}"},
		{"single = in condition", `version=1.0;authorizationrules{[type="a"] => permit();};`, 1, 37, "=", "expecting {'==', '!=', '<', '<=', '>', '>='}"},
		{"AD FS =~", `version=1.0;authorizationrules{[type=~"a"] => permit();};`, 1, 37, "=~", "unsupported operator '=~'"},
		{"AD FS !~", `version=1.0;authorizationrules{[type!~"a"] => permit();};`, 1, 37, "!~", "unsupported operator '!~'"},
		{"missing ]", `version=1.0;authorizationrules{[type=="a" => permit();};`, 1, 43, "=>", "expecting {',', ']'}"},
		{"fraction", `version=1.0;authorizationrules{[value==1.5] => permit();};`, 1, 40, "1.5", "mismatched input '1.5'"},
		{"integer overflow", `version=1.0;authorizationrules{[value==9223372036854775808] => permit();};`, 1, 40, "9223372036854775808", "does not fit in 64 bits"},
		{"bare identifier value", `version=1.0;authorizationrules{[value==abc] => permit();};`, 1, 43, "]", "expecting {'.', '('}"},
		{"string concatenation", `version=1.0;authorizationrules{[type=="a"+"b"] => permit();};`, 1, 42, "+", "token recognition error at: '+'"},
		{"AD FS exists", `version=1.0;authorizationrules{exists([type=="a"]) => permit();};`, 1, 38, "(", "expecting ':'"},
		{"unknown action", `version=1.0;authorizationrules{=> allow();};`, 1, 35, "allow", "expecting {'permit', 'deny', 'add', 'issue', 'issueproperty'}"},
		{"permit with argument", `version=1.0;authorizationrules{=> permit(true);};`, 1, 42, "true", "expecting ')'"},
		{"positional argument", `version=1.0;authorizationrules{=> issue("a", value=1);};`, 1, 41, `"a"`, "expecting {'type', 'value', 'valueType', 'claim'}"},
		{"missing value=", `version=1.0;authorizationrules{=> issue(type="a");};`, 1, 49, ")", "needs both type= and value= (missing value=)"},
		{"missing type=", `version=1.0;authorizationrules{=> add(value="a");};`, 1, 48, ")", "missing type="},
		{"duplicate type=", `version=1.0;authorizationrules{=> add(type="a", type="b", value=1);};`, 1, 49, "type", "duplicate argument 'type'"},
		{"duplicate valueType=", `version=1.0;authorizationrules{=> add(type="a", value=1, valueType="x", valueType="y");};`, 1, 73, "valueType", "duplicate argument 'valueType'"},
		{"claim= plus more", `version=1.0;authorizationrules{c:[] => add(claim=c, value=1);};`, 1, 51, ",", "expecting ')'"},
		{"claim= unbound", `version=1.0;authorizationrules{=> add(claim=c);};`, 1, 45, "c", "tag 'c' is not bound"},
		{"tag used in own condition", `version=1.0;authorizationrules{c:[type=="a", value==c.value] => permit();};`, 1, 53, "c", "tag 'c' is not bound"},
		{"tag bound twice", `version=1.0;authorizationrules{c:[type=="a"] && c:[type=="b"] => permit();};`, 1, 49, "c", "already bound"},
		{"tag from another rule", `version=1.0;authorizationrules{c:[type=="a"] => permit(); => add(type="x", value=c.value);};`, 1, 82, "c", "tag 'c' is not bound"},
		{"negated tag", `version=1.2;authorizationrules{!c:[type=="a"] => permit();};`, 1, 33, "c", "expecting '['"},
		{"negation in 1.0", `version=1.0;authorizationrules{![type=="a"] => permit();};`, 1, 32, "!", "requires policy version 1.2"},
		{"function in 1.1", `version=1.1;authorizationrules{=> add(type="a", value=NegateBool(true));};`, 1, 55, "NegateBool", "requires policy version 1.2"},
		{"unknown function", `version=1.2;authorizationrules{=> add(type="a", value=NegateBol(true));};`, 1, 55, "NegateBol", "unknown function 'NegateBol'"},
		{"arity", `version=1.2;authorizationrules{=> add(type="a", value=ContainsOnlyValue(100));};`, 1, 55, "ContainsOnlyValue", "takes 2 argument(s), not 1"},
		{"smart quote", "version=1.0;authorizationrules{[type==\u201ca\u201d] => permit();};", 1, 39, "\u201c", "token recognition error at: '\u201c'"},
		{"unterminated string", `version=1.0;authorizationrules{[type=="a] => permit();};`, 1, 39, `"`, "not terminated"},
		{"unterminated comment", "version=1.0;/* never closed", 1, 13, "/*", "unterminated block comment"},
		{"section equals", `version=1.0;authorizationrules={};`, 1, 31, "=", "expecting '{'"},
		{"typo section", `version=1.0;authorisationrules{};`, 1, 13, "authorisationrules", "expecting 'authorizationrules'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			if pe.Line != tc.line || pe.Column != tc.col || pe.Offending != tc.offending || !strings.Contains(pe.Message, tc.msg) {
				t.Errorf("got %d:%d %q %q\nwant %d:%d %q %q", pe.Line, pe.Column, pe.Offending, pe.Message, tc.line, tc.col, tc.offending, tc.msg)
			}
			if pe.Offset < 0 || pe.Offset > len(tc.text) {
				t.Errorf("offset %d out of range", pe.Offset)
			}
		})
	}
}

// TestParseLimits: oversize inputs fail cleanly with a ParseError.
func TestParseLimits(t *testing.T) {
	deep := "version=1.2;authorizationrules{=> add(type=\"a\", value=" + strings.Repeat("NegateBool(", MaxExprDepth+2) + "true" + strings.Repeat(")", MaxExprDepth+2) + ");};"
	manyRules := "version=1.0;authorizationrules{" + strings.Repeat("=>permit();", MaxRules+1) + "};"
	manyConds := "version=1.0;authorizationrules{" + strings.Repeat("[]&&", MaxConditions) + "[]=>permit();};"
	manyProps := "version=1.0;authorizationrules{[" + strings.Repeat("type==\"a\",", MaxProps) + "type==\"a\"]=>permit();};"
	bigLit := "version=1.0;authorizationrules{=> add(type=\"a\", value=\"" + strings.Repeat("x", MaxStringLiteral+1) + "\");};"
	huge := "version=1.0;authorizationrules{};" + strings.Repeat(" ", MaxPolicyBytes)
	tests := []struct{ name, text, msg string }{
		{"nesting", deep, "nested more than"},
		{"rules", manyRules, "more than 4096 rules"},
		{"conditions", manyConds, "more than 256 conditions"},
		{"props", manyProps, "more than 64"},
		{"literal", bigLit, "longer than"},
		{"size", huge, "the limit is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(pe.Message, tc.msg) || pe.Rule == "" {
				t.Fatalf("got %v, want ParseError containing %q", err, tc.msg)
			}
		})
	}
}
