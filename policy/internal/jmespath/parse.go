// Package jmespath is a JMESPath (https://jmespath.org/specification.html)
// implementation for the MAA policy function JmesPath (policy spec §6).
//
// Why not github.com/jmespath/go-jmespath (v0.4.0, pinned in go.mod)? Three
// things MAA policies need that it cannot give:
//   - custom functions: MAA adds equals_ignore_case, used by every documented
//     ELAM/driver rule; go-jmespath's function table is unexported and fixed;
//   - bounded work: a query of a few hundred bytes such as ([@,@]|[])
//     repeated doubles its result per stage; go-jmespath has no budget or
//     cancellation, so one policy could pin a CPU and exhaust memory;
//   - document order: it decodes objects into Go maps, so a query result can
//     not be serialised with keys in evidence order.
//
// go-jmespath remains the reference: the tests run the JMESPath compliance
// suite shipped with it and compare results with it differentially.
package jmespath

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on a query text. Exceeding one is a compile error wrapping ErrLimit.
const (
	MaxQueryBytes = 64 << 10
	maxQueryDepth = 128
	maxDataDepth  = 512
)

// SyntaxError is a query that is not valid JMESPath.
type SyntaxError struct {
	Query  string
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "invalid JMESPath query at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

type tk uint8

const (
	tkEOF tk = iota
	tkIdent
	tkQuoted
	tkRaw
	tkLiteral
	tkNumber
	tkDot
	tkStar
	tkLBracket
	tkFilter  // [?
	tkFlatten // []
	tkRBracket
	tkLBrace
	tkRBrace
	tkLParen
	tkRParen
	tkComma
	tkColon
	tkPipe
	tkOr
	tkAnd
	tkExpref
	tkNot
	tkEQ
	tkNE
	tkLT
	tkLTE
	tkGT
	tkGTE
	tkCurrent
)

var bindingPower = [...]int{
	tkPipe: 1, tkOr: 2, tkAnd: 3,
	tkEQ: 5, tkNE: 5, tkLT: 5, tkLTE: 5, tkGT: 5, tkGTE: 5,
	tkFlatten: 9, tkStar: 20, tkFilter: 21, tkDot: 40, tkNot: 45,
	tkLBrace: 50, tkLBracket: 55, tkLParen: 60,
	tkCurrent: 0,
}

type qtok struct {
	kind tk
	val  string
	pos  int
}

func lex(q string) ([]qtok, error) {
	var out []qtok
	i := 0
	fail := func(pos int, msg string) error { return &SyntaxError{Query: q, Offset: pos, Msg: msg} }
	for i < len(q) {
		c := q[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			for i < len(q) && (q[i] == '_' || (q[i] >= 'a' && q[i] <= 'z') || (q[i] >= 'A' && q[i] <= 'Z') || (q[i] >= '0' && q[i] <= '9')) {
				i++
			}
			out = append(out, qtok{tkIdent, q[start:i], start})
			continue
		case c == '-' || (c >= '0' && c <= '9'):
			i++
			for i < len(q) && q[i] >= '0' && q[i] <= '9' {
				i++
			}
			if q[start:i] == "-" {
				return nil, fail(start, "'-' must be followed by a digit")
			}
			out = append(out, qtok{tkNumber, q[start:i], start})
			continue
		case c == '"':
			i++
			for i < len(q) && q[i] != '"' {
				if q[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(q) {
				return nil, fail(start, "unterminated quoted identifier")
			}
			i++
			s, err := ParseJSON(q[start:i], 1)
			if err != nil {
				return nil, fail(start, "invalid quoted identifier")
			}
			out = append(out, qtok{tkQuoted, s.(string), start})
			continue
		case c == '\'':
			i++
			var b strings.Builder
			for {
				if i >= len(q) {
					return nil, fail(start, "unterminated raw string literal")
				}
				if q[i] == '\'' {
					break
				}
				if q[i] == '\\' && i+1 < len(q) && q[i+1] == '\'' {
					b.WriteByte('\'')
					i += 2
					continue
				}
				b.WriteByte(q[i])
				i++
			}
			i++
			out = append(out, qtok{tkRaw, b.String(), start})
			continue
		case c == '`':
			i++
			var b strings.Builder
			for {
				if i >= len(q) {
					return nil, fail(start, "unterminated JSON literal")
				}
				if q[i] == '`' {
					break
				}
				if q[i] == '\\' && i+1 < len(q) && q[i+1] == '`' {
					b.WriteByte('`')
					i += 2
					continue
				}
				b.WriteByte(q[i])
				i++
			}
			i++
			out = append(out, qtok{tkLiteral, b.String(), start})
			continue
		}
		two := ""
		if i+1 < len(q) {
			two = q[i : i+2]
		}
		k := tkEOF
		n := 2
		switch two {
		case "[?":
			k = tkFilter
		case "[]":
			k = tkFlatten
		case "||":
			k = tkOr
		case "&&":
			k = tkAnd
		case "==":
			k = tkEQ
		case "!=":
			k = tkNE
		case "<=":
			k = tkLTE
		case ">=":
			k = tkGTE
		}
		if k == tkEOF {
			n = 1
			switch c {
			case '.':
				k = tkDot
			case '*':
				k = tkStar
			case '[':
				k = tkLBracket
			case ']':
				k = tkRBracket
			case '{':
				k = tkLBrace
			case '}':
				k = tkRBrace
			case '(':
				k = tkLParen
			case ')':
				k = tkRParen
			case ',':
				k = tkComma
			case ':':
				k = tkColon
			case '|':
				k = tkPipe
			case '&':
				k = tkExpref
			case '!':
				k = tkNot
			case '<':
				k = tkLT
			case '>':
				k = tkGT
			case '@':
				k = tkCurrent
			default:
				r, _ := utf8.DecodeRuneInString(q[i:])
				return nil, fail(i, "unexpected character "+strconv.QuoteRune(r))
			}
		}
		out = append(out, qtok{k, q[i : i+n], start})
		i += n
	}
	out = append(out, qtok{tkEOF, "", len(q)})
	return out, nil
}

type nodeKind uint8

const (
	nCurrent nodeKind = iota
	nField
	nSub       // a.b: right evaluated on left's result
	nIndex     // [n] on current
	nSlice     // [a:b:c] on current
	nProject   // left array → right on each element
	nValueProj // left object → right on each value
	nFlatten   // flatten left one level
	nFilter    // left array, cond → right
	nPipe
	nOr
	nAnd
	nNot
	nCmp
	nList
	nHash
	nLiteral
	nFunc
	nExpRef
)

type node struct {
	kind     nodeKind
	name     string // field, function name
	op       tk     // comparator
	num      int    // index
	slice    [3]*int
	lit      any
	keys     []string // multiselect hash
	children []*node
	fn       *function
}

// Query is a compiled JMESPath expression; safe for concurrent use.
type Query struct {
	root *node
	text string
}

func (q *Query) String() string { return q.text }

// Compile parses a query. Unknown functions and wrong arities are compile
// errors (JMESPath "unknown-function" / "invalid-arity").
func Compile(q string) (*Query, error) {
	if len(q) > MaxQueryBytes {
		return nil, limitErr("JMESPath query is " + strconv.Itoa(len(q)) + " bytes; the limit is " + strconv.Itoa(MaxQueryBytes))
	}
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &qparser{toks: toks, q: q}
	n, err := p.parse()
	if err != nil {
		return nil, err
	}
	return &Query{root: n, text: q}, nil
}

type qparser struct {
	toks  []qtok
	i     int
	q     string
	depth int
}

type qabort struct{ err error }

func (p *qparser) parse() (n *node, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(qabort)
			if !ok {
				panic(r)
			}
			n, err = nil, a.err
		}
	}()
	n = p.expression(0)
	if p.cur().kind != tkEOF {
		p.fail("unexpected token " + strconv.Quote(p.cur().val))
	}
	return n, nil
}

func (p *qparser) cur() qtok  { return p.toks[p.i] }
func (p *qparser) peek() qtok { return p.toks[min(p.i+1, len(p.toks)-1)] }
func (p *qparser) adv()       { p.i = min(p.i+1, len(p.toks)-1) }

func (p *qparser) fail(msg string) {
	panic(qabort{&SyntaxError{Query: p.q, Offset: p.cur().pos, Msg: msg}})
}

func (p *qparser) match(k tk, what string) {
	if p.cur().kind != k {
		p.fail("expected " + what + ", found " + describe(p.cur()))
	}
	p.adv()
}

func describe(t qtok) string {
	if t.kind == tkEOF {
		return "end of query"
	}
	return strconv.Quote(t.val)
}

func bp(k tk) int {
	if int(k) < len(bindingPower) {
		return bindingPower[k]
	}
	return 0
}

func (p *qparser) expression(rbp int) *node {
	p.depth++
	if p.depth > maxQueryDepth {
		panic(qabort{limitErr("invalid JMESPath query at offset " + strconv.Itoa(p.cur().pos) + ": nested more than " + strconv.Itoa(maxQueryDepth) + " deep")})
	}
	t := p.cur()
	p.adv()
	left := p.nud(t)
	for rbp < bp(p.cur().kind) {
		t := p.cur()
		p.adv()
		left = p.led(t, left)
	}
	p.depth--
	return left
}

var current = &node{kind: nCurrent}

func (p *qparser) nud(t qtok) *node {
	switch t.kind {
	case tkLiteral:
		v, err := ParseJSON(strings.TrimSpace(t.val), maxDataDepth)
		if err != nil {
			panic(qabort{&SyntaxError{Query: p.q, Offset: t.pos, Msg: "invalid JSON literal: " + err.Error()}})
		}
		return &node{kind: nLiteral, lit: v}
	case tkRaw:
		return &node{kind: nLiteral, lit: t.val}
	case tkIdent:
		return &node{kind: nField, name: t.val}
	case tkQuoted:
		if p.cur().kind == tkLParen {
			p.fail("a quoted identifier cannot name a function")
		}
		return &node{kind: nField, name: t.val}
	case tkStar:
		return &node{kind: nValueProj, children: []*node{current, p.projectionRHS(bp(tkStar))}}
	case tkFilter:
		return p.filter(current)
	case tkFlatten:
		return &node{kind: nProject, children: []*node{{kind: nFlatten, children: []*node{current}}, p.projectionRHS(bp(tkFlatten))}}
	case tkLBracket:
		switch k := p.cur().kind; {
		case k == tkNumber || k == tkColon:
			n := p.indexOrSlice()
			if n.kind == nSlice {
				return &node{kind: nProject, children: []*node{n, p.projectionRHS(bp(tkStar))}}
			}
			return n
		case k == tkStar && p.peek().kind == tkRBracket:
			p.adv()
			p.adv()
			return &node{kind: nProject, children: []*node{current, p.projectionRHS(bp(tkStar))}}
		}
		return p.multiList()
	case tkLBrace:
		return p.multiHash()
	case tkNot:
		return &node{kind: nNot, children: []*node{p.expression(bp(tkNot))}}
	case tkLParen:
		n := p.expression(0)
		p.match(tkRParen, "')'")
		return n
	case tkExpref:
		return &node{kind: nExpRef, children: []*node{p.expression(0)}}
	case tkCurrent:
		return current
	}
	panic(qabort{&SyntaxError{Query: p.q, Offset: t.pos, Msg: "unexpected " + describe(t)}})
}

func (p *qparser) led(t qtok, left *node) *node {
	switch t.kind {
	case tkDot:
		if p.cur().kind == tkStar {
			p.adv()
			return &node{kind: nValueProj, children: []*node{left, p.projectionRHS(bp(tkStar))}}
		}
		return &node{kind: nSub, children: []*node{left, p.dotRHS(bp(tkDot))}}
	case tkPipe:
		return &node{kind: nPipe, children: []*node{left, p.expression(bp(tkPipe))}}
	case tkOr:
		return &node{kind: nOr, children: []*node{left, p.expression(bp(tkOr))}}
	case tkAnd:
		return &node{kind: nAnd, children: []*node{left, p.expression(bp(tkAnd))}}
	case tkEQ, tkNE, tkLT, tkLTE, tkGT, tkGTE:
		return &node{kind: nCmp, op: t.kind, children: []*node{left, p.expression(bp(t.kind))}}
	case tkLParen:
		if left.kind != nField {
			p.fail("invalid function call")
		}
		var args []*node
		for p.cur().kind != tkRParen {
			args = append(args, p.expression(0))
			if p.cur().kind == tkComma {
				p.adv()
				if p.cur().kind == tkRParen {
					p.fail("expected an argument after ','")
				}
			} else if p.cur().kind != tkRParen {
				p.fail("expected ',' or ')', found " + describe(p.cur()))
			}
		}
		p.adv()
		f, ok := functions[left.name]
		if !ok {
			p.fail("unknown function " + strconv.Quote(left.name))
		}
		if len(args) < len(f.args) || (!f.variadic && len(args) > len(f.args)) {
			p.fail("function " + left.name + " called with " + strconv.Itoa(len(args)) + " arguments")
		}
		return &node{kind: nFunc, name: left.name, fn: f, children: args}
	case tkFilter:
		return p.filter(left)
	case tkFlatten:
		return &node{kind: nProject, children: []*node{{kind: nFlatten, children: []*node{left}}, p.projectionRHS(bp(tkFlatten))}}
	case tkLBracket:
		switch k := p.cur().kind; {
		case k == tkNumber || k == tkColon:
			n := p.indexOrSlice()
			if n.kind == nSlice {
				return &node{kind: nProject, children: []*node{{kind: nSub, children: []*node{left, n}}, p.projectionRHS(bp(tkStar))}}
			}
			return &node{kind: nSub, children: []*node{left, n}}
		case k == tkStar && p.peek().kind == tkRBracket:
			p.adv()
			p.adv()
			return &node{kind: nProject, children: []*node{left, p.projectionRHS(bp(tkStar))}}
		}
		p.fail("expected a number, ':' or '*' after '['")
	}
	panic(qabort{&SyntaxError{Query: p.q, Offset: t.pos, Msg: "unexpected " + describe(t)}})
}

func (p *qparser) filter(left *node) *node {
	cond := p.expression(0)
	p.match(tkRBracket, "']'")
	right := p.projectionRHS(bp(tkFilter))
	return &node{kind: nFilter, children: []*node{left, right, cond}}
}

func (p *qparser) indexOrSlice() *node {
	var parts [3]*int
	idx := 0
	for p.cur().kind != tkRBracket {
		switch p.cur().kind {
		case tkColon:
			idx++
			if idx > 2 {
				p.fail("too many ':' in slice")
			}
			p.adv()
		case tkNumber:
			n, err := strconv.Atoi(p.cur().val)
			if err != nil {
				p.fail("index out of range")
			}
			parts[idx] = &n
			p.adv()
		default:
			p.fail("expected a number or ':' in index, found " + describe(p.cur()))
		}
	}
	p.adv()
	if idx == 0 {
		if parts[0] == nil {
			p.fail("empty index")
		}
		return &node{kind: nIndex, num: *parts[0]}
	}
	if parts[2] != nil && *parts[2] == 0 {
		p.fail("slice step cannot be 0")
	}
	return &node{kind: nSlice, slice: parts}
}

func (p *qparser) multiList() *node {
	var ch []*node
	for {
		ch = append(ch, p.expression(0))
		if p.cur().kind == tkComma {
			p.adv()
			continue
		}
		p.match(tkRBracket, "']'")
		return &node{kind: nList, children: ch}
	}
}

func (p *qparser) multiHash() *node {
	n := &node{kind: nHash}
	for {
		k := p.cur()
		if k.kind != tkIdent && k.kind != tkQuoted {
			p.fail("expected a key name in multiselect hash, found " + describe(k))
		}
		p.adv()
		p.match(tkColon, "':'")
		n.keys = append(n.keys, k.val)
		n.children = append(n.children, p.expression(0))
		if p.cur().kind == tkComma {
			p.adv()
			continue
		}
		p.match(tkRBrace, "'}'")
		return n
	}
}

func (p *qparser) dotRHS(rbp int) *node {
	switch p.cur().kind {
	case tkIdent, tkQuoted, tkStar:
		return p.expression(rbp)
	case tkLBracket:
		p.adv()
		return p.multiList()
	case tkLBrace:
		p.adv()
		return p.multiHash()
	}
	p.fail("expected an identifier, '[' or '{' after '.', found " + describe(p.cur()))
	return nil
}

func (p *qparser) projectionRHS(rbp int) *node {
	k := p.cur().kind
	switch {
	case bp(k) < 10:
		return current
	case k == tkLBracket || k == tkFilter:
		return p.expression(rbp)
	case k == tkDot:
		p.adv()
		return p.dotRHS(rbp)
	}
	p.fail("unexpected " + describe(p.cur()) + " after projection")
	return nil
}
