package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/evidence/snp"
	snpabi "github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/pemfile"
)

// Exit codes of "attestd verify".
const (
	verifyExitOK       = 0
	verifyExitRejected = 1 // the evidence did not verify; stderr names the check
	verifyExitUsage    = 2 // bad flags or unreadable files
)

// offlineFlags are the flags of the commands that verify evidence offline
// ("attestd verify", "attestd policy explain --evidence"), registered once
// here so both read them alike.
type offlineFlags struct {
	collateral, roots, at, runtime string
	grace                          time.Duration
	diagnostic                     bool
}

func (o *offlineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.collateral, "collateral", "", "collateral. SGX/OE: dcap-qvl JSON, sgx_ql_qve_collateral_t dump or a directory of PCS responses. SevSnpVm: the VCEK/VLEK (PEM, DER, THIM JSON) or a directory of KDS documents. TdxVm: as SGX, with TDX TCB info and TD_QE identity")
	fs.StringVar(&o.at, "at", "", "verify as of this RFC 3339 instant (default: now)")
	fs.DurationVar(&o.grace, "grace", 0, "accept collateral expired at most this long ago (the output says so)")
	fs.StringVar(&o.roots, "roots", "", "PEM file of trusted roots replacing the vendor's (SGX: Intel's SGX Root CA; SevSnpVm: an ARK with its ASK/ASVK)")
	fs.StringVar(&o.runtime, "runtime-data", "", "runtime data file (binary, bound as is) whose SHA-256 must equal report_data[0:32]")
	fs.BoolVar(&o.diagnostic, "diagnostic-skip-collateral", false, "DIAGNOSTIC ONLY: check quote signatures and PCK chain signatures, skip clock, CRLs, TCB info and QE identity")
}

// set reports whether any verifier flag was given (they make no sense with
// a remote server).
func (o *offlineFlags) set() bool {
	return o.collateral != "" || o.at != "" || o.grace != 0 || o.roots != "" || o.diagnostic
}

// verifier builds the SGX verifier the flags describe and the instant to
// verify at. Errors name the flag that failed.
func (o *offlineFlags) verifier() (*sgx.Verifier, time.Time, error) {
	opts := sgx.Options{Grace: o.grace, DiagnosticSkipCollateral: o.diagnostic}
	if o.collateral == "" && !o.diagnostic {
		return nil, time.Time{}, errors.New("--collateral is required (or --diagnostic-skip-collateral)")
	}
	if o.collateral != "" {
		b, err := bundle.Load(o.collateral)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("load collateral: %w", err)
		}
		opts.Collateral = b
	}
	now := time.Now()
	if o.at != "" {
		ts, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("--at: %w", err)
		}
		now = ts
		opts.Now = func() time.Time { return ts }
	}
	if o.roots != "" {
		var err error
		if opts.Roots, err = pemfile.Certificates(o.roots); err != nil {
			return nil, time.Time{}, fmt.Errorf("--roots: %w", err)
		}
	}
	v, err := sgx.NewVerifier(opts)
	return v, now, err
}

// at is the instant of --at, or now.
func (o *offlineFlags) instant() (time.Time, error) {
	if o.at == "" {
		return time.Now(), nil
	}
	ts, err := time.Parse(time.RFC3339, o.at)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at: %w", err)
	}
	return ts, nil
}

// snpVerifier builds the SEV-SNP verifier the flags describe: --roots
// (PEM: an ARK with its ASK/ASVK) replaces AMD's roots; --collateral is a
// certificate file (PEM, DER, THIM JSON or a certificate table, whatever
// its name) whose VCEK/VLEK is used when the evidence carries none, or a
// directory of KDS documents (VCEKs, chains, CRLs). Nothing is fetched.
func (o *offlineFlags) snpVerifier() (evidence.Verifier, time.Time, error) {
	if o.grace != 0 || o.diagnostic {
		return nil, time.Time{}, errors.New("--grace and --diagnostic-skip-collateral apply to SGX only")
	}
	now, err := o.instant()
	if err != nil {
		return nil, time.Time{}, err
	}
	var opts snp.Options
	if o.roots != "" {
		cfg := snp.Config{Roots: []string{o.roots}}
		if opts, err = snp.OptionsFromConfig(cfg, func(p string) string { return p }); err != nil {
			return nil, time.Time{}, fmt.Errorf("--roots: %w", err)
		}
	}
	if o.collateral != "" {
		st, err := os.Stat(o.collateral)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("--collateral: %w", err)
		}
		if st.IsDir() {
			b, err := kds.LoadBundle(o.collateral)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("--collateral: %w", err)
			}
			opts.Verify.Endorsements = snp.KDS{Source: b}
		} else {
			raw, err := os.ReadFile(o.collateral)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("--collateral: %w", err)
			}
			if opts.Verify.Given, err = snpabi.Certificates(raw); err != nil {
				return nil, time.Time{}, fmt.Errorf("--collateral: %w", err)
			}
		}
	}
	v, err := snp.New(opts)
	return v, now, err
}

// tdxVerifier builds the TDX verifier the flags describe: --collateral as
// for SGX (dcap-qvl JSON, sgx_ql_qve_collateral_t dump or a directory of
// PCS responses) holding TDX TCB info and the TD_QE identity, --roots
// replacing Intel's SGX Root CA, --grace, --at. Nothing is fetched.
func (o *offlineFlags) tdxVerifier() (evidence.Verifier, time.Time, error) {
	if o.diagnostic {
		return nil, time.Time{}, errors.New("--diagnostic-skip-collateral applies to SGX only")
	}
	if o.collateral == "" {
		return nil, time.Time{}, errors.New("--collateral is required for TdxVm")
	}
	now, err := o.instant()
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := bundle.Load(o.collateral)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("load collateral: %w", err)
	}
	opts := tdx.Options{Collateral: b, Grace: o.grace}
	if o.roots != "" {
		if opts.Roots, err = pemfile.Certificates(o.roots); err != nil {
			return nil, time.Time{}, fmt.Errorf("--roots: %w", err)
		}
	}
	v, err := tdx.New(opts)
	return v, now, err
}

// offlineVerifier is the verifier of type t the flags describe.
func (o *offlineFlags) offlineVerifier(t evidence.Type) (evidence.Verifier, time.Time, error) {
	switch t {
	case evidence.SevSnpVm:
		return o.snpVerifier()
	case evidence.TdxVm:
		return o.tdxVerifier()
	}
	return o.verifier()
}

// verifyCmd is "attestd verify": offline verification of an SGX quote or
// OpenEnclave report against a collateral file or directory, bound to its
// runtime and init-time data exactly as the server binds them
// (instance.Bind), printing the claims it contributes to a token
// (instance.ServiceClaims) as JSON. Exit codes:
// 0 verified, 1 rejected ("verification failed: <check>: <reason>" on
// stderr), 2 usage or I/O error.
//
//	attestd verify --type SgxEnclave|OpenEnclave --evidence quote.bin --collateral coll.json|dir
//	               [--at 2025-07-01T00:00:00Z] [--grace 24h] [--roots root.pem]
//	               [--runtime-data file] [--init-time-data file] [--diagnostic-skip-collateral]
//	attestd verify --type SevSnpVm --evidence report(.bin|.hex|.json) [--collateral certs|dir]
//	               [--at T] [--roots amd-roots.pem] [--runtime-data file] [--init-time-data file]
//	attestd verify --type TdxVm --evidence quote(.bin|.hex|.b64) --collateral coll.json|dir
//	               [--at T] [--grace 24h] [--roots root.pem] [--runtime-data file] [--init-time-data file] [--event-log CCEL]
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", stderr, "attestd verify --type SgxEnclave|OpenEnclave|SevSnpVm|TdxVm --evidence FILE [--collateral FILE|DIR] [--at TIME] [flags]",
		"Verifies evidence offline, as POST /attest would (vendor roots unless --roots), and prints its claims.\n"+
			"Exit codes: 0 verified, 1 refused (the failed check on stderr), 2 usage or I/O error.",
		"attestd verify --type SgxEnclave --evidence quote.bin --collateral pcs-dir/ --at 2025-07-01T00:00:00Z",
		"attestd verify --type SevSnpVm --evidence report.bin --collateral vcek-chain.pem",
		"attestd verify --type TdxVm --evidence quote.bin --collateral tdx-collateral.json --at 2025-07-01T00:00:00Z")
	typ := fs.String("type", "SgxEnclave", "attestation type: SgxEnclave (raw quote), OpenEnclave (OE report or OE evidence) SevSnpVm (raw or hex report, MAA report JSON, configfs-tsm JSON) or TdxVm (raw, hex or base64 TD quote v4/v5)")
	evPath := fs.String("evidence", "", "evidence file: raw bytes, base64(url) or hex text")
	itPath := fs.String("init-time-data", "", "init-time data file (binary) whose SHA-256 must equal CONFIGID[0:32] (KSS enclaves), HOST_DATA (SevSnpVm) or MRCONFIGID[0:32] (TdxVm)")
	logPath := fs.String("event-log", "", "TdxVm: the TD's CCEL event log, replayed against RTMR0..3")
	var of offlineFlags
	of.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return verifyExitOK
		}
		return verifyExitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "attestd verify: "+format+"\n", a...)
		return verifyExitUsage
	}
	if fs.NArg() != 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	t, ok := evidence.ParseType(*typ)
	if !ok || t == evidence.Tpm {
		return usage("--type must be SgxEnclave, OpenEnclave, SevSnpVm or TdxVm, not %q", *typ)
	}
	if *evPath == "" {
		return usage("--evidence is required")
	}
	ev, err := os.ReadFile(*evPath)
	if err != nil {
		return usage("%v", err)
	}
	var v evidence.Verifier
	var now time.Time
	v, now, err = of.offlineVerifier(t)
	if t != evidence.SevSnpVm {
		ev = sgx.DecodeEvidence(ev)
	}
	if err != nil {
		return usage("%v", err)
	}
	req := &evidence.Request{Type: t, Evidence: ev, Now: now}
	if *logPath != "" {
		if t != evidence.TdxVm {
			return usage("--event-log applies to TdxVm only")
		}
		if req.EventLog, err = os.ReadFile(*logPath); err != nil {
			return usage("%v", err)
		}
	}
	for _, d := range []struct {
		path string
		dst  **evidence.Data
	}{{of.runtime, &req.Runtime}, {*itPath, &req.InitTime}} {
		if d.path == "" {
			continue
		}
		b, err := os.ReadFile(d.path)
		if err != nil {
			return usage("%v", err)
		}
		*d.dst = &evidence.Data{Bytes: b}
	}
	res, err := evidence.Verify(ctx, v, req)
	if err == nil {
		err = instance.Bind(req.Runtime, req.InitTime, res)
	}
	if err != nil {
		var ee *evidence.Error
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "verification failed: %s: %v\n", ee.Check, ee.Err)
			return verifyExitRejected
		}
		return usage("%v", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(instance.ServiceClaims(res)); err != nil {
		return usage("%v", err)
	}
	return verifyExitOK
}
