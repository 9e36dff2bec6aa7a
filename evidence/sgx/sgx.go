// Package sgx implements evidence.Verifier for the MAA attestation types
// SgxEnclave (a raw SGX ECDSA quote v3/v4) and OpenEnclave (an OE remote
// report or OE SGX_ECDSA evidence with custom claims): it parses the evidence
// (package abi), fetches collateral for the quote's platform, verifies it the
// way Intel's QVL does (package verify) and turns the result into claims
// named and encoded exactly as MAA names them (maa-api.md §1.2,
// maa-policy.md §8.1), plus attestd's TCB status and advisory claims.
//
// # TCB baselines
//
// A policy selects the TCB baseline with the configuration property
// x-ms-sgx-tcbidentifier (maa-policy.md §7), which the pipeline passes in
// evidence.Request.Properties:
//
//   - absent or "azuredefault": the collateral source's standard TCB info
//     and QE identity (what Intel PCS serves without a
//     tcbEvaluationDataNumber, or the newest documents of a bundle);
//   - a decimal number N (an Intel TCB Evaluation Data Number, e.g. "11"):
//     the quote is judged against the TCB info AND the QE identity whose
//     tcbEvaluationDataNumber is N (collateral.Request.TCBEvaluationDataNumber).
//     The verifier checks that the signed documents it was served really
//     carry N; a source that cannot serve N, or serves another number,
//     fails verification at check collateral.tcb_baseline;
//   - anything else fails at check collateral.tcb_baseline.
//
// The result carries the baseline actually used as the token claim
// x-ms-sgx-tcbidentifier ("azuredefault" or the number).
package sgx

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/evidence/sgx/verify"
)

// Options configure a Verifier.
type Options struct {
	// Collateral supplies TCB info, QE identity and CRLs. Required unless
	// DiagnosticSkipCollateral is set.
	Collateral collateral.Source
	// Roots are the trusted SGX root certificates (pinned by public key);
	// nil means Intel's SGX Root CA.
	Roots []*x509.Certificate
	// Now returns the verification instant; nil means time.Now.
	Now func() time.Time
	// VerifyAt, when non-zero, verifies every quote as of this instant
	// instead of now (replaying recorded evidence whose collateral has
	// expired). Results carry the claim x-ms-sgx-verified-at and every such
	// verification is logged at WARN. It overrides Now.
	VerifyAt time.Time
	// Grace accepts collateral whose nextUpdate passed at most Grace ago;
	// results verified that way carry the claim x-ms-sgx-collateral-grace-used.
	Grace time.Duration
	// DiagnosticSkipCollateral is a DIAGNOSTIC mode, never for production:
	// it verifies the quote signature, the QE report signature and binding
	// and the PCK chain's signatures up to a trusted root key, but checks no
	// clock, no CRL, no TCB info and no QE identity. Results carry
	// x-ms-sgx-tcb-status "CollateralNotVerified" and the claim
	// x-ms-sgx-diagnostic-mode "collateral-skipped". It exists to inspect old
	// evidence whose collateral is no longer published (e.g. the 2021 Azure
	// SDK sample reports).
	DiagnosticSkipCollateral bool
	// Logger receives debug logs of verification outcomes; nil means slog.Default().
	Logger *slog.Logger
}

// Verifier verifies SgxEnclave and OpenEnclave evidence. Safe for concurrent use.
type Verifier struct {
	src      collateral.Source
	core     *verify.Verifier
	diag     bool
	verifyAt string // RFC 3339; "" when verifying at now
	log      *slog.Logger
}

var (
	_ evidence.Verifier               = (*Verifier)(nil)
	_ evidence.ConfigurationDefaulter = (*Verifier)(nil)
	_ evidence.ClaimsAdvertiser       = (*Verifier)(nil)
	_ evidence.BaselineLister         = (*Verifier)(nil)
)

// NewVerifier returns a Verifier for opts.
func NewVerifier(opts Options) (*Verifier, error) {
	if opts.Collateral == nil && !opts.DiagnosticSkipCollateral {
		return nil, errors.New("sgx: Options.Collateral is required")
	}
	now, at := opts.Now, ""
	if !opts.VerifyAt.IsZero() {
		fixed := opts.VerifyAt.UTC()
		now, at = func() time.Time { return fixed }, fixed.Format(time.RFC3339)
	}
	core, err := verify.New(verify.Options{Roots: opts.Roots, Now: now, Grace: opts.Grace})
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Verifier{src: opts.Collateral, core: core, diag: opts.DiagnosticSkipCollateral, verifyAt: at, log: log}, nil
}

// ClaimVerifiedAt is the token claim (RFC 3339) that says SGX evidence was
// verified as of a configured instant (Options.VerifyAt) instead of now.
const ClaimVerifiedAt = "x-ms-sgx-verified-at"

// Evidence is parsed SgxEnclave/OpenEnclave evidence.
type Evidence struct {
	Quote      *abi.Quote
	QuoteBytes []byte          // the SGX quote without any OE wrapper (read-only: Quote's slices share it)
	OE         *abi.OEEvidence // non-nil for OE SGX_ECDSA evidence (custom claims)
}

// Parse parses evidence of type t: a raw quote for SgxEnclave, an OE remote
// report or OE SGX_ECDSA evidence for OpenEnclave.
func Parse(t evidence.Type, b []byte) (*Evidence, error) {
	switch t {
	case evidence.SgxEnclave:
		// One copy of b, shared by the quote's slices and QuoteBytes.
		q, raw, err := abi.ParseQuoteCopy(b)
		if err != nil {
			return nil, parseError("quote", err)
		}
		return &Evidence{Quote: q, QuoteBytes: raw}, nil
	case evidence.OpenEnclave:
		switch {
		case abi.IsOEReport(b):
			r, err := abi.ParseOEReport(b)
			if err != nil {
				return nil, parseError("oe_report", err)
			}
			return &Evidence{Quote: r.Quote, QuoteBytes: r.QuoteBytes}, nil
		case abi.IsOEEvidence(b):
			e, err := abi.ParseOEEvidence(b)
			if err != nil {
				return nil, parseError("oe_evidence", err)
			}
			h := sha256.Sum256(e.CustomClaimsBuffer)
			if [32]byte(e.Quote.Body.ReportData[:32]) != h {
				return nil, evidence.Errorf(CheckOECustomClaimsBinding, "report_data[0:32] %x is not SHA-256 of the %d-byte custom claims buffer (%x)", e.Quote.Body.ReportData[:32], len(e.CustomClaimsBuffer), h)
			}
			return &Evidence{Quote: e.Quote, QuoteBytes: e.QuoteBytes, OE: e}, nil
		default:
			return nil, evidence.Errorf(CheckOEReportParse, "not an OpenEnclave report (header version 1) or OE evidence (attestation header version 2/3); a raw SGX quote goes to SgxEnclave")
		}
	default:
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "the SGX verifier does not handle attestation type %q", t)
	}
}

func parseError(prefix string, err error) error {
	if errors.Is(err, abi.ErrTDX) {
		return evidence.Errorf(evidence.Check(prefix+".unsupported_tee"), "%v", err)
	}
	return evidence.Errorf(evidence.Check(prefix+".parse"), "%v", err)
}

// Checks of the SGX verifier's own parsing and baseline selection (the
// DCAP checks are declared by the verification core).
const (
	CheckQuoteParse            evidence.Check = "quote.parse"
	CheckQuoteUnsupportedTEE   evidence.Check = "quote.unsupported_tee"
	CheckOEReportParse         evidence.Check = "oe_report.parse"
	CheckOEEvidenceParse       evidence.Check = "oe_evidence.parse"
	CheckOECustomClaimsBinding evidence.Check = "oe_evidence.custom_claims_binding"
	CheckTCBInfoParse          evidence.Check = "tcb_info.parse"
	CheckQEIdentityParse       evidence.Check = "qe_identity.parse"
)

// parsed is SGX evidence that passed Parse, bound to its request.
type parsed struct {
	v   *Verifier
	req *evidence.Request
	ev  *Evidence
}

// Parse implements evidence.Verifier: it parses the quote or OE report
// (structure and the OE custom-claims binding, no signature) of req.
func (v *Verifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	ev, err := Parse(req.Type, req.Evidence)
	if err != nil {
		return nil, err
	}
	return &parsed{v: v, req: req, ev: ev}, nil
}

// Verify implements evidence.Parsed. Result.ReportData is the ISV
// enclave's 64-byte REPORTDATA; Result.InitTimeBinding is its 64-byte
// CONFIGID, always set: an enclave without KSS has an all-zero CONFIGID, so
// init-time data sent for it fails the pipeline's binding check instead of
// being silently ignored.
//
// The verification instant is Request.Now (the pipeline's one reading of
// its clock, also used for the token), unless the verifier is configured to
// verify as of a fixed instant (Options.VerifyAt, which the token then
// states). A request without Now (a caller without a pipeline) is verified
// at the verifier's own clock (Options.Now, else time.Now).
func (p *parsed) Verify(ctx context.Context, properties map[string]any) (*evidence.Result, error) {
	v, req, ev := p.v, p.req, p.ev
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sgx: verification abandoned: %w", err)
	}
	baseline, err := ParseTCBIdentifier(properties[PropertyTCBIdentifier])
	if err != nil {
		return nil, err
	}
	at := req.Now
	if v.verifyAt != "" || at.IsZero() {
		at = v.core.Now()
	}
	res, err := v.VerifyBaselineAt(ctx, ev, baseline, at)
	if err != nil {
		v.log.DebugContext(ctx, "sgx evidence rejected", "type", req.Type, "check", evidence.CheckOf(err), "err", err)
		return nil, err
	}
	claims := Claims(ev, res, req.Runtime)
	if v.verifyAt != "" {
		claims = append(claims, evidence.Claim{Type: ClaimVerifiedAt, Value: v.verifyAt})
		v.log.WarnContext(ctx, "SGX evidence verified as of the configured sgx.verify_at, not now", "type", req.Type, "verify_at", v.verifyAt)
	}
	if res.Result != nil && len(res.GraceUsed) > 0 {
		v.log.WarnContext(ctx, "SGX collateral accepted after its nextUpdate (sgx.grace)", "type", req.Type, "documents", strings.Join(res.GraceUsed, ","))
	}
	return &evidence.Result{
		ReportData:      append([]byte(nil), ev.Quote.Body.ReportData[:]...),
		InitTimeBinding: append([]byte(nil), ev.Quote.Body.ConfigID[:]...),
		Claims:          claims,
	}, nil
}

// Verify parses and verifies req in one step (evidence.Verify): for callers
// without a pipeline.
func (v *Verifier) Verify(ctx context.Context, req *evidence.Request) (*evidence.Result, error) {
	return evidence.Verify(ctx, v, req)
}

// ConfigurationDefaults implements evidence.ConfigurationDefaulter: the
// default TCB baseline of maa-policy.md §7.
func (v *Verifier) ConfigurationDefaults(t evidence.Type) map[string]any {
	if t != evidence.SgxEnclave && t != evidence.OpenEnclave {
		return nil
	}
	return map[string]any{PropertyTCBIdentifier: TCBIdentifierDefault}
}

// ClaimsSupported implements evidence.ClaimsAdvertiser with the SGX claims
// real MAA lists in its OpenID metadata (and those its default policy issues).
func (v *Verifier) ClaimsSupported() []string {
	return []string{
		ClaimIsDebuggable, ClaimMREnclave, ClaimMRSigner, ClaimSVN, ClaimEHD,
		ClaimCollateral, "is-debuggable", "sgx-mrsigner", "sgx-mrenclave", "product-id", "svn", "tee",
	}
}

// PropertyTCBIdentifier is the configuration property that selects the TCB
// baseline, and ClaimTCBIdentifier the token claim stating the one used.
const (
	PropertyTCBIdentifier = "x-ms-sgx-tcbidentifier"
	ClaimTCBIdentifier    = "x-ms-sgx-tcbidentifier"
	// TCBIdentifierDefault selects the collateral source's standard baseline.
	TCBIdentifierDefault = "azuredefault"
	// CheckTCBBaseline names failures to select or serve a TCB baseline.
	CheckTCBBaseline = string(evidence.CheckTCBBaseline)
	// maxTCBEvaluationDataNumber bounds numeric identifiers (Intel's numbers
	// are two digits today); it keeps absurd values out of URLs and logs.
	maxTCBEvaluationDataNumber = 1 << 20
)

// Baseline is a TCB baseline selection: the TCB evaluation data number, 0
// for the collateral source's standard TCB info and QE identity.
type Baseline int

// String is the x-ms-sgx-tcbidentifier value for b.
func (b Baseline) String() string {
	if b == 0 {
		return TCBIdentifierDefault
	}
	return strconv.Itoa(int(b))
}

// ParseTCBIdentifier parses the x-ms-sgx-tcbidentifier property: nil,
// "azuredefault" (any case) or "" mean the default baseline; a decimal
// number N > 0 (string, or an integer from a policy) selects the TCB
// evaluation data number N. Anything else is an *evidence.Error at check
// collateral.tcb_baseline.
func ParseTCBIdentifier(v any) (Baseline, error) {
	var n int64
	switch x := v.(type) {
	case nil:
		return 0, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" || strings.EqualFold(s, TCBIdentifierDefault) {
			return 0, nil
		}
		for _, r := range s {
			if r < '0' || r > '9' {
				return 0, evidence.Errorf(CheckTCBBaseline, "TCB identifier %q is neither %q nor an Intel TCB evaluation data number", x, TCBIdentifierDefault)
			}
		}
		var err error
		if n, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, evidence.Errorf(CheckTCBBaseline, "TCB identifier %q is not a usable TCB evaluation data number", x)
		}
	case int64:
		n = x
	case int:
		n = int64(x)
	default:
		return 0, evidence.Errorf(CheckTCBBaseline, "TCB identifier %v (%T) is neither %q nor an Intel TCB evaluation data number", v, v, TCBIdentifierDefault)
	}
	if n <= 0 || n > maxTCBEvaluationDataNumber {
		return 0, evidence.Errorf(CheckTCBBaseline, "TCB identifier %v is not a valid TCB evaluation data number (1..%d)", v, maxTCBEvaluationDataNumber)
	}
	return Baseline(n), nil
}

// VerifyParsed verifies parsed evidence against the default TCB baseline;
// see VerifyBaseline.
func (v *Verifier) VerifyParsed(ctx context.Context, ev *Evidence) (*Verified, error) {
	return v.VerifyBaseline(ctx, ev, 0)
}

// VerifyBaseline verifies parsed evidence at the verifier's clock
// (Options.Now or VerifyAt); see VerifyBaselineAt.
func (v *Verifier) VerifyBaseline(ctx context.Context, ev *Evidence, baseline Baseline) (*Verified, error) {
	return v.VerifyBaselineAt(ctx, ev, baseline, v.core.Now())
}

// VerifyBaselineAt verifies parsed evidence as of instant now against
// collateral for its platform, judging its TCB against baseline (see the
// package doc). In diagnostic mode the returned Result has Diagnostic set
// and no TCB status, and only the default baseline is accepted (no TCB info
// is read, so no baseline could be honoured).
func (v *Verifier) VerifyBaselineAt(ctx context.Context, ev *Evidence, baseline Baseline, now time.Time) (*Verified, error) {
	if v.diag {
		if baseline != 0 {
			return nil, evidence.Errorf(CheckTCBBaseline, "TCB baseline %s cannot be honoured in diagnostic mode: collateral (TCB info, QE identity) is not checked", baseline)
		}
		if err := v.core.VerifyQuoteOnly(ev.Quote); err != nil {
			return nil, err
		}
		return &Verified{Diagnostic: true, Hashes: verify.Hashes{Quote: hexSum(ev.QuoteBytes)}}, nil
	}
	plat, err := v.core.Platform(ev.Quote)
	if err != nil {
		return nil, err
	}
	creq := plat.CollateralRequest()
	creq.TCBEvaluationDataNumber = int(baseline)
	coll, err := v.src.Get(ctx, creq)
	if err != nil {
		if baseline != 0 && errors.Is(err, collateral.ErrNotFound) {
			return nil, evidence.Errorf(CheckTCBBaseline, "TCB baseline %s: the collateral source has no TCB info and QE identity with tcbEvaluationDataNumber %d for FMSPC %s (%s CA): %v", baseline, baseline, plat.FMSPC, plat.CA, err)
		}
		// A source that is down (or rate-limits) with nothing cached is no
		// verdict on the quote: marked evidence.ErrUnavailable, the
		// pipeline answers 503 so the client retries (as for SEV-SNP and
		// TDX). Any other failure (malformed documents, not found) stays a
		// refusal of this evidence.
		if errors.Is(err, collateral.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", evidence.ErrUnavailable, err)
		}
		return nil, evidence.Errorf(evidence.CheckCollateralUnavailable, "collateral for FMSPC %s (%s CA)%s: %w", plat.FMSPC, plat.CA, baselineText(baseline), err)
	}
	if baseline != 0 {
		// Never trust the source: the documents must be the baseline asked
		// for. Checked on the headers first for a clear error, and again on
		// the signature-verified documents below.
		if err := checkBaselineHeaders(coll, baseline); err != nil {
			return nil, err
		}
	}
	r, err := v.core.VerifyAt(now, ev.QuoteBytes, ev.Quote, coll)
	if err != nil {
		return nil, err
	}
	if baseline != 0 && (r.TCBEvaluationDataNumber != int(baseline) || r.QETCBEvaluationDataNumber != int(baseline)) {
		return nil, evidence.Errorf(CheckTCBBaseline, "TCB baseline %s: the verified TCB info has tcbEvaluationDataNumber %d and the QE identity %d", baseline, r.TCBEvaluationDataNumber, r.QETCBEvaluationDataNumber)
	}
	return &Verified{Result: r, Hashes: r.Hashes, Baseline: baseline}, nil
}

func baselineText(b Baseline) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf(", TCB baseline %s", b)
}

func checkBaselineHeaders(coll *collateral.Collateral, b Baseline) error {
	th, err := collateral.ParseTCBInfoHeader(coll.TCBInfo)
	if err != nil {
		return evidence.Errorf(CheckTCBInfoParse, "%v", err)
	}
	if th.TCBEvaluationDataNumber != int(b) {
		return evidence.Errorf(CheckTCBBaseline, "TCB baseline %s: the collateral source served a TCB info with tcbEvaluationDataNumber %d", b, th.TCBEvaluationDataNumber)
	}
	qh, err := collateral.ParseEnclaveIdentityHeader(coll.QEIdentity)
	if err != nil {
		return evidence.Errorf(CheckQEIdentityParse, "%v", err)
	}
	if qh.TCBEvaluationDataNumber != int(b) {
		return evidence.Errorf(CheckTCBBaseline, "TCB baseline %s: the collateral source served a QE identity with tcbEvaluationDataNumber %d", b, qh.TCBEvaluationDataNumber)
	}
	return nil
}

// Verified is the outcome of VerifyParsed.
type Verified struct {
	*verify.Result // nil in diagnostic mode
	Hashes         verify.Hashes
	// Diagnostic is true when collateral was skipped (Options.DiagnosticSkipCollateral).
	Diagnostic bool
	// Baseline is the TCB baseline the quote was judged against.
	Baseline Baseline
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Claim types produced for SGX evidence (MAA names; the last group is attestd's).
const (
	ClaimAttestationType      = "x-ms-attestation-type"
	ClaimIsDebuggable         = "x-ms-sgx-is-debuggable"
	ClaimMREnclave            = "x-ms-sgx-mrenclave"
	ClaimMRSigner             = "x-ms-sgx-mrsigner"
	ClaimProductID            = "x-ms-sgx-product-id"
	ClaimSVN                  = "x-ms-sgx-svn"
	ClaimReportData           = "x-ms-sgx-report-data"
	ClaimEHD                  = "x-ms-sgx-ehd"
	ClaimCollateral           = "x-ms-sgx-collateral"
	ClaimConfigID             = "x-ms-sgx-config-id"
	ClaimConfigSVN            = "x-ms-sgx-config-svn"
	ClaimISVExtendedProductID = "x-ms-sgx-isv-extended-product-id"
	ClaimISVFamilyID          = "x-ms-sgx-isv-family-id"

	// attestd additions, so policies can decide on the platform's TCB.
	ClaimTCBStatus      = "x-ms-sgx-tcb-status"
	ClaimAdvisoryIDs    = "x-ms-sgx-advisory-ids"
	ClaimGraceUsed      = "x-ms-sgx-collateral-grace-used"
	ClaimDiagnosticMode = "x-ms-sgx-diagnostic-mode"
	ClaimOECustomClaims = "x-ms-sgx-oe-custom-claims"

	// TCBStatusNotVerified is the x-ms-sgx-tcb-status of diagnostic results.
	TCBStatusNotVerified = "CollateralNotVerified"
)

// Claims builds the claims for verified evidence, in the order the policy
// sees them. Encodings follow MAA: hex is lower case, ehd is base64url
// without padding, integers are int64.
//
// x-ms-sgx-collateral (and its deprecated twin maa-attestationcollateral)
// holds lower-case hex SHA-256 digests of exactly these bytes:
//
//	quotehash         the SGX quote (for OpenEnclave: without the OE header/custom claims)
//	tcbinfohash       the signed "tcbInfo" JSON body (the bytes the TCB info signature covers)
//	tcbinfocertshash  TCBInfoIssuerChain as delivered (PEM text: TCB Signing cert, Root CA)
//	tcbinfocrlhash    the Root CA CRL (DER) — the CRL that covers the TCB signing chain
//	qeidhash          the signed "enclaveIdentity" JSON body
//	qeidcertshash     QEIdentityIssuerChain as delivered (PEM text)
//	qeidcrlhash       the Root CA CRL (DER), for the same reason
//
// This matches the shape of real MAA tokens, where tcbinfocertshash ==
// qeidcertshash and tcbinfocrlhash == qeidcrlhash (same chain, same CRL).
func Claims(ev *Evidence, v *Verified, runtime *evidence.Data) []evidence.Claim {
	b := &ev.Quote.Body
	mrenclave := hex.EncodeToString(b.MREnclave[:])
	mrsigner := hex.EncodeToString(b.MRSigner[:])
	// Sized for every claim below (with KSS, an OE report's and each
	// advisory's), so appending never reallocates.
	n := 32 // at most 29 besides the advisories
	if v.Result != nil {
		n += len(v.AdvisoryIDs)
	}
	cs := make([]evidence.Claim, 0, n)
	add := func(t string, val any) { cs = append(cs, evidence.Claim{Type: t, Value: val}) }
	policyOnly := func(t string, val any) { cs = append(cs, evidence.Claim{Type: t, Value: val, PolicyOnly: true}) }
	tokenOnly := func(t string, val any) { cs = append(cs, evidence.Claim{Type: t, Value: val, TokenOnly: true}) }

	add(ClaimAttestationType, "sgx")
	add(ClaimIsDebuggable, b.Debug())
	add(ClaimMREnclave, mrenclave)
	add(ClaimMRSigner, mrsigner)
	add(ClaimProductID, int64(b.ISVProdID))
	add(ClaimSVN, int64(b.ISVSVN))
	add(ClaimReportData, hex.EncodeToString(b.ReportData[:]))
	var ehd string
	hasEHD := runtime != nil && !runtime.JSON // binary runtime data, possibly empty
	if hasEHD {
		ehd = base64.RawURLEncoding.EncodeToString(runtime.Bytes)
		add(ClaimEHD, ehd)
	}
	if b.KSS() {
		add(ClaimConfigID, hex.EncodeToString(b.ConfigID[:]))
		add(ClaimConfigSVN, int64(b.ConfigSVN))
		add(ClaimISVExtendedProductID, hex.EncodeToString(b.ISVExtendedProductID[:]))
		add(ClaimISVFamilyID, hex.EncodeToString(b.ISVFamilyID[:]))
	}
	tokenOnly(ClaimTCBIdentifier, v.Baseline.String())
	if v.Diagnostic {
		add(ClaimTCBStatus, TCBStatusNotVerified)
		add(ClaimDiagnosticMode, "collateral-skipped: PCK chain validity, CRLs, TCB info and QE identity were NOT checked")
	} else {
		add(ClaimTCBStatus, string(v.Status))
		// One scalar claim per advisory for the policy (c:[type=="x-ms-sgx-advisory-ids", value=="INTEL-SA-00615"]),
		// and one array for the token.
		for _, a := range v.AdvisoryIDs {
			policyOnly(ClaimAdvisoryIDs, a)
		}
		tokenOnly(ClaimAdvisoryIDs, append([]string{}, v.AdvisoryIDs...))
		if len(v.GraceUsed) > 0 {
			add(ClaimGraceUsed, strings.Join(v.GraceUsed, ","))
		}
		// Two maps, not one shared: each claim owns its value. Built
		// from the literal twice (cheaper than maps.Clone of it).
		tokenOnly(ClaimCollateral, collateralClaim(&v.Hashes))
		tokenOnly("maa-attestationcollateral", collateralClaim(&v.Hashes))
	}
	if ev.OE != nil {
		m := map[string]string{}
		for _, c := range ev.OE.CustomClaims {
			m[c.Name] = base64.RawURLEncoding.EncodeToString(c.Value)
		}
		tokenOnly(ClaimOECustomClaims, m)
	}

	// Deprecated names MAA still honours. "$"-aliases are visible to the
	// policy only; maa-ehd is both a policy claim and a token claim, aas-ehd a
	// token claim. The top-level is-debuggable/product-id/… token claims are
	// NOT produced here: real MAA emits them only because its default policy
	// issues them.
	policyOnly("$is-debuggable", b.Debug())
	policyOnly("$product-id", int64(b.ISVProdID))
	policyOnly("$svn", int64(b.ISVSVN))
	policyOnly("$sgx-mrsigner", mrsigner)
	policyOnly("$sgx-mrenclave", mrenclave)
	policyOnly("$tee", "sgx")
	if hasEHD {
		add("maa-ehd", ehd)
		tokenOnly("aas-ehd", ehd)
		policyOnly("$maa-ehd", ehd)
		policyOnly("$aas-ehd", ehd)
	}
	return cs
}

// collateralClaim is the value of x-ms-sgx-collateral for h.
func collateralClaim(h *verify.Hashes) map[string]string {
	return map[string]string{
		"qeidcertshash": h.QEIdentityCert, "qeidcrlhash": h.QEIdentityCRL, "qeidhash": h.QEIdentity,
		"quotehash": h.Quote, "tcbinfocertshash": h.TCBInfoCerts, "tcbinfocrlhash": h.TCBInfoCRL,
		"tcbinfohash": h.TCBInfo,
	}
}

// String renders a Verified for logs.
func (v *Verified) String() string {
	if v.Diagnostic {
		return "diagnostic (collateral skipped)"
	}
	return fmt.Sprintf("%s advisories=%v fmspc=%s", v.Status, v.AdvisoryIDs, v.FMSPC)
}

// ErrBaselinesUnknown means the collateral source cannot list its TCB
// baselines (it does not implement collateral.BaselineLister, or the
// verifier runs in diagnostic mode without collateral).
var ErrBaselinesUnknown = errors.New("the collateral source cannot list its TCB baselines")

// TCBBaselines lists the SGX TCB baselines the verifier's collateral source
// can serve, newest first (see collateral.BaselineLister for what each
// source knows). Each number is a valid x-ms-sgx-tcbidentifier.
func (v *Verifier) TCBBaselines(ctx context.Context) ([]collateral.Baseline, error) {
	l, ok := v.src.(collateral.BaselineLister)
	if v.diag || !ok {
		return nil, ErrBaselinesUnknown
	}
	return l.Baselines(ctx, collateral.SGX)
}

// ListBaselines implements evidence.BaselineLister: "azuredefault" (the
// collateral source's standard documents, with their number) first, then
// every number the source can serve, newest first; Selected marks the
// baseline properties[x-ms-sgx-tcbidentifier] selects. A property that is
// no valid identifier selects nothing (attestation under it fails at
// collateral.tcb_baseline).
func (v *Verifier) ListBaselines(ctx context.Context, t evidence.Type, properties map[string]any) ([]evidence.Baseline, error) {
	if t != evidence.SgxEnclave && t != evidence.OpenEnclave {
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "the SGX verifier does not handle attestation type %q", t)
	}
	bs, err := v.TCBBaselines(ctx)
	if err != nil {
		return nil, err
	}
	selected := ""
	if b, err := ParseTCBIdentifier(properties[PropertyTCBIdentifier]); err == nil {
		selected = b.String()
	}
	out := []evidence.Baseline{}
	entry := func(id string, b collateral.Baseline) evidence.Baseline {
		return evidence.Baseline{Identifier: id, EvaluationDataNumber: b.TCBEvaluationDataNumber, ReleaseDate: b.TCBDate, Selected: id == selected}
	}
	// The standard documents: the newest standard number if a source
	// (several FMSPCs, a cache and a fallback bundle) lists more than one.
	for _, b := range bs {
		if b.Standard {
			out = append(out, entry(TCBIdentifierDefault, b))
			break
		}
	}
	for _, b := range bs {
		out = append(out, entry(strconv.Itoa(b.TCBEvaluationDataNumber), b))
	}
	return out, nil
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
