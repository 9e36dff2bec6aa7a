package policy

import "github.com/attestd/attestd/policy/internal/jmespath"

// The compiled form of a policy. Parse resolves everything that does not
// depend on claims (keywords, tag names → slots, literals → values, literal
// JMESPath queries → compiled queries), so evaluation only walks slices.

type sectionKind uint8

const (
	secConfiguration sectionKind = iota
	secAuthorization
	secIssuance
)

var sectionNames = [...]string{"configurationrules", "authorizationrules", "issuancerules"}

func (k sectionKind) String() string { return sectionNames[k] }

type claimProp uint8

const (
	propType claimProp = iota
	propValue
	propIssuer
	propValueType
)

var propNames = [...]string{"type", "value", "issuer", "valueType"}

func (p claimProp) String() string { return propNames[p] }

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var opNames = [...]string{"==", "!=", "<", "<=", ">", ">="}

func (o cmpOp) String() string { return opNames[o] }

type actionKind uint8

const (
	actPermit actionKind = iota
	actDeny
	actAdd
	actIssue
	actIssueProperty
)

var actionNames = [...]string{"permit", "deny", "add", "issue", "issueproperty"}

func (a actionKind) String() string { return actionNames[a] }

type funcKind uint8

const (
	fnJmesPath funcKind = iota
	fnJsonToClaimValue
	fnIsSubsetOf
	fnAppendString
	fnNegateBool
	fnContainsOnlyValue
)

// funcNames holds the documented spelling (spec §6); lookup is case-insensitive.
var funcNames = [...]string{"JmesPath", "JsonToClaimValue", "IsSubsetOf", "AppendString", "NegateBool", "ContainsOnlyValue"}

var funcArity = [...]int{2, 1, 2, 2, 1, 2}

func (f funcKind) String() string { return funcNames[f] }

type exprKind uint8

const (
	exLiteral exprKind = iota
	exRef              // tag.prop
	exCall             // function call
)

// expr is a compiled expression (spec §5.5). A literal keeps its value both
// as a one-element list (no allocation when evaluated) and typed.
type expr struct {
	kind  exprKind
	lit   []any // exLiteral: exactly one value (string, int64 or bool)
	tag   int   // exRef: slot of the tag
	prop  claimProp
	fn    funcKind
	args  []*expr
	line  int
	col   int
	text  string // source text, for traces and errors
	query *jmespath.Query
	qerr  error // literal query that failed to compile: reported when the call runs (spec §6)
}

type propCond struct {
	prop claimProp
	op   cmpOp
	e    *expr
}

type cond struct {
	tag     int // slot, -1 when untagged
	tagName string
	negated bool
	props   []propCond
	line    int
	col     int
	text    string
}

type action struct {
	kind     actionKind
	claimTag int // issue/add/issueproperty(claim=tag): slot; -1 otherwise
	typ      *expr
	value    *expr
	line     int
	col      int
	text     string
}

type rule struct {
	section sectionKind
	index   int // 0-based within its section
	conds   []cond
	act     action
	ntags   int
	line    int
	col     int
	text    string
}

type section struct {
	kind  sectionKind
	line  int
	col   int
	rules []rule
}
