package api

import (
	"bytes"
	"encoding/binary"
	"unsafe"
)

// fastAttestBody decodes the common shape of an attest request body in one
// pass: a JSON object whose members are the known attestBody names spelled
// exactly, each at most once, with plain string values (printable ASCII, no
// escapes: base64url evidence and data, dataType names, string nonces) and
// runtimeData/initTimeData objects of "data" and "dataType". It reports
// false for anything else — escapes, other members, numbers, null, a
// different case, trailing bytes — and the caller then uses encoding/json,
// so accepting is always a strict subset of what json.Unmarshal accepts,
// with the same result (FuzzFastAttestBody checks both). It exists because
// encoding/json scans the ~7 KB base64 string of a quote twice with its
// byte-at-a-time state machine: with ES256 tokens that was about a tenth
// of an attestation's CPU.
func fastAttestBody(raw []byte, b *attestBody) bool {
	p := &plainParser{s: raw}
	var seen members
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "quote":
			return seen.first(0) && p.viewTo(&b.Quote)
		case "report":
			return seen.first(1) && p.viewTo(&b.Report)
		case "data":
			return seen.first(2) && p.viewTo(&b.Data)
		case "draftPolicyForAttestation":
			return seen.first(3) && p.stringTo(&b.Draft)
		case "nonce":
			if !seen.first(4) {
				return false
			}
			start := p.i
			if _, ok := p.plainBytes(); !ok {
				return false
			}
			b.Nonce = append([]byte(nil), raw[start:p.i]...)
			return true
		case "runtimeData":
			if !seen.first(5) {
				return false
			}
			b.RuntimeData = &dataBody{}
			return p.data(b.RuntimeData)
		case "initTimeData":
			if !seen.first(6) {
				return false
			}
			b.InitTime = &dataBody{}
			return p.data(b.InitTime)
		}
		return false
	})
	p.ws()
	return ok && p.i == len(raw)
}

// members records which members of an object were read (bit i: the i-th
// known name), so that a repeated name leaves the fast path.
type members uint8

// first marks member i and reports whether it was not marked before.
func (m *members) first(i uint) bool {
	if *m&(1<<i) != 0 {
		return false
	}
	*m |= 1 << i
	return true
}

// plainParser reads the JSON subset fastAttestBody accepts.
type plainParser struct {
	s []byte
	i int
}

func (p *plainParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *plainParser) byte(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads {"key": value, …}, calling member with p positioned at each
// value.
func (p *plainParser) object(member func(key []byte) bool) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	for {
		p.ws()
		key, ok := p.plainBytes()
		if !ok || !p.byte(':') {
			return false
		}
		p.ws()
		if !member(key) {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// plainString reads a string of printable ASCII without escapes.
func (p *plainParser) plainString() (string, bool) {
	seg, ok := p.plainBytes()
	return string(seg), ok
}

// plainBytes is plainString without the copy: the bytes of the string in
// p.s. The closing quote is found with bytes.IndexByte and the bytes before
// it are checked eight at a time (plainASCII): the quote's ~7 KB of base64
// were scanned a byte at a time before, with three comparisons per byte.
func (p *plainParser) plainBytes() ([]byte, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	j := bytes.IndexByte(p.s[start:], '"')
	if j < 0 || !plainASCII(p.s[start:start+j]) {
		return nil, false
	}
	p.i = start + j + 1
	return p.s[start : start+j], true
}

func (p *plainParser) stringTo(dst **string) bool {
	s, ok := p.plainString()
	if ok {
		*dst = &s
	}
	return ok
}

// viewTo is stringTo for the base64 members (evidence, data), which
// decodeAttest decodes and drops before it returns: the string shares the
// body's bytes instead of copying them (the body is never written after it
// is read). Anything kept beyond decodeAttest (draft policy, nonce,
// dataType) is copied.
func (p *plainParser) viewTo(dst **string) bool {
	seg, ok := p.plainBytes()
	if ok {
		s := ""
		if len(seg) > 0 {
			s = unsafe.String(&seg[0], len(seg))
		}
		*dst = &s
	}
	return ok
}

// plainASCII reports whether every byte of b is printable ASCII other than
// the backslash (0x20–0x7e, not 0x5c): the bytes a JSON string holds
// verbatim. Eight bytes at a time, with the carry-free tests of
// "Bit Twiddling Hacks" (hasless, hasmore, haszero); a flagged word may be
// a false positive only where a true one is below it, so "any flagged" is
// exact. FuzzPlainASCII compares it with the byte-at-a-time definition.
func plainASCII(b []byte) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		below := (w - ones*0x20) & ^w & high       // a byte < 0x20
		above := (w + ones*(0x7f-0x7e) | w) & high // a byte > 0x7e
		x := w ^ (ones * '\\')
		backslash := (x - ones) & ^x & high // a byte == '\\'
		if below|above|backslash != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

func (p *plainParser) data(d *dataBody) bool {
	var seen members
	return p.object(func(key []byte) bool {
		switch string(key) {
		case "data":
			return seen.first(0) && p.viewTo(&d.Data)
		case "dataType":
			if !seen.first(1) {
				return false
			}
			s, ok := p.plainString()
			d.DataType = s
			return ok
		}
		return false
	})
}
