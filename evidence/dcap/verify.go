package dcap

import (
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
)

// Evidence is one quote to verify, with what its TEE adds to the DCAP checks.
type Evidence struct {
	Quote *Quote
	// TEE selects the TCB info and QE identity flavour (SGX when empty).
	TEE TEE
	// TDX is the TD report's module and TEE_TCB_SVN (TEE TDX only).
	TDX *TDXModuleReport
	// TDX2 is a TDX 1.5 TD report's TEE_TCB_SVN2 (the TCB of the module the
	// TD runs on now, after TD-preserving module updates) with the same
	// module fields; nil for TDX 1.0 reports. See TDRelaunchAdvised.
	TDX2 *TDXModuleReport
}

// The verification results Intel's QVL adds for TDX 1.5 TDs (they are never
// the status of a TCB level): the TD was launched on an out-of-date TCB, but
// the module it runs on now (TEE_TCB_SVN2) would give an UpToDate (or
// ConfigurationNeeded) TCB, so relaunching the TD fixes it
// (SGX_QL_QV_RESULT_TD_RELAUNCH_ADVISED and ..._CONFIG_NEEDED).
const (
	TDRelaunchAdvised                    pcs.TCBStatus = "TDRelaunchAdvised"
	TDRelaunchAdvisedConfigurationNeeded pcs.TCBStatus = "TDRelaunchAdvisedConfigurationNeeded"
)

// Result is what verification established.
type Result struct {
	// Status is the merged TCB status of platform, TDX module (TDX) and QE
	// (QVL's convergeTcbStatus).
	Status         pcs.TCBStatus
	PlatformStatus pcs.TCBStatus
	QEStatus       pcs.TCBStatus
	// TDXModuleStatus is the status of the TDX module's level (TDX modules
	// of major version > 0 only; empty otherwise).
	TDXModuleStatus pcs.TCBStatus
	// AdvisoryIDs of the matched platform TCB level, then the TDX module's,
	// then the matched QE level's, without duplicates.
	AdvisoryIDs []string
	TCBDate     time.Time
	// TCBEvaluationDataNumber is the TCB info's, QETCBEvaluationDataNumber
	// the QE identity's: the TCB baseline the quote was judged against.
	TCBEvaluationDataNumber   int
	QETCBEvaluationDataNumber int
	FMSPC                     string // lower-case hex
	PCEID                     string // lower-case hex
	PCKCA                     string // "processor" or "platform"
	VerifiedAt                time.Time
	// GraceUsed names collateral accepted after its nextUpdate because of
	// Options.Grace ("tcb_info", "qe_identity", "root_crl", "pck_crl").
	GraceUsed []string
	Hashes    Hashes
}

// Verify runs every stage on ev against coll at instant now, in QVL's
// order, and returns the first failure.
func (v *Verifier) Verify(now time.Time, ev *Evidence, coll *collateral.Collateral) (*Result, error) {
	if coll == nil {
		return nil, evidence.Errorf(CheckCollateralMissing, "no collateral")
	}
	tee := ev.TEE
	if tee == "" {
		tee = SGX
	}
	if tee == TDX && ev.TDX == nil {
		return nil, evidence.Errorf(CheckTCBNoLevel, "TDX evidence without its TD report's TEE_TCB_SVN")
	}
	// 1. The quote itself: PCK chain signatures, QE report, binding, quote signature.
	pck, err := v.VerifyQuote(ev.Quote)
	if err != nil {
		return nil, err
	}
	return v.VerifyWithCollateral(now, ev, pck, coll)
}

// VerifyWithCollateral runs every stage after VerifyQuote (collateral, time,
// revocation, platform, QE identity, TCB levels) for a quote whose
// VerifyQuote returned pck. It lets a caller check the quote's signatures
// before it fetches collateral for the platform the quote claims, without
// verifying them twice.
func (v *Verifier) VerifyWithCollateral(now time.Time, ev *Evidence, pck *PCK, coll *collateral.Collateral) (*Result, error) {
	if coll == nil {
		return nil, evidence.Errorf(CheckCollateralMissing, "no collateral")
	}
	tee := ev.TEE
	if tee == "" {
		tee = SGX
	}
	if tee == TDX && ev.TDX == nil {
		return nil, evidence.Errorf(CheckTCBNoLevel, "TDX evidence without its TD report's TEE_TCB_SVN")
	}
	res := &Result{VerifiedAt: now}
	// 2. Collateral: issuer chains, CRLs, signed documents (all cached).
	c, err := v.VerifyCollateral(coll, pck, tee)
	if err != nil {
		return nil, err
	}
	res.Hashes = c.Hashes
	res.Hashes.Quote = hexsum(sum(ev.Quote.Raw))
	// 3. Time: collateral windows first (they are what goes stale), then certificates.
	if res.GraceUsed, err = v.CheckTime(now, pck, c); err != nil {
		return nil, err
	}
	// 4. Revocation.
	if err := CheckRevocation(pck, c); err != nil {
		return nil, err
	}
	// 5. TCB info applies to this platform.
	ext := pck.Ext
	res.FMSPC, res.PCEID, res.PCKCA = pck.FMSPCHex(), pck.PCEIDHex(), pck.CA
	if err := CheckPlatform(ext, c.TCBInfo); err != nil {
		return nil, err
	}
	// 6. QE identity.
	ql, err := MatchQEIdentity(c.QEIdentity, &ev.Quote.QEReport)
	if err != nil {
		return nil, err
	}
	// 7. Platform TCB level (and, for TDX, the module).
	p := PlatformTCB{SGX: ext.TCB.CompSVN, PCESVN: ext.TCB.PCESVN}
	if tee == TDX {
		p.TDX = &ev.TDX.TEETCBSVN
	}
	lvl, err := MatchTCBLevel(c.TCBInfo, &p)
	if err != nil {
		return nil, err
	}
	tl := c.TCBInfo.Levels[lvl]
	status := tl.Status
	var modAdv []string
	if tee == TDX {
		ml, ok, err := MatchTDXModule(c.TCBInfo, ev.TDX)
		if err != nil {
			return nil, err
		}
		if ok {
			res.TDXModuleStatus, modAdv = ml.Status, ml.AdvisoryIDs
			status = Converge(status, ml.Status)
		}
	}
	res.PlatformStatus, res.QEStatus = tl.Status, ql.Status
	res.Status = Converge(status, ql.Status)
	if tee == TDX && ev.TDX2 != nil && ev.TDX2.TEETCBSVN != ev.TDX.TEETCBSVN && (res.Status == pcs.OutOfDate || res.Status == pcs.OutOfDateConfigurationNeeded) {
		if s := relaunchStatus(c.TCBInfo, &p, ev.TDX2, ql.Status); s != "" {
			res.Status = s
		}
	}
	res.TCBDate = tl.TCBDate
	res.TCBEvaluationDataNumber = c.TCBInfo.TCBEvaluationDataNumber
	res.QETCBEvaluationDataNumber = c.QEIdentity.TCBEvaluationDataNumber
	res.AdvisoryIDs = MergeAdvisories(tl.AdvisoryIDs, modAdv, ql.AdvisoryIDs)
	return res, nil
}

// relaunchStatus judges the TCB a TD would have after a relaunch on its
// current module (TEE_TCB_SVN2) as the launch TCB is judged (platform level,
// module level, QE, converged): TDRelaunchAdvised when that is UpToDate,
// TDRelaunchAdvisedConfigurationNeeded when it is ConfigurationNeeded, ""
// otherwise (no level matches, or relaunching would not help).
func relaunchStatus(tcb *pcs.TCBInfo, launch *PlatformTCB, now *TDXModuleReport, qe pcs.TCBStatus) pcs.TCBStatus {
	p := *launch
	p.TDX = &now.TEETCBSVN
	lvl, err := MatchTCBLevel(tcb, &p)
	if err != nil {
		return ""
	}
	status := tcb.Levels[lvl].Status
	ml, ok, err := MatchTDXModule(tcb, now)
	if err != nil {
		return ""
	}
	if ok {
		status = Converge(status, ml.Status)
	}
	switch Converge(status, qe) {
	case pcs.UpToDate:
		return TDRelaunchAdvised
	case pcs.ConfigurationNeeded:
		return TDRelaunchAdvisedConfigurationNeeded
	}
	return ""
}
