// Package collateral holds what every collateral family shares, and the
// Intel DCAP family itself.
//
// Shared by every family (Intel DCAP here, AMD SEV-SNP in package kds): the
// error classes (errors.go: ErrNotFound, ErrUnavailable/*UnavailableError,
// ErrMalformed), and the Codec and record format through which the generic
// cache (package cache) keeps any family's documents in memory and on disk
// (codec.go). Every source is held to the conformance suite in package
// sourcetest.
//
// The Intel family: the collateral needed to verify SGX and TDX quotes (TCB
// info, QE identity, CRLs and their issuer chains) as Request → Collateral,
// from pluggable sources: a bundle on disk (offline, air-gapped), Intel PCS
// v4, a PCCS, with a cache in front (DCAPCodec).
package collateral

import (
	"bytes"
	"context"
	"sort"
	"time"
)

// TEE selects the TCB info / QE identity flavour.
type TEE string

const (
	SGX TEE = "SGX"
	TDX TEE = "TDX"
)

// Request identifies the collateral one quote needs.
type Request struct {
	TEE   TEE
	FMSPC string // 12 lower-case hex characters, from the PCK certificate
	// CA is the PCK CA that issued the PCK certificate: "processor" or "platform".
	CA string
	// TCBEvaluationDataNumber selects a TCB baseline: 0 asks for the
	// source's standard TCB info and QE identity (what PCS serves without
	// the parameter); N > 0 asks for the TCB info and QE identity whose
	// tcbEvaluationDataNumber is N (PCS v4's tcbEvaluationDataNumber query
	// parameter). A source that cannot serve N answers an error wrapping
	// ErrNotFound; sources never substitute another number, and verifiers
	// still check the number in the signed documents.
	TCBEvaluationDataNumber int
}

// Collateral is the set of Intel-signed documents one quote is checked
// against. The field layout follows Intel's sgx_ql_qve_collateral_t (and the
// JSON form used by dcap-qvl). Signed documents are kept as the exact bytes
// that were signed, because their signatures cover those bytes.
type Collateral struct {
	PCKCRLIssuerChain []byte // PEM: PCK Processor/Platform CA, Root CA
	RootCACRL         []byte // DER CRL issued by the Intel SGX Root CA
	PCKCRL            []byte // DER CRL issued by the PCK Processor/Platform CA

	TCBInfoIssuerChain []byte // PEM: TCB Signing cert, Root CA
	TCBInfo            []byte // exact JSON bytes of the "tcbInfo" object
	TCBInfoSignature   []byte // raw ECDSA P-256 signature r||s (64 bytes)

	QEIdentityIssuerChain []byte // PEM: TCB Signing cert, Root CA
	QEIdentity            []byte // exact JSON bytes of the "enclaveIdentity" object
	QEIdentitySignature   []byte // raw ECDSA P-256 signature r||s (64 bytes)
}

// Source fetches collateral.
type Source interface {
	Get(ctx context.Context, req Request) (*Collateral, error)
}

// Baseline is one TCB baseline a source can serve: the TCB info and QE
// identity of one TCB evaluation data number.
type Baseline struct {
	TCBEvaluationDataNumber int
	// TCBDate is the tcbDate of the newest TCB level in that baseline's TCB
	// info (Intel's date of the TCB evaluation); zero when unknown. It is
	// read from unverified bytes and is for display only.
	TCBDate time.Time
	// Standard is true when the source's standard documents (a Request with
	// TCBEvaluationDataNumber 0) carry this number.
	Standard bool
}

// BaselineLister is implemented by sources that know which TCB baselines
// they can serve for a TEE (a bundle: those it holds; a cache: those it has
// fetched). Serving GET /tcbbaselines needs it; attestation does not.
type BaselineLister interface {
	Baselines(ctx context.Context, tee TEE) ([]Baseline, error)
}

// MergeBaselines merges lists of baselines by number (a number is Standard
// if any list says so; the latest known TCBDate wins) and sorts them by
// descending number, newest first.
func MergeBaselines(lists ...[]Baseline) []Baseline {
	by := map[int]*Baseline{}
	var order []int
	for _, l := range lists {
		for _, b := range l {
			m, ok := by[b.TCBEvaluationDataNumber]
			if !ok {
				c := b
				by[b.TCBEvaluationDataNumber] = &c
				order = append(order, b.TCBEvaluationDataNumber)
				continue
			}
			m.Standard = m.Standard || b.Standard
			if b.TCBDate.After(m.TCBDate) {
				m.TCBDate = b.TCBDate
			}
		}
	}
	out := make([]Baseline, 0, len(order))
	for _, n := range order {
		out = append(out, *by[n])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TCBEvaluationDataNumber > out[j].TCBEvaluationDataNumber })
	return out
}

// BaselineOf describes the baseline of one collateral set.
func BaselineOf(c *Collateral, standard bool) (Baseline, error) {
	h, err := ParseTCBInfoHeader(c.TCBInfo)
	if err != nil {
		return Baseline{}, err
	}
	return Baseline{TCBEvaluationDataNumber: h.TCBEvaluationDataNumber, TCBDate: newestTCBDate(c.TCBInfo), Standard: standard}, nil
}

// Equal reports whether c and o hold the same bytes in every member, so two
// sources (or a cache and its source) can be compared without re-encoding.
func (c *Collateral) Equal(o *Collateral) bool {
	if c == nil || o == nil {
		return c == o
	}
	return bytes.Equal(c.TCBInfo, o.TCBInfo) && bytes.Equal(c.TCBInfoSignature, o.TCBInfoSignature) &&
		bytes.Equal(c.QEIdentity, o.QEIdentity) && bytes.Equal(c.QEIdentitySignature, o.QEIdentitySignature) &&
		bytes.Equal(c.PCKCRL, o.PCKCRL) && bytes.Equal(c.RootCACRL, o.RootCACRL) &&
		bytes.Equal(c.TCBInfoIssuerChain, o.TCBInfoIssuerChain) && bytes.Equal(c.QEIdentityIssuerChain, o.QEIdentityIssuerChain) &&
		bytes.Equal(c.PCKCRLIssuerChain, o.PCKCRLIssuerChain)
}
