package policy

import (
	"strconv"
	"strings"

	"github.com/attestd/attestd/policy/internal/jmespath"
)

// parseAbort carries a *ParseError out of the recursive descent; Parse
// recovers it. No other panic is recovered.
type parseAbort struct{ err *ParseError }

type parser struct {
	src     string
	lx      *lexer
	tok     token
	prev    token // the token before tok
	peeked  bool
	peekTok token
	ver     int    // 10, 11 or 12
	version string // as written: "1.0", …
	path    []string
	nrules  int
	// per rule
	tags []string
}

// Parse parses and compiles a policy (spec §2–§4). Errors are *ParseError.
func Parse(text string) (p *Policy, err error) {
	ps := &parser{src: text, lx: newLexer(text)}
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(parseAbort)
			if !ok {
				panic(r)
			}
			p, err = nil, a.err
		}
	}()
	if len(text) > MaxPolicyBytes {
		ps.push("policy")
		ps.tok = token{line: 1, col: 1, text: strings.ToValidUTF8(text[:16], "")}
		ps.failAt(ps.tok, nil, "policy text is "+strconv.Itoa(len(text))+" bytes; the limit is "+strconv.Itoa(MaxPolicyBytes), "")
	}
	ps.next()
	return ps.policy(), nil
}

func (p *parser) next() {
	p.prev = p.tok
	if p.peeked {
		p.tok = p.peekTok
		p.peeked = false
		return
	}
	p.tok = p.lx.next()
}

func (p *parser) peek() token {
	if !p.peeked {
		p.peekTok = p.lx.next()
		p.peeked = true
	}
	return p.peekTok
}

func (p *parser) push(rule string) { p.path = append(p.path, rule) }
func (p *parser) pop()             { p.path = p.path[:len(p.path)-1] }

// failAt aborts parsing with an error located at t.
func (p *parser) failAt(t token, expected []string, msg, hint string) {
	// Every symbol (a string literal, but also an identifier or a run of
	// invalid characters) is quoted clipped: the error goes back to an
	// anonymous caller and into the log.
	panic(parseAbort{&ParseError{
		Line: t.line, Column: t.col, Offset: t.off,
		Offending: short(t.text), Expected: expected, Message: clip(msg, maxErrorField),
		Rule: strings.Join(p.path, " > "), Hint: clip(hint, maxErrorField),
	}})
}

// mismatch reports the current token as not allowed here, in ANTLR's words.
func (p *parser) mismatch(expected []string, hint string) {
	t := p.tok
	switch t.kind {
	case tInvalid:
		h := hint
		if t.text == "\u201c" || t.text == "\u201d" || t.text == "\u2018" || t.text == "\u2019" {
			h = "typographic quotes are not string delimiters; use the ASCII quote '\"'"
		}
		p.failAt(t, expected, "token recognition error at: '"+short(t.text)+"'", h)
	case tUnterminated:
		if strings.HasPrefix(t.text, "/*") {
			p.failAt(t, expected, "unterminated block comment", hint)
		}
		p.failAt(token{kind: t.kind, text: "\"", off: t.off, line: t.line, col: t.col}, expected,
			"string literal is not terminated before the end of the policy", hint)
	case tRegexOp:
		p.failAt(t, expected, "unsupported operator '"+short(t.text)+"'; conditions compare with ==, !=, <, <=, >, >=", hint)
	}
	if p.prev.kind == tString && p.prev.smartQ > 0 && hint == "" {
		l, c := position(p.src, p.prev.smartQ-1)
		hint = "the string starting at line " + strconv.Itoa(p.prev.line) + ", column " + strconv.Itoa(p.prev.col) +
			" contains a typographic quote at line " + strconv.Itoa(l) + ", column " + strconv.Itoa(c) +
			"; typographic quotes do not end a string, use the ASCII quote '\"'"
	}
	p.failAt(t, expected, "mismatched input '"+short(t.text)+"' expecting "+expectList(expected), hint)
}

func expectList(e []string) string {
	if len(e) == 1 {
		return e[0]
	}
	return "{" + strings.Join(e, ", ") + "}"
}

// isKeyword matches a keyword case-insensitively (spec §3, §13-1).
func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.text, kw)
}

func (p *parser) expect(k tokKind, what string) token {
	if p.tok.kind != k {
		p.mismatch([]string{what}, "")
	}
	t := p.tok
	p.next()
	return t
}

func (p *parser) policy() *Policy {
	p.push("policy")
	pol := &Policy{text: p.src}
	p.versionInfo(pol)
	// Sections in their fixed order, each at most once (spec §2).
	stage := 0 // 0: nothing yet, 1: configuration seen, 2: authorization seen, 3: issuance seen
	for {
		var expected []string
		switch stage {
		case 0:
			if p.ver >= 11 {
				expected = []string{"'configurationrules'", "'authorizationrules'"}
			} else {
				expected = []string{"'authorizationrules'"}
			}
		case 1:
			expected = []string{"'authorizationrules'"}
		case 2:
			expected = []string{"'issuancerules'", "<EOF>"}
		case 3:
			expected = []string{"<EOF>"}
		}
		switch {
		case p.tok.kind == tEOF && stage >= 2:
			p.pop()
			return pol
		case p.isKeyword("configurationrules") && stage == 0:
			if p.ver < 11 {
				p.failAt(p.tok, expected, "configurationrules requires policy version 1.1 or later (this policy is version "+p.version+")", "")
			}
			pol.sections[secConfiguration] = p.section(secConfiguration, "configurationRules")
			stage = 1
		case p.isKeyword("authorizationrules") && stage <= 1:
			pol.sections[secAuthorization] = p.section(secAuthorization, "authorizationRules")
			stage = 2
		case p.isKeyword("issuancerules") && stage == 2:
			pol.sections[secIssuance] = p.section(secIssuance, "issuanceRules")
			stage = 3
		default:
			hint := ""
			if p.tok.kind == tIdent {
				for i, name := range sectionNames {
					if strings.EqualFold(p.tok.text, name) {
						if stage > i || (i == 2 && stage < 2) || (i == 0 && stage > 0) {
							hint = "sections must appear once each, in the order configurationrules, authorizationrules, issuancerules"
						}
					}
				}
			}
			p.mismatch(expected, hint)
		}
	}
}

func (p *parser) versionInfo(pol *Policy) {
	p.push("versionInfo")
	if !p.isKeyword("version") {
		p.mismatch([]string{"'version'"}, "")
	}
	p.next()
	p.expect(tAssign, "'='")
	t := p.tok
	if t.kind != tDecimal {
		p.mismatch([]string{"VERSION_NUMBER"}, "")
	}
	switch t.text {
	case "1.0":
		p.ver = 10
	case "1.1":
		p.ver = 11
	case "1.2":
		p.ver = 12
	default:
		p.failAt(t, []string{"'1.0'", "'1.1'", "'1.2'"}, "unsupported policy version '"+short(t.text)+"'; expecting {'1.0', '1.1', '1.2'}", "")
	}
	p.version = t.text
	pol.version = t.text
	p.next()
	p.expect(tSemi, "';'")
	p.pop()
}

func (p *parser) section(kind sectionKind, ruleName string) *section {
	p.push(ruleName)
	s := &section{kind: kind, line: p.tok.line, col: p.tok.col}
	p.next()
	p.expect(tLBrace, "'{'")
	for p.tok.kind != tRBrace {
		if p.nrules >= MaxRules {
			p.failAt(p.tok, nil, "the policy has more than "+strconv.Itoa(MaxRules)+" rules", "")
		}
		r := p.rule(kind, len(s.rules))
		s.rules = append(s.rules, r)
		p.nrules++
	}
	p.next()
	p.expect(tSemi, "';'")
	p.pop()
	return s
}

var condStart = []string{"'['", "'!'", "IDENT ':'", "'=>'", "'}'"}

func (p *parser) rule(sec sectionKind, index int) rule {
	p.push("rule")
	start := p.tok
	r := rule{section: sec, index: index, line: start.line, col: start.col}
	p.tags = p.tags[:0]
	if p.tok.kind != tArrow {
		for {
			if len(r.conds) >= MaxConditions {
				p.failAt(p.tok, nil, "a rule has more than "+strconv.Itoa(MaxConditions)+" conditions", "")
			}
			r.conds = append(r.conds, p.condition(len(r.conds) == 0))
			if p.tok.kind != tAnd {
				break
			}
			p.next()
		}
		if p.tok.kind != tArrow {
			p.mismatch([]string{"'&&'", "'=>'"}, "")
		}
	}
	p.next() // =>
	r.act = p.action()
	end := p.expect(tSemi, "';'")
	r.ntags = len(p.tags)
	r.text = p.src[start.off : end.off+1]
	p.pop()
	return r
}

func (p *parser) condition(first bool) cond {
	p.push("condition")
	c := cond{tag: -1, line: p.tok.line, col: p.tok.col}
	start := p.tok.off
	var tagTok token
	switch {
	case p.tok.kind == tNot:
		if p.ver < 12 {
			p.failAt(p.tok, nil, "the '!' absence condition requires policy version 1.2 (this policy is version "+p.version+")", "")
		}
		c.negated = true
		p.next()
		if p.tok.kind != tLBrack {
			p.mismatch([]string{"'['"}, "a negated condition cannot carry a tag")
		}
	case p.tok.kind == tIdent:
		tagTok = p.tok
		if p.peek().kind != tColon {
			hint := ""
			for _, a := range actionNames {
				if strings.EqualFold(p.tok.text, a) {
					hint = "an action follows '=>' (\"=> " + a + "(…);\")"
				}
			}
			p.next()
			p.mismatch([]string{"':'"}, hint)
		}
		for _, t := range p.tags {
			if t == tagTok.text {
				p.failAt(tagTok, nil, "tag '"+t+"' is already bound by an earlier condition of this rule", "")
			}
		}
		p.next() // tag
		p.next() // :
		if p.tok.kind != tLBrack {
			p.mismatch([]string{"'['"}, "")
		}
	case p.tok.kind == tLBrack:
	default:
		exp := condStart
		if !first {
			exp = condStart[:3]
		}
		p.mismatch(exp, "")
	}
	p.next() // [
	if p.tok.kind != tRBrack {
		for {
			if len(c.props) >= MaxProps {
				p.failAt(p.tok, nil, "a condition has more than "+strconv.Itoa(MaxProps)+" claim property tests", "")
			}
			c.props = append(c.props, p.propCond())
			if p.tok.kind != tComma {
				break
			}
			p.next()
		}
	}
	if p.tok.kind != tRBrack {
		p.mismatch([]string{"','", "']'"}, "")
	}
	c.text = p.src[start : p.tok.off+1]
	p.next()
	if tagTok.kind == tIdent {
		c.tag = len(p.tags)
		c.tagName = tagTok.text
		p.tags = append(p.tags, tagTok.text)
	}
	p.pop()
	return c
}

var propExpected = []string{"'type'", "'value'", "'issuer'", "'valueType'"}

func (p *parser) claimProp(expected []string) claimProp {
	if p.tok.kind == tIdent {
		for i, n := range propNames {
			if strings.EqualFold(p.tok.text, n) {
				p.next()
				return claimProp(i)
			}
		}
	}
	p.mismatch(expected, "")
	return 0
}

var cmpExpected = []string{"'=='", "'!='", "'<'", "'<='", "'>'", "'>='"}

func (p *parser) propCond() propCond {
	p.push("claimCondition")
	var pc propCond
	pc.prop = p.claimProp(propExpected)
	switch p.tok.kind {
	case tEq:
		pc.op = opEq
	case tNe:
		pc.op = opNe
	case tLt:
		pc.op = opLt
	case tLe:
		pc.op = opLe
	case tGt:
		pc.op = opGt
	case tGe:
		pc.op = opGe
	case tAssign:
		p.mismatch(cmpExpected, "conditions compare with '=='; a single '=' only assigns action arguments")
	default:
		p.mismatch(cmpExpected, "")
	}
	p.next()
	pc.e = p.expr(0)
	p.pop()
	return pc
}

var actionExpected = []string{"'permit'", "'deny'", "'add'", "'issue'", "'issueproperty'"}

func (p *parser) action() action {
	p.push("action")
	a := action{claimTag: -1, line: p.tok.line, col: p.tok.col}
	start := p.tok.off
	found := false
	if p.tok.kind == tIdent {
		for i, n := range actionNames {
			if strings.EqualFold(p.tok.text, n) {
				a.kind = actionKind(i)
				found = true
			}
		}
	}
	if !found {
		hint := ""
		if p.tok.kind == tIdent {
			hint = "unknown action '" + short(p.tok.text) + "'"
		}
		p.mismatch(actionExpected, hint)
	}
	p.next()
	p.expect(tLParen, "'('")
	switch a.kind {
	case actPermit, actDeny:
		if p.tok.kind != tRParen {
			p.mismatch([]string{"')'"}, a.kind.String()+"() takes no arguments")
		}
	default:
		p.actionArgs(&a)
	}
	a.text = p.src[start : p.tok.off+1]
	p.next() // )
	p.pop()
	return a
}

var argExpected = []string{"'type'", "'value'", "'valueType'", "'claim'"}

func (p *parser) actionArgs(a *action) {
	p.push("actionArguments")
	if p.isKeyword("claim") && p.peek().kind == tAssign {
		p.next()
		p.next()
		if p.tok.kind != tIdent {
			p.mismatch([]string{"IDENT"}, "")
		}
		a.claimTag = p.lookupTag(p.tok)
		p.next()
		if p.tok.kind != tRParen {
			p.mismatch([]string{"')'"}, "claim= is the only argument of its action")
		}
		p.pop()
		return
	}
	seenVT := false
	for {
		if p.tok.kind != tIdent {
			hint := ""
			if p.tok.kind == tString {
				hint = "action arguments are named: type=…, value=…"
			}
			p.mismatch(argExpected, hint)
		}
		name := p.tok
		var slot **expr
		switch {
		case strings.EqualFold(name.text, "type"):
			slot = &a.typ
		case strings.EqualFold(name.text, "value"):
			slot = &a.value
		case strings.EqualFold(name.text, "valueType"):
			if seenVT {
				p.failAt(name, nil, "duplicate argument 'valueType'", "")
			}
			seenVT = true
		case strings.EqualFold(name.text, "claim"):
			p.failAt(name, nil, "claim= cannot be combined with other arguments", "")
		default:
			p.mismatch(argExpected, "")
		}
		if slot != nil && *slot != nil {
			p.failAt(name, nil, "duplicate argument '"+name.text+"'", "")
		}
		p.next()
		if p.tok.kind != tAssign {
			p.mismatch([]string{"'='"}, "")
		}
		p.next()
		e := p.expr(0)
		if slot != nil {
			*slot = e
		} // valueType= is accepted and ignored (spec §5.4, §13-6)
		if p.tok.kind == tComma {
			p.next()
			continue
		}
		if p.tok.kind != tRParen {
			p.mismatch([]string{"','", "')'"}, "")
		}
		break
	}
	if a.typ == nil || a.value == nil {
		missing := "type="
		if a.typ != nil {
			missing = "value="
		}
		p.failAt(p.tok, nil, a.kind.String()+"() needs both type= and value= (missing "+missing+")", "")
	}
	p.pop()
}

func (p *parser) lookupTag(t token) int {
	for i, n := range p.tags {
		if n == t.text {
			return i
		}
	}
	p.failAt(t, nil, "tag '"+short(t.text)+"' is not bound by an earlier condition of this rule", "")
	return -1
}

var exprExpected = []string{"STRING", "INTEGER", "'true'", "'false'", "TAG '.' PROPERTY", "FUNCTION '('"}

func (p *parser) expr(depth int) *expr {
	if depth > MaxExprDepth {
		p.failAt(p.tok, nil, "expressions are nested more than "+strconv.Itoa(MaxExprDepth)+" deep", "")
	}
	t := p.tok
	e := &expr{line: t.line, col: t.col}
	switch t.kind {
	case tString:
		if len(t.str) > MaxStringLiteral {
			p.failAt(t, nil, "string literal is longer than "+strconv.Itoa(MaxStringLiteral)+" bytes", "")
		}
		e.kind = exLiteral
		e.lit = []any{t.str}
		p.next()
	case tInt:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			p.failAt(t, nil, "integer literal '"+short(t.text)+"' does not fit in 64 bits", "")
		}
		e.kind = exLiteral
		e.lit = []any{n}
		p.next()
	case tDecimal:
		p.failAt(t, exprExpected, "mismatched input '"+short(t.text)+"' expecting "+expectList(exprExpected), "numbers are integers; fractions are not supported")
	case tIdent:
		switch {
		case strings.EqualFold(t.text, "true"):
			e.kind = exLiteral
			e.lit = []any{true}
			p.next()
		case strings.EqualFold(t.text, "false"):
			e.kind = exLiteral
			e.lit = []any{false}
			p.next()
		case p.peek().kind == tDot:
			e.kind = exRef
			e.tag = p.lookupTag(t)
			p.next()
			p.next()
			e.prop = p.claimProp(propExpected)
		case p.peek().kind == tLParen:
			p.call(e, depth)
		default:
			p.next()
			p.mismatch([]string{"'.'", "'('"}, "")
		}
	default:
		hint := ""
		if t.kind == tLt {
			hint = "'<…>' template placeholders must be replaced by a value"
		}
		p.mismatch(exprExpected, hint)
	}
	e.text = p.src[t.off:p.lastEnd()]
	return e
}

// lastEnd is the byte offset just past the previous token (the start of the
// current one, minus the whitespace between them).
func (p *parser) lastEnd() int {
	end := p.tok.off
	for end > 0 {
		c := p.src[end-1]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			end--
			continue
		}
		break
	}
	return end
}

func (p *parser) call(e *expr, depth int) {
	p.push("functionCall")
	t := p.tok
	found := false
	for i, n := range funcNames {
		if strings.EqualFold(t.text, n) {
			e.fn = funcKind(i)
			found = true
		}
	}
	if !found {
		p.failAt(t, nil, "unknown function '"+short(t.text)+"'; expecting {'JmesPath', 'JsonToClaimValue', 'IsSubsetOf', 'AppendString', 'NegateBool', 'ContainsOnlyValue'}", "")
	}
	if p.ver < 12 {
		p.failAt(t, nil, "function "+funcNames[e.fn]+" requires policy version 1.2 (this policy is version "+p.version+")", "")
	}
	e.kind = exCall
	p.next()
	p.next() // (
	if p.tok.kind != tRParen {
		for {
			e.args = append(e.args, p.expr(depth+1))
			if p.tok.kind != tComma {
				break
			}
			p.next()
		}
	}
	if p.tok.kind != tRParen {
		p.mismatch([]string{"','", "')'"}, "")
	}
	if len(e.args) != funcArity[e.fn] {
		p.failAt(t, nil, funcNames[e.fn]+" takes "+strconv.Itoa(funcArity[e.fn])+" argument(s), not "+strconv.Itoa(len(e.args)), "")
	}
	p.next()
	if e.fn == fnJmesPath && e.args[1].kind == exLiteral {
		if q, ok := e.args[1].lit[0].(string); ok {
			e.query, e.qerr = jmespath.Compile(q)
		}
	}
	p.pop()
}
