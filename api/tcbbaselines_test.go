package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// TestTCBBaselinesRoute: GET /tcbbaselines/{type} lists "azuredefault" (the
// source's standard documents) and every number the bundle serves, marks
// the one the policy in force selects, needs the reader role, and a policy
// selecting a listed baseline attests against it.
func TestTCBBaselinesRoute(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c15, err := p.CollateralWith(func(o *sgxplatform.Options) {
		o.TCBEvaluationDataNumber, o.TCBStatus, o.Now = 15, pcs.OutOfDate, now.Add(-time.Minute)
	})
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.FromCollateral(p.Collateral(), c15)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sgx.NewVerifier(sgx.Options{Collateral: src, Roots: p.Roots(), Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := newPipelineEnv(t, v)
	tcbDate := now.Add(-90 * 24 * time.Hour).Format(time.RFC3339) // sgxplatform's newest TCB level

	type entry struct {
		TCBIdentifier            string `json:"tcbIdentifier"`
		TCBEvaluationDataNumber  string `json:"tcbEvaluationDataNumber"`
		TCBReleaseDate           string `json:"tcbReleaseDate"`
		MinimumPSWLinuxVersion   string `json:"minimumPswLinuxVersion"`
		MinimumPSWWindowsVersion string `json:"minimumPswWindowsVersion"`
		IsSelectedTCB            bool   `json:"isSelectedTcb"`
	}
	list := func(typ string) []entry {
		t.Helper()
		r := e.do("GET", "/tcbbaselines/"+typ+"?api-version=2025-06-01", e.tokens["reader"], "", "")
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var body struct {
			TCBBaselines []entry `json:"tcbBaselines"`
		}
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		return body.TCBBaselines
	}
	want := []entry{
		{TCBIdentifier: "azuredefault", TCBEvaluationDataNumber: "17", TCBReleaseDate: tcbDate, IsSelectedTCB: true},
		{TCBIdentifier: "17", TCBEvaluationDataNumber: "17", TCBReleaseDate: tcbDate},
		{TCBIdentifier: "15", TCBEvaluationDataNumber: "15", TCBReleaseDate: now.Add(-time.Minute - 90*24*time.Hour).Format(time.RFC3339)},
	}
	for _, typ := range []string{"SgxEnclave", "OpenEnclave"} {
		if got := list(typ); !equalEntries(got, want) {
			t.Errorf("%s: %+v, want %+v", typ, got, want)
		}
	}

	// The policy in force selects 15: it is marked, and attestation uses it.
	pol := `version=1.1; configurationrules{ => issueproperty(type="x-ms-sgx-tcbidentifier", value="15"); }; authorizationrules{ => permit(); };`
	if r := e.do("PUT", "/policies/SgxEnclave?api-version=2020-10-01", e.tokens["contributor"], "text/plain", policyJWS(pol)); r.status != 200 {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	got := list("SgxEnclave")
	if len(got) != 3 || got[0].IsSelectedTCB || got[1].IsSelectedTCB || !got[2].IsSelectedTCB {
		t.Errorf("after selecting 15: %+v", got)
	}
	if got := list("OpenEnclave"); !got[0].IsSelectedTCB {
		t.Errorf("OpenEnclave's policy is unchanged: %+v", got)
	}
	rt := []byte("runtime")
	var qo sgxplatform.QuoteOptions
	h := sha256.Sum256(rt)
	copy(qo.ReportData[:], h[:])
	quote, err := p.Quote(qo)
	if err != nil {
		t.Fatal(err)
	}
	cl := e.claims("default", attestCall(e, "SgxEnclave", b64u.EncodeToString(quote), rt, nil))
	if cl["x-ms-sgx-tcbidentifier"] != "15" || cl["x-ms-sgx-tcb-status"] != "OutOfDate" {
		t.Errorf("attested with tcbidentifier %v, status %v", cl["x-ms-sgx-tcbidentifier"], cl["x-ms-sgx-tcb-status"])
	}

	// An identifier attestation refuses ("+15": not all digits) marks no
	// baseline as selected: the listing must agree with what attest uses.
	pol = `version=1.1; configurationrules{ => issueproperty(type="x-ms-sgx-tcbidentifier", value="+15"); }; authorizationrules{ => permit(); };`
	if r := e.do("PUT", "/policies/SgxEnclave?api-version=2020-10-01", e.tokens["contributor"], "text/plain", policyJWS(pol)); r.status != 200 {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	for _, b := range list("SgxEnclave") {
		if b.IsSelectedTCB {
			t.Errorf("policy selecting \"+15\" (refused by attest) marks %+v as selected", b)
		}
	}
	if r := e.do("POST", "/attest/SgxEnclave?api-version=2020-10-01", "", "application/json",
		`{"quote":"`+b64u.EncodeToString(quote)+`","runtimeData":{"data":"`+b64u.EncodeToString(rt)+`","dataType":"Binary"}}`); r.status != 400 {
		t.Errorf("attest under \"+15\": status %d, want 400: %s", r.status, r.body)
	}

	for _, c := range []struct {
		name, method, path, bearer string
		status                     int
		code                       string
	}{
		{"no token", "GET", "/tcbbaselines/SgxEnclave", "", 401, "Unauthorized"},
		{"Tpm", "GET", "/tcbbaselines/Tpm", e.tokens["reader"], 400, "InvalidParameter"},
		{"unknown type", "GET", "/tcbbaselines/Nope", e.tokens["reader"], 400, "InvalidParameter"},
		{"POST", "POST", "/tcbbaselines/SgxEnclave", e.tokens["reader"], 405, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, c.bearer, "", "")
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.code != "" && r.errCode(t) != c.code {
				t.Fatalf("code %s, want %s", r.errCode(t), c.code)
			}
		})
	}
}

func equalEntries[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
