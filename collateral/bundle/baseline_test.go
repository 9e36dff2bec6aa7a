package bundle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/testing/sgxplatform"
)

func baselineSets(t *testing.T) (*sgxplatform.Platform, map[int]*collateral.Collateral) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sets := map[int]*collateral.Collateral{17: p.Collateral()}
	for _, n := range []int{15, 16} {
		c, err := p.CollateralWith(func(o *sgxplatform.Options) {
			o.TCBEvaluationDataNumber, o.Now = n, now.Add(-time.Duration(20-n)*time.Minute)
		})
		if err != nil {
			t.Fatal(err)
		}
		sets[n] = c
	}
	return p, sets
}

// TestTCBBaselines: a bundle holding several TCB infos and QE identities per
// FMSPC serves the newest for the standard request and each number's own
// pair for a numbered one, from memory and from a directory of loose PCS
// response files; a TCB info whose QE identity of the same number is
// missing is not served as that baseline (and does not fail Load).
func TestTCBBaselines(t *testing.T) {
	p, sets := baselineSets(t)
	ctx := context.Background()
	req := collateral.Request{TEE: collateral.SGX, FMSPC: p.FMSPC(), CA: collateral.CAProcessor}
	at := func(n int) collateral.Request { r := req; r.TCBEvaluationDataNumber = n; return r }

	mem, err := FromCollateral(sets[16], sets[17], sets[15])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteDir(dir, sets[17]); err != nil {
		t.Fatal(err)
	}
	fdir := filepath.Join(dir, "sgx", p.FMSPC())
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(fdir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tcbinfo-15.json", responseBody("tcbInfo", sets[15].TCBInfo, sets[15].TCBInfoSignature))
	write("qeidentity-15.json", responseBody("enclaveIdentity", sets[15].QEIdentity, sets[15].QEIdentitySignature))
	write("tcbinfo-16.json", responseBody("tcbInfo", sets[16].TCBInfo, sets[16].TCBInfoSignature)) // no QE identity 16
	disk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]struct {
		b         *Bundle
		baselines []int
	}{"memory": {mem, []int{15, 16, 17}}, "directory": {disk, []int{15, 17}}} {
		t.Run(name, func(t *testing.T) {
			if got := c.b.BaselineNumbers(collateral.SGX, p.FMSPC()); !slices.Equal(got, c.baselines) {
				t.Errorf("BaselineNumbers %v, want %v", got, c.baselines)
			}
			bs, err := c.b.Baselines(ctx, collateral.SGX)
			var nums []int
			for _, b := range bs {
				nums = append(nums, b.TCBEvaluationDataNumber)
				if b.Standard != (b.TCBEvaluationDataNumber == 17) || b.TCBDate.IsZero() {
					t.Errorf("baseline %+v", b)
				}
			}
			slices.Reverse(nums)
			if err != nil || !slices.Equal(nums, c.baselines) {
				t.Errorf("Baselines %+v, %v", bs, err)
			}
			if got := c.b.BaselineNumbers(collateral.TDX, ""); len(got) != 0 {
				t.Errorf("TDX baselines %v", got)
			}
			if rs := c.b.Requests(); len(rs) != 1 || rs[0] != req {
				t.Errorf("Requests %v, want only the standard request", rs)
			}
			for _, n := range append([]int{0}, c.baselines...) {
				got, err := c.b.Get(ctx, at(n))
				if err != nil {
					t.Fatalf("number %d: %v", n, err)
				}
				want := sets[n]
				if n == 0 {
					want = sets[17] // the newest
				}
				if !bytes.Equal(got.TCBInfo, want.TCBInfo) || !bytes.Equal(got.QEIdentity, want.QEIdentity) {
					t.Errorf("number %d: served other documents", n)
				}
				info, _ := got.Inspect()
				if err := at(n).Serves(info); err != nil {
					t.Errorf("number %d: %v", n, err)
				}
			}
			for _, n := range []int{11, 16} {
				if slices.Contains(c.baselines, n) {
					continue
				}
				_, err := c.b.Get(ctx, at(n))
				if !errors.Is(err, collateral.ErrNotFound) || !strings.Contains(err.Error(), "number 16") && !strings.Contains(err.Error(), "number 11") {
					t.Errorf("number %d: %v, want ErrNotFound naming it", n, err)
				}
			}
		})
	}
}
