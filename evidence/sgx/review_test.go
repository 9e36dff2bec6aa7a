package sgx

import (
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx/verify"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// TestEmptyBinaryRuntimeEHD: empty runtime data of dataType Binary still
// yields x-ms-sgx-ehd (the empty string), and then its aliases maa-ehd,
// aas-ehd, $maa-ehd and $aas-ehd must carry the same value: the aliases are
// keyed on "binary runtime data was sent", not on the encoding being non-empty.
func TestEmptyBinaryRuntimeEHD(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	quote, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Parse(evidence.SgxEnclave, quote)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		runtime *evidence.Data
		want    bool
	}{
		{"no runtime data", nil, false},
		{"empty binary runtime data", &evidence.Data{Bytes: []byte{}}, true},
		{"empty JSON runtime data", &evidence.Data{Bytes: []byte{}, JSON: true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := claimMap(Claims(ev, &Verified{Result: &verify.Result{}}, c.runtime), true)
			for _, k := range []string{ClaimEHD, "maa-ehd", "aas-ehd", "$maa-ehd", "$aas-ehd"} {
				v, ok := m[k]
				if ok != c.want {
					t.Fatalf("%s present=%v, want %v", k, ok, c.want)
				}
				if ok && (len(v) != 1 || v[0] != "") {
					t.Fatalf("%s = %v, want one empty string", k, v)
				}
			}
		})
	}
}
