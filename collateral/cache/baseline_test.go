package cache

import (
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

// TestTCBBaselineKeys: entries are keyed by TCB evaluation data number, so
// the standard set and a baseline live side by side, in memory and on disk
// (a restart serves each under its own key), and a source answering a
// baseline request with another number is rejected, not cached.
func TestTCBBaselineKeys(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c15, err := p.CollateralWith(func(o *sgxplatform.Options) { o.TCBEvaluationDataNumber = 15 })
	if err != nil {
		t.Fatal(err)
	}
	sets := map[int]*collateral.Collateral{0: p.Collateral(), 15: c15, 16: p.Collateral() /* a lie: number 17 */}
	src := &fakeSource{fn: func(_ context.Context, r collateral.Request) (*collateral.Collateral, error) {
		if c, ok := sets[r.TCBEvaluationDataNumber]; ok {
			return c, nil
		}
		return nil, collateral.ErrNotFound
	}}
	dir := t.TempDir()
	clk := &clock{t: now}
	c := newCache(t, src, clk, dir)
	ctx := context.Background()
	base := collateral.Request{TEE: collateral.SGX, FMSPC: p.FMSPC(), CA: collateral.CAProcessor}
	at := func(n int) collateral.Request { r := base; r.TCBEvaluationDataNumber = n; return r }
	number := func(c *collateral.Collateral) int {
		info, err := c.Inspect()
		if err != nil {
			t.Fatal(err)
		}
		return info.TCBInfo.TCBEvaluationDataNumber
	}
	for round := 0; round < 2; round++ { // the second round is served from memory
		for n, want := range map[int]int{0: 17, 15: 15} {
			got, err := c.Get(ctx, at(n))
			if err != nil {
				t.Fatalf("number %d: %v", n, err)
			}
			if number(got) != want {
				t.Errorf("number %d: served TCB info %d", n, number(got))
			}
		}
	}
	if got := src.calls.Load(); got != 2 {
		t.Errorf("source called %d times, want 2 (one per number)", got)
	}
	if _, err := c.Get(ctx, at(16)); !errors.Is(err, collateral.ErrMalformed) || !strings.Contains(err.Error(), "number 16") {
		t.Errorf("source serving number 17 for 16: %v", err)
	}
	if _, err := c.Get(ctx, at(11)); !errors.Is(err, collateral.ErrNotFound) {
		t.Errorf("unknown number: %v", err)
	}
	bs, err := c.Baselines(ctx, collateral.SGX)
	if err != nil || len(bs) != 2 || bs[0].TCBEvaluationDataNumber != 17 || !bs[0].Standard || bs[1].TCBEvaluationDataNumber != 15 || bs[1].Standard {
		t.Errorf("Baselines %+v, %v; want 17 (standard), 15", bs, err)
	}
	if bs, _ := c.Baselines(ctx, collateral.TDX); len(bs) != 0 {
		t.Errorf("TDX baselines %+v", bs)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	slices.Sort(names)
	wantNames := []string{"sgx-" + p.FMSPC() + "-processor-tcbeval15.json", "sgx-" + p.FMSPC() + "-processor.json"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("persisted %v, want %v", names, wantNames)
	}

	// A restart with a source that has nothing serves both from disk.
	down := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) {
		return nil, &collateral.UnavailableError{Source: "test", Err: errors.New("down")}
	}}
	c2 := newCache(t, down, clk, dir)
	for n, want := range map[int]int{0: 17, 15: 15} {
		got, err := c2.Get(ctx, at(n))
		if err != nil || number(got) != want {
			t.Fatalf("after restart, number %d: %v", n, err)
		}
	}
	if down.calls.Load() != 0 {
		t.Errorf("restart fetched %d times", down.calls.Load())
	}

	// A file whose name claims a number its documents do not carry is skipped.
	if err := os.Rename(filepath.Join(dir, wantNames[1]), filepath.Join(dir, "sgx-"+p.FMSPC()+"-processor-tcbeval16.json")); err != nil {
		t.Fatal(err)
	}
	c3 := newCache(t, down, clk, dir)
	if _, err := c3.Get(ctx, at(16)); err == nil {
		t.Error("a mislabelled cache file was served as baseline 16")
	}
}
