package pcs

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/strictjson"
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

// TCB info ids (the "id" member; TCB info v2 has none and is SGX).
const (
	IDSGX = "SGX"
	IDTDX = "TDX"
)

// TCBInfo is a TCB info document: SGX (version 2 or 3) or TDX (version 3).
type TCBInfo struct {
	ID                      string // IDSGX or IDTDX (v3); empty in v2
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	FMSPC                   [6]byte
	PCEID                   [2]byte
	TCBType                 int
	TCBEvaluationDataNumber int
	// TDXModule and TDXModuleIdentities are set in TDX TCB info only:
	// the identity of TDX module 1.0 (checked when TEE_TCB_SVN[1] is 0) and
	// one identity with its own TCB levels per later module major version.
	TDXModule           *TDXModule
	TDXModuleIdentities []TDXModuleIdentity
	Levels              []TCBLevel
}

// TCBLevel is one platform TCB level. TDXCompSVN is meaningful only in TDX
// TCB info, where it is compared with the TD report's TEE_TCB_SVN.
type TCBLevel struct {
	CompSVN     [16]int
	PCESVN      int
	TDXCompSVN  [16]int
	TCBDate     time.Time
	Status      TCBStatus
	AdvisoryIDs []string
}

// TDXModule is the signer identity of a TDX module: MRSIGNER_SEAM and the
// masked SEAM attributes a TD report's module must carry.
type TDXModule struct {
	MRSigner       [48]byte
	Attributes     [8]byte
	AttributesMask [8]byte
}

// TDXModuleIdentity is one "tdxModuleIdentities" entry: the module of one
// major version ("TDX_01", "TDX_03", … from TEE_TCB_SVN[1]) with its TCB
// levels over the module's ISVSVN (TEE_TCB_SVN[0]).
type TDXModuleIdentity struct {
	ID string
	TDXModule
	Levels []TDXModuleLevel
}

// IdentityLevel is one TCB level keyed by an ISVSVN: a level of a quoting
// enclave identity (QELevel) or of a TDX module identity (TDXModuleLevel).
type IdentityLevel struct {
	ISVSVN      int
	TCBDate     time.Time
	Status      TCBStatus
	AdvisoryIDs []string
}

// The wire shapes below are Intel's PCS JSON exactly; they are the only
// definition of these documents in attestd: the parsers read through them
// and writers (test platforms, fixtures) marshal them.

// TCBInfoJSON is the "tcbInfo" body of a PCS TCB info response.
type TCBInfoJSON struct {
	ID                      string                  `json:"id,omitempty"` // absent in v2
	Version                 int                     `json:"version"`
	IssueDate               string                  `json:"issueDate"`
	NextUpdate              string                  `json:"nextUpdate"`
	FMSPC                   string                  `json:"fmspc"`
	PCEID                   string                  `json:"pceId"`
	TCBType                 int                     `json:"tcbType"`
	TCBEvaluationDataNumber int                     `json:"tcbEvaluationDataNumber"`
	TDXModule               *TDXModuleJSON          `json:"tdxModule,omitempty"`
	TDXModuleIdentities     []TDXModuleIdentityJSON `json:"tdxModuleIdentities,omitempty"`
	TCBLevels               []TCBLevelJSON          `json:"tcbLevels"`
}

// TCBLevelJSON is one "tcbLevels" entry of a TCB info.
type TCBLevelJSON struct {
	TCB         TCBJSON  `json:"tcb"`
	TCBDate     string   `json:"tcbDate"`
	TCBStatus   string   `json:"tcbStatus"`
	AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
}

// TCBComponentJSON is one entry of "sgxtcbcomponents"/"tdxtcbcomponents"
// (TCB info v3). Category and Type are informational.
type TCBComponentJSON struct {
	SVN      int    `json:"svn"`
	Category string `json:"category,omitempty"`
	Type     string `json:"type,omitempty"`
}

// TCBJSON is the "tcb" object of a TCB level. Version 3 lists components
// ("sgxtcbcomponents", TDX also "tdxtcbcomponents"); version 2 names them
// "sgxtcbcomp01svn" … "sgxtcbcomp16svn", which V2CompSVN holds (nil for v3).
// Decoding records which members were present, so the parser can tell a
// missing SVN from a zero one.
type TCBJSON struct {
	SGXComponents []TCBComponentJSON
	TDXComponents []TCBComponentJSON
	PCESVN        int
	V2CompSVN     *[16]int

	// Set by UnmarshalJSON: which members the document had.
	hasPCESVN, hasSGX, hasTDX bool
	v2Missing                 string // the first missing v2 member, if any v2 member was present
}

// v2Names are the component member names of TCB info v2.
var v2Names = func() (n [16]string) {
	for i := range n {
		n[i] = fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)
	}
	return n
}()

func v2Name(i int) string { return v2Names[i] }

// MarshalJSON writes the v2 layout when V2CompSVN is set, the v3 one otherwise.
func (t TCBJSON) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	sep := func() {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
	}
	if t.V2CompSVN != nil {
		for i, s := range t.V2CompSVN {
			sep()
			fmt.Fprintf(&b, "%q:%d", v2Name(i), s)
		}
	} else {
		comps, err := json.Marshal(t.SGXComponents)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"sgxtcbcomponents":`)
		b.Write(comps)
	}
	sep()
	fmt.Fprintf(&b, `"pcesvn":%d`, t.PCESVN)
	if t.TDXComponents != nil {
		comps, err := json.Marshal(t.TDXComponents)
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"tdxtcbcomponents":`)
		b.Write(comps)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// UnmarshalJSON reads either layout. It checks shape only (types, SVN
// presence); ranges and counts are the parser's.
func (t *TCBJSON) UnmarshalJSON(b []byte) error {
	type comp struct {
		SVN      *int   `json:"svn"`
		Category string `json:"category"`
		Type     string `json:"type"`
	}
	var raw struct {
		SGX    *[]comp `json:"sgxtcbcomponents"`
		TDX    *[]comp `json:"tdxtcbcomponents"`
		PCESVN *int    `json:"pcesvn"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*t = TCBJSON{}
	conv := func(name string, in *[]comp, dst *[]TCBComponentJSON) (bool, error) {
		if in == nil {
			return false, nil
		}
		*dst = make([]TCBComponentJSON, len(*in))
		for i, c := range *in {
			if c.SVN == nil {
				return true, fmt.Errorf("%s[%d]: svn missing", name, i)
			}
			(*dst)[i] = TCBComponentJSON{SVN: *c.SVN, Category: c.Category, Type: c.Type}
		}
		return true, nil
	}
	var err error
	if t.hasSGX, err = conv("sgxtcbcomponents", raw.SGX, &t.SGXComponents); err != nil {
		return err
	}
	if t.hasTDX, err = conv("tdxtcbcomponents", raw.TDX, &t.TDXComponents); err != nil {
		return err
	}
	if raw.PCESVN != nil {
		t.hasPCESVN, t.PCESVN = true, *raw.PCESVN
	}
	if t.hasSGX {
		t.v2Missing = v2Names[0]
		return nil
	}
	// v2: the components are members of their own, read by exact name.
	m, err := strictjson.Object(b)
	if err != nil {
		return err
	}
	var v2 [16]int
	any2 := false
	for i := range v2 {
		ok, err := strictjson.Member(m, v2Names[i], &v2[i])
		if err != nil {
			return err
		}
		if ok {
			any2 = true
		} else if t.v2Missing == "" {
			t.v2Missing = v2Names[i]
		}
	}
	if any2 {
		t.V2CompSVN = &v2
	} else {
		t.v2Missing = v2Names[0]
	}
	return nil
}

// TDXModuleJSON is the "tdxModule" object of a TDX TCB info.
type TDXModuleJSON struct {
	MRSigner       string `json:"mrsigner"`
	Attributes     string `json:"attributes"`
	AttributesMask string `json:"attributesMask"`
}

// TDXModuleIdentityJSON is one "tdxModuleIdentities" entry.
type TDXModuleIdentityJSON struct {
	ID             string              `json:"id"`
	MRSigner       string              `json:"mrsigner"`
	Attributes     string              `json:"attributes"`
	AttributesMask string              `json:"attributesMask"`
	TCBLevels      []IdentityLevelJSON `json:"tcbLevels"`
}

// IdentityLevelJSON is a TCB level keyed by one ISVSVN: the levels of
// enclave identities (QE, TD_QE) and of TDX module identities.
type IdentityLevelJSON struct {
	TCB struct {
		ISVSVN *int `json:"isvsvn"`
	} `json:"tcb"`
	TCBDate     string   `json:"tcbDate"`
	TCBStatus   string   `json:"tcbStatus"`
	AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
}

// NewIdentityLevel returns a level for writers.
func NewIdentityLevel(isvsvn int, date time.Time, status TCBStatus, advisories []string) IdentityLevelJSON {
	l := IdentityLevelJSON{TCBDate: date.UTC().Format(time.RFC3339), TCBStatus: string(status), AdvisoryIDs: advisories}
	l.TCB.ISVSVN = &isvsvn
	return l
}

// EnclaveIdentityJSON is the "enclaveIdentity" body of a PCS enclave
// identity response (version 2: QE, TD_QE, QVE).
type EnclaveIdentityJSON struct {
	ID                      string              `json:"id"`
	Version                 int                 `json:"version"`
	IssueDate               string              `json:"issueDate"`
	NextUpdate              string              `json:"nextUpdate"`
	TCBEvaluationDataNumber int                 `json:"tcbEvaluationDataNumber"`
	MiscSelect              string              `json:"miscselect"`
	MiscSelectMask          string              `json:"miscselectMask"`
	Attributes              string              `json:"attributes"`
	AttributesMask          string              `json:"attributesMask"`
	MRSigner                string              `json:"mrsigner"`
	ISVProdID               int                 `json:"isvprodid"`
	TCBLevels               []IdentityLevelJSON `json:"tcbLevels"`
}

// objectWith decodes b with unique member names and checks that every name
// is present (a zero value and a missing member must not look alike).
func objectWith(b []byte, what string, names ...string) (map[string]json.RawMessage, error) {
	m, err := strictjson.Object(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, require(m, what, names...)
}

func require(m map[string]json.RawMessage, what string, names ...string) error {
	for _, n := range names {
		if raw, ok := m[n]; !ok || string(raw) == "null" {
			return fmt.Errorf("%s: %s missing", what, n)
		}
	}
	return nil
}

// decodeExact decodes b into dst after checking, on b's top-level members,
// what encoding/json does not: every name is unique, the required ones are
// present, and none differs from a known member only in case (encoding/json
// would take "MRSIGNER" for "mrsigner", so a document could show one value to
// Intel's parser and another to ours). Nested objects (levels, components)
// are decoded by encoding/json's rules, as attestd always has: checking them
// token by token costs a fifth of a cold verification, and the top level is
// where the identity, dates and platform of the document live.
func decodeExact(b []byte, what string, dst any, known, required []string) (map[string]json.RawMessage, error) {
	m, err := strictjson.Object(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	for name := range m {
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				return nil, fmt.Errorf("%s: member %q differs from %q only in case", what, name, k)
			}
		}
	}
	if err := require(m, what, required...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, nil
}

// field is one member decoded by its exact name.
type field struct {
	name string
	dst  any
}

func members(m map[string]json.RawMessage, what string, fs []field) error {
	for _, f := range fs {
		if _, err := strictjson.Member(m, f.name, f.dst); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

var tcbInfoHeaderMembers = []string{"version", "issueDate", "nextUpdate", "fmspc", "pceId", "tcbType", "tcbEvaluationDataNumber"}

// DecodeTCBInfoHeader decodes the header members of a "tcbInfo" body (all
// but the TCB levels and TDX module identities) with unique member names.
// It is for sources that index collateral before any signature is checked;
// ParseTCBInfo is the full, validating parse.
func DecodeTCBInfoHeader(b []byte) (*TCBInfoJSON, error) {
	m, err := objectWith(b, "TCB info", tcbInfoHeaderMembers...)
	if err != nil {
		return nil, err
	}
	return decodeHeader(m)
}

func decodeHeader(m map[string]json.RawMessage) (*TCBInfoJSON, error) {
	var j TCBInfoJSON
	if err := members(m, "TCB info", []field{{"id", &j.ID}, {"version", &j.Version}, {"issueDate", &j.IssueDate},
		{"nextUpdate", &j.NextUpdate}, {"fmspc", &j.FMSPC}, {"pceId", &j.PCEID}, {"tcbType", &j.TCBType},
		{"tcbEvaluationDataNumber", &j.TCBEvaluationDataNumber}}); err != nil {
		return nil, err
	}
	if _, ok := m["id"]; ok && j.ID == "" {
		return nil, errors.New("TCB info: id is empty")
	}
	return &j, nil
}

func parseTime(s string, what string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", what, err)
	}
	return t.UTC(), nil
}

func fixedHex(s string, dst []byte, what string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("%s %q: want %d hex-encoded bytes", what, s, len(dst))
	}
	copy(dst, b)
	return nil
}

// ParseTCBInfo parses the exact bytes of an SGX "tcbInfo" object (the signed
// body, not the {"tcbInfo":…,"signature":…} wrapper). It accepts SGX TCB info
// v2 and v3 and rejects TDX TCB info (ParseTDXTCBInfo reads that).
func ParseTCBInfo(b []byte) (*TCBInfo, error) { return parseTCBInfo(b, IDSGX) }

// ParseTDXTCBInfo parses the exact bytes of a TDX "tcbInfo" object (version
// 3, id TDX): platform levels with "tdxtcbcomponents", "tdxModule" and
// "tdxModuleIdentities". It rejects SGX TCB info.
func ParseTDXTCBInfo(b []byte) (*TCBInfo, error) { return parseTCBInfo(b, IDTDX) }

func parseTCBInfo(b []byte, want string) (*TCBInfo, error) {
	h := &TCBInfoJSON{}
	m, err := decodeExact(b, "TCB info", h, tcbInfoMembers, tcbInfoRequired)
	if err != nil {
		return nil, err
	}
	if _, ok := m["id"]; ok && h.ID == "" {
		return nil, errors.New("TCB info: id is empty")
	}
	t := &TCBInfo{ID: h.ID, Version: h.Version}
	switch t.Version {
	case 2:
		if t.ID != "" && t.ID != IDSGX {
			return nil, fmt.Errorf("TCB info v2: id %q, want none or SGX", t.ID)
		}
		if want == IDTDX {
			return nil, errors.New("TCB info v2 is SGX TCB info; TDX TCB info (version 3, id TDX) needed")
		}
	case 3:
		if t.ID != want {
			switch {
			case t.ID == IDTDX:
				return nil, errors.New("TCB info: id TDX (TDX TCB info); SGX TCB info needed")
			case t.ID == IDSGX:
				return nil, errors.New("TCB info: id SGX (SGX TCB info); TDX TCB info needed")
			}
			return nil, fmt.Errorf("TCB info v3: id %q, want %s", t.ID, want)
		}
	default:
		return nil, fmt.Errorf("TCB info: version %d not supported (want 2 or 3)", t.Version)
	}
	if t.IssueDate, err = parseTime(h.IssueDate, "TCB info issueDate"); err != nil {
		return nil, err
	}
	if t.NextUpdate, err = parseTime(h.NextUpdate, "TCB info nextUpdate"); err != nil {
		return nil, err
	}
	if err := fixedHex(h.FMSPC, t.FMSPC[:], "TCB info fmspc"); err != nil {
		return nil, err
	}
	if err := fixedHex(h.PCEID, t.PCEID[:], "TCB info pceId"); err != nil {
		return nil, err
	}
	if h.TCBType != 0 {
		return nil, errors.New("TCB info: tcbType must be 0 (the only type Intel defines)")
	}
	t.TCBType = h.TCBType
	t.TCBEvaluationDataNumber = h.TCBEvaluationDataNumber
	levels := h.TCBLevels
	if len(levels) == 0 {
		return nil, errors.New("TCB info: no tcbLevels")
	}
	for i, jl := range levels {
		l, err := parseTCBLevel(t.Version, want, jl)
		if err != nil {
			return nil, fmt.Errorf("TCB info level %d: %w", i, err)
		}
		t.Levels = append(t.Levels, l)
	}
	if want == IDTDX {
		if err := parseTDXModules(h, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

var (
	tcbInfoRequired = append(slices.Clone(tcbInfoHeaderMembers), "tcbLevels")
	tcbInfoMembers  = append(slices.Clone(tcbInfoRequired), "id", "tdxModule", "tdxModuleIdentities")
)

func parseTDXModules(h *TCBInfoJSON, t *TCBInfo) error {
	mod := h.TDXModule
	if mod == nil {
		return errors.New("TDX TCB info: tdxModule missing")
	}
	t.TDXModule = &TDXModule{}
	if err := parseModule(mod.MRSigner, mod.Attributes, mod.AttributesMask, t.TDXModule, "TDX TCB info tdxModule"); err != nil {
		return err
	}
	ids := h.TDXModuleIdentities
	var err error
	seen := map[string]bool{}
	for i, jid := range ids {
		what := fmt.Sprintf("TDX TCB info tdxModuleIdentities[%d]", i)
		if !strings.HasPrefix(jid.ID, "TDX_") || len(jid.ID) != 6 {
			return fmt.Errorf("%s: id %q, want TDX_NN", what, jid.ID)
		}
		if _, err := hex.DecodeString(jid.ID[4:]); err != nil {
			return fmt.Errorf("%s: id %q, want TDX_ and two hex digits", what, jid.ID)
		}
		if seen[jid.ID] {
			return fmt.Errorf("%s: duplicate id %q", what, jid.ID)
		}
		seen[jid.ID] = true
		id := TDXModuleIdentity{ID: jid.ID}
		if err := parseModule(jid.MRSigner, jid.Attributes, jid.AttributesMask, &id.TDXModule, what); err != nil {
			return err
		}
		if id.Levels, err = parseIdentityLevels(jid.TCBLevels, what, func(TCBStatus) bool { return true }); err != nil {
			return err
		}
		t.TDXModuleIdentities = append(t.TDXModuleIdentities, id)
	}
	return nil
}

func parseModule(mrsigner, attrs, mask string, dst *TDXModule, what string) error {
	if err := fixedHex(mrsigner, dst.MRSigner[:], what+" mrsigner"); err != nil {
		return err
	}
	if err := fixedHex(attrs, dst.Attributes[:], what+" attributes"); err != nil {
		return err
	}
	return fixedHex(mask, dst.AttributesMask[:], what+" attributesMask")
}

func svnRange(n, max int, what string) (int, error) {
	if n < 0 || n > max {
		return 0, fmt.Errorf("%s: %d out of range", what, n)
	}
	return n, nil
}

func components(c []TCBComponentJSON, present bool, name string, dst *[16]int) error {
	if !present {
		return fmt.Errorf("%s missing", name)
	}
	if len(c) != 16 {
		return fmt.Errorf("%s: %d entries, want 16", name, len(c))
	}
	for i, e := range c {
		if e.SVN < 0 || e.SVN > 255 {
			return fmt.Errorf("%s[%d]: svn missing or out of range", name, i)
		}
		dst[i] = e.SVN
	}
	return nil
}

func parseTCBLevel(version int, id string, jl TCBLevelJSON) (TCBLevel, error) {
	var l TCBLevel
	t := &jl.TCB
	switch version {
	case 2:
		if t.V2CompSVN == nil || t.v2Missing != "" {
			name := t.v2Missing
			if name == "" {
				name = v2Name(0)
			}
			return l, fmt.Errorf("%s missing", name)
		}
		for i, s := range t.V2CompSVN {
			n, err := svnRange(s, 0xffff, v2Name(i))
			if err != nil {
				return l, err
			}
			l.CompSVN[i] = n
		}
	case 3:
		if err := components(t.SGXComponents, t.hasSGX, "sgxtcbcomponents", &l.CompSVN); err != nil {
			return l, err
		}
		if id == IDTDX {
			if err := components(t.TDXComponents, t.hasTDX, "tdxtcbcomponents", &l.TDXCompSVN); err != nil {
				return l, err
			}
		}
	}
	if !t.hasPCESVN {
		return l, errors.New("pcesvn missing")
	}
	var err error
	if l.PCESVN, err = svnRange(t.PCESVN, 0xffff, "pcesvn"); err != nil {
		return l, err
	}
	if l.TCBDate, err = parseTime(jl.TCBDate, "tcbDate"); err != nil {
		return l, err
	}
	if !TCBStatus(jl.TCBStatus).Valid() {
		return l, fmt.Errorf("tcbStatus missing or unknown")
	}
	l.Status = TCBStatus(jl.TCBStatus)
	l.AdvisoryIDs = append([]string(nil), jl.AdvisoryIDs...)
	return l, nil
}

// parseIdentityLevels reads the ISVSVN-keyed levels of an enclave or TDX
// module identity; ok says which statuses that document may carry.
func parseIdentityLevels(levels []IdentityLevelJSON, what string, ok func(TCBStatus) bool) ([]QELevel, error) {
	if len(levels) == 0 {
		return nil, fmt.Errorf("%s: no tcbLevels", what)
	}
	out := make([]QELevel, 0, len(levels))
	for i, jl := range levels {
		var l QELevel
		if jl.TCB.ISVSVN == nil || *jl.TCB.ISVSVN < 0 || *jl.TCB.ISVSVN > 0xffff {
			return nil, fmt.Errorf("%s level %d: isvsvn missing or out of range", what, i)
		}
		l.ISVSVN = *jl.TCB.ISVSVN
		var err error
		if l.TCBDate, err = parseTime(jl.TCBDate, fmt.Sprintf("%s level %d tcbDate", what, i)); err != nil {
			return nil, err
		}
		if jl.TCBStatus == "" {
			return nil, fmt.Errorf("%s level %d: tcbStatus missing", what, i)
		}
		s := TCBStatus(jl.TCBStatus)
		if !s.Valid() || !ok(s) {
			return nil, fmt.Errorf("%s level %d: tcbStatus %q, want UpToDate, OutOfDate or Revoked", what, i, s)
		}
		l.Status = s
		l.AdvisoryIDs = append([]string(nil), jl.AdvisoryIDs...)
		out = append(out, l)
	}
	return out, nil
}

// Enclave identity ids (the "id" member).
const (
	IDQE   = "QE"    // the SGX ECDSA quoting enclave
	IDTDQE = "TD_QE" // the TDX quoting enclave
)

// QEIdentity is an enclave identity document (version 2) of a quoting
// enclave: the SGX QE or the TDX TD_QE.
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

// QELevel is one QE (or TD_QE) TCB level.
type QELevel = IdentityLevel

// TDXModuleLevel is one TCB level of a TDX module identity.
type TDXModuleLevel = IdentityLevel

// ParseQEIdentity parses the exact bytes of an "enclaveIdentity" object. It
// accepts version 2 with id "QE" (the SGX ECDSA quoting enclave); TD_QE and
// QVE identities are rejected.
func ParseQEIdentity(b []byte) (*QEIdentity, error) { return ParseEnclaveIdentity(b, IDQE) }

// ParseTDQEIdentity parses a version 2 "enclaveIdentity" with id "TD_QE".
func ParseTDQEIdentity(b []byte) (*QEIdentity, error) { return ParseEnclaveIdentity(b, IDTDQE) }

var enclaveIdentityMembers = []string{"id", "version", "issueDate", "nextUpdate", "tcbEvaluationDataNumber",
	"miscselect", "miscselectMask", "attributes", "attributesMask", "mrsigner", "isvprodid", "tcbLevels"}

// ParseEnclaveIdentity parses a version 2 quoting-enclave identity whose id
// must be want (IDQE or IDTDQE).
func ParseEnclaveIdentity(b []byte, want string) (*QEIdentity, error) {
	what := "QE identity"
	if want == IDTDQE {
		what = "TD_QE identity"
	}
	var j EnclaveIdentityJSON
	m, err := decodeExact(b, what, &j, enclaveIdentityMembers, nil)
	if err != nil {
		return nil, err
	}
	if _, ok := m["id"]; !ok || j.ID != want {
		id := "<missing>"
		if ok {
			id = j.ID
		}
		return nil, fmt.Errorf("%s: id %s, want %s", what, id, want)
	}
	if err := require(m, what, enclaveIdentityMembers...); err != nil {
		return nil, err
	}
	q := &QEIdentity{ID: j.ID}
	if j.Version != 2 {
		return nil, fmt.Errorf("%s: version must be 2", what)
	}
	q.Version = 2
	if q.IssueDate, err = parseTime(j.IssueDate, what+" issueDate"); err != nil {
		return nil, err
	}
	if q.NextUpdate, err = parseTime(j.NextUpdate, what+" nextUpdate"); err != nil {
		return nil, err
	}
	q.TCBEvaluationDataNumber = j.TCBEvaluationDataNumber
	var ms, msm [4]byte
	if err := fixedHex(j.MiscSelect, ms[:], what+" miscselect"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.MiscSelectMask, msm[:], what+" miscselectMask"); err != nil {
		return nil, err
	}
	// The hex strings are MISCSELECT's bytes in report order (little-endian),
	// as QVL reads them (vectorToUint32 swaps the big-endian composition), so
	// that the masked comparison is a byte-wise one against the report.
	q.MiscSelect = binary.LittleEndian.Uint32(ms[:])
	q.MiscSelectMask = binary.LittleEndian.Uint32(msm[:])
	if err := fixedHex(j.Attributes, q.Attributes[:], what+" attributes"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.AttributesMask, q.AttributesMask[:], what+" attributesMask"); err != nil {
		return nil, err
	}
	if err := fixedHex(j.MRSigner, q.MRSigner[:], what+" mrsigner"); err != nil {
		return nil, err
	}
	if j.ISVProdID < 0 || j.ISVProdID > 0xffff {
		return nil, fmt.Errorf("%s: isvprodid missing or out of range", what)
	}
	q.ISVProdID = uint16(j.ISVProdID)
	qeStatus := func(s TCBStatus) bool { return s == UpToDate || s == OutOfDate || s == Revoked }
	if q.Levels, err = parseIdentityLevels(j.TCBLevels, what, qeStatus); err != nil {
		return nil, err
	}
	return q, nil
}

// DecodeEnclaveIdentityHeader decodes the header members of an
// "enclaveIdentity" body (id, version, dates, tcbEvaluationDataNumber) with
// unique member names, for sources that index collateral before any
// signature is checked; ParseEnclaveIdentity is the full, validating parse.
func DecodeEnclaveIdentityHeader(b []byte) (*EnclaveIdentityJSON, error) {
	m, err := strictjson.Object(b)
	if err != nil {
		return nil, fmt.Errorf("enclave identity: %w", err)
	}
	var j EnclaveIdentityJSON
	if err := members(m, "enclave identity", []field{{"id", &j.ID}, {"version", &j.Version}, {"issueDate", &j.IssueDate},
		{"nextUpdate", &j.NextUpdate}, {"tcbEvaluationDataNumber", &j.TCBEvaluationDataNumber}}); err != nil {
		return nil, err
	}
	return &j, nil
}
