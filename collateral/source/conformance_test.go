package source

import (
	"context"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/collateral/sourcetest"
)

type getter sourcetest.Get[collateral.Request, *collateral.Collateral]

func (g getter) Get(ctx context.Context, r collateral.Request) (*collateral.Collateral, error) {
	return g(ctx, r)
}

// TestConformance runs the collateral source suite against Fallback: up,
// the primary holds the served set and the secondary (a bundle) the
// out-of-window ones, so those are answered through the fallback path;
// down, both fail; hanging, the primary hangs and the caller's deadline
// ends the call without asking the secondary.
func TestConformance(t *testing.T) {
	fx := sourcetest.NewDCAPFixture(t, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	primary, err := bundle.FromCollateral(fx.Sets[fx.Served])
	if err != nil {
		t.Fatal(err)
	}
	secondary, err := bundle.FromCollateral(fx.Sets[fx.Expired], fx.Sets[fx.NotYetValid])
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Exercise(t, fx.Family(func(t testing.TB, u sourcetest.Upstream) sourcetest.Get[collateral.Request, *collateral.Collateral] {
		switch u {
		case sourcetest.Down:
			down := getter(sourcetest.Failing[collateral.Request, *collateral.Collateral](u))
			return Fallback(down, down).Get
		case sourcetest.Hang:
			return Fallback(getter(sourcetest.Failing[collateral.Request, *collateral.Collateral](u)), secondary).Get
		}
		return Fallback(primary, secondary).Get
	}))
}

func TestKDSConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg KDSConfig
		ok  bool
	}{
		{KDSConfig{}, true},
		{KDSConfig{Type: "kds", URL: "https://mirror", CacheDir: "/x", Timeout: "10s", RetryInterval: "1m"}, true},
		{KDSConfig{Path: "/etc/amd"}, true},
		{KDSConfig{Type: "bundle"}, false},
		{KDSConfig{Type: "bundle", Path: "/p", URL: "https://x"}, false},
		{KDSConfig{Type: "thim"}, false},
		{KDSConfig{Timeout: "soon"}, false},
		{KDSConfig{MaxEntries: -1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v", tc.cfg, err)
		}
	}
	o, err := OpenKDS(KDSConfig{CacheDir: t.TempDir()}, func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKDS(KDSConfig{Path: t.TempDir()}, time.Now, nil, nil); err == nil {
		t.Error("an empty bundle directory was accepted")
	}
}
