package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseError reports why a policy text was rejected (spec §4, §10). The API
// answers it with HTTP 400 and code PolicyParsingError.
type ParseError struct {
	Line      int      // 1-based line of the offending symbol
	Column    int      // 1-based column, counted in characters (a TAB is one character)
	Offset    int      // byte offset of the offending symbol in the policy text
	Offending string   // the offending symbol as written, "<EOF>" at the end of the text
	Expected  []string // what the grammar allows at this point, in ANTLR notation ('==', STRING, …); empty for static checks
	Message   string   // the failure message, e.g. "mismatched input '[' expecting ';'"
	Rule      string   // the grammar rule path, e.g. "policy > versionInfo"
	Hint      string   // optional advice beyond MAA's message (typographic quotes, '=' for '==', …)
}

func (e *ParseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy parse error at line %d, column %d: %s (rule %s)", e.Line, e.Column, clip(e.Message, maxErrorField), clip(e.Rule, maxErrorField))
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(clip(e.Hint, maxErrorField))
	}
	return b.String()
}

// MAADetail renders the text MAA places inside Msg:[…] for a parser failure
// (spec §10, troubleshooting guide):
//
//	Policy Parser Exception Thrown: Offending symbol: '<tok>'
//	Line: '<n>', Column: '<m>'
//	Failure message: '<text>'
//	Failing rule: '<path>'
//
// The column is the 1-based character column (MAA's base is unverified, spec §13-21).
// Every field is rendered clipped (64 runes of the offending symbol, 1024 of
// the others, then "…(N bytes)"), so the response to a policy holding a
// 1 MB literal stays small whoever built the ParseError.
func (e *ParseError) MAADetail() string {
	msg := clip(e.Message, maxErrorField)
	if e.Hint != "" {
		msg += " (" + clip(e.Hint, maxErrorField) + ")"
	}
	return "Policy Parser Exception Thrown: Offending symbol: '" + short(e.Offending) + "'\n" +
		"Line: '" + strconv.Itoa(e.Line) + "', Column: '" + strconv.Itoa(e.Column) + "'\n" +
		"Failure message: '" + msg + "'\n" +
		"Failing rule: '" + clip(e.Rule, maxErrorField) + "'"
}

// MAAMessage renders the complete error.message of MAA's 400
// PolicyParsingError response in the modern envelope recommended by spec §10.
func (e *ParseError) MAAMessage() string {
	return "Attestation Enclave operation failed with 65526: Exception(0) 83FFFFF6 Invalid policy was specified    Msg:[" +
		e.MAADetail() + "] \n\r\nUnhandled Enclave Exception: \"Invalid policy was specified\"\r\n"
}

// ErrorKind classifies an evaluation failure.
type ErrorKind uint8

const (
	// NoPermit: no permit() rule matched in authorizationrules (spec §5.7).
	NoPermit ErrorKind = iota + 1
	// Deny: a deny() rule matched in authorizationrules (spec §5.7).
	Deny
	// Runtime: an evaluation error (spec §5.8): bad function argument, invalid
	// JSON or JMESPath, issuing a read-only value, a limit exceeded, …
	Runtime
)

func (k ErrorKind) String() string {
	switch k {
	case NoPermit:
		return "NoPermit"
	case Deny:
		return "Deny"
	case Runtime:
		return "Runtime"
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// MAA's verbatim texts (spec §5.7, §10).
const (
	msgNoPermit = "Policy Engine Exception: No Permit claim was issued in the authorizationrules section, authorization failed."
	msgDeny     = "Policy Engine Exception: A Deny claim was issued, authorization failed."
)

// EvalError is a denied attestation or a failed evaluation. The API answers
// it with HTTP 400 and code PolicyEvaluationError.
type EvalError struct {
	Kind    ErrorKind
	Section string // "authorizationrules", … ; empty when no single rule decided (NoPermit)
	Line    int    // 1-based position of the deciding rule (Deny) or failing expression (Runtime); 0 for NoPermit
	Column  int
	Rule    string // source text of the deciding rule, when there is one
	Message string // what went wrong, without MAA's prefix
	// Err is the underlying cause of a Runtime error (JSON, JMESPath, limit), if any.
	Err error
}

func (e *EvalError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("policy evaluation: %s (%s, line %d, column %d)", clip(e.Message, maxErrorField), e.Section, e.Line, e.Column)
	}
	return "policy evaluation: " + clip(e.Message, maxErrorField)
}

func (e *EvalError) Unwrap() error { return e.Err }

// MAADetail renders the Msg:[…] part of MAA's PolicyEvaluationError. For
// NoPermit it is MAA's text exactly (no single rule decides). For Deny and
// Runtime errors it is MAA's text followed — beyond MAA — by the deciding
// rule's position, e.g. " Deciding rule: authorizationrules line 4, column 1: …".
// Message and rule text are rendered clipped (see ParseError.MAADetail).
func (e *EvalError) MAADetail() string {
	switch e.Kind {
	case NoPermit:
		return msgNoPermit
	case Deny:
		return msgDeny + e.where()
	default:
		return "Policy Engine Exception: " + clip(e.Message, maxErrorField) + "." + e.where()
	}
}

func (e *EvalError) where() string {
	if e.Line == 0 {
		return ""
	}
	s := " Deciding rule: " + e.Section + " line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column)
	if e.Rule != "" {
		s += ": " + clip(e.Rule, maxErrorField)
	}
	return s
}

// MAAMessage renders the complete error.message of MAA's 400
// PolicyEvaluationError response (spec §10; byte-identical to the recorded
// service text for NoPermit).
func (e *EvalError) MAAMessage() string {
	return "Attestation Enclave operation failed with 65518: Exception(0) 83FFFFEE Policy Evaluation Error has occurred    Msg:[" +
		e.MAADetail() + "] \n\r\nUnhandled Enclave Exception: \"Policy Evaluation Error has occurred\"\r\n"
}
