package bundle

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"

	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral"
)

// Scan limits: a collateral directory holds a handful of files; these only
// stop a mistaken path (/, a home directory) from being read whole.
const (
	maxDepth = 8
	maxFiles = 10000
)

type docSlot struct {
	path  string
	body  []byte
	sig   []byte
	chain []byte // nil until resolved from certificate files
	issue time.Time
	num   int // tcbEvaluationDataNumber
}

// wholeSet is a set that came whole (dcap-qvl JSON, QVE dump). Its items are
// served only together, never mixed with other files' items.
type wholeSet struct {
	c    *collateral.Collateral
	info *collateral.Info
}

type crlSlot struct {
	path  string
	info  *collateral.CRLInfo
	chain []byte // PCK CRLs only
}

type tcbKey struct {
	tee   collateral.TEE
	fmspc string
}

// numKey files documents by TCB evaluation data number; fmspc is empty for
// QE identities.
type numKey struct {
	tee   collateral.TEE
	fmspc string
	num   int
}

type certFile struct {
	path  string
	raw   []byte // the file as found (PEM), or PEM made from a DER file
	certs []*x509.Certificate
	hint  string // slot the file name mentions: "tcb", "qe", "pckcrl" or ""
}

// slots holds, per collateral slot, the newest document found so far; tcbN
// and qeN hold the newest per TCB evaluation data number (the baselines a
// request with a TCBEvaluationDataNumber selects).
type slots struct {
	tcb   map[tcbKey]*docSlot
	qe    map[collateral.TEE]*docSlot
	tcbN  map[numKey]*docSlot
	qeN   map[numKey]*docSlot
	pck   map[string]*crlSlot
	root  *crlSlot
	certs []*certFile
	whole map[collateral.Request]*wholeSet
	// wholeN holds whole sets by request with TCBEvaluationDataNumber set
	// (only sets whose TCB info and QE identity carry the same number).
	wholeN map[collateral.Request]*wholeSet
	err    error
}

func newSlots() *slots {
	return &slots{tcb: map[tcbKey]*docSlot{}, qe: map[collateral.TEE]*docSlot{}, tcbN: map[numKey]*docSlot{}, qeN: map[numKey]*docSlot{},
		pck: map[string]*crlSlot{}, whole: map[collateral.Request]*wholeSet{}, wholeN: map[collateral.Request]*wholeSet{}}
}

func (s *slots) putTCB(k tcbKey, d *docSlot) {
	if old, ok := s.tcb[k]; !ok || d.issue.After(old.issue) {
		s.tcb[k] = d
	}
	nk := numKey{k.tee, k.fmspc, d.num}
	if old, ok := s.tcbN[nk]; !ok || d.issue.After(old.issue) {
		s.tcbN[nk] = d
	}
}

func (s *slots) putQE(tee collateral.TEE, d *docSlot) {
	if old, ok := s.qe[tee]; !ok || d.issue.After(old.issue) {
		s.qe[tee] = d
	}
	nk := numKey{tee: tee, num: d.num}
	if old, ok := s.qeN[nk]; !ok || d.issue.After(old.issue) {
		s.qeN[nk] = d
	}
}

func (s *slots) putCRL(c *crlSlot) {
	if c.info.CA == collateral.CARoot {
		if s.root == nil || c.info.ThisUpdate.After(s.root.info.ThisUpdate) {
			s.root = c
		}
		return
	}
	if old, ok := s.pck[c.info.CA]; !ok || c.info.ThisUpdate.After(old.info.ThisUpdate) {
		s.pck[c.info.CA] = c
	}
}

func (s *slots) merge(o *slots) {
	for k, d := range o.tcbN {
		s.putTCB(tcbKey{k.tee, k.fmspc}, d)
	}
	for k, d := range o.qeN {
		s.putQE(k.tee, d)
	}
	for _, c := range o.pck {
		s.putCRL(c)
	}
	if o.root != nil {
		s.putCRL(o.root)
	}
	s.certs = append(s.certs, o.certs...)
	for _, w := range o.whole {
		s.putWhole(w)
	}
	for _, w := range o.wholeN {
		s.putWhole(w)
	}
	if s.err == nil {
		s.err = o.err
	}
}

func (s *slots) putWhole(w *wholeSet) {
	r := w.info.Request
	if old, ok := s.whole[r]; !ok || w.info.TCBInfo.IssueDate.After(old.info.TCBInfo.IssueDate) {
		s.whole[r] = w
	}
	if n := w.info.TCBInfo.TCBEvaluationDataNumber; n > 0 && n == w.info.QEIdentity.TCBEvaluationDataNumber {
		r.TCBEvaluationDataNumber = n
		if old, ok := s.wholeN[r]; !ok || w.info.TCBInfo.IssueDate.After(old.info.TCBInfo.IssueDate) {
			s.wholeN[r] = w
		}
	}
}

// slotsFromSet files a whole collateral set.
func slotsFromSet(c *collateral.Collateral) *slots {
	s := newSlots()
	info, err := c.Inspect()
	if err != nil {
		s.err = err
		return s
	}
	s.putWhole(&wholeSet{c: c, info: info})
	return s
}

func loadDir(path string) (*Bundle, error) {
	// WalkDir does not follow a symlinked root; resolve it first.
	root, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("collateral bundle: %w", err)
	}
	s := newSlots()
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != root && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			if rel != "." && strings.Count(rel, string(filepath.Separator))+1 > maxDepth {
				return filepath.SkipDir
			}
			return nil
		}
		if n++; n > maxFiles {
			return fmt.Errorf("more than %d files under %s; is this a collateral directory?", maxFiles, root)
		}
		// Symlinks to files are followed: a Kubernetes ConfigMap or Secret
		// volume presents every file as a symlink into a hidden ..data
		// directory. Symlinked directories are not entered (no loops).
		st, err := os.Stat(path)
		if err != nil {
			if d.Type()&fs.ModeSymlink != 0 {
				return nil // dangling symlink
			}
			return err
		}
		if !st.Mode().IsRegular() {
			return nil
		}
		if st.Size() > maxFileSize {
			return nil // not collateral
		}
		b, err := readFile(path)
		if err != nil {
			return err
		}
		if err := s.addFile(path, b); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collateral bundle %s: %w", root, err)
	}
	return build(path, s)
}

// addFile classifies one file by content and files it into its slot.
func (s *slots) addFile(path string, b []byte) error {
	t := bytes.Trim(b, " \t\r\n\x00")
	t = bytes.TrimPrefix(t, []byte("\ufeff"))
	switch {
	case len(t) == 0:
		return nil
	case t[0] == '{':
		return s.addJSON(path, t)
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		return s.addPEM(path, b, t)
	case looksLikeQVE(b):
		c, err := ParseQVECollateral(b)
		if err != nil {
			return err
		}
		s.mergeSet(c)
		return nil
	case b[0] == 0x30:
		s.addDER(path, b)
		return nil
	case isHex(t):
		der, _ := hex.DecodeString(string(t))
		if len(der) > 0 && der[0] == 0x30 {
			s.addDER(path, der)
		}
		return nil
	}
	return nil // not collateral (a quote, a note, …)
}

func (s *slots) mergeSet(c *collateral.Collateral) {
	s.merge(slotsFromSet(c))
}

func (s *slots) addJSON(path string, b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%w: starts like JSON but is not a JSON object: %v", collateral.ErrMalformed, err)
	}
	switch {
	case m["tcbInfo"] != nil:
		d, err := collateral.ParseTCBInfoResponse(b)
		if err != nil {
			return err
		}
		h, err := collateral.ParseTCBInfoHeader(d.Body)
		if err != nil {
			return err
		}
		s.putTCB(tcbKey{h.TEE(), h.FMSPC}, &docSlot{path: path, body: d.Body, sig: d.Signature, issue: h.IssueDate, num: h.TCBEvaluationDataNumber})
	case m["enclaveIdentity"] != nil || m["qeIdentity"] != nil:
		d, err := collateral.ParseQEIdentityResponse(b)
		if err != nil {
			return err
		}
		h, err := collateral.ParseEnclaveIdentityHeader(d.Body)
		if err != nil {
			return err
		}
		tee, ok := h.TEE()
		if !ok {
			return nil // a QVE identity: not part of quote collateral
		}
		s.putQE(tee, &docSlot{path: path, body: d.Body, sig: d.Signature, issue: h.IssueDate, num: h.TCBEvaluationDataNumber})
	case m["attestdCollateralRecord"] != nil:
		// A record written by the collateral cache: a whole set. Records of
		// other families (AMD KDS documents cached beside) are not Intel
		// collateral and are skipped.
		_, c, _, err := collateral.DecodeRecord(collateral.DCAPCodec, b)
		if errors.Is(err, collateral.ErrOtherFamily) {
			return nil
		}
		if err != nil {
			return err
		}
		s.mergeSet(c)
	case m["tcb_info"] != nil:
		c, err := ParseQVLJSON(b)
		if err != nil {
			return err
		}
		s.mergeSet(c)
	}
	return nil
}

func (s *slots) addPEM(path string, b, t []byte) error {
	blk, _ := pem.Decode(t)
	if blk == nil {
		return fmt.Errorf("%w: broken PEM", collateral.ErrMalformed)
	}
	switch blk.Type {
	case "X509 CRL":
		info, err := collateral.ParseCRL(t)
		if err != nil {
			return err
		}
		s.putCRL(&crlSlot{path: path, info: info})
	case "CERTIFICATE":
		certs, err := collateral.ParseCertChain(b)
		if err != nil {
			return err
		}
		s.certs = append(s.certs, &certFile{path: path, raw: b, certs: certs, hint: nameHint(path)})
	}
	return nil
}

// addDER files a DER CRL or certificate; other DER (keys, quotes that
// happen to start with 0x30) is not collateral and is skipped.
func (s *slots) addDER(path string, der []byte) {
	if info, err := collateral.ParseCRL(der); err == nil {
		s.putCRL(&crlSlot{path: path, info: info})
		return
	}
	if c, err := x509.ParseCertificate(der); err == nil {
		raw := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		s.certs = append(s.certs, &certFile{path: path, raw: raw, certs: []*x509.Certificate{c}, hint: nameHint(path)})
	}
}

func isHex(b []byte) bool {
	if len(b)%2 != 0 {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func nameHint(path string) string {
	n := strings.ToLower(filepath.Base(path))
	n = strings.NewReplacer("-", "", "_", "", ".", "").Replace(n)
	switch {
	case strings.Contains(n, "pckcrl"):
		return "pckcrl"
	case strings.Contains(n, "qeid") || strings.Contains(n, "enclaveidentity"):
		return "qe"
	case strings.Contains(n, "tcb"):
		return "tcb"
	}
	return ""
}

func isTCBSigner(c *x509.Certificate) bool {
	return strings.Contains(strings.ToLower(c.Subject.CommonName), "tcb signing")
}

func isRoot(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && strings.Contains(strings.ToLower(c.Subject.CommonName), "root")
}

func covers(c *x509.Certificate, at time.Time) bool {
	return !at.Before(c.NotBefore) && !at.After(c.NotAfter)
}

// resolveChain finds the issuer chain for a document issued at `at` in
// directory dir: a whole chain file if there is one (kept byte for byte),
// else signer + root assembled from single certificates.
func resolveChain(files []*certFile, dir string, at time.Time, hint string, signer func(*x509.Certificate) bool) []byte {
	var best *certFile
	bestScore := -1
	for _, f := range files {
		if len(f.certs) < 2 || !signer(f.certs[0]) {
			continue
		}
		score := 0
		if covers(f.certs[0], at) {
			score += 4
		}
		if filepath.Dir(f.path) == dir {
			score += 2
		}
		if f.hint == hint {
			score++
		}
		if score > bestScore {
			best, bestScore = f, score
		}
	}
	if best != nil {
		return best.raw
	}
	pick := func(ok func(*x509.Certificate) bool) *x509.Certificate {
		var p *x509.Certificate
		for _, f := range files {
			for _, c := range f.certs {
				if !ok(c) {
					continue
				}
				switch {
				case p == nil,
					covers(c, at) && !covers(p, at),
					covers(c, at) == covers(p, at) && c.NotAfter.After(p.NotAfter):
					p = c
				}
			}
		}
		return p
	}
	leaf := pick(signer)
	if leaf == nil {
		return nil
	}
	root := pick(func(c *x509.Certificate) bool { return isRoot(c) && bytes.Equal(c.RawSubject, leaf.RawIssuer) })
	if root == nil {
		return nil
	}
	var out []byte
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})...)
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})...)
	return out
}

// build resolves missing issuer chains and assembles every complete set.
func build(path string, s *slots) (*Bundle, error) {
	if s.err != nil {
		return nil, fmt.Errorf("collateral bundle %s: %w", path, s.err)
	}
	for _, d := range s.tcbN { // every TCB info, the newest of s.tcb included
		if d.chain == nil {
			d.chain = resolveChain(s.certs, filepath.Dir(d.path), d.issue, "tcb", isTCBSigner)
		}
	}
	for _, d := range s.qeN {
		if d.chain == nil {
			d.chain = resolveChain(s.certs, filepath.Dir(d.path), d.issue, "qe", isTCBSigner)
		}
	}
	for _, c := range s.pck {
		if c.chain == nil {
			issuer := c.info.Issuer.String()
			c.chain = resolveChain(s.certs, filepath.Dir(c.path), c.info.ThisUpdate, "pckcrl", func(x *x509.Certificate) bool {
				return x.Subject.String() == issuer
			})
		}
	}
	b := &Bundle{
		path:  path,
		sets:  map[collateral.Request]*collateral.Collateral{},
		infos: map[collateral.Request]*collateral.Info{},
		gaps:  map[collateral.Request]error{},
	}
	var firstGap error
	for k, tcb := range s.tcb {
		for _, ca := range []string{collateral.CAProcessor, collateral.CAPlatform} {
			req := collateral.Request{TEE: k.tee, FMSPC: k.fmspc, CA: ca}
			c, err := assemble(s, tcb, s.qe[k.tee], k.tee, ca)
			if err == nil {
				var info *collateral.Info
				if info, err = c.Inspect(); err == nil {
					b.sets[req], b.infos[req] = c, info
					continue
				}
			}
			b.gaps[req] = err
			// Report a gap for a CA the bundle has a CRL for: "no PCK CRL of
			// the other CA" is expected and says little.
			if _, hasCRL := s.pck[ca]; firstGap == nil || hasCRL {
				firstGap = fmt.Errorf("%s: %w", req, err)
			}
		}
	}
	// Baselines: a TCB info with number N goes with the QE identity of
	// number N. A missing partner is a gap for that number only; it never
	// fails Load, since the standard sets above are what most callers need.
	for k, tcb := range s.tcbN {
		if k.num <= 0 {
			continue
		}
		for _, ca := range []string{collateral.CAProcessor, collateral.CAPlatform} {
			req := collateral.Request{TEE: k.tee, FMSPC: k.fmspc, CA: ca, TCBEvaluationDataNumber: k.num}
			qe, ok := s.qeN[numKey{tee: k.tee, num: k.num}]
			if !ok {
				b.gaps[req] = fmt.Errorf("%w: no %s QE identity with TCB evaluation data number %d", collateral.ErrNotFound, k.tee, k.num)
				continue
			}
			c, err := assemble(s, tcb, qe, k.tee, ca)
			if err == nil {
				var info *collateral.Info
				if info, err = c.Inspect(); err == nil {
					b.sets[req], b.infos[req] = c, info
					continue
				}
			}
			b.gaps[req] = err
		}
	}
	for _, m := range []map[collateral.Request]*wholeSet{s.whole, s.wholeN} {
		for req, w := range m {
			if loose, ok := b.infos[req]; ok && !w.info.TCBInfo.IssueDate.After(loose.TCBInfo.IssueDate) {
				continue
			}
			b.sets[req], b.infos[req] = w.c, w.info
			delete(b.gaps, req)
		}
	}
	if len(b.sets) == 0 {
		if firstGap != nil {
			return nil, fmt.Errorf("collateral bundle %s: no complete collateral set: %w", path, firstGap)
		}
		return nil, fmt.Errorf("collateral bundle %s: %w: no TCB info found", path, collateral.ErrNotFound)
	}
	return b, nil
}

func assemble(s *slots, tcb, qe *docSlot, tee collateral.TEE, ca string) (*collateral.Collateral, error) {
	if qe == nil {
		return nil, fmt.Errorf("%w: no QE identity for %s", collateral.ErrNotFound, tee)
	}
	pck, ok := s.pck[ca]
	if !ok {
		return nil, fmt.Errorf("%w: no PCK CRL of the PCK %s CA", collateral.ErrNotFound, ca)
	}
	if s.root == nil {
		return nil, fmt.Errorf("%w: no Root CA CRL", collateral.ErrNotFound)
	}
	var missing []string
	if tcb.chain == nil {
		missing = append(missing, "TCB info ("+tcb.path+")")
	}
	if qe.chain == nil {
		missing = append(missing, "QE identity ("+qe.path+")")
	}
	if pck.chain == nil {
		missing = append(missing, "PCK CRL ("+pck.path+")")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: no issuer chain (signer + Intel SGX Root CA certificates) for %s", collateral.ErrNotFound, strings.Join(missing, ", "))
	}
	return &collateral.Collateral{
		PCKCRLIssuerChain:     pck.chain,
		RootCACRL:             s.root.info.DER,
		PCKCRL:                pck.info.DER,
		TCBInfoIssuerChain:    tcb.chain,
		TCBInfo:               tcb.body,
		TCBInfoSignature:      tcb.sig,
		QEIdentityIssuerChain: qe.chain,
		QEIdentity:            qe.body,
		QEIdentitySignature:   qe.sig,
	}, nil
}
