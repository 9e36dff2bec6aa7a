package policy_test

import (
	"fmt"

	"github.com/attestd/attestd/policy"
)

func ExampleExplain() {
	text := `version=1.0;
authorizationrules {
    [type=="x-ms-sgx-is-debuggable", value==true] => deny();
    => permit();
};
issuancerules {
    c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value);
};`
	res, err := policy.Explain(text, []byte(`{"x-ms-sgx-is-debuggable":true,"x-ms-sgx-mrsigner":"4aea"}`), "SgxEnclave")
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Decision)
	fmt.Println(res.Err.MAADetail())

	res, _ = policy.Explain(text, []byte(`{"x-ms-sgx-is-debuggable":false,"x-ms-sgx-mrsigner":"4aea"}`), "SgxEnclave")
	fmt.Println(res.Decision, policy.TokenClaims(res.Issued))
	// Output:
	// deny
	// Policy Engine Exception: A Deny claim was issued, authorization failed. Deciding rule: authorizationrules line 3, column 5: [type=="x-ms-sgx-is-debuggable", value==true] => deny();
	// permit map[signer:4aea]
}

func ExampleParse_error() {
	_, err := policy.Parse("version= 1.0\n[ type==\"x-ms-sgx-is-debuggable\", value==false ] => permit();")
	fmt.Println(err.(*policy.ParseError).MAADetail())
	// Output:
	// Policy Parser Exception Thrown: Offending symbol: '['
	// Line: '2', Column: '1'
	// Failure message: 'mismatched input '[' expecting ';''
	// Failing rule: 'policy > versionInfo'
}
