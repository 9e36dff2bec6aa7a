package bundle_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/collateral/sourcetest"
)

// TestConformance runs the collateral source suite against a bundle built
// in memory and one loaded from a directory of dcap-qvl files (a bundle has
// no upstream, so the down and hanging cases do not apply).
func TestConformance(t *testing.T) {
	fx := sourcetest.NewDCAPFixture(t, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	var sets []*collateral.Collateral
	for _, c := range fx.Sets {
		sets = append(sets, c)
	}
	for _, tc := range []struct {
		name string
		load func(t testing.TB) *bundle.Bundle
	}{
		{"FromCollateral", func(t testing.TB) *bundle.Bundle {
			b, err := bundle.FromCollateral(sets...)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"Dir", func(t testing.TB) *bundle.Bundle {
			dir := t.TempDir()
			for r, c := range fx.Sets {
				j, err := bundle.MarshalQVLJSON(c)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, r.FMSPC+".json"), j, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			b, err := bundle.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sourcetest.Exercise(t, fx.Family(func(t testing.TB, u sourcetest.Upstream) sourcetest.Get[collateral.Request, *collateral.Collateral] {
				if u != sourcetest.Up {
					return nil
				}
				return tc.load(t).Get
			}))
		})
	}
}
