package policy

import (
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token of the policy language (spec §3).
type tokKind uint8

const (
	tEOF          tokKind = iota
	tIdent                // identifiers and keywords; keywords are recognised by the parser, case-insensitively
	tString               // "…" with \" and \\ escapes decoded
	tInt                  // -?[0-9]+
	tDecimal              // [0-9]+.[0-9]+ (only legal as the version number)
	tArrow                // =>
	tEq                   // ==
	tNe                   // !=
	tLe                   // <=
	tGe                   // >=
	tLt                   // <
	tGt                   // >
	tAssign               // =
	tNot                  // !
	tAnd                  // &&
	tLBrack               // [
	tRBrack               // ]
	tLBrace               // {
	tRBrace               // }
	tLParen               // (
	tRParen               // )
	tSemi                 // ;
	tComma                // ,
	tColon                // :
	tDot                  // .
	tRegexOp              // =~ or !~ : AD FS operators, lexed only to report them precisely
	tInvalid              // a character that starts no token
	tUnterminated         // a string literal or block comment that runs to the end of the input
)

// token is one lexeme with its position. text is the exact source slice;
// str is the decoded value of a string literal.
type token struct {
	kind   tokKind
	text   string
	str    string
	off    int // byte offset
	line   int // 1-based
	col    int // 1-based, in characters
	smartQ int // for strings: offset+1 of the first typographic quote inside, 0 if none
}

// lexer turns policy text into tokens on demand. It tracks line and column
// so every error can point at the exact character.
type lexer struct {
	src  string
	pos  int
	line int
	col  int
}

func newLexer(src string) *lexer {
	lx := &lexer{src: src, line: 1, col: 1}
	// A leading BOM is skipped (lenient, spec §3); it still counts for the hash.
	if strings.HasPrefix(src, "\ufeff") {
		lx.pos = len("\ufeff")
	}
	return lx
}

// advance moves over one character, keeping line/column in step.
func (lx *lexer) advance() {
	r, w := utf8.DecodeRuneInString(lx.src[lx.pos:])
	lx.pos += w
	if r == '\n' {
		lx.line++
		lx.col = 1
	} else {
		lx.col++
	}
}

// skip passes over whitespace and comments. An unterminated block comment
// is returned as a token so the parser can report it.
func (lx *lexer) skip() (token, bool) {
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			lx.advance()
		case c == '/' && lx.pos+1 < len(lx.src) && lx.src[lx.pos+1] == '/':
			for lx.pos < len(lx.src) && lx.src[lx.pos] != '\n' {
				lx.advance()
			}
		case c == '/' && lx.pos+1 < len(lx.src) && lx.src[lx.pos+1] == '*':
			start := token{kind: tUnterminated, off: lx.pos, line: lx.line, col: lx.col, text: "/*"}
			lx.advance()
			lx.advance()
			for {
				if lx.pos >= len(lx.src) {
					return start, true
				}
				if lx.src[lx.pos] == '*' && lx.pos+1 < len(lx.src) && lx.src[lx.pos+1] == '/' {
					lx.advance()
					lx.advance()
					break
				}
				lx.advance()
			}
		default:
			return token{}, false
		}
	}
	return token{}, false
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// next returns the next token. It never fails: problems come back as
// tInvalid / tUnterminated tokens that the parser turns into errors.
func (lx *lexer) next() token {
	if t, bad := lx.skip(); bad {
		return t
	}
	t := token{off: lx.pos, line: lx.line, col: lx.col}
	if lx.pos >= len(lx.src) {
		t.kind = tEOF
		t.text = "<EOF>"
		return t
	}
	c := lx.src[lx.pos]
	two := ""
	if lx.pos+1 < len(lx.src) {
		two = lx.src[lx.pos : lx.pos+2]
	}
	emit := func(k tokKind, n int) token {
		for i := 0; i < n; i++ {
			lx.advance()
		}
		t.kind = k
		t.text = lx.src[t.off:lx.pos]
		return t
	}
	switch two {
	case "=>":
		return emit(tArrow, 2)
	case "==":
		return emit(tEq, 2)
	case "!=":
		return emit(tNe, 2)
	case "<=":
		return emit(tLe, 2)
	case ">=":
		return emit(tGe, 2)
	case "&&":
		return emit(tAnd, 2)
	case "=~", "!~":
		return emit(tRegexOp, 2)
	}
	switch c {
	case '<':
		return emit(tLt, 1)
	case '>':
		return emit(tGt, 1)
	case '=':
		return emit(tAssign, 1)
	case '!':
		return emit(tNot, 1)
	case '[':
		return emit(tLBrack, 1)
	case ']':
		return emit(tRBrack, 1)
	case '{':
		return emit(tLBrace, 1)
	case '}':
		return emit(tRBrace, 1)
	case '(':
		return emit(tLParen, 1)
	case ')':
		return emit(tRParen, 1)
	case ';':
		return emit(tSemi, 1)
	case ',':
		return emit(tComma, 1)
	case ':':
		return emit(tColon, 1)
	case '.':
		return emit(tDot, 1)
	case '"':
		return lx.lexString(t)
	}
	if isIdentStart(c) {
		n := 1
		for lx.pos+n < len(lx.src) && isIdentPart(lx.src[lx.pos+n]) {
			n++
		}
		return emit(tIdent, n)
	}
	if isDigit(c) || (c == '-' && lx.pos+1 < len(lx.src) && isDigit(lx.src[lx.pos+1])) {
		n := 1
		for lx.pos+n < len(lx.src) && isDigit(lx.src[lx.pos+n]) {
			n++
		}
		if c != '-' && lx.pos+n+1 < len(lx.src) && lx.src[lx.pos+n] == '.' && isDigit(lx.src[lx.pos+n+1]) {
			n++
			for lx.pos+n < len(lx.src) && isDigit(lx.src[lx.pos+n]) {
				n++
			}
			return emit(tDecimal, n)
		}
		return emit(tInt, n)
	}
	return emit(tInvalid, 1) // one character, whatever its UTF-8 length
}

// lexString reads a string literal. Escapes: \" → ", \\ → \; any other
// backslash pair is kept verbatim (spec §3, §13-3). Raw newlines are allowed.
func (lx *lexer) lexString(t token) token {
	lx.advance() // opening quote
	var b strings.Builder
	plain := true // no escapes seen: str can alias the source
	start := lx.pos
	for {
		if lx.pos >= len(lx.src) {
			t.kind = tUnterminated
			t.text = lx.src[t.off:]
			return t
		}
		c := lx.src[lx.pos]
		if c == '"' {
			if plain {
				t.str = lx.src[start:lx.pos]
			} else {
				t.str = b.String()
			}
			lx.advance()
			t.kind = tString
			t.text = lx.src[t.off:lx.pos]
			return t
		}
		if c == '\\' && lx.pos+1 < len(lx.src) && (lx.src[lx.pos+1] == '"' || lx.src[lx.pos+1] == '\\') {
			if plain {
				b.WriteString(lx.src[start:lx.pos])
				plain = false
			}
			b.WriteByte(lx.src[lx.pos+1])
			lx.advance()
			lx.advance()
			continue
		}
		if t.smartQ == 0 && (strings.HasPrefix(lx.src[lx.pos:], "\u201d") || strings.HasPrefix(lx.src[lx.pos:], "\u201c")) {
			t.smartQ = lx.pos + 1
		}
		p := lx.pos
		lx.advance()
		if !plain {
			b.WriteString(lx.src[p:lx.pos]) // bytes as written, even if not valid UTF-8
		}
	}
}

// position returns line and column (1-based, characters) of a byte offset.
func position(src string, off int) (line, col int) {
	line, col = 1, 1
	i := 0
	if strings.HasPrefix(src, "\ufeff") {
		i = len("\ufeff")
	}
	for i < off && i < len(src) {
		r, w := utf8.DecodeRuneInString(src[i:])
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i += w
	}
	return line, col
}
