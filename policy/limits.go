package policy

import (
	"strconv"
	"unicode/utf8"
)

// Defaults of the limits on what an evaluation may issue (see Limits).
const (
	// MaxIssuedClaims is the default cap on the claims issuancerules may
	// issue in one evaluation. MAA's own policies issue a few dozen.
	MaxIssuedClaims = 4096
	// MaxIssuedBytes is the default cap on the bytes of issued claims (type
	// plus string value, 8 per Boolean or Integer value) of one evaluation.
	// The token carries every issued claim twice (top level and
	// x-ms-policy) and base64url grows it by a third, so this keeps a token
	// under about 6 MiB.
	MaxIssuedBytes = 2 << 20
)

// Names of the limits, as LimitError.Limit reports them.
const (
	LimitWork          = "Work"          // claim tests per evaluation (Limits.Work)
	LimitJMESPathSteps = "JMESPathSteps" // JMESPath work per evaluation (Limits.JMESPathSteps)
	LimitBuiltBytes    = "BuiltBytes"    // bytes of strings built per evaluation (Limits.BuiltBytes)
	LimitValueBytes    = "ValueBytes"    // bytes of one built or issued string (Limits.ValueBytes)
	LimitIssuedClaims  = "IssuedClaims"  // claims issued per evaluation (Limits.IssuedClaims)
	LimitIssuedBytes   = "IssuedBytes"   // bytes of issued claims per evaluation (Limits.IssuedBytes)
	LimitClaims        = "Claims"        // claims in the claim set (MaxClaims)
	LimitValues        = "Values"        // values of one expression (MaxValues)
)

// Limits bounds the cost of one evaluation: CPU (Work, JMESPathSteps),
// memory held while evaluating (BuiltBytes, ValueBytes) and the size of
// what goes into the token (IssuedClaims, IssuedBytes, ValueBytes). A zero
// field means that limit's default for a stored policy (the package
// constants MaxEvalWork, JMESPathSteps, MaxEvalBytes, MaxValueBytes,
// MaxIssuedClaims, MaxIssuedBytes); a negative one is treated as zero
// allowance, so every use of that resource fails.
//
// Stored policies are written by an administrator and evaluated with the
// defaults. A draftPolicyForAttestation comes from an anonymous caller, so
// the pipeline evaluates it with DraftLimits, which is lower on every
// budget: the work one attest request can demand should be of the order of
// verifying its evidence, not many times it.
type Limits struct {
	Work          int // claim-property tests and claim copies
	JMESPathSteps int // JMESPath nodes visited, elements produced, 16-byte units built; shared by all JmesPath calls
	BuiltBytes    int // bytes of strings built by AppendString and JmesPath
	ValueBytes    int // bytes of one string built, or issued
	IssuedClaims  int // claims issued by issuancerules
	IssuedBytes   int // bytes of issued claims (type + string value, 8 per Boolean or Integer)
}

// DraftLimits returns the limits for a draftPolicyForAttestation (and any
// other policy text supplied by a caller for one request): a tenth of a
// stored policy's work and JMESPath budgets (about 0.1 s of CPU on the
// build machine instead of a second), 2 MiB of built strings instead of 16,
// 256 KiB per value instead of 1 MiB, 1024 issued claims and 256 KiB of
// them instead of 4096 and 2 MiB.
func DraftLimits() Limits {
	return Limits{
		Work:          MaxEvalWork / 10,
		JMESPathSteps: JMESPathSteps / 10,
		BuiltBytes:    2 << 20,
		ValueBytes:    256 << 10,
		IssuedClaims:  1024,
		IssuedBytes:   256 << 10,
	}
}

// resolved fills zero fields with the stored-policy defaults and clamps
// negative ones to zero.
func (l Limits) resolved() Limits {
	def := func(v, d int) int {
		switch {
		case v == 0:
			return d
		case v < 0:
			return 0
		}
		return v
	}
	return Limits{
		Work:          def(l.Work, MaxEvalWork),
		JMESPathSteps: def(l.JMESPathSteps, JMESPathSteps),
		BuiltBytes:    def(l.BuiltBytes, MaxEvalBytes),
		ValueBytes:    def(l.ValueBytes, MaxValueBytes),
		IssuedClaims:  def(l.IssuedClaims, MaxIssuedClaims),
		IssuedBytes:   def(l.IssuedBytes, MaxIssuedBytes),
	}
}

// LimitError names the limit an evaluation exceeded. It matches ErrLimit
// (errors.Is), so callers that only care whether a limit was hit need not
// know the type; it sits in EvalError.Err.
type LimitError struct {
	Limit string // one of the Limit* names
	Max   int    // the limit in force
}

func (e *LimitError) Error() string {
	return "limit " + e.Limit + " (" + strconv.Itoa(e.Max) + ") exceeded"
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Bounds on text quoted in errors. Values quoted in error messages come from
// policy text or claims an anonymous caller controls; quoting them in full
// would let a 1 MB literal come back as a 1 MB response and log line.
const (
	// maxQuotedRunes is how much of a quoted value an error shows.
	maxQuotedRunes = 64
	// maxErrorField bounds any one text field of a rendered error (message,
	// rule text, hint) as a last line of defence.
	maxErrorField = 1024
)

// clip shortens s to its first n runes followed by "…(N bytes)" when it is
// longer, never splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i, runes := 0, 0
	for i < len(s) && runes < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		runes++
	}
	if i >= len(s) {
		return s
	}
	return s[:i] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// short clips a value quoted in an error message.
func short(s string) string { return clip(s, maxQuotedRunes) }
