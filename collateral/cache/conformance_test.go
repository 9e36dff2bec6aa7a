package cache

import (
	"context"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/sourcetest"
)

// TestConformance runs the collateral source suite against the Intel cache
// over a source that is up, down or hanging, cold each time, memory-only
// and persisted.
func TestConformance(t *testing.T) {
	fx := sourcetest.NewDCAPFixture(t, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	for _, persisted := range []bool{false, true} {
		name := map[bool]string{false: "Memory", true: "Dir"}[persisted]
		t.Run(name, func(t *testing.T) {
			sourcetest.Exercise(t, fx.Family(func(t testing.TB, u sourcetest.Upstream) sourcetest.Get[collateral.Request, *collateral.Collateral] {
				src := fx.Source()
				if u != sourcetest.Up {
					src = getter(sourcetest.Failing[collateral.Request, *collateral.Collateral](u))
				}
				dir := ""
				if persisted {
					dir = t.TempDir()
				}
				c, err := New(src, Options{Now: func() time.Time { return fx.Now }, Dir: dir, FetchTimeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c.Get
			}))
		})
	}
}

// getter adapts a function to collateral.Source.
type getter sourcetest.Get[collateral.Request, *collateral.Collateral]

func (g getter) Get(ctx context.Context, r collateral.Request) (*collateral.Collateral, error) {
	return g(ctx, r)
}
