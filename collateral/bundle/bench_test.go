package bundle

import (
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// BenchmarkLoadDir scans and assembles a PCS-response directory (startup cost).
func BenchmarkLoadDir(b *testing.B) {
	dir := testenv.Shared(b, "vectors/automata-dcap-rs/data")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseQVLJSON parses one dcap-qvl collateral file.
func BenchmarkParseQVLJSON(b *testing.B) {
	raw := testenv.ReadShared(b, "vectors/dcap-qvl/sample/tdx_quote_collateral.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseQVLJSON(raw); err != nil {
			b.Fatal(err)
		}
	}
}
