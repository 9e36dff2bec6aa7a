package pcs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TCBStatus is a TCB level status as Intel names it.
type TCBStatus string

// The TCB statuses of TCB info and QE identity levels (PCS API v3/v4).
const (
	UpToDate                          TCBStatus = "UpToDate"
	SWHardeningNeeded                 TCBStatus = "SWHardeningNeeded"
	ConfigurationNeeded               TCBStatus = "ConfigurationNeeded"
	ConfigurationAndSWHardeningNeeded TCBStatus = "ConfigurationAndSWHardeningNeeded"
	OutOfDate                         TCBStatus = "OutOfDate"
	OutOfDateConfigurationNeeded      TCBStatus = "OutOfDateConfigurationNeeded"
	Revoked                           TCBStatus = "Revoked"
)

// Valid reports whether s is one of the statuses above.
func (s TCBStatus) Valid() bool {
	switch s {
	case UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked:
		return true
	}
	return false
}

// TCBInfo is an SGX TCB info document (version 2 or 3).
type TCBInfo struct {
	ID                      string // "SGX" (v3); empty in v2
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	FMSPC                   [6]byte
	PCEID                   [2]byte
	TCBType                 int
	TCBEvaluationDataNumber int
	Levels                  []TCBLevel
}

// TCBLevel is one SGX platform TCB level.
type TCBLevel struct {
	CompSVN     [16]int
	PCESVN      int
	TCBDate     time.Time
	Status      TCBStatus
	AdvisoryIDs []string
}

type jsonTCBInfo struct {
	ID                      *string         `json:"id"`
	Version                 *int            `json:"version"`
	IssueDate               *string         `json:"issueDate"`
	NextUpdate              *string         `json:"nextUpdate"`
	FMSPC                   *string         `json:"fmspc"`
	PCEID                   *string         `json:"pceId"`
	TCBType                 *int            `json:"tcbType"`
	TCBEvaluationDataNumber *int            `json:"tcbEvaluationDataNumber"`
	TCBLevels               []jsonTCBLevel  `json:"tcbLevels"`
	TDXModule               json.RawMessage `json:"tdxModule"`
}

type jsonTCBLevel struct {
	TCB         map[string]json.RawMessage `json:"tcb"`
	TCBDate     *string                    `json:"tcbDate"`
	TCBStatus   *string                    `json:"tcbStatus"`
	AdvisoryIDs []string                   `json:"advisoryIDs"`
}

func parseTime(s *string, what string) (time.Time, error) {
	if s == nil {
		return time.Time{}, fmt.Errorf("%s missing", what)
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", what, err)
	}
	return t.UTC(), nil
}

func fixedHex(s *string, dst []byte, what string) error {
	if s == nil {
		return fmt.Errorf("%s missing", what)
	}
	b, err := hex.DecodeString(*s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("%s %q: want %d hex-encoded bytes", what, *s, len(dst))
	}
	copy(dst, b)
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// ParseTCBInfo parses the exact bytes of a "tcbInfo" object (the signed body,
// not the {"tcbInfo":…,"signature":…} wrapper). It accepts SGX TCB info v2
// and v3 and rejects TDX TCB info.
func ParseTCBInfo(b []byte) (*TCBInfo, error) {
	var j jsonTCBInfo
	if err := strictUnmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("TCB info: %w", err)
	}
	t := &TCBInfo{}
	if j.Version == nil {
		return nil, errors.New("TCB info: version missing")
	}
	t.Version = *j.Version
	if j.ID != nil {
		t.ID = *j.ID
	}
	switch t.Version {
	case 2:
		if t.ID != "" && t.ID != "SGX" {
			return nil, fmt.Errorf("TCB info v2: id %q, want none or SGX", t.ID)
		}
	case 3:
		if t.ID != "SGX" {
			if t.ID == "TDX" {
				return nil, errors.New("TCB info: id TDX (TDX TCB info); SGX TCB info needed")
			}
			return nil, fmt.Errorf("TCB info v3: id %q, want SGX", t.ID)
		}
	default:
		return nil, fmt.Errorf("TCB info: version %d not supported (want 2 or 3)", t.Version)
	}
	var err error
	if t.IssueDate, err = parseTime(j.IssueDate, "TCB info issueDate"); err != nil {
		return nil, err
	}
	if t.NextUpdate, err = parseTime(j.NextUpdate, "TCB info nextUpdate"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.FMSPC, t.FMSPC[:], "TCB info fmspc"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.PCEID, t.PCEID[:], "TCB info pceId"); err != nil {
		return nil, err
	}
	if j.TCBType == nil || *j.TCBType != 0 {
		return nil, errors.New("TCB info: tcbType must be 0 (the only type Intel defines)")
	}
	if j.TCBEvaluationDataNumber == nil {
		return nil, errors.New("TCB info: tcbEvaluationDataNumber missing")
	}
	t.TCBEvaluationDataNumber = *j.TCBEvaluationDataNumber
	if len(j.TCBLevels) == 0 {
		return nil, errors.New("TCB info: no tcbLevels")
	}
	for i, jl := range j.TCBLevels {
		l, err := parseTCBLevel(t.Version, jl)
		if err != nil {
			return nil, fmt.Errorf("TCB info level %d: %w", i, err)
		}
		t.Levels = append(t.Levels, l)
	}
	return t, nil
}

func svnValue(raw json.RawMessage, what string) (int, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if n < 0 || n > 0xffff {
		return 0, fmt.Errorf("%s: %d out of range", what, n)
	}
	return n, nil
}

func parseTCBLevel(version int, jl jsonTCBLevel) (TCBLevel, error) {
	var l TCBLevel
	if jl.TCB == nil {
		return l, errors.New("tcb missing")
	}
	switch version {
	case 2:
		for i := 0; i < 16; i++ {
			k := fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)
			raw, ok := jl.TCB[k]
			if !ok {
				return l, fmt.Errorf("%s missing", k)
			}
			n, err := svnValue(raw, k)
			if err != nil {
				return l, err
			}
			l.CompSVN[i] = n
		}
	case 3:
		raw, ok := jl.TCB["sgxtcbcomponents"]
		if !ok {
			return l, errors.New("sgxtcbcomponents missing")
		}
		var comps []struct {
			SVN *int `json:"svn"`
		}
		if err := json.Unmarshal(raw, &comps); err != nil {
			return l, fmt.Errorf("sgxtcbcomponents: %w", err)
		}
		if len(comps) != 16 {
			return l, fmt.Errorf("sgxtcbcomponents: %d entries, want 16", len(comps))
		}
		for i, c := range comps {
			if c.SVN == nil || *c.SVN < 0 || *c.SVN > 255 {
				return l, fmt.Errorf("sgxtcbcomponents[%d]: svn missing or out of range", i)
			}
			l.CompSVN[i] = *c.SVN
		}
	}
	raw, ok := jl.TCB["pcesvn"]
	if !ok {
		return l, errors.New("pcesvn missing")
	}
	var err error
	if l.PCESVN, err = svnValue(raw, "pcesvn"); err != nil {
		return l, err
	}
	if l.TCBDate, err = parseTime(jl.TCBDate, "tcbDate"); err != nil {
		return l, err
	}
	if jl.TCBStatus == nil || !TCBStatus(*jl.TCBStatus).Valid() {
		return l, fmt.Errorf("tcbStatus missing or unknown")
	}
	l.Status = TCBStatus(*jl.TCBStatus)
	l.AdvisoryIDs = append([]string(nil), jl.AdvisoryIDs...)
	return l, nil
}

// QEIdentity is an enclave identity document (version 2) for the SGX QE.
type QEIdentity struct {
	ID                      string
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	TCBEvaluationDataNumber int
	MiscSelect              uint32
	MiscSelectMask          uint32
	Attributes              [16]byte
	AttributesMask          [16]byte
	MRSigner                [32]byte
	ISVProdID               uint16
	Levels                  []QELevel
}

// QELevel is one QE TCB level.
type QELevel struct {
	ISVSVN      int
	TCBDate     time.Time
	Status      TCBStatus
	AdvisoryIDs []string
}

type jsonQEIdentity struct {
	ID                      *string `json:"id"`
	Version                 *int    `json:"version"`
	IssueDate               *string `json:"issueDate"`
	NextUpdate              *string `json:"nextUpdate"`
	TCBEvaluationDataNumber *int    `json:"tcbEvaluationDataNumber"`
	MiscSelect              *string `json:"miscselect"`
	MiscSelectMask          *string `json:"miscselectMask"`
	Attributes              *string `json:"attributes"`
	AttributesMask          *string `json:"attributesMask"`
	MRSigner                *string `json:"mrsigner"`
	ISVProdID               *int    `json:"isvprodid"`
	TCBLevels               []struct {
		TCB struct {
			ISVSVN *int `json:"isvsvn"`
		} `json:"tcb"`
		TCBDate     *string  `json:"tcbDate"`
		TCBStatus   *string  `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs"`
	} `json:"tcbLevels"`
}

// ParseQEIdentity parses the exact bytes of an "enclaveIdentity" object. It
// accepts version 2 with id "QE" (the SGX ECDSA quoting enclave); TD_QE and
// QVE identities are rejected.
func ParseQEIdentity(b []byte) (*QEIdentity, error) {
	var j jsonQEIdentity
	if err := strictUnmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("QE identity: %w", err)
	}
	q := &QEIdentity{}
	if j.ID == nil || *j.ID != "QE" {
		id := "<missing>"
		if j.ID != nil {
			id = *j.ID
		}
		return nil, fmt.Errorf("QE identity: id %s, want QE", id)
	}
	q.ID = *j.ID
	if j.Version == nil || *j.Version != 2 {
		return nil, errors.New("QE identity: version must be 2")
	}
	q.Version = 2
	var err error
	if q.IssueDate, err = parseTime(j.IssueDate, "QE identity issueDate"); err != nil {
		return nil, err
	}
	if q.NextUpdate, err = parseTime(j.NextUpdate, "QE identity nextUpdate"); err != nil {
		return nil, err
	}
	if j.TCBEvaluationDataNumber == nil {
		return nil, errors.New("QE identity: tcbEvaluationDataNumber missing")
	}
	q.TCBEvaluationDataNumber = *j.TCBEvaluationDataNumber
	var ms, msm [4]byte
	if err := fixedHex(j.MiscSelect, ms[:], "QE identity miscselect"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.MiscSelectMask, msm[:], "QE identity miscselectMask"); err != nil {
		return nil, err
	}
	// The hex strings are MISCSELECT's bytes in report order (little-endian),
	// as QVL reads them (vectorToUint32 swaps the big-endian composition), so
	// that the masked comparison is a byte-wise one against the report.
	q.MiscSelect = binary.LittleEndian.Uint32(ms[:])
	q.MiscSelectMask = binary.LittleEndian.Uint32(msm[:])
	if err := fixedHex(j.Attributes, q.Attributes[:], "QE identity attributes"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.AttributesMask, q.AttributesMask[:], "QE identity attributesMask"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.MRSigner, q.MRSigner[:], "QE identity mrsigner"); err != nil {
		return nil, err
	}
	if j.ISVProdID == nil || *j.ISVProdID < 0 || *j.ISVProdID > 0xffff {
		return nil, errors.New("QE identity: isvprodid missing or out of range")
	}
	q.ISVProdID = uint16(*j.ISVProdID)
	if len(j.TCBLevels) == 0 {
		return nil, errors.New("QE identity: no tcbLevels")
	}
	for i, jl := range j.TCBLevels {
		var l QELevel
		if jl.TCB.ISVSVN == nil || *jl.TCB.ISVSVN < 0 || *jl.TCB.ISVSVN > 0xffff {
			return nil, fmt.Errorf("QE identity level %d: isvsvn missing or out of range", i)
		}
		l.ISVSVN = *jl.TCB.ISVSVN
		if l.TCBDate, err = parseTime(jl.TCBDate, fmt.Sprintf("QE identity level %d tcbDate", i)); err != nil {
			return nil, err
		}
		if jl.TCBStatus == nil {
			return nil, fmt.Errorf("QE identity level %d: tcbStatus missing", i)
		}
		switch s := TCBStatus(*jl.TCBStatus); s {
		case UpToDate, OutOfDate, Revoked:
			l.Status = s
		default:
			return nil, fmt.Errorf("QE identity level %d: tcbStatus %q, want UpToDate, OutOfDate or Revoked", i, s)
		}
		l.AdvisoryIDs = append([]string(nil), jl.AdvisoryIDs...)
		q.Levels = append(q.Levels, l)
	}
	return q, nil
}
