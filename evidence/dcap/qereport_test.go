package dcap_test

import (
	"testing"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/sgx/abi"
)

// TestParseQEReport reads the QE fields at the offsets of the SGX report
// body, as the SGX abi parser does, and refuses other lengths.
func TestParseQEReport(t *testing.T) {
	want := abi.ReportBody{MiscSelect: 0x01020304, MRSigner: [32]byte{9, 8, 7}, ISVProdID: 2, ISVSVN: 8, Attributes: [16]byte{0x11}, ReportData: [64]byte{5, 63: 6}}
	got, err := dcap.ParseQEReport(want.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.MiscSelect != want.MiscSelect || got.MRSigner != want.MRSigner || got.ISVProdID != 2 || got.ISVSVN != 8 || got.Attributes != want.Attributes || got.ReportData != want.ReportData {
		t.Fatalf("got %+v", got)
	}
	if _, err := dcap.ParseQEReport(make([]byte, 383)); err == nil {
		t.Fatal("short QE report accepted")
	}
}
