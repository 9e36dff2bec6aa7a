// Package tdx implements evidence.Verifier for MAA's TdxVm attestation type:
// an Intel TDX ECDSA quote (v4 or v5, TD report of TDX 1.0 or 1.5). It parses
// the quote (package abi), fetches TDX collateral for the quote's platform
// (TCB info id "TDX" and the TD_QE identity, from the same sources as SGX:
// bundle, PCS /tdx/certification/v4, PCCS, cache), verifies it on the shared
// DCAP trust core (evidence/dcap: QE and quote signatures, PCK chain and
// CRLs, TD_QE identity, TDX TCB levels with tdxtcbcomponents, the TDX module
// identity and Intel's status combination rules) and turns the result into
// the claims of MAA's TDX EAT profile (maa-api.md §1.2, maa-policy.md §8.5),
// plus attestd's TCB claims (status parts, advisory IDs, TCB date).
//
// MAA reports the TCB status as a claim and lets the policy decide; so does
// this verifier. Only Revoked levels are refused, as Intel's QVL does.
//
// Bindings: SHA-256(runtime data) must be REPORTDATA[0:32] (MAA). MAA
// publishes no init-time binding for TDX; attestd binds init-time data to
// MRCONFIGID[0:32], the TD field the host sets at launch for exactly such a
// configuration digest (as SEV-SNP's HOST_DATA).
package tdx

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/evidence/tdx/abi"
)

// Checks of the TDX verifier's own parsing (the DCAP checks are declared by
// evidence/dcap).
const (
	// CheckQuoteParse: the quote is not a well-formed TD quote v4/v5.
	CheckQuoteParse evidence.Check = "quote.parse"
	// CheckQuoteNotTDX: the quote is a DCAP quote, but an SGX enclave's.
	CheckQuoteNotTDX evidence.Check = "quote.not_tdx"
)

// Options configure a Verifier.
type Options struct {
	// Collateral supplies TDX TCB info, the TD_QE identity and CRLs. Required.
	Collateral collateral.Source
	// Roots are the trusted root certificates; nil means Intel's SGX Root CA
	// (which also roots TDX). A test root is trusted only when passed here.
	Roots []*x509.Certificate
	// VerifyAt, when non-zero, verifies every quote as of this instant
	// instead of the request's (replaying recorded evidence). Results carry
	// ClaimVerifiedAt and each such verification is logged at WARN.
	VerifyAt time.Time
	// Grace accepts collateral whose nextUpdate passed at most Grace ago;
	// such results carry ClaimGraceUsed.
	Grace time.Duration
	// Logger receives the outcome of every verification; nil: slog.Default().
	Logger *slog.Logger
}

// Verifier verifies TdxVm evidence. Safe for concurrent use.
type Verifier struct {
	src      collateral.Source
	core     *dcap.Verifier
	verifyAt time.Time
	log      *slog.Logger
}

var (
	_ evidence.Verifier         = (*Verifier)(nil)
	_ evidence.ClaimsAdvertiser = (*Verifier)(nil)
	_ evidence.BaselineLister   = (*Verifier)(nil)
)

// New returns a Verifier for opts.
func New(opts Options) (*Verifier, error) {
	if opts.Collateral == nil {
		return nil, errors.New("tdx: Options.Collateral is required")
	}
	core, err := dcap.New(dcap.Options{Roots: opts.Roots, Grace: opts.Grace})
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Verifier{src: opts.Collateral, core: core, verifyAt: opts.VerifyAt.UTC(), log: log}, nil
}

// Evidence is a parsed TD quote with the DCAP view of it.
type Evidence struct {
	Quote *abi.Quote
	// DCAP is the DCAP-signed part (quote, QE report, PCK chain) and
	// Module the TD report's TDX module fields, as the core checks them.
	DCAP   *dcap.Quote
	Module *dcap.TDXModuleReport
	// Module2 is Module with TEE_TCB_SVN2 (TDX 1.5 bodies), nil otherwise.
	Module2 *dcap.TDXModuleReport
}

// Parse parses a TD quote (structure only: no signature, no collateral).
// Refusals are *evidence.Error at CheckQuoteParse, CheckQuoteNotTDX or
// dcap.CheckCertificationData.
func Parse(b []byte) (*Evidence, error) {
	// One copy of b, shared by the quote's slices and the DCAP view.
	q, raw, err := abi.ParseQuoteCopy(b)
	if err != nil {
		if errors.Is(err, abi.ErrNotTDX) {
			return nil, evidence.Errorf(CheckQuoteNotTDX, "%v (SGX quotes go to SgxEnclave)", err)
		}
		return nil, evidence.Errorf(CheckQuoteParse, "%v", err)
	}
	if q.QE == nil {
		return nil, evidence.Errorf(dcap.CheckCertificationData, "certification data type %d is not QE report certification data (type 6)", q.CertType)
	}
	pemChain, err := q.PCKChainPEM()
	if err != nil {
		return nil, evidence.Errorf(dcap.CheckCertificationData, "%v", err)
	}
	qer, err := dcap.ParseQEReport(q.QE.QEReport)
	if err != nil {
		return nil, evidence.Errorf(CheckQuoteParse, "%v", err)
	}
	ev := &Evidence{
		Quote: q,
		DCAP: &dcap.Quote{
			Raw: raw, QEVendorID: q.Header.QEVendorID, SignedBytes: raw[:q.SignedSize()],
			Signature: q.Signature, AttestationKey: q.AttestationKey,
			QEReportBytes: q.QE.QEReport, QEReport: qer, QEReportSignature: q.QE.QEReportSignature,
			QEAuthData: q.QE.QEAuthData, PCKChainPEM: pemChain,
		},
		Module: &dcap.TDXModuleReport{TEETCBSVN: q.Body.TEETCBSVN, MRSignerSeam: q.Body.MRSignerSeam, SEAMAttributes: q.Body.SEAMAttributes},
	}
	if q.BodyType == abi.BodyTypeTD15 {
		ev.Module2 = &dcap.TDXModuleReport{TEETCBSVN: q.Body.TEETCBSVN2, MRSignerSeam: q.Body.MRSignerSeam, SEAMAttributes: q.Body.SEAMAttributes}
	}
	return ev, nil
}

// Verified is the outcome of VerifyEvidence.
type Verified struct {
	*dcap.Result
	// VerifiedAt is set when the verifier verifies as of a configured instant.
	VerifiedAt time.Time
}

// VerifyEvidence verifies ev at instant now (or at Options.VerifyAt)
// against collateral for its platform.
func (v *Verifier) VerifyEvidence(ctx context.Context, ev *Evidence, now time.Time) (*Verified, error) {
	if err := dcap.CheckQEVendor(ev.DCAP.QEVendorID); err != nil {
		return nil, err
	}
	// The quote's own signatures first: collateral is fetched only for a
	// platform whose PCK key really signed this quote's QE report.
	pck, err := v.core.VerifyQuote(ev.DCAP)
	if err != nil {
		return nil, err
	}
	creq := collateral.Request{TEE: collateral.TDX, FMSPC: pck.FMSPCHex(), CA: pck.CA}
	coll, err := v.src.Get(ctx, creq)
	if err != nil {
		// A source that is down (or rate-limits) is no verdict on the
		// quote: the pipeline answers 503 so the client retries.
		if errors.Is(err, collateral.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", evidence.ErrUnavailable, err)
		}
		return nil, &evidence.Error{Check: evidence.CheckCollateralUnavailable, Err: fmt.Errorf("TDX collateral for FMSPC %s (%s CA): %w", creq.FMSPC, creq.CA, err)}
	}
	out := &Verified{}
	if !v.verifyAt.IsZero() {
		now, out.VerifiedAt = v.verifyAt, v.verifyAt
		v.log.WarnContext(ctx, "TDX quote verified as of a FIXED instant, not now (tdx.verify_at)", "verify_at", now.Format(time.RFC3339))
	}
	r, err := v.core.VerifyWithCollateral(now, &dcap.Evidence{Quote: ev.DCAP, TEE: dcap.TDX, TDX: ev.Module, TDX2: ev.Module2}, pck, coll)
	if err != nil {
		return nil, err
	}
	if len(r.GraceUsed) > 0 {
		v.log.WarnContext(ctx, "TDX quote accepted on collateral past its nextUpdate (tdx.grace)", "documents", strings.Join(r.GraceUsed, ","), "fmspc", r.FMSPC)
	}
	out.Result = r
	return out, nil
}

// Parse implements evidence.Verifier.
func (v *Verifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	if req.Type != evidence.TdxVm {
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "the TDX verifier does not verify %s evidence", req.Type)
	}
	ev, err := Parse(req.Evidence)
	if err != nil {
		return nil, err
	}
	return &parsed{v: v, ev: ev, req: req}, nil
}

type parsed struct {
	v   *Verifier
	ev  *Evidence
	req *evidence.Request
}

// Verify implements evidence.Parsed at the request's instant.
func (p *parsed) Verify(ctx context.Context, _ map[string]any) (*evidence.Result, error) {
	now := p.req.Now
	if now.IsZero() {
		now = time.Now()
	}
	vd, err := p.v.VerifyEvidence(ctx, p.ev, now)
	if err != nil {
		p.v.log.InfoContext(ctx, "TDX quote refused", "check", evidence.CheckOf(err), "error", err)
		return nil, err
	}
	b := &p.ev.Quote.Body
	claims := Claims(p.ev, vd)
	if p.req.EventLog != nil {
		// Replayed only now: the RTMRs are the TD's once the quote verified.
		l, err := ReplayCCEL(p.req.EventLog, b)
		if err != nil {
			p.v.log.InfoContext(ctx, "TDX event log refused", "check", evidence.CheckOf(err), "error", err)
			return nil, err
		}
		js, err := l.JSON()
		if err != nil {
			return nil, evidence.Errorf(CheckEventLog, "CCEL event log: %v", err)
		}
		sum := sha256.Sum256(p.req.EventLog)
		claims = append(claims,
			// The events in the JSON shape the TPM verifier offers as "events"
			// (JmesPath over {"Events":[…]}); PcrIndex is the CC MR index.
			evidence.Claim{Type: ClaimEvents, Value: js, PolicyOnly: true},
			evidence.Claim{Type: ClaimEventLogDigest, Value: hex.EncodeToString(sum[:])},
			evidence.Claim{Type: ClaimEventLogEvents, Value: int64(len(l.Events))})
	}
	p.v.log.DebugContext(ctx, "TDX quote verified", "status", vd.Status, "fmspc", vd.FMSPC, "advisories", strings.Join(vd.AdvisoryIDs, ","), "event_log", p.req.EventLog != nil)
	return &evidence.Result{
		ReportData:      append([]byte(nil), b.ReportData[:]...),
		InitTimeBinding: append([]byte(nil), b.MRConfigID[:]...),
		Claims:          claims,
	}, nil
}

// Claim types of TDX evidence: MAA's TDX EAT profile, then attestd's own.
const (
	ClaimEATProfile      = "eat_profile"
	ClaimDbgStat         = "dbgstat"
	ClaimIntUse          = "intuse"
	ClaimAttesterTCB     = "attester_tcb_status"
	ClaimMRTD            = "tdx_mrtd"
	ClaimMRConfigID      = "tdx_mrconfigid"
	ClaimMROwner         = "tdx_mrowner"
	ClaimMROwnerConfig   = "tdx_mrownerconfig"
	ClaimMRSeam          = "tdx_mrseam"
	ClaimMRSignerSeam    = "tdx_mrsignerseam"
	ClaimReportData      = "tdx_report_data"
	ClaimSeamAttributes  = "tdx_seam_attributes"
	ClaimSeamSVN         = "tdx_seamsvn"
	ClaimTDAttributes    = "tdx_td_attributes"
	ClaimTDAttrDebug     = "tdx_td_attributes_debug"
	ClaimTDAttrKeyLocker = "tdx_td_attributes_key_locker"
	ClaimTDAttrPerfmon   = "tdx_td_attributes_perfmon"
	ClaimTDAttrPKS       = "tdx_td_attributes_protection_keys"
	ClaimTDAttrSEPTVE    = "tdx_td_attributes_septve_disable"
	ClaimTEETCBSVN       = "tdx_tee_tcb_svn"
	ClaimXFAM            = "tdx_xfam"
	EATProfile           = "https://aka.ms/maa-eat-profile-tdxvm"
	AttestationTypeTDX   = "tdxvm"
	claimRTMRPrefix      = "tdx_rtmr"
	ClaimPlatformStatus  = "x-ms-tdx-platform-tcb-status"
	ClaimModuleStatus    = "x-ms-tdx-module-tcb-status"
	ClaimQEStatus        = "x-ms-tdx-qe-tcb-status"
	ClaimAdvisoryIDs     = "attester_advisory_ids"
	ClaimTCBDate         = "x-ms-tdx-tcb-date"
	ClaimTCBEvalNumber   = "x-ms-tdx-tcb-evaluation-data-number"
	ClaimFMSPC           = "x-ms-tdx-fmspc"
	ClaimCollateral      = "x-ms-tdx-collateral"
	ClaimGraceUsed       = "x-ms-tdx-collateral-grace-used"
	ClaimVerifiedAt      = "x-ms-tdx-verified-at"
	ClaimQuoteVersion    = "x-ms-tdx-quote-version"
	ClaimTEETCBSVN2      = "x-ms-tdx-tee-tcb-svn2"
	ClaimMRServiceTD     = "x-ms-tdx-mrservicetd"
	// Event log claims (a request with a CCEL "eventLog"): the replayed
	// events for the policy, the log's SHA-256 and event count for the token.
	ClaimEvents           = "events"
	ClaimEventLogDigest   = "x-ms-tdx-event-log-sha256"
	ClaimEventLogEvents   = "x-ms-tdx-event-log-events"
	claimAttestationTypeX = evidence.ClaimAttestationType
)

// Claims builds the claims of verified TDX evidence in the order the policy
// sees them. Encodings follow MAA's sample token
// (../samples/docs/tdxvm_token_payload.json): lower-case hex of the raw
// bytes, tdx_seamsvn an integer, dbgstat "disabled" unless TD debug is set.
// tdx_seamsvn is TEE_TCB_SVN[0], the TDX module's SVN (byte 1 is its
// major version; Intel's module identities judge byte 0 as its ISVSVN).
func Claims(ev *Evidence, v *Verified) []evidence.Claim {
	b := &ev.Quote.Body
	var cs []evidence.Claim
	add := func(t string, val any) { cs = append(cs, evidence.Claim{Type: t, Value: val}) }
	h := hex.EncodeToString
	attr := b.Attributes()
	add(claimAttestationTypeX, AttestationTypeTDX)
	add(ClaimEATProfile, EATProfile)
	add(ClaimAttesterTCB, string(v.Status))
	dbg := "disabled"
	if b.Debug() {
		dbg = "enabled"
	}
	add(ClaimDbgStat, dbg)
	add(ClaimIntUse, "generic")
	add(ClaimMRConfigID, h(b.MRConfigID[:]))
	add(ClaimMROwner, h(b.MROwner[:]))
	add(ClaimMROwnerConfig, h(b.MROwnerConfig[:]))
	add(ClaimMRSeam, h(b.MRSeam[:]))
	add(ClaimMRSignerSeam, h(b.MRSignerSeam[:]))
	add(ClaimMRTD, h(b.MRTD[:]))
	add(ClaimReportData, h(b.ReportData[:]))
	for i := range b.RTMR {
		add(claimRTMRPrefix+strconv.Itoa(i), h(b.RTMR[i][:]))
	}
	add(ClaimSeamAttributes, h(b.SEAMAttributes[:]))
	add(ClaimSeamSVN, int64(b.TEETCBSVN[0]))
	add(ClaimTDAttributes, h(b.TDAttributes[:]))
	add(ClaimTDAttrDebug, attr&abi.TDAttrDebug != 0)
	add(ClaimTDAttrKeyLocker, attr&abi.TDAttrKeyLocker != 0)
	add(ClaimTDAttrPerfmon, attr&abi.TDAttrPerfmon != 0)
	add(ClaimTDAttrPKS, attr&abi.TDAttrProtectionKeys != 0)
	add(ClaimTDAttrSEPTVE, attr&abi.TDAttrSEPTVEDisable != 0)
	add(ClaimTEETCBSVN, h(b.TEETCBSVN[:]))
	add(ClaimXFAM, h(b.XFAM[:]))

	// attestd's additions: what the status was made of, so a policy can
	// require a minimum (a TCB date, no given advisory) instead of a status.
	add(ClaimQuoteVersion, int64(ev.Quote.Header.Version))
	if ev.Quote.BodyType == abi.BodyTypeTD15 {
		add(ClaimTEETCBSVN2, h(b.TEETCBSVN2[:]))
		add(ClaimMRServiceTD, h(b.MRServiceTD[:]))
	}
	add(ClaimPlatformStatus, string(v.PlatformStatus))
	if v.TDXModuleStatus != "" {
		add(ClaimModuleStatus, string(v.TDXModuleStatus))
	}
	add(ClaimQEStatus, string(v.QEStatus))
	add(ClaimTCBDate, v.TCBDate.UTC().Format(time.RFC3339))
	add(ClaimTCBEvalNumber, int64(v.TCBEvaluationDataNumber))
	add(ClaimFMSPC, v.FMSPC)
	// attester_advisory_ids (the name of the Microsoft/Intel TDX EAT
	// profile draft, read by client/verifier): one scalar claim per advisory
	// for the policy (c:[type=="attester_advisory_ids", value=="INTEL-SA-00837"]),
	// one array for the token, absent when there are none (as in MAA's
	// UpToDate sample token).
	if len(v.AdvisoryIDs) > 0 {
		for _, a := range v.AdvisoryIDs {
			cs = append(cs, evidence.Claim{Type: ClaimAdvisoryIDs, Value: a, PolicyOnly: true})
		}
		cs = append(cs, evidence.Claim{Type: ClaimAdvisoryIDs, Value: append([]string{}, v.AdvisoryIDs...), TokenOnly: true})
	}
	if len(v.GraceUsed) > 0 {
		add(ClaimGraceUsed, strings.Join(v.GraceUsed, ","))
	}
	if !v.VerifiedAt.IsZero() {
		add(ClaimVerifiedAt, v.VerifiedAt.Format(time.RFC3339))
	}
	hs := v.Hashes
	cs = append(cs, evidence.Claim{Type: ClaimCollateral, TokenOnly: true, Value: map[string]string{
		"quotehash": hs.Quote, "tcbinfohash": hs.TCBInfo, "tcbinfocertshash": hs.TCBInfoCerts, "tcbinfocrlhash": hs.TCBInfoCRL,
		"qeidhash": hs.QEIdentity, "qeidcertshash": hs.QEIdentityCert, "qeidcrlhash": hs.QEIdentityCRL,
	}})
	return cs
}

// ClaimsSupported lists the claim types of TdxVm tokens.
func ClaimsSupported() []string {
	return []string{
		claimAttestationTypeX, ClaimEATProfile, ClaimAttesterTCB, ClaimDbgStat, ClaimIntUse,
		ClaimMRConfigID, ClaimMROwner, ClaimMROwnerConfig, ClaimMRSeam, ClaimMRSignerSeam, ClaimMRTD, ClaimReportData,
		"tdx_rtmr0", "tdx_rtmr1", "tdx_rtmr2", "tdx_rtmr3", ClaimSeamAttributes, ClaimSeamSVN, ClaimTDAttributes,
		ClaimTDAttrDebug, ClaimTDAttrKeyLocker, ClaimTDAttrPerfmon, ClaimTDAttrPKS, ClaimTDAttrSEPTVE, ClaimTEETCBSVN, ClaimXFAM,
		ClaimQuoteVersion, ClaimTEETCBSVN2, ClaimMRServiceTD, ClaimPlatformStatus, ClaimModuleStatus, ClaimQEStatus,
		ClaimTCBDate, ClaimTCBEvalNumber, ClaimFMSPC, ClaimAdvisoryIDs, ClaimCollateral, ClaimGraceUsed, ClaimVerifiedAt,
		ClaimEventLogDigest, ClaimEventLogEvents,
	}
}

// ClaimsSupported implements evidence.ClaimsAdvertiser.
func (v *Verifier) ClaimsSupported() []string { return ClaimsSupported() }

// TCBIdentifierDefault names the collateral source's standard TDX TCB
// info and TD_QE identity in GET /tcbbaselines/TdxVm.
const TCBIdentifierDefault = "azuredefault"

// ListBaselines implements evidence.BaselineLister for GET
// /tcbbaselines/TdxVm: the standard documents first ("azuredefault", the
// one TdxVm quotes are judged against, so it is the selected one), then
// every TCB evaluation data number the collateral source holds for TDX.
// MAA defines no policy property that selects a TDX baseline (its
// x-ms-sgx-tcbidentifier is SGX's), so neither does attestd: the numbers
// are listed for information and never selected.
func (v *Verifier) ListBaselines(ctx context.Context, t evidence.Type, _ map[string]any) ([]evidence.Baseline, error) {
	if t != evidence.TdxVm {
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "the TDX verifier does not handle attestation type %q", t)
	}
	l, ok := v.src.(collateral.BaselineLister)
	if !ok {
		return nil, errors.New("the collateral source cannot list its TCB baselines")
	}
	bs, err := l.Baselines(ctx, collateral.TDX)
	if err != nil {
		return nil, err
	}
	out := []evidence.Baseline{}
	for _, b := range bs {
		if b.Standard {
			out = append(out, evidence.Baseline{Identifier: TCBIdentifierDefault, EvaluationDataNumber: b.TCBEvaluationDataNumber, ReleaseDate: b.TCBDate, Selected: true})
			break
		}
	}
	for _, b := range bs {
		out = append(out, evidence.Baseline{Identifier: strconv.Itoa(b.TCBEvaluationDataNumber), EvaluationDataNumber: b.TCBEvaluationDataNumber, ReleaseDate: b.TCBDate})
	}
	return out, nil
}

// String renders a Verified for logs.
func (v *Verified) String() string {
	return fmt.Sprintf("%s (platform %s, module %s, QE %s) advisories=%v fmspc=%s", v.Status, v.PlatformStatus, v.TDXModuleStatus, v.QEStatus, v.AdvisoryIDs, v.FMSPC)
}
