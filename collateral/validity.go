package collateral

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Item names used in Validity and NotValidError. Certificates are named
// "<chain>: <subject common name>".
const (
	ItemTCBInfo    = "TCB info"
	ItemQEIdentity = "QE identity"
	ItemPCKCRL     = "PCK CRL"
	ItemRootCACRL  = "Root CA CRL"

	ItemTCBInfoIssuerChain    = "TCB info issuer chain"
	ItemQEIdentityIssuerChain = "QE identity issuer chain"
	ItemPCKCRLIssuerChain     = "PCK CRL issuer chain"
)

// ItemValidity is one item's own validity period: issueDate..nextUpdate for
// TCB info and QE identity, thisUpdate..nextUpdate for CRLs,
// NotBefore..NotAfter for certificates. Both ends are inclusive, as in
// crypto/x509.
type ItemValidity struct {
	Item      string
	NotBefore time.Time
	NotAfter  time.Time
}

// Validity is the period in which every item of a Collateral is valid at
// once: the intersection of the items' periods. It may be empty (NotBefore
// after NotAfter) when the items were not issued together — a verifier must
// then fail at every instant, and Check says which item is to blame.
type Validity struct {
	NotBefore time.Time // the latest start over all items
	NotAfter  time.Time // the earliest end over all items
	// Items lists every item's own period, in a fixed order: TCB info, QE
	// identity, PCK CRL, Root CA CRL, then the issuer-chain certificates.
	Items []ItemValidity
}

// Empty reports whether no instant is inside every item's period.
func (v *Validity) Empty() bool { return v.NotBefore.After(v.NotAfter) }

// Contains reports whether every item is valid at t (inclusive bounds).
func (v *Validity) Contains(t time.Time) bool {
	return !t.Before(v.NotBefore) && !t.After(v.NotAfter)
}

// Check returns nil when every item is valid at t, else a *NotValidError for
// the first item (in Items order) that is not.
func (v *Validity) Check(t time.Time) error {
	for _, it := range v.Items {
		if t.Before(it.NotBefore) || t.After(it.NotAfter) {
			return &NotValidError{Item: it.Item, NotBefore: it.NotBefore, NotAfter: it.NotAfter, At: t}
		}
	}
	return nil
}

// NotValidError names the collateral item that is not valid at an instant.
type NotValidError struct {
	Item      string
	NotBefore time.Time
	NotAfter  time.Time
	At        time.Time
}

func (e *NotValidError) Error() string {
	f := time.RFC3339
	if e.At.After(e.NotAfter) {
		return fmt.Sprintf("%s expired at %s (valid %s .. %s, checked as of %s)", e.Item, e.NotAfter.Format(f), e.NotBefore.Format(f), e.NotAfter.Format(f), e.At.Format(f))
	}
	return fmt.Sprintf("%s is not yet valid at %s (valid %s .. %s)", e.Item, e.At.Format(f), e.NotBefore.Format(f), e.NotAfter.Format(f))
}

// Info is what can be read from a Collateral without checking signatures.
type Info struct {
	// Request is the TEE (from the TCB info id), FMSPC (from the TCB info)
	// and CA (from the PCK CRL issuer) this collateral serves.
	Request    Request
	TCBInfo    *TCBInfoHeader
	QEIdentity *EnclaveIdentityHeader
	PCKCRL     *CRLInfo
	RootCACRL  *CRLInfo
	Validity   *Validity
}

// Inspect parses every item of c enough to index, cache and date it, and
// checks that the items belong together (the QE identity is for the TCB
// info's TEE, the PCK CRL comes from a PCK CA and the root CRL from the root
// CA, signatures are 64 bytes). It verifies no signature.
func (c *Collateral) Inspect() (*Info, error) {
	tcb, err := ParseTCBInfoHeader(c.TCBInfo)
	if err != nil {
		return nil, err
	}
	qe, err := ParseEnclaveIdentityHeader(c.QEIdentity)
	if err != nil {
		return nil, err
	}
	qeTEE, ok := qe.TEE()
	if !ok {
		return nil, fmt.Errorf("%w: enclave identity %q is not a quoting enclave identity (QE or TD_QE)", ErrMalformed, qe.ID)
	}
	if qeTEE != tcb.TEE() {
		return nil, fmt.Errorf("%w: QE identity %s is for %s but the TCB info is for %s", ErrMalformed, qe.ID, qeTEE, tcb.TEE())
	}
	for _, s := range []struct {
		name string
		sig  []byte
	}{{ItemTCBInfo, c.TCBInfoSignature}, {ItemQEIdentity, c.QEIdentitySignature}} {
		if len(s.sig) != 64 {
			return nil, fmt.Errorf("%w: %s signature is %d bytes, want 64", ErrMalformed, s.name, len(s.sig))
		}
	}
	pck, err := ParseCRL(c.PCKCRL)
	if err != nil {
		return nil, fmt.Errorf("PCK CRL: %w", err)
	}
	if pck.CA != CAProcessor && pck.CA != CAPlatform {
		return nil, fmt.Errorf("%w: PCK CRL is issued by %q, not a PCK Processor/Platform CA", ErrMalformed, pck.Issuer.CommonName)
	}
	root, err := ParseCRL(c.RootCACRL)
	if err != nil {
		return nil, fmt.Errorf("root CA CRL: %w", err)
	}
	if root.CA != CARoot {
		return nil, fmt.Errorf("%w: root CA CRL is issued by %q, not the root CA", ErrMalformed, root.Issuer.CommonName)
	}
	v := &Validity{Items: []ItemValidity{
		{ItemTCBInfo, tcb.IssueDate, tcb.NextUpdate},
		{ItemQEIdentity, qe.IssueDate, qe.NextUpdate},
		{ItemPCKCRL, pck.ThisUpdate, pck.NextUpdate},
		{ItemRootCACRL, root.ThisUpdate, root.NextUpdate},
	}}
	for _, ch := range []struct {
		name string
		pem  []byte
	}{
		{ItemTCBInfoIssuerChain, c.TCBInfoIssuerChain},
		{ItemQEIdentityIssuerChain, c.QEIdentityIssuerChain},
		{ItemPCKCRLIssuerChain, c.PCKCRLIssuerChain},
	} {
		certs, err := ParseCertChain(ch.pem)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ch.name, err)
		}
		v.Items = append(v.Items, certItems(ch.name, certs)...)
	}
	v.NotBefore, v.NotAfter = v.Items[0].NotBefore, v.Items[0].NotAfter
	for _, it := range v.Items[1:] {
		if it.NotBefore.After(v.NotBefore) {
			v.NotBefore = it.NotBefore
		}
		if it.NotAfter.Before(v.NotAfter) {
			v.NotAfter = it.NotAfter
		}
	}
	return &Info{
		Request:    Request{TEE: tcb.TEE(), FMSPC: tcb.FMSPC, CA: pck.CA},
		TCBInfo:    tcb,
		QEIdentity: qe,
		PCKCRL:     pck,
		RootCACRL:  root,
		Validity:   v,
	}, nil
}

// Validity returns the window in which every item of c is valid; see Inspect.
func (c *Collateral) Validity() (*Validity, error) {
	info, err := c.Inspect()
	if err != nil {
		return nil, err
	}
	return info.Validity, nil
}

func certItems(chain string, certs []*x509.Certificate) []ItemValidity {
	out := make([]ItemValidity, 0, len(certs))
	for _, c := range certs {
		out = append(out, ItemValidity{
			Item:      chain + ": " + c.Subject.CommonName,
			NotBefore: c.NotBefore.UTC(),
			NotAfter:  c.NotAfter.UTC(),
		})
	}
	return out
}
