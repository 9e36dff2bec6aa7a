// Package snp verifies MAA's SevSnpVm evidence (AMD SEV-SNP confidential VMs
// and Azure Container Instances' confidential containers) and turns it into
// the claims MAA names (maa-api.md §1.2): it parses the evidence (package
// abi), verifies the report and its endorsement key (package verify), an
// ACI utility-VM endorsement when one is sent (package uvm), and derives
// x-ms-compliance-status from configured rules.
//
// Bindings: runtime data is bound to REPORT_DATA[0:32] and init-time data
// (ACI's security policy) to HOST_DATA, as MAA binds them.
package snp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"

	amdkds "github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/evidence/snp/uvm"
	"github.com/attestd/attestd/evidence/snp/verify"
)

// Checks named by this package (verify and uvm name theirs).
const (
	// CheckParse: the evidence is not SEV-SNP evidence in a known envelope.
	CheckParse evidence.Check = "snp.parse"
	// CheckUVMRequired: a compliance rule or the configuration requires a
	// UVM endorsement and none verified.
	CheckUVMRequired evidence.Check = "snp.uvm.required"
)

// ComplianceRule assigns x-ms-compliance-status to reports that meet it.
// MAA's rules for "azure-compliant-cvm" / "azure-compliant-uvm" are not
// published, so attestd takes them as configuration; the first rule a
// report meets sets the status, none leaves the claim out.
type ComplianceRule struct {
	Status string // e.g. "azure-compliant-cvm"
	// IDKeyDigests / AuthorKeyDigests: the report's ID_KEY_DIGEST /
	// AUTHOR_KEY_DIGEST must be one of these (lowercase hex); empty: any.
	IDKeyDigests     []string
	AuthorKeyDigests []string
	// Measurements: the report's MEASUREMENT must be one of these; empty: any.
	Measurements []string
	// UVMEndorsed: a verified UVM endorsement is required (ACI).
	UVMEndorsed bool
	// AllowDebug: debuggable guests may match (default: never).
	AllowDebug bool
	// MinTCB: each component of REPORTED_TCB at least this.
	MinTCB *kds.TCBParts
}

func (r *ComplianceRule) matches(rep *abi.Evidence, endorsed bool) bool {
	p := rep.Report
	pol, _ := sevabi.ParseSnpPolicy(p.GetPolicy())
	if pol.Debug && !r.AllowDebug {
		return false
	}
	if r.UVMEndorsed && !endorsed {
		return false
	}
	in := func(list []string, b []byte) bool {
		return len(list) == 0 || slices.Contains(list, hex.EncodeToString(b))
	}
	if !in(r.IDKeyDigests, p.GetIdKeyDigest()) || !in(r.AuthorKeyDigests, p.GetAuthorKeyDigest()) || !in(r.Measurements, p.GetMeasurement()) {
		return false
	}
	if r.MinTCB != nil && !kds.TCBPartsLE(*r.MinTCB, kds.DecomposeTCBVersion(kds.TCBVersion(p.GetReportedTcb()))) {
		return false
	}
	return true
}

// Options configure a Verifier.
type Options struct {
	Verify verify.Options
	// UVM verifies ACI utility-VM endorsements; with no roots, an
	// endorsement sent with a report fails verification (it is never
	// silently ignored).
	UVM uvm.Options
	// RequireUVM refuses reports that come without a verified UVM endorsement.
	RequireUVM bool
	// Compliance rules, in order.
	Compliance []ComplianceRule
}

// Verifier verifies SevSnpVm evidence. Safe for concurrent use.
type Verifier struct {
	v    *verify.Verifier
	opts Options
}

// New returns a Verifier.
func New(opts Options) (*Verifier, error) {
	v, err := verify.New(opts.Verify)
	if err != nil {
		return nil, err
	}
	for i, r := range opts.Compliance {
		if r.Status == "" {
			return nil, fmt.Errorf("snp: compliance rule %d has no status", i)
		}
		for _, l := range [][]string{r.IDKeyDigests, r.AuthorKeyDigests, r.Measurements} {
			for _, h := range l {
				if b, err := hex.DecodeString(h); err != nil || len(b) != 48 || h != strings.ToLower(h) {
					return nil, fmt.Errorf("snp: compliance rule %q: %q is not 48 bytes of lowercase hex", r.Status, h)
				}
			}
		}
	}
	return &Verifier{v: v, opts: opts}, nil
}

// Parse parses SevSnpVm evidence (no cryptography).
func Parse(b []byte) (*abi.Evidence, error) {
	ev, err := abi.Parse(b)
	if err != nil {
		return nil, &evidence.Error{Check: CheckParse, Err: err}
	}
	return ev, nil
}

// Verified is SEV-SNP evidence that verified, with what was established.
type Verified struct {
	Evidence *abi.Evidence
	Result   *verify.Result
	UVM      *uvm.Endorsement // nil: none sent
	// Compliance is the status of the first matching rule, "" for none.
	Compliance string
}

// Verify verifies parsed evidence at instant now.
func (v *Verifier) Verify(ctx context.Context, ev *abi.Evidence, now time.Time) (*Verified, error) {
	res, err := v.v.Verify(ctx, ev, now)
	if err != nil {
		return nil, err
	}
	out := &Verified{Evidence: ev, Result: res}
	if len(ev.UVMEndorsements) > 0 {
		// ACI sends one endorsement; all that are sent must verify, so a
		// bad one can never sit beside a good one unnoticed.
		for i, e := range ev.UVMEndorsements {
			en, err := uvm.Verify(e, ev.Report.GetMeasurement(), v.opts.UVM, now)
			if err != nil {
				var ue *uvm.Error
				if errors.As(err, &ue) {
					return nil, &evidence.Error{Check: evidence.Check(ue.Check), Err: fmt.Errorf("UVM endorsement %d: %w", i, ue.Err)}
				}
				return nil, err
			}
			if out.UVM == nil {
				out.UVM = en
			}
		}
	} else if v.opts.RequireUVM {
		return nil, evidence.Errorf(CheckUVMRequired, "the configuration requires a UVM endorsement (confidential containers) and the evidence carries none")
	}
	for _, r := range v.opts.Compliance {
		if r.matches(ev, out.UVM != nil) {
			out.Compliance = r.Status
			break
		}
	}
	return out, nil
}

// Claim names of attestd's beyond MAA's (documented in the README).
const (
	ClaimSigningKey     = "x-ms-sevsnpvm-signing-key"    // "VCEK" or "VLEK"
	ClaimProduct        = "x-ms-sevsnpvm-product"        // "Milan", "Genoa", "Turin"
	ClaimReportVersion  = "x-ms-sevsnpvm-report-version" // 2, 3, 5
	ClaimUVMEndorsement = "x-ms-sevsnpvm-uvm-endorsement"
	ClaimUVMIssuer      = "x-ms-sevsnpvm-uvm-issuer"
	ClaimUVMFeed        = "x-ms-sevsnpvm-uvm-feed"
	ClaimUVMSVN         = "x-ms-sevsnpvm-uvm-svn"
)

// Claims returns the token and policy claims of verified evidence, named
// and encoded as MAA's SevSnpVm tokens (hex lowercase, SVNs as integers,
// policy bits as booleans; the TCB SVNs are REPORTED_TCB's, the TCB the
// VCEK certifies).
func Claims(vd *Verified) []evidence.Claim {
	p := vd.Evidence.Report
	pol, _ := sevabi.ParseSnpPolicy(p.GetPolicy())
	// The SPLs sit at other bytes on Turin than on Milan and Genoa.
	tcb := amdkds.DecomposeTCB(amdkds.Product(vd.Result.ProductLine), p.GetReportedTcb())
	h := hex.EncodeToString
	c := []evidence.Claim{
		{Type: "x-ms-attestation-type", Value: "sevsnpvm"},
		{Type: "x-ms-sevsnpvm-authorkeydigest", Value: h(p.GetAuthorKeyDigest())},
		{Type: "x-ms-sevsnpvm-bootloader-svn", Value: int64(tcb.Bootloader)},
		{Type: "x-ms-sevsnpvm-familyId", Value: h(p.GetFamilyId())},
		{Type: "x-ms-sevsnpvm-guestsvn", Value: int64(p.GetGuestSvn())},
		{Type: "x-ms-sevsnpvm-hostdata", Value: h(p.GetHostData())},
		{Type: "x-ms-sevsnpvm-idkeydigest", Value: h(p.GetIdKeyDigest())},
		{Type: "x-ms-sevsnpvm-imageId", Value: h(p.GetImageId())},
		{Type: "x-ms-sevsnpvm-is-debuggable", Value: pol.Debug},
		{Type: "x-ms-sevsnpvm-launchmeasurement", Value: h(p.GetMeasurement())},
		{Type: "x-ms-sevsnpvm-microcode-svn", Value: int64(tcb.Microcode)},
		{Type: "x-ms-sevsnpvm-migration-allowed", Value: pol.MigrateMA},
		{Type: "x-ms-sevsnpvm-reportdata", Value: h(p.GetReportData())},
		{Type: "x-ms-sevsnpvm-reportid", Value: h(p.GetReportId())},
		{Type: "x-ms-sevsnpvm-smt-allowed", Value: pol.SMT},
		{Type: "x-ms-sevsnpvm-snpfw-svn", Value: int64(tcb.SNP)},
		{Type: "x-ms-sevsnpvm-tee-svn", Value: int64(tcb.TEE)},
		{Type: "x-ms-sevsnpvm-vmpl", Value: int64(p.GetVmpl())},
		{Type: ClaimSigningKey, Value: vd.Result.Signer},
		{Type: ClaimProduct, Value: vd.Result.ProductLine},
		{Type: ClaimReportVersion, Value: int64(p.GetVersion())},
	}
	if vd.Compliance != "" {
		c = append(c, evidence.Claim{Type: "x-ms-compliance-status", Value: vd.Compliance})
	}
	if u := vd.UVM; u != nil {
		c = append(c,
			evidence.Claim{Type: ClaimUVMIssuer, Value: u.Issuer},
			evidence.Claim{Type: ClaimUVMFeed, Value: u.Feed},
			evidence.Claim{Type: ClaimUVMSVN, Value: u.SVN},
			evidence.Claim{Type: ClaimUVMEndorsement, TokenOnly: true, Value: map[string]any{
				"issuer": u.Issuer, "feed": u.Feed, "svn": u.SVN, "launchmeasurement": u.LaunchMeasurement,
				"signingtime": u.SigningTime.Format(time.RFC3339), "signer": u.Signer.Subject.String(),
			}},
		)
	}
	return c
}

// ReportData is the report's REPORT_DATA (runtime data binds its first 32 bytes).
func ReportData(vd *Verified) []byte { return vd.Evidence.Report.GetReportData() }

// InitTimeBinding is HOST_DATA (ACI: SHA-256 of the security policy sent
// as initTimeData).
func InitTimeBinding(vd *Verified) []byte { return vd.Evidence.Report.GetHostData() }

// ClaimsSupported lists the claim names of SevSnpVm tokens for the OpenID
// metadata.
func ClaimsSupported() []string {
	return []string{"x-ms-sevsnpvm-authorkeydigest", "x-ms-sevsnpvm-bootloader-svn", "x-ms-sevsnpvm-familyId",
		"x-ms-sevsnpvm-guestsvn", "x-ms-sevsnpvm-hostdata", "x-ms-sevsnpvm-idkeydigest", "x-ms-sevsnpvm-imageId",
		"x-ms-sevsnpvm-is-debuggable", "x-ms-sevsnpvm-launchmeasurement", "x-ms-sevsnpvm-microcode-svn",
		"x-ms-sevsnpvm-migration-allowed", "x-ms-sevsnpvm-reportdata", "x-ms-sevsnpvm-reportid",
		"x-ms-sevsnpvm-smt-allowed", "x-ms-sevsnpvm-snpfw-svn", "x-ms-sevsnpvm-tee-svn", "x-ms-sevsnpvm-vmpl",
		"x-ms-compliance-status"}
}

// ParseRoots reads the trusted roots of a product line from PEM.
func ParseRoots(line string, pemBytes []byte) (verify.ProductRoots, error) {
	return verify.RootsFromPEM(line, pemBytes)
}
