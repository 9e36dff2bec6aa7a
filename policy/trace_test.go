package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	text, _ := Default("SgxEnclave")
	claims := `{"x-ms-sgx-is-debuggable":true,"x-ms-sgx-product-id":1,"x-ms-sgx-svn":1,
		"x-ms-sgx-mrsigner":"` + debugSigner + `","x-ms-sgx-mrenclave":"` + debugEnclave + `","x-ms-attestation-type":"sgx"}`
	res, err := Explain(text, []byte(claims), "SgxEnclave")
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != DecisionPermit || len(res.Issued) != 6 || res.Trace == nil {
		t.Fatalf("decision %s, %d issued", res.Decision, len(res.Issued))
	}
	out := res.Trace.String()
	for _, want := range []string{
		"decision: permit (attestation type SgxEnclave, policy version 1.1, hash ViVGS4BYl70X8eUrgryHg0TtbEk9WtIc6DtTBEFxaWc)",
		"configurationrules (line 1)",
		"→ property: x-ms-sgx-tcbidentifier = \"azuredefault\"",
		"[1] line 1:124 MATCHED   => permit();",
		"→ permit recorded",
		"→ issued: is-debuggable = true",
		"→ issued: svn = 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace text lacks %q:\n%s", want, out)
		}
	}
	b, err := res.Trace.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Trace
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Sections) != 3 || len(back.Sections[2].Rules) != 6 || !back.Sections[2].Rules[0].Matched ||
		back.Sections[2].Rules[0].Issued[0].Type != "is-debuggable" || !strings.Contains(string(b), `"decision": "permit"`) {
		t.Errorf("JSON trace does not round-trip:\n%s", b)
	}
}

// TestExplainDenied: a denial is a result, and the trace says why each rule failed.
func TestExplainDenied(t *testing.T) {
	pol := readSample(t, "08-sdk-draft-nondebug-productid0.txt")
	res, err := Explain(pol, []byte(`{"x-ms-sgx-is-debuggable":true,"x-ms-sgx-product-id":[0,3],"x-ms-sgx-svn":1}`), "SgxEnclave")
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != DecisionNoPermit || res.Err == nil || res.Err.Kind != NoPermit {
		t.Fatalf("decision %s err %v", res.Decision, res.Err)
	}
	r := res.Trace.Sections[0].Rules[0]
	if r.Matched || len(r.Conditions) != 1 || r.Conditions[0].Satisfied ||
		!strings.Contains(r.Reason, `condition 1 [ type=="x-ms-sgx-is-debuggable", value==false ]`) ||
		!strings.Contains(r.Reason, "x-ms-sgx-is-debuggable = true (issuer AttestationService)") {
		t.Errorf("rule trace %+v", r)
	}
	out := res.Trace.String()
	if !strings.Contains(out, "decision: no-permit") || !strings.Contains(out, "why not: condition 1") {
		t.Errorf("trace:\n%s", out)
	}
	// Absence test explanation and deny position.
	res, err = Explain("version=1.2;authorizationrules{![type==\"a\"] => permit();\n[type==\"a\"] => deny();};", []byte(`{"a":"x"}`), "Tpm")
	if err != nil || res.Decision != DecisionDeny || res.Err.Line != 2 {
		t.Fatalf("%v %v", err, res.Err)
	}
	if c := res.Trace.Sections[0].Rules[0].Conditions[0]; c.Satisfied || !strings.Contains(c.Detail, "absence test fails") {
		t.Errorf("absence detail %+v", c)
	}
}

func TestExplainInputErrors(t *testing.T) {
	var pe *ParseError
	if _, err := Explain("version=1.0;", []byte(`{}`), "SgxEnclave"); !errors.As(err, &pe) {
		t.Errorf("parse error not returned: %v", err)
	}
	for _, bad := range []string{``, `[]`, `{"a":1.5}`, `{"a":{"b":1}}`, `{"a":null}`, `{"a":[[1]]}`, `{"a":1} x`, `{"a":99999999999999999999}`} {
		if _, err := Explain("version=1.0;authorizationrules{=>permit();};", []byte(bad), "SgxEnclave"); err == nil {
			t.Errorf("claims %q accepted", bad)
		}
	}
	claims, err := ClaimsFromJSON([]byte(`{"b":[true,2,"x"],"a":-3}`))
	if err != nil || len(claims) != 4 || claims[0].Type != "b" || claims[1].Value != int64(2) || claims[3].Value != int64(-3) || claims[3].Issuer != IssuerService {
		t.Errorf("ClaimsFromJSON = %+v, %v", claims, err)
	}
}

func TestRuntimeErrorTrace(t *testing.T) {
	res, err := Explain("version=1.2;authorizationrules{=>permit();};\nissuancerules{\n => issue(type=\"r\", value=NegateBool(\"x\"));};", []byte(`{}`), "SgxEnclave")
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != DecisionError || res.Err.Line != 3 || res.Err.Column != 27 {
		t.Fatalf("decision %s err %+v", res.Decision, res.Err)
	}
	want := `Policy Engine Exception: NegateBool: argument must be a Boolean, got String. Deciding rule: issuancerules line 3, column 27: => issue(type="r", value=NegateBool("x"));`
	if got := res.Err.MAADetail(); got != want {
		t.Errorf("MAADetail = %q\nwant %q", got, want)
	}
	if r := res.Trace.Sections[1].Rules[0]; r.Error == "" || res.Trace.Sections[1].Name != "issuancerules" {
		t.Errorf("trace lacks the error: %+v", r)
	}
}
