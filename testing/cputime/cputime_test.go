package cputime

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// burn consumes at least d of this process's CPU time (measured by the
// process clock itself, so the test never depends on the machine's speed).
func burn(t testing.TB, d time.Duration) {
	start, err := Process()
	if err != nil {
		t.Fatal(err)
	}
	var h [32]byte
	for {
		for i := 0; i < 1000; i++ {
			h = sha256.Sum256(h[:])
		}
		now, err := Process()
		if err != nil {
			t.Fatal(err)
		}
		if now-start >= d {
			return
		}
	}
}

func TestMeasure(t *testing.T) {
	per, err := Measure(3, func() error { burn(t, 5*time.Millisecond); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if per < 5*time.Millisecond {
		t.Fatalf("%v per operation, want at least the 5ms each one burnt", per)
	}
}

func TestMeasureErrors(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	_, err := Measure(5, func() error {
		if calls++; calls == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "operation 2 of 5") || calls != 2 {
		t.Fatalf("err %v after %d calls, want boom at operation 2", err, calls)
	}
	if _, err := Measure(0, func() error { return nil }); err == nil {
		t.Fatal("empty batch accepted")
	}
}

// TestStart runs a benchmark that burns 2ms per op and checks the metric
// it reports.
func TestStart(t *testing.T) {
	r := testing.Benchmark(func(b *testing.B) {
		defer Start(b)()
		for b.Loop() {
			burn(b, 2*time.Millisecond)
		}
	})
	got, ok := r.Extra[Metric]
	if !ok || r.N == 0 {
		t.Fatalf("no %s reported (%+v)", Metric, r)
	}
	if got < float64(2*time.Millisecond) {
		t.Fatalf("%s = %.0f, want at least 2e6", Metric, got)
	}
}

// BenchmarkSHA256 shows the use: cpu-ns/op beside ns/op.
func BenchmarkSHA256(b *testing.B) {
	var h [32]byte
	defer Start(b)()
	for b.Loop() {
		h = sha256.Sum256(h[:])
	}
}
