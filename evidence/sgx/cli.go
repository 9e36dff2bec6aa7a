package sgx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx/verify"
)

// FileOptions describe one offline verification (attestd verify).
type FileOptions struct {
	Type evidence.Type // SgxEnclave or OpenEnclave
	// Evidence is the quote / OE report: raw bytes, or base64/base64url/hex text.
	Evidence []byte
	// Collateral serves the collateral (e.g. bundle.Load of a file or directory).
	Collateral collateral.Source
	// At is the verification instant; zero means now.
	At    time.Time
	Grace time.Duration
	// Roots replace Intel's root (e.g. a test root); nil means Intel.
	Roots []*x509.Certificate
	// Runtime, when set, must hash (SHA-256) to report_data[0:32]; it also
	// yields x-ms-sgx-ehd when Binary.
	Runtime *evidence.Data
	// InitTime, when set, must hash (SHA-256) to CONFIGID[0:32] (a KSS
	// enclave's init-time data, maa-api.md §1.1).
	InitTime *evidence.Data
	// DiagnosticSkipCollateral: see Options.DiagnosticSkipCollateral.
	DiagnosticSkipCollateral bool
}

// VerifyFile verifies evidence offline and returns the result. Failures are
// *evidence.Error values naming the failed check.
func VerifyFile(ctx context.Context, o FileOptions) (*evidence.Result, error) {
	now := time.Now
	if !o.At.IsZero() {
		at := o.At
		now = func() time.Time { return at }
	}
	v, err := NewVerifier(Options{Collateral: o.Collateral, Roots: o.Roots, Now: now, Grace: o.Grace, DiagnosticSkipCollateral: o.DiagnosticSkipCollateral})
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(ctx, &evidence.Request{Type: o.Type, Evidence: DecodeEvidence(o.Evidence), Runtime: o.Runtime, InitTime: o.InitTime})
	if err != nil {
		return nil, err
	}
	// The same checks, under the same names, as the server's pipeline
	// (instance.bind), so an offline rejection reads like an online one.
	if o.Runtime != nil {
		h := sha256.Sum256(o.Runtime.Bytes)
		if !bytes.Equal(h[:], res.ReportData[:32]) {
			return nil, evidence.Errorf("runtimedata.binding", "SHA-256 of the runtime data %x is not report_data[0:32] %x", h, res.ReportData[:32])
		}
	}
	if o.InitTime != nil {
		h := sha256.Sum256(o.InitTime.Bytes)
		if !bytes.Equal(h[:], res.InitTimeBinding[:32]) {
			return nil, evidence.Errorf("inittimedata.binding", "SHA-256 of the init-time data %x is not CONFIGID[0:32] %x (a non-KSS enclave's CONFIGID is zero)", h, res.InitTimeBinding[:32])
		}
	}
	return res, nil
}

// OptionsFromFlags builds verifier options from the flag values the offline
// commands share ("attestd verify", "attestd policy explain --evidence"):
// the collateral file or directory (bundle.Load), a PEM file of roots
// replacing Intel's, an RFC 3339 instant to verify at (empty: now), the
// grace period and the diagnostic mode. Errors name the flag that failed.
func OptionsFromFlags(collateralPath, rootsPath, at string, grace time.Duration, diagnostic bool) (Options, error) {
	o := Options{Grace: grace, DiagnosticSkipCollateral: diagnostic}
	if collateralPath != "" {
		b, err := bundle.Load(collateralPath)
		if err != nil {
			return o, fmt.Errorf("load collateral: %w", err)
		}
		o.Collateral = b
	}
	if at != "" {
		ts, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return o, fmt.Errorf("--at: %w", err)
		}
		o.Now = func() time.Time { return ts }
	}
	if rootsPath != "" {
		pem, err := os.ReadFile(rootsPath)
		if err != nil {
			return o, err
		}
		if o.Roots, err = verify.ParseCertificates(pem); err != nil {
			return o, fmt.Errorf("--roots: %w", err)
		}
	}
	return o, nil
}

// DecodeEvidence returns b decoded when it is base64 (std or URL, padded or
// not) or hex text, and b itself otherwise (raw binary evidence).
func DecodeEvidence(b []byte) []byte {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return b
	}
	for _, r := range s {
		if r > 0x7e || (r < 0x20 && r != '\n' && r != '\r') {
			return b // binary
		}
	}
	s = strings.Join(strings.Fields(s), "")
	if d, err := hex.DecodeString(strings.TrimPrefix(s, "0x")); err == nil {
		return d
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if d, err := enc.DecodeString(s); err == nil {
			return d
		}
	}
	return b
}

// TokenClaims renders the token-visible claims of res as a JSON-ready map:
// PolicyOnly claims are left out, repeated claim types become arrays.
func TokenClaims(res *evidence.Result) map[string]any {
	out := map[string]any{}
	for _, c := range res.Claims {
		if c.PolicyOnly {
			continue
		}
		if prev, ok := out[c.Type]; ok {
			if arr, ok := prev.([]any); ok {
				out[c.Type] = append(arr, c.Value)
			} else {
				out[c.Type] = []any{prev, c.Value}
			}
			continue
		}
		out[c.Type] = c.Value
	}
	return out
}

// Exit codes of RunVerify.
const (
	ExitOK       = 0
	ExitRejected = 1 // the evidence did not verify; stderr names the check
	ExitUsage    = 2 // bad flags or unreadable files
)

// RunVerify is the whole "attestd verify" command: it parses args, verifies
// and prints the token-visible claims as JSON on stdout. On rejection it
// prints "verification failed: <check>: <reason>" on stderr and returns
// ExitRejected.
//
//	attestd verify --type SgxEnclave|OpenEnclave --evidence quote.bin --collateral coll.json|dir
//	               [--at 2025-07-01T00:00:00Z] [--grace 24h] [--roots root.pem]
//	               [--runtime-data file] [--init-time-data file] [--diagnostic-skip-collateral]
func RunVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("attestd verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "SgxEnclave", "attestation type: SgxEnclave (raw quote) or OpenEnclave (OE report or OE evidence)")
	evPath := fs.String("evidence", "", "evidence file: raw bytes, base64(url) or hex text")
	collPath := fs.String("collateral", "", "collateral: dcap-qvl JSON, sgx_ql_qve_collateral_t dump or a directory of PCS responses")
	at := fs.String("at", "", "verify as of this RFC 3339 instant (default: now)")
	grace := fs.Duration("grace", 0, "accept collateral expired at most this long ago (the output says so)")
	rootsPath := fs.String("roots", "", "PEM file of trusted root certificates replacing Intel's SGX Root CA")
	rtPath := fs.String("runtime-data", "", "runtime data file (binary) whose SHA-256 must equal report_data[0:32]")
	itPath := fs.String("init-time-data", "", "init-time data file (binary) whose SHA-256 must equal CONFIGID[0:32] (KSS enclaves)")
	diag := fs.Bool("diagnostic-skip-collateral", false, "DIAGNOSTIC ONLY: check quote signatures and PCK chain signatures, skip clock, CRLs, TCB info and QE identity")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "attestd verify: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "attestd verify: "+format+"\n", a...)
		return ExitUsage
	}
	t, ok := evidence.ParseType(*typ)
	if !ok || (t != evidence.SgxEnclave && t != evidence.OpenEnclave) {
		return usage("--type must be SgxEnclave or OpenEnclave, not %q", *typ)
	}
	if *evPath == "" {
		return usage("--evidence is required")
	}
	if *collPath == "" && !*diag {
		return usage("--collateral is required")
	}
	vo, err := OptionsFromFlags(*collPath, *rootsPath, *at, *grace, *diag)
	if err != nil {
		return usage("%v", err)
	}
	o := FileOptions{Type: t, Collateral: vo.Collateral, Roots: vo.Roots, Grace: vo.Grace, DiagnosticSkipCollateral: vo.DiagnosticSkipCollateral}
	if vo.Now != nil {
		o.At = vo.Now()
	}
	if o.Evidence, err = os.ReadFile(*evPath); err != nil {
		return usage("%v", err)
	}
	if *rtPath != "" {
		b, err := os.ReadFile(*rtPath)
		if err != nil {
			return usage("%v", err)
		}
		o.Runtime = &evidence.Data{Bytes: b}
	}
	if *itPath != "" {
		b, err := os.ReadFile(*itPath)
		if err != nil {
			return usage("%v", err)
		}
		o.InitTime = &evidence.Data{Bytes: b}
	}
	res, err := VerifyFile(ctx, o)
	if err != nil {
		var ee *evidence.Error
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "verification failed: %s: %v\n", ee.Check, ee.Err)
			return ExitRejected
		}
		fmt.Fprintf(stderr, "attestd verify: %v\n", err)
		return ExitUsage
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(TokenClaims(res)); err != nil {
		fmt.Fprintf(stderr, "attestd verify: %v\n", err)
		return ExitUsage
	}
	return ExitOK
}
