package api

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
	seen := map[string]bool{}
	ok := p.object(func(key string) bool {
		if seen[key] {
			return false
		}
		seen[key] = true
		switch key {
		case "quote":
			return p.stringTo(&b.Quote)
		case "report":
			return p.stringTo(&b.Report)
		case "data":
			return p.stringTo(&b.Data)
		case "draftPolicyForAttestation":
			return p.stringTo(&b.Draft)
		case "nonce":
			start := p.i
			if _, ok := p.plainString(); !ok {
				return false
			}
			b.Nonce = append([]byte(nil), raw[start:p.i]...)
			return true
		case "runtimeData":
			b.RuntimeData = &dataBody{}
			return p.data(b.RuntimeData)
		case "initTimeData":
			b.InitTime = &dataBody{}
			return p.data(b.InitTime)
		}
		return false
	})
	p.ws()
	return ok && p.i == len(raw)
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
func (p *plainParser) object(member func(key string) bool) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	for {
		p.ws()
		key, ok := p.plainString()
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
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		c := p.s[j]
		if c == '"' {
			p.i = j + 1
			return string(p.s[start:j]), true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return "", false
		}
	}
	return "", false
}

func (p *plainParser) stringTo(dst **string) bool {
	s, ok := p.plainString()
	if ok {
		*dst = &s
	}
	return ok
}

func (p *plainParser) data(d *dataBody) bool {
	seen := map[string]bool{}
	return p.object(func(key string) bool {
		if seen[key] {
			return false
		}
		seen[key] = true
		switch key {
		case "data":
			return p.stringTo(&d.Data)
		case "dataType":
			s, ok := p.plainString()
			d.DataType = s
			return ok
		}
		return false
	})
}
