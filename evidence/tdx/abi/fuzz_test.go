package abi

import (
	"bytes"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// FuzzParseQuote: no input panics, hangs or allocates beyond its size, and
// whatever parses marshals back to the same bytes. Seeds: the real quotes
// of the shared vectors (when present) and minimal v4/v5 quotes.
func FuzzParseQuote(f *testing.F) {
	var files []string
	for _, c := range realQuotes {
		if !c.hex {
			files = append(files, c.file)
		}
	}
	for _, b := range testenv.Seeds(f, files...) {
		f.Add(b)
	}
	f.Add(minimalQuote(4, BodyTypeTD10))
	f.Add(minimalQuote(5, BodyTypeTD10))
	f.Add(minimalQuote(5, BodyTypeTD15))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			return
		}
		out, err := q.Marshal()
		if err != nil {
			t.Fatalf("marshal of a parsed quote: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("round trip differs")
		}
		if q.SignedSize() > len(b) {
			t.Fatal("signed size beyond the quote")
		}
	})
}
