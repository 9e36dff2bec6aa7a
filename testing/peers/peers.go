// Command peers times attestd's evidence verification against other
// verifiers on the same evidence, collateral and instant, on one machine in
// one run, and prints the ratios (scripts/peers.sh installs the peers and
// runs it; BENCHMARKS.md records the figures).
//
// Every subject is timed in CPU time of batches of verifications (getrusage
// in Go, process.cpuUsage() in Node), not in wall-clock rounds: on a shared
// machine a process's CPU time for a batch moves far less with the load of
// others than its wall time does. Batches of all subjects are interleaved
// round by round (the order rotating each round), so that every round sees
// the same machine, and the ratio of each round is taken before the median.
// Before timing, each subject verifies once and prints its TCB status and
// advisories: a peer that fails or disagrees stops the run instead of being
// timed on an error path.
//
// The comparisons are a table (comparisons in main.go): SGX against
// @phala/dcap-qvl today; SEV-SNP against go-sev-guest and TDX against
// go-tdx-guest (called in-process) are rows to add once attestd verifies
// those.
package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Outcome is what a verifier decided about the evidence.
type Outcome struct {
	Status     string   // TCB status, e.g. "UpToDate"
	Advisories []string // advisory IDs, in the verifier's order
}

func (o Outcome) String() string {
	return fmt.Sprintf("%s %v", o.Status, o.Advisories)
}

// Subject is one verifier bound to one piece of evidence, its collateral
// and an instant.
type Subject interface {
	Name() string
	// Outcome verifies once.
	Outcome(ctx context.Context) (Outcome, error)
	// Batch verifies n times and returns the CPU time per verification.
	Batch(ctx context.Context, n int) (time.Duration, error)
	Close() error
}

// Comparison is one row group of the report: a peer (the baseline, measured
// in the same run) against attestd's verifiers of the same evidence.
type Comparison struct {
	TEE      string // "SGX", "SEV-SNP", "TDX"
	Vector   string // the evidence, relative to the shared directory
	At       time.Time
	Baseline Subject
	Subjects []Subject
}

func (c *Comparison) all() []Subject { return append([]Subject{c.Baseline}, c.Subjects...) }

// Close closes every subject.
func (c *Comparison) Close() error {
	var first error
	for _, s := range c.all() {
		if s == nil {
			continue
		}
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Row is the timing of one subject.
type Row struct {
	Name    string
	Outcome Outcome
	Batch   int             // verifications per batch
	PerOp   []time.Duration // CPU time per verification, one per round
	// Ratios are baseline ÷ this per round (how many times less CPU this
	// subject needs than the baseline did in the same round).
	Ratios []float64
}

// Median CPU time per verification.
func (r *Row) Median() time.Duration {
	return medianDur(r.PerOp)
}

// Ratio is the median of the per-round ratios.
func (r *Row) Ratio() float64 { return median(r.Ratios) }

// Report is the result of one comparison.
type Report struct {
	C    *Comparison
	Rows []*Row // baseline first
}

// Config of a run.
type Config struct {
	Rounds   int           // interleaved rounds (odd: the median is a round)
	BatchCPU time.Duration // CPU time one batch should take
	Log      io.Writer     // progress, one line per batch
}

// Run checks every subject's outcome against the baseline's, sizes a batch
// per subject for cfg.BatchCPU, then runs cfg.Rounds interleaved rounds.
func Run(ctx context.Context, c *Comparison, cfg Config) (*Report, error) {
	if cfg.Rounds < 1 {
		return nil, fmt.Errorf("peers: %d rounds", cfg.Rounds)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	subjects := c.all()
	rep := &Report{C: c}
	for _, s := range subjects {
		o, err := s.Outcome(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %s does not verify %s at %s: %w", c.TEE, c.Vector, s.Name(), c.Vector, c.At.Format(time.RFC3339), err)
		}
		rep.Rows = append(rep.Rows, &Row{Name: s.Name(), Outcome: o})
	}
	base := rep.Rows[0].Outcome
	for _, r := range rep.Rows[1:] {
		if r.Outcome.Status != base.Status || !slices.Equal(r.Outcome.Advisories, base.Advisories) {
			return rep, fmt.Errorf("%s %s: %s decides %s, %s decides %s", c.TEE, c.Vector, r.Name, r.Outcome, rep.Rows[0].Name, base)
		}
	}
	for i, s := range subjects {
		n, err := calibrate(ctx, s, cfg.BatchCPU)
		if err != nil {
			return nil, fmt.Errorf("%s: size a batch: %w", s.Name(), err)
		}
		rep.Rows[i].Batch = n
	}
	for round := 0; round < cfg.Rounds; round++ {
		per := make([]time.Duration, len(subjects))
		for k := range subjects {
			i := (k + round) % len(subjects) // rotate who goes first
			d, err := subjects[i].Batch(ctx, rep.Rows[i].Batch)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", subjects[i].Name(), round+1, err)
			}
			if d <= 0 {
				return nil, fmt.Errorf("%s round %d: batch of %d took no CPU time", subjects[i].Name(), round+1, rep.Rows[i].Batch)
			}
			per[i] = d
			fmt.Fprintf(cfg.Log, "round %d  %-40s %6d × %s\n", round+1, subjects[i].Name(), rep.Rows[i].Batch, d)
		}
		for i, r := range rep.Rows {
			r.PerOp = append(r.PerOp, per[i])
			r.Ratios = append(r.Ratios, float64(per[0])/float64(per[i]))
		}
	}
	return rep, nil
}

// calibrate finds a batch size that takes about target CPU time: it grows
// from one verification until a batch takes an eighth of target, then runs
// one batch of the estimated size and sizes again from it, because the first
// small batches also warm caches and JITs and overstate the cost.
func calibrate(ctx context.Context, s Subject, target time.Duration) (int, error) {
	const maxBatch = 1 << 20
	size := func(per time.Duration) int {
		return int(min(maxBatch, max(1, math.Ceil(float64(target)/float64(per)))))
	}
	n := 1
	for {
		per, err := s.Batch(ctx, n)
		if err != nil {
			return 0, err
		}
		if total := per * time.Duration(n); total >= target/8 || n >= maxBatch {
			if per <= 0 {
				return 0, fmt.Errorf("%d verifications took no CPU time", n)
			}
			n = size(per)
			break
		}
		n *= 4
	}
	per, err := s.Batch(ctx, n)
	if err != nil {
		return 0, err
	}
	if per <= 0 {
		return 0, fmt.Errorf("%d verifications took no CPU time", n)
	}
	return size(per), nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

// Print writes the report as a Markdown table.
func (rep *Report) Print(w io.Writer) {
	c := rep.C
	fmt.Fprintf(w, "%s: %s at %s, %d rounds\n\n", c.TEE, c.Vector, c.At.Format(time.RFC3339), len(rep.Rows[0].PerOp))
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "  %-40s %s\n", r.Name, r.Outcome)
	}
	fmt.Fprintf(w, "\n| verifier | batch | CPU per verification (median, min–max) | %s ÷ this (median of rounds) |\n|---|---:|---:|---:|\n", rep.Rows[0].Name)
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "| %s | %d | %s (%s–%s) | %s |\n", r.Name, r.Batch, fmtDur(r.Median()), fmtDur(slices.Min(r.PerOp)), fmtDur(slices.Max(r.PerOp)), fmtRatio(r))
	}
}

func fmtRatio(r *Row) string {
	var parts []string
	for _, x := range r.Ratios {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return fmt.Sprintf("**%.2f** (%s)", r.Ratio(), strings.Join(parts, ", "))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
}
