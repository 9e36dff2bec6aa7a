// Package eventlog replays TCG event logs (crypto-agile TCG2 and SHA-1
// logs, Linux UEFI and Windows WBCL) against quoted PCR values with
// go-attestation, and renders the events that replayed as the structured
// JSON ({"Events":[…]}) that MAA 1.2 policies query with JmesPath.
//
// Only events whose PCR was replayed against a quoted value are returned:
// an event in a PCR the quote does not cover is unauthenticated and must not
// reach policy. The parsed data of an event (UEFI variables, Windows SIPA
// tags) is derived from the event's bytes, which replay authenticates only
// where the event's digest is the hash of its data; go-attestation's
// SecureBoot and Windows parsers apply those rules and are used for the
// security-relevant claims.
package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-attestation/attest"
)

// MaxLogSize caps one log (a large Windows WBCL is a few hundred KB).
const MaxLogSize = 2 << 20

// PCR is one quoted PCR value.
type PCR struct {
	Index  int
	Alg    crypto.Hash // crypto.SHA1, SHA256, SHA384, SHA512
	Digest []byte
}

// Event is one replayed event.
type Event struct {
	Seq    int    // 1-based position in the log, not counting the spec ID header
	PCR    int    // PCR index
	Type   uint32 // event type (untrusted hint unless its data is digested)
	Digest []byte // the digest that was replayed into the PCR
	Data   []byte // event data
}

// TypeName is the TCG name of the event type ("EV_SEPARATOR", …).
func (e Event) TypeName() string { return attest.EventType(e.Type).String() }

// Log is the replayed part of an event log.
type Log struct {
	Events []Event
	// Algs lists the digest algorithms the log carries (SHA-1 only for a
	// TPM 1.2-style log).
	Algs    []crypto.Hash
	matched []attest.Event // go-attestation's verified events, for its parsers
}

// ReplayError says which PCRs the log failed to reproduce.
type ReplayError struct {
	InvalidPCRs []int
	Err         error
}

func (e *ReplayError) Error() string {
	if len(e.InvalidPCRs) > 0 {
		return fmt.Sprintf("event log does not replay to the quoted PCRs %v", e.InvalidPCRs)
	}
	return "event log does not replay: " + e.Err.Error()
}
func (e *ReplayError) Unwrap() error { return e.Err }

// ParseError says the log bytes are not a TCG event log.
type ParseError struct{ Err error }

func (e *ParseError) Error() string { return "event log: " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

// parse wraps attest.ParseEventLog with a size cap and turns a panic on
// hostile bytes into an error.
func parse(raw []byte) (el *attest.EventLog, err error) {
	if len(raw) == 0 {
		return nil, &ParseError{errors.New("empty")}
	}
	if len(raw) > MaxLogSize {
		return nil, &ParseError{fmt.Errorf("%d bytes, limit %d", len(raw), MaxLogSize)}
	}
	defer func() {
		if r := recover(); r != nil {
			el, err = nil, &ParseError{fmt.Errorf("malformed (%v)", r)}
		}
	}()
	el, err = attest.ParseEventLog(raw)
	if err != nil {
		return nil, &ParseError{err}
	}
	return el, nil
}

// Replay parses raw and replays it against pcrs (the quoted values, of any
// banks the log carries). Every PCR in pcrs that the log measures into must
// replay in at least one bank; the result holds the events of the PCRs in
// pcrs, in log order.
func Replay(raw []byte, pcrs []PCR) (*Log, error) {
	p, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return p.Replay(pcrs)
}

// Parsed is a parsed event log, for a verifier that both replays it and
// asks which PCRs it measures (MeasuredPCRs) without parsing it twice.
type Parsed struct{ el *attest.EventLog }

// Parse parses raw (at most MaxLogSize bytes).
func Parse(raw []byte) (*Parsed, error) {
	el, err := parse(raw)
	if err != nil {
		return nil, err
	}
	return &Parsed{el: el}, nil
}

// Replay is Replay of the parsed log.
func (p *Parsed) Replay(pcrs []PCR) (*Log, error) {
	el := p.el
	// go-attestation keeps, per PCR, the events of the first bank that
	// replays, and its event-data checks (SecureBoot) compare SHA-1 and
	// SHA-256 digests only: offer SHA-256, then SHA-1, then the others.
	pref := func(h crypto.Hash) int {
		switch h {
		case crypto.SHA256:
			return 0
		case crypto.SHA1:
			return 1
		}
		return 2
	}
	sorted := append([]PCR(nil), pcrs...)
	sort.SliceStable(sorted, func(i, j int) bool { return pref(sorted[i].Alg) < pref(sorted[j].Alg) })
	ap := make([]attest.PCR, 0, len(pcrs))
	for _, p := range sorted {
		ap = append(ap, attest.PCR{Index: p.Index, Digest: bytes.Clone(p.Digest), DigestAlg: p.Alg})
	}
	verified, err := replay(el, ap)
	if err != nil {
		var re attest.ReplayError
		if errors.As(err, &re) {
			return nil, &ReplayError{InvalidPCRs: re.InvalidPCRs, Err: err}
		}
		return nil, &ReplayError{Err: err}
	}
	l := &Log{matched: verified}
	for _, a := range el.Algs {
		switch a {
		case attest.HashSHA1:
			l.Algs = append(l.Algs, crypto.SHA1)
		case attest.HashSHA256:
			l.Algs = append(l.Algs, crypto.SHA256)
		case attest.HashSHA384:
			l.Algs = append(l.Algs, crypto.SHA384)
		case attest.HashSHA512:
			l.Algs = append(l.Algs, crypto.SHA512)
		}
	}
	// Number the verified events by their position in the log: the
	// verified list is a subsequence of the raw list in the same order.
	all := el.Events(attest.HashSHA1)
	j := 0
	for _, v := range verified {
		for j < len(all) && !(all[j].Index == v.Index && all[j].Type == v.Type && bytes.Equal(all[j].Data, v.Data)) {
			j++
		}
		seq := j + 1
		if j < len(all) {
			j++
		}
		l.Events = append(l.Events, Event{Seq: seq, PCR: v.Index, Type: uint32(v.Type), Digest: bytes.Clone(v.Digest), Data: bytes.Clone(v.Data)})
	}
	return l, nil
}

func replay(el *attest.EventLog, pcrs []attest.PCR) (ev []attest.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("malformed (%v)", r)
		}
	}()
	return el.Verify(pcrs)
}

// SecureBoot reports the UEFI Secure Boot state from the replayed PCR 7
// events (go-attestation's ParseSecurebootState: the SecureBoot variable
// measured as 1, with its rules on event ordering and digests). A log that
// its parser refuses is reported as not enabled, with the reason.
func (l *Log) SecureBoot() (enabled bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			enabled, err = false, fmt.Errorf("secure boot state: malformed (%v)", r)
		}
	}()
	st, err := attest.ParseSecurebootState(l.matched)
	if err != nil {
		return false, err
	}
	return st.Enabled, nil
}

// Windows returns go-attestation's view of a Windows boot (WBCL), or nil and
// an error when the log has no parsable Windows events.
func (l *Log) Windows() (w *attest.WinEvents, err error) {
	defer func() {
		if r := recover(); r != nil {
			w, err = nil, fmt.Errorf("windows events: malformed (%v)", r)
		}
	}()
	return attest.ParseWinEvents(l.matched)
}

// evNoAction is EV_NO_ACTION (PC Client PFP §10.4.1): logged, never extended.
const evNoAction = 0x00000003

// MeasuredPCRs parses raw and returns the mask of PCRs 0…31 its events
// extend (EV_NO_ACTION events extend nothing). A verifier uses it to refuse
// a log that measures PCRs a quote leaves out, which Replay ignores.
func MeasuredPCRs(raw []byte) (mask uint32, err error) {
	p, err := Parse(raw)
	if err != nil {
		return 0, err
	}
	return p.Measured()
}

// Measured is MeasuredPCRs of the parsed log.
func (p *Parsed) Measured() (mask uint32, err error) {
	el := p.el
	defer func() {
		if r := recover(); r != nil {
			mask, err = 0, &ParseError{fmt.Errorf("malformed (%v)", r)}
		}
	}()
	if len(el.Algs) == 0 {
		return 0, &ParseError{errors.New("no digest algorithm")}
	}
	for _, e := range el.Events(el.Algs[0]) {
		if uint32(e.Type) != evNoAction && e.Index >= 0 && e.Index < 32 {
			mask |= 1 << e.Index
		}
	}
	return mask, nil
}

// Unexplained returns the mask of the registers in pcrs that measured (a
// log's MeasuredPCRs) has no event for although their value is not the one
// they reset to, skipping the indices exempt reports (nil: none). The log
// is unsigned and Replay accepts a register without events whatever its
// value, so a client could leave every event of one register out of the
// log and a policy would read their absence; a verifier refuses what this
// returns unless the register's events are logged elsewhere. Reset value:
// all zeros (TPM PCRs 0–16 and 23, TDX RTMRs), for PCR 0 with the startup
// locality (0 or 3) in its last byte; PCRs 17–22 reset to all ones and are
// the caller's to exempt (dynamic launch logs them in a DRTM log).
func Unexplained(measured uint32, pcrs []PCR, exempt func(index int) bool) uint32 {
	var bad uint32
	for _, p := range pcrs {
		if p.Index < 0 || p.Index >= 32 || measured&(1<<p.Index) != 0 || (exempt != nil && exempt(p.Index)) {
			continue
		}
		if !isResetValue(p.Index, p.Digest) {
			bad |= 1 << p.Index
		}
	}
	return bad
}

func isResetValue(index int, d []byte) bool {
	for i, b := range d {
		if b == 0 || (index == 0 && i == len(d)-1 && b == 3) {
			continue
		}
		return false
	}
	return true
}
