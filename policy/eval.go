package policy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/attestd/attestd/policy/internal/jmespath"
)

// EvalOptions tunes one evaluation.
type EvalOptions struct {
	// Trace records every rule's outcome in Result.Trace. It costs
	// allocations; leave it off on the hot path.
	Trace bool
	// Limits bounds the evaluation's work and what it may issue; the zero
	// value means the defaults for a stored policy. Pass DraftLimits() for
	// policy text supplied by the caller of one request
	// (draftPolicyForAttestation).
	Limits Limits
	// Defaults are configuration-property defaults besides spec §7's
	// built-in ones (the evidence verifier's; see ConfigureWith).
	Defaults map[string]any
}

// Decision is the outcome of the authorization section.
type Decision uint8

const (
	DecisionPermit   Decision = iota + 1 // a permit() matched and no deny() did
	DecisionNoPermit                     // no permit() matched
	DecisionDeny                         // a deny() matched
	DecisionError                        // evaluation failed (spec §5.8)
)

func (d Decision) String() string {
	switch d {
	case DecisionPermit:
		return "permit"
	case DecisionNoPermit:
		return "no-permit"
	case DecisionDeny:
		return "deny"
	case DecisionError:
		return "error"
	}
	return "unknown"
}

// MarshalText renders the decision as its name in JSON.
func (d Decision) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a name written by MarshalText.
func (d *Decision) UnmarshalText(b []byte) error {
	for c := DecisionPermit; c <= DecisionError; c++ {
		if c.String() == string(b) {
			*d = c
			return nil
		}
	}
	return fmt.Errorf("unknown decision %q", b)
}

// Result is the outcome of Evaluate.
type Result struct {
	Decision Decision
	// Issued holds the outgoing claims O in issue order (spec §5.4); serialise
	// them with TokenClaims.
	Issued []Claim
	// Properties holds the type defaults (spec §7) overridden by issueproperty:
	// engine properties from configurationrules, token properties from any section.
	Properties map[string]any
	// Trace is set when EvalOptions.Trace was.
	Trace *Trace
	// Err repeats the error Evaluate returned, if any.
	Err *EvalError
}

// iclaim is a claim inside the evaluator.
type iclaim struct {
	typ string
	val any
	iss string
	ro  bool
}

func (c *iclaim) public() Claim {
	return Claim{Type: c.typ, Value: c.val, Issuer: c.iss, ReadOnly: c.ro}
}

type jsonKey struct {
	p *byte
	n int
}

// evalState is the scratch space of one evaluation, pooled per Policy.
type evalState struct {
	claims  []iclaim
	idx     []int32    // claim indices selected by tagged conditions
	bind    [][2]int32 // tag slot → window of idx
	vals    []any      // value arena of the current rule
	plists  [][]any    // per property test of the current condition
	budget  jmespath.Budget
	lim     Limits          // resolved: no zero fields
	work    int             // claim tests and creations left (lim.Work)
	bytes   int             // bytes of strings built so far (lim.BuiltBytes)
	issued  int             // bytes of issued claims so far (lim.IssuedBytes)
	json    map[jsonKey]any // parsed JSON of JmesPath inputs, by string identity
	queries map[string]*jmespath.Query
	ctx     context.Context
	tr      *Trace
	res     *Result
	sec     sectionKind
	permit  *rule
	deny    *rule
}

func (p *Policy) state() *evalState {
	if st, ok := p.pool.Get().(*evalState); ok {
		return st
	}
	return &evalState{}
}

func (p *Policy) release(st *evalState) {
	clear(st.claims)
	st.claims = st.claims[:0]
	clear(st.vals)
	st.vals = st.vals[:0]
	st.idx = st.idx[:0]
	for i := range st.plists {
		st.plists[i] = nil
	}
	if st.json != nil {
		clear(st.json)
	}
	if st.queries != nil {
		clear(st.queries)
	}
	st.ctx, st.tr, st.res, st.permit, st.deny = nil, nil, nil, nil, nil
	if cap(st.claims) > 4096 || cap(st.vals) > 4096 {
		return // do not keep huge buffers alive
	}
	p.pool.Put(st)
}

func (st *evalState) reset(ctx context.Context, res *Result, lim Limits) {
	st.ctx = ctx
	st.res = res
	st.lim = lim.resolved()
	st.budget.Steps = st.lim.JMESPathSteps
	st.work = st.lim.Work
	st.bytes = 0
	st.issued = 0
	st.permit, st.deny = nil, nil
}

// Configure runs only configurationrules, over an empty claim set (spec
// §5.2 step 1), and returns the engine properties with the type defaults of
// spec §7 applied. Evidence verifiers need them before verification.
func (p *Policy) Configure(ctx context.Context, attestationType string) (map[string]any, error) {
	return p.ConfigureWith(ctx, attestationType, EvalOptions{})
}

// ConfigureWith is Configure with opts.Defaults (the evidence verifier's
// property defaults; the policy package knows no TEE) and under
// opts.Limits (opts.Trace is ignored): a draft policy's configurationrules
// run before its evidence is trusted, so they get the draft budget too.
func (p *Policy) ConfigureWith(ctx context.Context, attestationType string, opts EvalOptions) (map[string]any, error) {
	st := p.state()
	defer p.release(st)
	res := &Result{Properties: typeDefaults(attestationType, opts.Defaults)}
	st.reset(ctx, res, opts.Limits)
	if err := st.section(p.sections[secConfiguration]); err != nil {
		return nil, err
	}
	return res.Properties, nil
}

// Evaluate runs the policy over the incoming claims of one attestation
// (spec §5.2): configurationrules over an empty set → Properties;
// authorizationrules over incoming → decision (spec §5.7); issuancerules
// → Issued. A denial or evaluation failure returns *EvalError together with
// a Result whose Decision, Properties and (if requested) Trace are filled.
// Incoming values must be bool, string or an integer type (stored as int64).
func (p *Policy) Evaluate(ctx context.Context, attestationType string, incoming []Claim, opts EvalOptions) (*Result, error) {
	if len(incoming) > MaxClaims {
		return nil, fmt.Errorf("policy: %d incoming claims exceed the limit of %d", len(incoming), MaxClaims)
	}
	st := p.state()
	defer p.release(st)
	res := &Result{Properties: typeDefaults(attestationType, opts.Defaults)}
	if iss := p.sections[secIssuance]; iss != nil {
		res.Issued = make([]Claim, 0, len(iss.rules))
	}
	st.reset(ctx, res, opts.Limits)
	if opts.Trace {
		st.tr = &Trace{AttestationType: attestationType, PolicyVersion: p.version, PolicyHash: p.Hash()}
		res.Trace = st.tr
	}
	fail := func(e *EvalError, d Decision) (*Result, error) {
		res.Decision = d
		res.Err = e
		if st.tr != nil {
			st.tr.Decision = d
			st.tr.Error = e.MAADetail()
		}
		return res, e
	}
	if err := st.section(p.sections[secConfiguration]); err != nil {
		return fail(err, DecisionError)
	}
	st.claims = st.claims[:0]
	for i := range incoming {
		c := &incoming[i]
		v, err := normalize(c.Value)
		if err != nil {
			return nil, fmt.Errorf("policy: incoming claim %q: %w", c.Type, err)
		}
		ro := c.ReadOnly || (c.Type == "pcrs" && c.Issuer == IssuerService)
		st.claims = append(st.claims, iclaim{typ: c.Type, val: v, iss: c.Issuer, ro: ro})
	}
	if err := st.section(p.sections[secAuthorization]); err != nil {
		return fail(err, DecisionError)
	}
	if d := st.deny; d != nil {
		return fail(&EvalError{Kind: Deny, Section: d.section.String(), Line: d.line, Column: d.col, Rule: compact(d.text),
			Message: "A Deny claim was issued, authorization failed"}, DecisionDeny)
	}
	if st.permit == nil {
		return fail(&EvalError{Kind: NoPermit, Section: secAuthorization.String(),
			Message: "No Permit claim was issued in the authorizationrules section, authorization failed (" + p.permitRules() + ")"}, DecisionNoPermit)
	}
	if err := st.section(p.sections[secIssuance]); err != nil {
		return fail(err, DecisionError)
	}
	res.Decision = DecisionPermit
	if st.tr != nil {
		st.tr.Decision = DecisionPermit
		st.tr.Issued = res.Issued
		st.tr.Properties = res.Properties
	}
	return res, nil
}

// normalize maps accepted Go value types onto the claim model.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case bool, int64, string:
		return v, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > 1<<63-1 {
			return nil, errors.New("integer value does not fit in int64")
		}
		return int64(x), nil
	case uint:
		if uint64(x) > 1<<63-1 {
			return nil, errors.New("integer value does not fit in int64")
		}
		return int64(x), nil
	}
	return nil, fmt.Errorf("unsupported value type %T (want bool, integer or string)", v)
}

// compact is a rule's source text on one line, for errors: at most 200
// runes, so a rule holding a 256 KiB literal does not come back whole.
func compact(s string) string {
	if n := 4 * maxErrorField; len(s) > n {
		// Fields of the whole text would copy it; 200 runes need no more.
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return clip(strings.Join(strings.Fields(s), " "), 200)
}

func (st *evalState) section(s *section) *EvalError {
	if s == nil {
		return nil
	}
	st.sec = s.kind
	var secTr *SectionTrace
	if st.tr != nil {
		st.tr.Sections = append(st.tr.Sections, SectionTrace{Name: s.kind.String(), Line: s.line})
		secTr = &st.tr.Sections[len(st.tr.Sections)-1]
	}
	for i := range s.rules {
		if i&31 == 0 && st.ctx != nil {
			if err := st.ctx.Err(); err != nil {
				r := &s.rules[i]
				return &EvalError{Kind: Runtime, Section: s.kind.String(), Line: r.line, Column: r.col, Message: "evaluation cancelled: " + err.Error(), Err: err}
			}
		}
		var rt *RuleTrace
		if secTr != nil {
			secTr.Rules = append(secTr.Rules, RuleTrace{})
			rt = &secTr.Rules[len(secTr.Rules)-1]
		}
		if err := st.rule(&s.rules[i], rt); err != nil {
			if rt != nil {
				rt.Error = err.Message
			}
			return err
		}
	}
	return nil
}

func (st *evalState) runtimeErr(r *rule, line, col int, err error, format string, args ...any) *EvalError {
	return &EvalError{Kind: Runtime, Section: r.section.String(), Line: line, Column: col, Rule: compact(r.text),
		Message: clip(fmt.Sprintf(format, args...), maxErrorField), Err: err}
}

func (st *evalState) rule(r *rule, rt *RuleTrace) *EvalError {
	n0 := len(st.claims)
	st.idx = st.idx[:0]
	clear(st.vals)
	st.vals = st.vals[:0]
	if cap(st.bind) < r.ntags {
		st.bind = make([][2]int32, r.ntags)
	}
	st.bind = st.bind[:r.ntags]
	if rt != nil {
		*rt = RuleTrace{Section: r.section.String(), Index: r.index, Line: r.line, Column: r.col, Text: r.text, Action: r.act.kind.String()}
	}
	for ci := range r.conds {
		c := &r.conds[ci]
		st.plists = st.plists[:0]
		for pi := range c.props {
			l, _, err := st.eval(r, c.props[pi].e) // read-only values may be tested
			if err != nil {
				return err
			}
			st.plists = append(st.plists, l)
		}
		st.work -= n0 * (1 + len(c.props))
		if st.work < 0 {
			return st.runtimeErr(r, c.line, c.col, &LimitError{Limit: LimitWork, Max: st.lim.Work},
				"evaluation exceeded its work limit (%s) of %d claim tests", LimitWork, st.lim.Work)
		}
		start := int32(len(st.idx))
		n := 0
		for i := 0; i < n0; i++ {
			if !matchAll(&st.claims[i], c.props, st.plists) {
				continue
			}
			n++
			if c.tag >= 0 {
				st.idx = append(st.idx, int32(i))
			} else if rt == nil {
				break // existence is all an untagged or negated condition needs
			}
		}
		ok := (n > 0) != c.negated
		if c.tag >= 0 {
			st.bind[c.tag] = [2]int32{start, int32(len(st.idx))}
		}
		if rt != nil {
			ct := CondTrace{Text: c.text, Line: c.line, Column: c.col, Tag: c.tagName, Negated: c.negated, Selected: n, Satisfied: ok}
			if !ok {
				ct.Detail = st.explainMiss(c, n0)
			}
			rt.Conditions = append(rt.Conditions, ct)
			if !ok {
				rt.Reason = fmt.Sprintf("condition %d %s: %s", ci+1, c.text, ct.Detail)
			}
		}
		if !ok {
			return nil
		}
	}
	if rt != nil {
		rt.Matched = true
	}
	return st.act(r, n0, rt)
}

// matchAll reports whether x satisfies every property test (spec §5.3).
func matchAll(x *iclaim, props []propCond, lists [][]any) bool {
	for i := range props {
		pc := &props[i]
		var ok bool
		switch pc.prop {
		case propType:
			ok = cmpString(x.typ, pc.op, lists[i])
		case propIssuer:
			ok = cmpString(x.iss, pc.op, lists[i])
		case propValueType:
			ok = cmpString(valueTypeName(x.val), pc.op, lists[i])
		default:
			ok = cmpValue(x.val, pc.op, lists[i])
		}
		if !ok {
			return false
		}
	}
	return true
}

func valueTypeName(v any) string {
	switch v.(type) {
	case bool:
		return "Boolean"
	case int64:
		return "Integer"
	}
	return "String"
}

// cmpString: == some element equal; != no element equal; ordering is
// false for strings (spec §5.3 table).
func cmpString(s string, op cmpOp, list []any) bool {
	switch op {
	case opEq:
		for _, e := range list {
			if es, ok := e.(string); ok && es == s {
				return true
			}
		}
		return false
	case opNe:
		for _, e := range list {
			if es, ok := e.(string); ok && es == s {
				return false
			}
		}
		return true
	}
	return false
}

func cmpValue(v any, op cmpOp, list []any) bool {
	switch x := v.(type) {
	case string:
		return cmpString(x, op, list)
	case bool:
		eq := false
		for _, e := range list {
			if eb, ok := e.(bool); ok && eb == x {
				eq = true
				break
			}
		}
		switch op {
		case opEq:
			return eq
		case opNe:
			return !eq
		}
		return false
	case int64:
		if op == opNe {
			for _, e := range list {
				if ei, ok := e.(int64); ok && ei == x {
					return false
				}
			}
			return true
		}
		for _, e := range list {
			ei, ok := e.(int64)
			if !ok {
				continue
			}
			var r bool
			switch op {
			case opEq:
				r = x == ei
			case opLt:
				r = x < ei
			case opLe:
				r = x <= ei
			case opGt:
				r = x > ei
			case opGe:
				r = x >= ei
			}
			if r {
				return true
			}
		}
	}
	return false
}

// explainMiss says why a condition failed, for the trace.
func (st *evalState) explainMiss(c *cond, n0 int) string {
	if c.negated {
		for i := 0; i < n0; i++ {
			x := &st.claims[i]
			if matchAll(x, c.props, st.plists) {
				return fmt.Sprintf("a claim matches (%s = %s, issuer %s), so the absence test fails", x.typ, fmtValue(x.val), x.iss)
			}
		}
		return "a claim matches"
	}
	// Relax to the type tests alone and show what was there instead.
	var typeProps []propCond
	var typeLists [][]any
	for i, pc := range c.props {
		if pc.prop == propType {
			typeProps = append(typeProps, pc)
			typeLists = append(typeLists, st.plists[i])
		}
	}
	if len(typeProps) == 0 {
		return "no claim satisfies every test"
	}
	var seen []string
	for i := 0; i < n0 && len(seen) < 4; i++ {
		x := &st.claims[i]
		if matchAll(x, typeProps, typeLists) {
			seen = append(seen, fmt.Sprintf("%s = %s (issuer %s)", x.typ, fmtValue(x.val), x.iss))
		}
	}
	if len(seen) == 0 {
		return "no claim of that type"
	}
	return "claims of that type fail the other tests: " + strings.Join(seen, "; ")
}

func fmtValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(short(s))
	}
	return fmt.Sprint(v)
}

// chargeIssued counts claims about to be issued against the IssuedClaims,
// IssuedBytes and ValueBytes limits. Issued values are references to
// strings already held, so issuing one large value under many names costs
// the evaluator nothing; it is the token built from them that would grow
// (each issued claim appears at top level and under x-ms-policy).
func (st *evalState) chargeIssued(r *rule, a *action, created []iclaim) *EvalError {
	if n := len(st.res.Issued) + len(created); n > st.lim.IssuedClaims {
		return st.runtimeErr(r, a.line, a.col, &LimitError{Limit: LimitIssuedClaims, Max: st.lim.IssuedClaims},
			"issuing %d claims exceeds the limit (%s) of %d issued claims", n, LimitIssuedClaims, st.lim.IssuedClaims)
	}
	for i := range created {
		c := &created[i]
		n := len(c.typ)
		if len(c.typ) > st.lim.ValueBytes {
			return st.runtimeErr(r, a.line, a.col, &LimitError{Limit: LimitValueBytes, Max: st.lim.ValueBytes},
				"an issued claim type of %d bytes exceeds the limit (%s) of %d bytes", len(c.typ), LimitValueBytes, st.lim.ValueBytes)
		}
		if s, ok := c.val.(string); ok {
			if len(s) > st.lim.ValueBytes {
				return st.runtimeErr(r, a.line, a.col, &LimitError{Limit: LimitValueBytes, Max: st.lim.ValueBytes},
					"claim %s: an issued value of %d bytes exceeds the limit (%s) of %d bytes", strconv.Quote(short(c.typ)), len(s), LimitValueBytes, st.lim.ValueBytes)
			}
			n += len(s)
		} else {
			n += 8
		}
		st.issued += n
		if st.issued > st.lim.IssuedBytes {
			return st.runtimeErr(r, a.line, a.col, &LimitError{Limit: LimitIssuedBytes, Max: st.lim.IssuedBytes},
				"issued claims exceed the limit (%s) of %d bytes", LimitIssuedBytes, st.lim.IssuedBytes)
		}
	}
	return nil
}

// act runs the action of a matched rule (spec §5.4).
func (st *evalState) act(r *rule, n0 int, rt *RuleTrace) *EvalError {
	a := &r.act
	switch a.kind {
	case actPermit, actDeny:
		if st.sec != secAuthorization {
			if rt != nil {
				rt.Effect = a.kind.String() + " ignored outside authorizationrules"
			}
			return nil
		}
		if a.kind == actPermit {
			if st.permit == nil {
				st.permit = r
			}
		} else if st.deny == nil {
			st.deny = r
		}
		if rt != nil {
			rt.Effect = a.kind.String() + " recorded"
		}
		return nil
	}
	before := len(st.claims)
	if a.claimTag >= 0 {
		w := st.bind[a.claimTag]
		for _, i := range st.idx[w[0]:w[1]] {
			st.claims = append(st.claims, st.claims[i])
		}
	} else {
		types, roT, err := st.eval(r, a.typ)
		if err != nil {
			return err
		}
		vals, roV, err := st.eval(r, a.value)
		if err != nil {
			return err
		}
		for _, t := range types {
			ts, ok := t.(string)
			if !ok {
				return st.runtimeErr(r, a.typ.line, a.typ.col, nil, "claim type must be a String, got %s", valueTypeName(t))
			}
			if len(st.claims)+len(vals) > MaxClaims {
				return st.runtimeErr(r, a.line, a.col, &LimitError{Limit: LimitClaims, Max: MaxClaims},
					"the claim set exceeds the limit (%s) of %d claims", LimitClaims, MaxClaims)
			}
			for _, v := range vals {
				st.claims = append(st.claims, iclaim{typ: ts, val: v, iss: IssuerPolicy, ro: roT || roV})
			}
		}
	}
	if len(st.claims) > MaxClaims || len(st.claims)-before > MaxValues {
		return st.runtimeErr(r, a.line, a.col, &LimitError{Limit: LimitClaims, Max: MaxClaims},
			"the claim set exceeds the limit (%s) of %d claims", LimitClaims, MaxClaims)
	}
	created := st.claims[before:]
	switch {
	case a.kind == actIssue && st.sec == secIssuance:
		for i := range created {
			if created[i].ro {
				return st.runtimeErr(r, a.line, a.col, nil, "claim %s has a read-only value and cannot be issued", strconv.Quote(short(created[i].typ)))
			}
		}
		if err := st.chargeIssued(r, a, created); err != nil {
			return err
		}
		for i := range created {
			st.res.Issued = append(st.res.Issued, Claim{Type: created[i].typ, Value: created[i].val, Issuer: created[i].iss})
		}
		if rt != nil {
			rt.Issued = publicClaims(created)
		}
	case a.kind == actIssueProperty:
		for i := range created {
			c := &created[i]
			if c.ro {
				return st.runtimeErr(r, a.line, a.col, nil, "property %s has a read-only value and cannot be issued", strconv.Quote(short(c.typ)))
			}
			note, err := setProperty(st.res.Properties, c.typ, c.val, st.sec)
			if err != nil {
				return st.runtimeErr(r, a.line, a.col, nil, "%s", err.Error())
			}
			if rt != nil {
				rt.Properties = append(rt.Properties, c.public())
				if note != "" {
					rt.Effect = joinNote(rt.Effect, note)
				}
			}
		}
	default:
		if rt != nil {
			rt.Added = publicClaims(created)
			if a.kind == actIssue {
				rt.Effect = "issue outside issuancerules acts as add: not in the token"
			}
		}
	}
	if rt != nil && len(created) == 0 {
		rt.Effect = joinNote(rt.Effect, "no claim created (empty value list)")
	}
	return nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func publicClaims(cs []iclaim) []Claim {
	out := make([]Claim, len(cs))
	for i := range cs {
		out[i] = cs[i].public()
	}
	return out
}

// eval evaluates an expression to a value list (spec §5.5) plus its
// read-only flag. Lists other than literals live in st.vals until the rule ends.
func (st *evalState) eval(r *rule, e *expr) ([]any, bool, *EvalError) {
	switch e.kind {
	case exLiteral:
		return e.lit, false, nil
	case exRef:
		w := st.bind[e.tag]
		start := len(st.vals)
		ro := false
		for _, i := range st.idx[w[0]:w[1]] {
			c := &st.claims[i]
			switch e.prop {
			case propValue:
				st.vals = append(st.vals, c.val)
				ro = ro || c.ro
			case propType:
				st.vals = append(st.vals, c.typ)
			case propIssuer:
				st.vals = append(st.vals, c.iss)
			default:
				st.vals = append(st.vals, valueTypeName(c.val))
			}
		}
		return st.vals[start:len(st.vals):len(st.vals)], ro, nil
	}
	return st.call(r, e)
}

// jsonOf parses a JmesPath input once per evaluation (TPM policies query the
// same event log dozens of times).
func (st *evalState) jsonOf(s string) (any, error) {
	if len(s) > MaxJSONInput {
		return nil, fmt.Errorf("JSON input of %d bytes exceeds the limit of %d", len(s), MaxJSONInput)
	}
	k := jsonKey{unsafe.StringData(s), len(s)}
	if v, ok := st.json[k]; ok {
		return v, nil
	}
	v, err := jmespath.ParseJSON(s, maxJSONDepth)
	if err != nil {
		return nil, err
	}
	if st.json == nil {
		st.json = make(map[jsonKey]any)
	}
	if len(st.json) < 64 {
		st.json[k] = v
	}
	return v, nil
}

// permitRules names the permit() rules of authorizationrules, for the
// NoPermit message (MAA's text stays exact; this goes to Error() and logs).
func (p *Policy) permitRules() string {
	var lines []string
	if s := p.sections[secAuthorization]; s != nil {
		for i := range s.rules {
			if s.rules[i].act.kind == actPermit {
				lines = append(lines, fmt.Sprintf("%d:%d", s.rules[i].line, s.rules[i].col))
			}
		}
	}
	if n := len(lines); n > 8 {
		lines = append(lines[:8:8], "… ("+strconv.Itoa(n-8)+" more)")
	}
	switch len(lines) {
	case 0:
		return "the section has no permit() rule"
	case 1:
		return "the permit() rule at line " + lines[0] + " did not match"
	}
	return "none of the permit() rules at lines " + strings.Join(lines, ", ") + " matched"
}
