package bundle

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/attestd/attestd/internal/testenv"
)

// seeds adds the real collateral files as seeds when the shared vectors are
// present, so `go test` runs every parser over real bytes; without them the
// inline seeds still run.
func seeds(f *testing.F, rels ...string) {
	for _, b := range testenv.Seeds(f, rels...) {
		f.Add(b)
	}
}

func FuzzParseQVLJSON(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"tcb_info":"{\"tcbInfo\":{},\"signature\":\"00\"}","pck_crl":[48,1]}`))
	seeds(f, "vectors/dcap-qvl/sample/sgx_quote_collateral.json", "vectors/dcap-qvl/sample/tdx_quote_collateral.json",
		"vectors/derived-dcapqvl-collateral/mobilecoin_00906ed50000_2023-07.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseQVLJSON(b)
		if err != nil {
			return
		}
		out, err := MarshalQVLJSON(c)
		if err != nil {
			t.Fatalf("parsed collateral does not marshal: %v", err)
		}
		c2, err := ParseQVLJSON(out)
		if err != nil {
			t.Fatalf("marshalled collateral does not parse: %v", err)
		}
		if !c.Equal(c2) {
			t.Fatal("round trip changed the collateral")
		}
	})
}

func FuzzParseQVECollateral(f *testing.F) {
	f.Add(make([]byte, qveHeaderLen))
	seeds(f, "vectors/openenclave-tdx/tests/host_verify/data/tdx_endorsement.bin")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseQVECollateral(b)
		if err != nil {
			return
		}
		if _, err := c.Inspect(); err != nil {
			t.Fatalf("accepted a dump whose collateral does not inspect: %v", err)
		}
	})
}

// FuzzAddFile runs the directory scanner's classifier over arbitrary file
// content under names that trigger every hint.
func FuzzAddFile(f *testing.F) {
	f.Add("tcbinfo.json", []byte(`{"tcbInfo":{"id":"SGX"},"signature":"00"}`))
	f.Add("chain.pem", []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add("crl.hex", []byte("3000"))
	rels := []string{
		"vectors/go-tdx-guest/testing/testdata/sample_tcbInfo_response", "vectors/go-tdx-guest/testing/testdata/sample_qeIdentity_response",
		"vectors/go-tdx-guest/testing/testdata/pckcrl", "vectors/mobilecoin-sgx/verifier/data/tests/root_crl.pem",
		"vectors/go-tdx-guest/derived/tcbInfoIssuerChain.pem", "vectors/automata-dcap-rs/data/Intel_SGX_Provisioning_Certification_RootCA.cer",
		"vectors/dcap-qvl/sample/sgx_quote_collateral.json", // a whole set: builds
	}
	for i, b := range testenv.Seeds(f, rels...) {
		f.Add(filepath.Base(rels[i]), b)
	}
	var built atomic.Int64
	f.Cleanup(func() {
		// Under CI the shared seeds are present: at least the whole dcap-qvl
		// set must build, or the checks below never ran.
		if os.Getenv("CI") != "" && built.Load() == 0 {
			f.Error("no seed built a bundle: the invariants were never checked")
		}
	})
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		s := newSlots()
		_ = s.addFile(filepath.Join("/x", filepath.Base(name)), b) // unreadable files are skipped, as in a directory
		bn, err := build("fuzz", s)
		if err != nil {
			return
		}
		built.Add(1)
		// A bundle that builds serves every request it lists, with the
		// validity information the verifier reads.
		reqs := bn.Requests()
		if len(reqs) == 0 {
			t.Fatal("bundle built without any collateral set")
		}
		for _, r := range reqs {
			c, err := bn.Get(context.Background(), r)
			if err != nil {
				t.Fatalf("listed request %s: %v", r, err)
			}
			if _, ok := bn.Info(r); !ok {
				t.Fatalf("listed request %s has no info", r)
			}
			if _, err := c.Inspect(); err != nil {
				t.Fatalf("listed request %s: served collateral does not inspect: %v", r, err)
			}
		}
	})
}
