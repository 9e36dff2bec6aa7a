package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

type options struct {
	shared, nodeModules, node string
	rounds                    int
	batchCPU                  time.Duration
	verbose                   bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defShared := os.Getenv("ATTESTD_SHARED")
	if defShared == "" {
		defShared = "../shared"
	}
	fs.StringVar(&o.shared, "shared", defShared, "the shared test material (env ATTESTD_SHARED)")
	fs.StringVar(&o.nodeModules, "node-modules", "", "node_modules directory holding @phala/dcap-qvl (scripts/peers.sh installs it)")
	fs.StringVar(&o.node, "node", "node", "Node.js executable")
	fs.IntVar(&o.rounds, "rounds", 9, "interleaved rounds")
	fs.DurationVar(&o.batchCPU, "batch-cpu", 500*time.Millisecond, "CPU time of one batch")
	fs.BoolVar(&o.verbose, "v", false, "print every batch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.nodeModules == "" {
		return errors.New("-node-modules is required (run scripts/peers.sh, which installs @phala/dcap-qvl)")
	}
	if o.rounds < 1 || o.batchCPU <= 0 {
		return errors.New("-rounds and -batch-cpu must be positive")
	}
	tmp, err := os.MkdirTemp("", "attestd-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	cs, err := comparisons(ctx, &o, tmp)
	for _, c := range cs {
		defer c.Close()
	}
	if err != nil {
		return err
	}
	nodeVersion, _ := execOutput(ctx, o.node, "--version")
	fmt.Fprintf(stdout, "peers: %s %s/%s, GOMAXPROCS %d, node %s; CPU time of batches (~%s each), %d interleaved rounds\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), nodeVersion, o.batchCPU, o.rounds)
	cfg := Config{Rounds: o.rounds, BatchCPU: o.batchCPU}
	if o.verbose {
		cfg.Log = stderr
	}
	for _, c := range cs {
		rep, err := Run(ctx, c, cfg)
		if err != nil {
			return err
		}
		rep.Print(stdout)
		fmt.Fprintln(stdout)
	}
	return nil
}

// comparisons is the table of peers. Each entry names the evidence (a
// shared vector), the instant inside its collateral's window, the peer as
// baseline and attestd's verifiers: SGX against dcap-qvl (Node), SEV-SNP
// against go-sev-guest and TDX against go-tdx-guest (both in-process).
func comparisons(ctx context.Context, o *options, tmp string) ([]*Comparison, error) {
	var out []*Comparison
	// D1: dcap-qvl's own sample (vectors/dcap-qvl/SOURCE.md): a real SGX v3
	// quote, FMSPC 00A067110000, collateral valid 2025-06-19T10:56:11Z ..
	// 2025-07-19T10:01:18Z; both verifiers must say
	// ConfigurationAndSWHardeningNeeded with INTEL-SA-00289, INTEL-SA-00615
	// (evidence/sgx/verify/real_test.go checks attestd's).
	d1 := &Comparison{TEE: "SGX", Vector: "vectors/dcap-qvl/sample/sgx_quote", At: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)}
	out = append(out, d1)
	quoteFile := filepath.Join(o.shared, d1.Vector)
	collFile := filepath.Join(o.shared, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	quote, err := os.ReadFile(quoteFile)
	if err != nil {
		return out, err
	}
	collJSON, err := os.ReadFile(collFile)
	if err != nil {
		return out, err
	}
	coll, err := bundle.ParseQVLJSON(collJSON)
	if err != nil {
		return out, fmt.Errorf("%s: %w", collFile, err)
	}
	peer, err := startDCAPQVL(ctx, o.node, o.nodeModules, tmp, quoteFile, collFile, d1.At)
	if err != nil {
		return out, err
	}
	d1.Baseline = peer
	for _, cold := range []bool{true, false} {
		s, err := newAttestdSGX(quote, coll, d1.At, cold)
		if err != nil {
			return out, err
		}
		d1.Subjects = append(d1.Subjects, s)
	}

	// S1: go-sev-guest's own Milan sample (vectors/go-sev-guest/SOURCE.md):
	// a real v2 report with its VCEK; evidence/snp/verify/real_test.go
	// verifies it at the same instant.
	s1 := &Comparison{TEE: "SEV-SNP", Vector: "vectors/go-sev-guest/verify/testdata/attestation.bin", At: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)}
	out = append(out, s1)
	report, err := os.ReadFile(filepath.Join(o.shared, s1.Vector))
	if err != nil {
		return out, err
	}
	vcek, err := os.ReadFile(filepath.Join(o.shared, "vectors/go-sev-guest/verify/testdata/vcek.testcer"))
	if err != nil {
		return out, err
	}
	// A v2 report does not name its product; go-sev-guest is told the
	// product line (not a stepping), as attestd learns it from the VCEK's
	// issuer.
	gs, err := newGoSevGuest(report, vcek, s1.At, &spb.SevProduct{Name: spb.SevProduct_SEV_PRODUCT_MILAN})
	if err != nil {
		return out, err
	}
	s1.Baseline = gs
	for _, cold := range []bool{true, false} {
		s, err := newAttestdSNP(report, vcek, s1.At, cold)
		if err != nil {
			return out, err
		}
		s1.Subjects = append(s1.Subjects, s)
	}

	// T1: dcap-qvl's own TDX sample (vectors/dcap-qvl/SOURCE.md): a real
	// v4 TD quote, FMSPC b0c06f000000, with its collateral; at this
	// instant Intel's rules give UpToDate without advisories
	// (evidence/tdx/real_test.go checks attestd's). go-tdx-guest is given
	// the same collateral from memory through its PCS getter.
	t1 := &Comparison{TEE: "TDX", Vector: "vectors/dcap-qvl/sample/tdx_quote", At: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)}
	out = append(out, t1)
	tdQuote, tdColl, err := readQVLVector(o.shared, t1.Vector, "vectors/dcap-qvl/sample/tdx_quote_collateral.json")
	if err != nil {
		return out, err
	}
	gt, err := newGoTDXGuest(tdQuote, tdColl, t1.At)
	if err != nil {
		return out, err
	}
	t1.Baseline = gt
	for _, cold := range []bool{true, false} {
		s, err := newAttestdTDX(tdQuote, tdColl, t1.At, cold)
		if err != nil {
			return out, err
		}
		t1.Subjects = append(t1.Subjects, s)
	}
	return out, nil
}

// readQVLVector reads a quote and its collateral in dcap-qvl's JSON form.
func readQVLVector(shared, quoteRel, collRel string) ([]byte, *collateral.Collateral, error) {
	quote, err := os.ReadFile(filepath.Join(shared, quoteRel))
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(shared, collRel))
	if err != nil {
		return nil, nil, err
	}
	coll, err := bundle.ParseQVLJSON(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", collRel, err)
	}
	return quote, coll, nil
}

func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	b, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "?", err
	}
	return string(trimNL(b)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
