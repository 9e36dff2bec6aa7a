package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
)

// doc is a toy document family for the generic cache: a value valid
// NotBefore..NotAfter, Final or not.
type doc struct {
	Key                 int
	NotBefore, NotAfter time.Time
	Final               bool
}

type docCodec struct{}

func (docCodec) Family() string       { return "test-doc" }
func (docCodec) KeyName(k int) string { return "doc-" + strconv.Itoa(k) }
func (docCodec) ParseKeyName(s string) (int, error) {
	var k int
	_, err := fmt.Sscanf(s, "doc-%d", &k)
	return k, err
}
func (docCodec) Encode(d doc) ([]byte, error) {
	return []byte(fmt.Sprintf("%d %d %d %t", d.Key, d.NotBefore.Unix(), d.NotAfter.Unix(), d.Final)), nil
}
func (docCodec) Decode(b []byte) (doc, error) {
	var d doc
	var nb, na int64
	if _, err := fmt.Sscanf(string(b), "%d %d %d %t", &d.Key, &nb, &na, &d.Final); err != nil {
		return doc{}, fmt.Errorf("%w: %v", collateral.ErrMalformed, err)
	}
	d.NotBefore, d.NotAfter = time.Unix(nb, 0), time.Unix(na, 0)
	return d, nil
}
func (docCodec) Check(k int, d doc) (collateral.Window, error) {
	if d.Key != k {
		return collateral.Window{}, fmt.Errorf("document %d for key %d: %w", d.Key, k, collateral.ErrMalformed)
	}
	return collateral.Window{NotBefore: d.NotBefore, NotAfter: d.NotAfter, Final: d.Final}, nil
}

func newDocCache(t *testing.T, clk *clock, dir string, max int, final bool, calls *atomic.Int32) *Of[int, doc] {
	t.Helper()
	c, err := NewOf(Config[int, doc]{Codec: docCodec{}, Fetch: func(_ context.Context, k int) (doc, error) {
		calls.Add(1)
		return doc{Key: k, NotBefore: t0, NotAfter: t0.Add(48 * time.Hour), Final: final}, nil
	}}, Options{Now: clk.Now, Dir: dir, MaxEntries: max, RefreshMargin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMaxEntries: beyond MaxEntries the least recently used entry goes, from
// memory and from disk, and a restart loads no more than MaxEntries.
func TestMaxEntries(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	var calls atomic.Int32
	c := newDocCache(t, clk, dir, 2, false, &calls)
	ctx := context.Background()
	get := func(k int) {
		t.Helper()
		if d, err := c.Get(ctx, k); err != nil || d.Key != k {
			t.Fatalf("Get(%d) = %+v, %v", k, d, err)
		}
		clk.Add(time.Second)
	}
	get(1)
	get(2)
	get(1) // 2 is now the least recently used
	get(3)
	c.wg.Wait()
	if n := c.Len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	before := calls.Load()
	get(1)
	get(3)
	if calls.Load() != before {
		t.Error("a recently used entry was evicted")
	}
	get(2)
	if calls.Load() != before+1 {
		t.Error("the least recently used entry was not evicted")
	}
	c.wg.Wait()
	names, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(names) != 2 {
		t.Errorf("persisted %v, want 2 records", names)
	}
	c.Close()
	c2 := newDocCache(t, clk, dir, 1, false, &calls)
	if n := c2.Len(); n != 1 {
		t.Errorf("restart with MaxEntries 1 loaded %d", n)
	}
}

// TestFinalWindow: a Final document is fetched once and served for good,
// past its NotAfter too; a non-final one is refreshed in its margin.
func TestFinalWindow(t *testing.T) {
	for _, final := range []bool{true, false} {
		clk := &clock{t: t0}
		var calls atomic.Int32
		c := newDocCache(t, clk, "", 0, final, &calls)
		for _, at := range []time.Time{t0, t0.Add(47*time.Hour + 30*time.Minute), t0.Add(1000 * time.Hour)} {
			clk.Set(at)
			if _, err := c.Get(context.Background(), 7); err != nil {
				t.Fatal(err)
			}
			c.wg.Wait()
		}
		want := int32(1)
		if !final {
			want = 3 // one refresh in the margin, one fetch after expiry
		}
		if got := calls.Load(); got != want {
			t.Errorf("final=%v: %d fetches, want %d", final, got, want)
		}
	}
}

// TestOldAndForeignFiles: a cache directory holding an old-format file
// (dcap-qvl JSON, as caches wrote before records), records of another
// family, and a record filed under another key's name starts, ignores them
// all, and fetches instead; the bundle reading that directory skips the
// foreign records too.
func TestOldAndForeignFiles(t *testing.T) {
	p := newPKI(t)
	v1 := p.collateralValid(t, t0, t0.Add(30*24*time.Hour), 1)
	dir := t.TempDir()
	old, err := bundle.MarshalQVLJSON(v1)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "sgx-00a067110000-processor.json"), old, 0o600)
	foreign, _ := collateral.EncodeRecord[int, doc](docCodec{}, 1, doc{Key: 1, NotAfter: t0.Add(time.Hour)})
	os.WriteFile(filepath.Join(dir, "doc-1.json"), foreign, 0o600)
	rec, _ := collateral.EncodeRecord(collateral.DCAPCodec, key, v1)
	os.WriteFile(filepath.Join(dir, "sgx-00a067110000-platform.json"), rec, 0o600) // filed under another name
	src := &fakeSource{fn: func(context.Context, collateral.Request) (*collateral.Collateral, error) {
		return nil, &collateral.UnavailableError{Source: "test", Err: errors.New("down")}
	}}
	c := newCache(t, src, &clock{t: t0}, dir)
	if n := c.Len(); n != 0 {
		t.Fatalf("loaded %d entries from old/foreign/misfiled files", n)
	}
	if _, err := c.Get(context.Background(), key); !errors.Is(err, collateral.ErrUnavailable) || src.calls.Load() != 1 {
		t.Fatalf("Get = %v (calls %d), want a fetch", err, src.calls.Load())
	}
	// The Intel cache and the toy family share the directory.
	var calls atomic.Int32
	d := newDocCache(t, &clock{t: t0}, dir, 0, false, &calls)
	if d.Len() != 1 {
		t.Errorf("toy family loaded %d records, want its own one", d.Len())
	}
	os.Remove(filepath.Join(dir, "sgx-00a067110000-processor.json"))
	os.Remove(filepath.Join(dir, "sgx-00a067110000-platform.json"))
	os.WriteFile(filepath.Join(dir, "sgx-00a067110000-processor.json"), rec, 0o600)
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatalf("bundle over a shared cache dir: %v", err)
	}
	if got, err := b.Get(context.Background(), key); err != nil || !got.Equal(v1) {
		t.Errorf("bundle Get = %v", err)
	}
}
