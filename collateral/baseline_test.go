package collateral_test

import (
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
)

// FuzzBaselineOf: BaselineOf reads unverified TCB info bytes (bundle files,
// cache files) for the TCB baseline listing; it must never panic, and what
// it accepts has a header that parses.
func FuzzBaselineOf(f *testing.F) {
	for _, s := range []string{
		`{"id":"SGX","version":3,"issueDate":"2026-01-01T00:00:00Z","nextUpdate":"2026-02-01T00:00:00Z","fmspc":"00906ED50000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tcbLevels":[{"tcbDate":"2025-11-12T00:00:00Z"},{"tcbDate":"bad"}]}`,
		`{"tcbLevels":7}`, `{}`, `[]`, ``, `{"tcbEvaluationDataNumber":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bl, err := collateral.BaselineOf(&collateral.Collateral{TCBInfo: b}, true)
		if err != nil {
			return
		}
		if _, err := collateral.ParseTCBInfoHeader(b); err != nil {
			t.Fatalf("BaselineOf accepted what collateral.ParseTCBInfoHeader rejects: %v", err)
		}
		if !bl.Standard {
			t.Fatal("Standard lost")
		}
	})
}

func TestMergeBaselines(t *testing.T) {
	d1 := time.Date(2025, 5, 14, 0, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 6, 0)
	got := collateral.MergeBaselines(
		[]collateral.Baseline{{TCBEvaluationDataNumber: 17, TCBDate: d1}, {TCBEvaluationDataNumber: 15}},
		[]collateral.Baseline{{TCBEvaluationDataNumber: 17, TCBDate: d2, Standard: true}, {TCBEvaluationDataNumber: 19}},
	)
	want := []collateral.Baseline{{TCBEvaluationDataNumber: 19}, {TCBEvaluationDataNumber: 17, TCBDate: d2, Standard: true}, {TCBEvaluationDataNumber: 15}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
