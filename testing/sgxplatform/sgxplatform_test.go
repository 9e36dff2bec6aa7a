package sgxplatform

import (
	"testing"
	"time"

	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
)

func TestPlatformArtifactsParse(t *testing.T) {
	if _, err := New(Options{QuoteVersion: 5}); err == nil {
		t.Fatal("quote version 5 accepted")
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, v := range []int{3, 4} {
		p, err := New(Options{Now: now, QuoteVersion: v, PlatformCA: true, TCBStatus: pcs.OutOfDate, AdvisoryIDs: []string{"INTEL-SA-1"}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Quote(QuoteOptions{Debug: true, ProductID: 9})
		if err != nil {
			t.Fatal(err)
		}
		q, err := abi.ParseQuote(b)
		if err != nil {
			t.Fatal(err)
		}
		if int(q.Header.Version) != v || !q.Body.Debug() || q.Body.ISVProdID != 9 {
			t.Errorf("v%d: quote fields %+v", v, q.Header)
		}
		c := p.Collateral()
		ti, err := pcs.ParseTCBInfo(c.TCBInfo)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Levels[1].Status != pcs.OutOfDate || ti.Levels[1].AdvisoryIDs[0] != "INTEL-SA-1" || !ti.IssueDate.Before(now) {
			t.Errorf("TCB info %+v", ti.Levels[1])
		}
		if _, err := pcs.ParseQEIdentity(c.QEIdentity); err != nil {
			t.Fatal(err)
		}
		if p.FMSPC() != "00906ed50000" || p.Roots()[0].Subject.CommonName != "attestd TEST SGX Root CA" {
			t.Error("identity")
		}
	}
}
