package pcs

import (
	"strings"
	"testing"
)

// TestQEIdentityMiscSelectByteOrder: the QE identity's "miscselect" and
// "miscselectMask" hex strings are the bytes of MISCSELECT as they sit in the
// report (little-endian), which is how QVL reads them (EnclaveReportVerifier:
// vectorToUint32 = swapBytes(toUint32(b0, b1, b2, b3))) and how on-chain
// verifiers compare them (bytes4 against the report bytes). Reading them
// most-significant byte first, as this parser once did, only agrees with QVL
// for byte-symmetric values such as Intel's current 00000000/FFFFFFFF.
func TestQEIdentityMiscSelectByteOrder(t *testing.T) {
	const doc = `{"id":"QE","version":2,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-02-01T00:00:00Z","tcbEvaluationDataNumber":17,"miscselect":"MS","miscselectMask":"MM","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"8C4F5775D796503E96137F77C68A829A0056AC8DED70140B081B094490C57BFF","isvprodid":1,"tcbLevels":[{"tcb":{"isvsvn":8},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"UpToDate"}]}`
	for _, c := range []struct {
		ms, mm           string
		wantMS, wantMask uint32
	}{
		{"00000000", "FFFFFFFF", 0, 0xffffffff},
		{"01000000", "FF000000", 0x00000001, 0x000000ff}, // EXINFO (bit 0) set, mask on bits 0..7
		{"00000001", "FFFFFF0F", 0x01000000, 0x0fffffff},
		{"78563412", "ffffffff", 0x12345678, 0xffffffff},
	} {
		q, err := ParseQEIdentity([]byte(strings.NewReplacer(`"MS"`, `"`+c.ms+`"`, `"MM"`, `"`+c.mm+`"`).Replace(doc)))
		if err != nil {
			t.Fatal(err)
		}
		if q.MiscSelect != c.wantMS || q.MiscSelectMask != c.wantMask {
			t.Errorf("miscselect %s / mask %s: got %08x / %08x, want %08x / %08x", c.ms, c.mm, q.MiscSelect, q.MiscSelectMask, c.wantMS, c.wantMask)
		}
	}
}
