package collateral_test

import "testing"

// BenchmarkInspect is the cost of parsing a set's headers, CRLs and chains
// (what Validity costs); sources do it once per fetched set, never per Get.
func BenchmarkInspect(b *testing.B) {
	c := d1(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Inspect(); err != nil {
			b.Fatal(err)
		}
	}
}
