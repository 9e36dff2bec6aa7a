package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tdxpcs "github.com/google/go-tdx-guest/pcs"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/internal/testenv"
)

// fakeSubject costs a fixed CPU time per verification, or the costs given
// round by round after calibration.
type fakeSubject struct {
	name    string
	outcome Outcome
	err     error
	per     time.Duration
	timedN  int             // the batch size calibration is expected to pick
	rounds  []time.Duration // per-op cost of each batch of timedN (calibration's check first)
	calls   []int           // batch sizes asked for
	order   *[]string
}

func (f *fakeSubject) Name() string { return f.name }
func (f *fakeSubject) Outcome(context.Context) (Outcome, error) {
	return f.outcome, f.err
}
func (f *fakeSubject) Batch(_ context.Context, n int) (time.Duration, error) {
	f.calls = append(f.calls, n)
	if n != f.timedN { // calibration (powers of 4)
		return f.per, nil
	}
	if f.order != nil {
		*f.order = append(*f.order, f.name)
	}
	if len(f.rounds) > 0 {
		d := f.rounds[0]
		f.rounds = f.rounds[1:]
		return d, nil
	}
	return f.per, nil
}
func (f *fakeSubject) Close() error { return nil }

var sgxOutcome = Outcome{Status: "ConfigurationAndSWHardeningNeeded", Advisories: []string{"INTEL-SA-00289", "INTEL-SA-00615"}}

func TestRun(t *testing.T) {
	var order []string
	peer := &fakeSubject{name: "peer", outcome: sgxOutcome, per: 10 * time.Millisecond, timedN: 40,
		rounds: []time.Duration{10 * time.Millisecond /* calibration's check */, 10 * time.Millisecond, 12 * time.Millisecond, 9 * time.Millisecond}, order: &order}
	ours := &fakeSubject{name: "ours", outcome: sgxOutcome, per: time.Millisecond, timedN: 400,
		rounds: []time.Duration{time.Millisecond /* calibration's check */, time.Millisecond, 2 * time.Millisecond, time.Millisecond}, order: &order}
	c := &Comparison{TEE: "SGX", Vector: "v", At: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC), Baseline: peer, Subjects: []Subject{ours}}
	rep, err := Run(context.Background(), c, Config{Rounds: 3, BatchCPU: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Batches sized for 400ms: 40 of 10ms, 400 of 1ms.
	if rep.Rows[0].Batch != 40 || rep.Rows[1].Batch != 400 {
		t.Fatalf("batches %d, %d; want 40, 400", rep.Rows[0].Batch, rep.Rows[1].Batch)
	}
	// Round ratios 10, 6, 9 → median 9; medians 10ms and 1ms.
	if got := rep.Rows[1].Ratio(); got != 9 {
		t.Errorf("ratio %v, want 9 (ratios %v)", got, rep.Rows[1].Ratios)
	}
	if rep.Rows[0].Median() != 10*time.Millisecond || rep.Rows[1].Median() != time.Millisecond {
		t.Errorf("medians %s %s", rep.Rows[0].Median(), rep.Rows[1].Median())
	}
	if want := "peer ours " + "peer ours ours peer peer ours"; strings.Join(order, " ") != want {
		t.Errorf("order %v, want rotating %q", order, want)
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, w := range []string{"| ours | 400 | 1.00 ms (1.00 ms–2.00 ms) | **9.00** (10.00, 6.00, 9.00) |", "ConfigurationAndSWHardeningNeeded"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, out.String())
		}
	}
}

func TestRunRefuses(t *testing.T) {
	ok := func(name string) *fakeSubject {
		return &fakeSubject{name: name, outcome: sgxOutcome, per: time.Millisecond}
	}
	cases := []struct {
		name string
		mod  func(peer, ours *fakeSubject)
		want string
	}{
		{"peer fails", func(p, _ *fakeSubject) { p.err = errors.New("tcb_info expired") }, "peer does not verify"},
		{"status differs", func(_, o *fakeSubject) { o.outcome.Status = "UpToDate" }, "ours decides UpToDate"},
		{"advisories differ", func(_, o *fakeSubject) { o.outcome.Advisories = []string{"INTEL-SA-00289"} }, "ours decides"},
		{"no CPU time", func(_, o *fakeSubject) { o.per = 0 }, "no CPU time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, o := ok("peer"), ok("ours")
			tc.mod(p, o)
			_, err := Run(context.Background(), &Comparison{TEE: "SGX", Vector: "v", Baseline: p, Subjects: []Subject{o}}, Config{Rounds: 1, BatchCPU: time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseReplies(t *testing.T) {
	h, err := parseHello([]byte(`{"version":"0.3.9","status":"UpToDate","advisory_ids":[]}`))
	if err != nil || h.Status != "UpToDate" || h.Version != "0.3.9" || h.Advisories == nil {
		t.Fatalf("hello %+v %v", h, err)
	}
	for _, bad := range []string{`{"version":"0.3.9","error":"Failed to decode quote"}`, `{"version":"x"}`, `not json`} {
		if _, err := parseHello([]byte(bad)); err == nil {
			t.Errorf("hello %s accepted", bad)
		}
	}
	cases := []struct {
		in   string
		n    int
		want time.Duration
		err  string
	}{
		{`{"n":4,"cpu_us":40000}`, 4, 10 * time.Millisecond, ""},
		{`{"n":3,"cpu_us":40000}`, 4, 0, "asked for 4"},
		{`{"n":4}`, 4, 0, "cpu_us"},
		{`{"n":4,"cpu_us":-1}`, 4, 0, "cpu_us"},
		{`{"error":"boom"}`, 4, 0, "boom"},
		{`{"n":4,"cpu_us":"1"}`, 4, 0, "batch reply"},
	}
	for _, tc := range cases {
		got, err := parseBatch([]byte(tc.in), tc.n)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, %v; want error %q", tc.in, got, err, tc.err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseReplies(f *testing.F) {
	f.Add([]byte(`{"n":4,"cpu_us":40000}`), 4)
	f.Add([]byte(`{"version":"0.3.9","status":"UpToDate","advisory_ids":["a"]}`), 1)
	f.Add([]byte(`{"n":1,"cpu_us":1e300}`), 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 1 {
			return
		}
		if d, err := parseBatch(b, n); err == nil && d < 0 {
			t.Fatalf("negative time %v", d)
		}
		if h, err := parseHello(b); err == nil && h.Status == "" {
			t.Fatal("hello without status accepted")
		}
	})
}

// TestAttestdSGX: both attestd subjects verify the D1 vector at an instant
// in its window with dcap-qvl's documented outcome, and time a batch.
func TestAttestdSGX(t *testing.T) {
	quote := testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote")
	coll, err := bundle.ParseQVLJSON(testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, cold := range []bool{true, false} {
		s, err := newAttestdSGX(quote, coll, time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC), cold)
		if err != nil {
			t.Fatal(err)
		}
		o, err := s.Outcome(ctx)
		if err != nil || o.String() != sgxOutcome.String() {
			t.Fatalf("%s: %v, %v; want %v", s.Name(), o, err, sgxOutcome)
		}
		if d, err := s.Batch(ctx, 3); err != nil || d < 0 {
			t.Fatalf("%s batch: %v %v", s.Name(), d, err)
		}
	}
	// Outside the window the subject fails, so a run cannot time an error path.
	s, err := newAttestdSGX(quote, coll, time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Outcome(ctx); err == nil {
		t.Fatal("D1 verified after its collateral expired")
	}
}

// TestDCAPQVL runs the Node peer when DCAPQVL_NODE_MODULES names a
// node_modules with @phala/dcap-qvl (scripts/peers.sh prints how).
func TestDCAPQVL(t *testing.T) {
	nm := os.Getenv("DCAPQVL_NODE_MODULES")
	if nm == "" {
		t.Skip("DCAPQVL_NODE_MODULES not set")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node")
	}
	q := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote")
	c := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	ctx := context.Background()
	d, err := startDCAPQVL(ctx, "node", nm, t.TempDir(), q, c, time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if o, _ := d.Outcome(ctx); o.String() != sgxOutcome.String() {
		t.Fatalf("dcap-qvl decides %v, want %v", o, sgxOutcome)
	}
	if per, err := d.Batch(ctx, 2); err != nil || per <= 0 {
		t.Fatalf("batch %v %v", per, err)
	}
	// After the window dcap-qvl refuses, and the error reaches us.
	_, err = startDCAPQVL(ctx, "node", nm, t.TempDir(), q, c, time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC))
	if err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Fatalf("expired collateral: %v", err)
	}
	if _, err := os.Stat(filepath.Join(nm, "@phala", "dcap-qvl")); err != nil {
		t.Fatal(err)
	}
}

// TestTDXPeers: go-tdx-guest (collateral served from memory, no network)
// and both attestd subjects verify the T1 vector at an instant in its
// window and agree on UpToDate without advisories; a year later all of
// them refuse, so a run cannot time an error path; and the in-memory PCS
// answers nothing but the collateral's own documents.
func TestTDXPeers(t *testing.T) {
	const quoteRel, collRel = "vectors/dcap-qvl/sample/tdx_quote", "vectors/dcap-qvl/sample/tdx_quote_collateral.json"
	testenv.Shared(t, quoteRel)
	quote, coll, err := readQVLVector(testenv.SharedDir(), quoteRel, collRel)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	want := Outcome{Status: "UpToDate"}
	subjects := func(at time.Time) []Subject {
		g, err := newGoTDXGuest(quote, coll, at)
		if err != nil {
			t.Fatal(err)
		}
		out := []Subject{g}
		for _, cold := range []bool{true, false} {
			s, err := newAttestdTDX(quote, coll, at, cold)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	for _, s := range subjects(at) {
		o, err := s.Outcome(ctx)
		if err != nil || o.String() != want.String() {
			t.Fatalf("%s: %v, %v; want %v", s.Name(), o, err, want)
		}
		if d, err := s.Batch(ctx, 2); err != nil || d < 0 {
			t.Fatalf("%s batch: %v %v", s.Name(), d, err)
		}
	}
	for _, s := range subjects(at.AddDate(1, 0, 0)) {
		if o, err := s.Outcome(ctx); err == nil {
			t.Errorf("%s verified T1 a year after its collateral expired: %v", s.Name(), o)
		}
	}

	// A tampered quote body fails on both sides.
	bad := bytes.Clone(quote)
	bad[48+136] ^= 1 // MRTD
	g, err := newGoTDXGuest(bad, coll, at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Outcome(ctx); err == nil {
		t.Error("go-tdx-guest verified a tampered quote")
	}
	a, err := newAttestdTDX(bad, coll, at, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Outcome(ctx); err == nil {
		t.Error("attestd verified a tampered quote")
	}

	p, err := newPCSMemory(coll)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Get("https://example.com/tcb?fmspc=b0c06f000000"); err == nil || !strings.Contains(err.Error(), "no network") {
		t.Errorf("unknown URL: %v", err)
	}
	if _, err := newPCSMemory(&collateral.Collateral{TCBInfo: coll.TCBInfo}); err == nil {
		t.Error("incomplete collateral accepted")
	}
}

func TestCombineTDX(t *testing.T) {
	up := tdxpcs.TcbComponentStatusUpToDate
	cases := []struct {
		tdx, qe tdxpcs.TcbLevel
		want    string
	}{
		{tdxpcs.TcbLevel{TcbStatus: up}, tdxpcs.TcbLevel{TcbStatus: up}, "UpToDate []"},
		{tdxpcs.TcbLevel{TcbStatus: "OutOfDate", AdvisoryIDs: []string{"INTEL-SA-2", "INTEL-SA-1"}}, tdxpcs.TcbLevel{TcbStatus: up, AdvisoryIDs: []string{"INTEL-SA-1"}}, "OutOfDate [INTEL-SA-1 INTEL-SA-2]"},
		{tdxpcs.TcbLevel{TcbStatus: up}, tdxpcs.TcbLevel{TcbStatus: "OutOfDate"}, "UpToDate (TD_QE OutOfDate) []"},
	}
	for _, c := range cases {
		if got := combineTDX(c.tdx, c.qe).String(); got != c.want {
			t.Errorf("combineTDX(%v, %v) = %q, want %q", c.tdx, c.qe, got, c.want)
		}
	}
}
