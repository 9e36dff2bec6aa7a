// Package cputime measures the CPU time a process spends on a batch of
// operations (getrusage before and after), for benchmarks and side-by-side
// comparisons on a shared machine.
//
// Wall-clock rounds measure how much of the machine a process got as well as
// how much work it did: on a loaded 2-core machine one-second rounds gave
// ratios that moved by tens of percent from round to round. The CPU time a
// process was charged for a batch moves far less with the load of others
// (it still includes cache and frequency effects, and the runtime's own work
// — garbage collection, other goroutines — which is part of the cost). It
// is process-wide: measure one thing at a time.
package cputime

import (
	"fmt"
	"testing"
	"time"
)

// Process returns the CPU time (user + system, all threads) this process
// has consumed so far.
func Process() (time.Duration, error) { return processCPU() }

// Measure runs op n times and returns the process CPU time per operation.
// It stops at the first error.
func Measure(n int, op func() error) (time.Duration, error) {
	if n < 1 {
		return 0, fmt.Errorf("cputime: batch of %d operations", n)
	}
	before, err := Process()
	if err != nil {
		return 0, err
	}
	for i := 0; i < n; i++ {
		if err := op(); err != nil {
			return 0, fmt.Errorf("operation %d of %d: %w", i+1, n, err)
		}
	}
	after, err := Process()
	if err != nil {
		return 0, err
	}
	return (after - before) / time.Duration(n), nil
}

// Metric is the unit Start reports, beside ns/op.
const Metric = "cpu-ns/op"

// Start begins measuring the CPU time of a benchmark's loop; the function
// it returns, called after the loop, reports the process CPU time per
// operation as Metric:
//
//	func BenchmarkX(b *testing.B) {
//		setup()
//		defer cputime.Start(b)()
//		for b.Loop() { … }
//	}
//
// On a loaded machine cpu-ns/op is the figure to compare: ns/op also counts
// the time the benchmark waited for a core.
func Start(b testing.TB) (stop func()) {
	b.Helper()
	bb, ok := b.(*testing.B)
	if !ok {
		b.Fatalf("cputime.Start: not a benchmark")
	}
	before, err := Process()
	if err != nil {
		b.Fatalf("cputime: %v", err)
	}
	return func() {
		after, err := Process()
		if err != nil {
			b.Fatalf("cputime: %v", err)
		}
		if bb.N > 0 {
			bb.ReportMetric(float64(after-before)/float64(bb.N), Metric)
		}
	}
}
