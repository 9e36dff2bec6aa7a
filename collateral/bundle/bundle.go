// Package bundle serves Intel DCAP collateral from files on disk, for
// offline and air-gapped deployments.
//
// Load accepts a file or a directory.
//
// A file is one collateral set: dcap-qvl's collateral JSON (see
// ParseQVLJSON) or a binary sgx_ql_qve_collateral_t dump (see
// ParseQVECollateral).
//
// A directory is scanned recursively (hidden entries skipped) and every file
// is classified by its content, so the layouts PCS/PCCS clients store work
// without configuration:
//
//   - JSON {"tcbInfo":…,"signature":…}: a TCB info response body
//   - JSON {"enclaveIdentity":…,"signature":…}: a QE identity response body
//   - JSON with "tcb_info": a dcap-qvl collateral file (a whole set)
//   - a CRL in DER, PEM or hex: Root CA CRL or PCK Processor/Platform CA CRL,
//     told apart by issuer
//   - certificates in PEM or DER: candidates for issuer chains
//   - a sgx_ql_qve_collateral_t dump (a whole set)
//   - a collateral cache record of the intel-dcap family (a whole set, see
//     collateral.EncodeRecord); records of other families are skipped
//
// Anything else (quotes, notes, keys) is skipped; a file that looks like
// collateral but does not parse fails Load with its path in the error.
//
// The attestd layout, written by WriteDir, is:
//
//	<dir>/rootcacrl.der                        Root CA CRL (DER)
//	<dir>/pckcrl-<ca>.der                      PCK CRL for ca = processor | platform (DER)
//	<dir>/pckcrl-<ca>-issuer-chain.pem         its issuer chain (SGX-PCK-CRL-Issuer-Chain, decoded)
//	<dir>/<tee>/qeidentity.json                QE identity response body, tee = sgx | tdx
//	<dir>/<tee>/qeidentity-issuer-chain.pem    SGX-Enclave-Identity-Issuer-Chain, decoded
//	<dir>/<tee>/<fmspc>/tcbinfo.json           TCB info response body, fmspc lower-case hex
//	<dir>/<tee>/<fmspc>/tcbinfo-issuer-chain.pem  TCB-Info-Issuer-Chain, decoded
//
// Issuer chains are matched to documents by content: a TCB info or QE
// identity needs a chain starting with an "Intel SGX TCB Signing" certificate;
// a PCK CRL one starting with the certificate of the CRL's issuer. Among
// candidate chain files, one valid at the document's issue date wins, then
// one in the document's own directory, then one whose name mentions the
// document (tcbInfoIssuerChain.pem, …). When no file holds a whole chain it
// is assembled from single certificates (signer + "Intel SGX Root CA"), as
// for the automata and mobilecoin test layouts.
//
// When several documents fill the same slot (two QE identities for SGX, two
// Root CA CRLs), the one issued last wins — what PCS would serve now.
//
// TCB baselines: a bundle may hold several TCB infos per FMSPC and several QE
// identities that differ in tcbEvaluationDataNumber (e.g. the answers of PCS
// with ?tcbEvaluationDataNumber=N kept side by side). A Request with
// TCBEvaluationDataNumber 0 gets the newest documents as above; a Request
// with N gets the TCB info and the QE identity whose number is N (the newest
// of each if there are several), or an error wrapping ErrNotFound. Baselines
// lists the numbers served (BaselineNumbers per FMSPC). A TCB
// info that came in a whole set (a dcap-qvl file, a QVE dump) is served with
// the rest of its own set for that set's PCK CA, so sets kept side by side in
// one directory are never mixed.
//
// Documents and chains are served as the exact bytes found on disk; nothing
// here verifies a signature.
package bundle

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/attestd/attestd/collateral"
)

// maxFileSize bounds what Load reads per file; real collateral files are
// tens of kilobytes, and a directory may hold unrelated large files.
const maxFileSize = 8 << 20

// Bundle is a fixed set of collateral loaded from disk. It is immutable after
// Load and safe for concurrent use. Get returns shared *Collateral values that
// callers must not modify.
type Bundle struct {
	path  string
	sets  map[collateral.Request]*collateral.Collateral
	infos map[collateral.Request]*collateral.Info
	// gaps explains, per request that has a TCB info but no complete set,
	// what is missing.
	gaps map[collateral.Request]error
}

var _ collateral.Source = (*Bundle)(nil)

// Load reads a collateral file or directory (see the package doc).
func Load(path string) (*Bundle, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("collateral bundle: %w", err)
	}
	if st.IsDir() {
		return loadDir(path)
	}
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("collateral bundle: %w", err)
	}
	c, err := parseSetFile(b)
	if err != nil {
		return nil, fmt.Errorf("collateral bundle %s: %w", path, err)
	}
	return build(path, slotsFromSet(c))
}

// FromCollateral makes a Bundle serving the given sets, as if each had been
// loaded from its own file. It is how tests and tools serve collateral held
// in memory.
func FromCollateral(sets ...*collateral.Collateral) (*Bundle, error) {
	s := newSlots()
	for i, c := range sets {
		one := slotsFromSet(c)
		if one.err != nil {
			return nil, fmt.Errorf("collateral bundle: set %d: %w", i, one.err)
		}
		s.merge(one)
	}
	return build("memory", s)
}

func parseSetFile(b []byte) (*collateral.Collateral, error) {
	t := strings.TrimLeft(string(b[:min(len(b), 64)]), " \t\r\n\ufeff")
	switch {
	case strings.HasPrefix(t, "{"):
		return ParseQVLJSON(b)
	case looksLikeQVE(b):
		return ParseQVECollateral(b)
	}
	return nil, fmt.Errorf("%w: neither dcap-qvl collateral JSON nor an sgx_ql_qve_collateral_t dump", collateral.ErrMalformed)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a collateral file may have", path, st.Size(), maxFileSize)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}

// Get returns the collateral for req, or an error wrapping
// collateral.ErrNotFound that says what the bundle lacks.
func (b *Bundle) Get(ctx context.Context, req collateral.Request) (*collateral.Collateral, error) {
	// Nothing here blocks, but a caller that has given up gets its
	// context's error, as from every source.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collateral bundle: %w", err)
	}
	n, err := req.Normalize()
	if err != nil {
		return nil, err
	}
	if c, ok := b.sets[n]; ok {
		return c, nil
	}
	if err, ok := b.gaps[n]; ok {
		return nil, fmt.Errorf("collateral bundle %s: %s: %w", b.path, n, err)
	}
	if num := n.TCBEvaluationDataNumber; num != 0 {
		if _, ok := b.sets[n.Default()]; ok {
			return nil, fmt.Errorf("collateral bundle %s: %w: no TCB info and QE identity with TCB evaluation data number %d for FMSPC %s (%s); it has numbers %v",
				b.path, collateral.ErrNotFound, num, n.FMSPC, n.TEE, b.BaselineNumbers(n.TEE, n.FMSPC))
		}
	}
	var have []string
	for _, r := range b.Requests() {
		if r.TEE == n.TEE && r.FMSPC == n.FMSPC {
			return nil, fmt.Errorf("collateral bundle %s: %w: no collateral for FMSPC %s (%s) with a PCK %s CA CRL; it has it only for the PCK %s CA",
				b.path, collateral.ErrNotFound, n.FMSPC, n.TEE, n.CA, r.CA)
		}
		if r.TEE == n.TEE {
			have = append(have, r.FMSPC+"/"+r.CA)
		}
	}
	have = slices.Compact(have)
	return nil, fmt.Errorf("collateral bundle %s: %w: no collateral for FMSPC %s (%s, PCK %s CA); it has %s FMSPC/CA %v",
		b.path, collateral.ErrNotFound, n.FMSPC, n.TEE, n.CA, n.TEE, have)
}

// Requests lists every standard request (TCBEvaluationDataNumber 0) the
// bundle can answer, sorted. Baselines lists the numbered ones.
func (b *Bundle) Requests() []collateral.Request {
	out := make([]collateral.Request, 0, len(b.sets))
	for r := range b.sets {
		if r.TCBEvaluationDataNumber == 0 {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TEE != out[j].TEE {
			return out[i].TEE < out[j].TEE
		}
		if out[i].FMSPC != out[j].FMSPC {
			return out[i].FMSPC < out[j].FMSPC
		}
		return out[i].CA < out[j].CA
	})
	return out
}

// Info returns what Inspect found for the set serving req (validity window,
// headers), or false if the bundle cannot serve req.
func (b *Bundle) Info(req collateral.Request) (*collateral.Info, bool) {
	n, err := req.Normalize()
	if err != nil {
		return nil, false
	}
	i, ok := b.infos[n]
	return i, ok
}

// BaselineNumbers returns, in ascending order, the TCB evaluation data numbers the
// bundle can serve as a baseline (a TCB info and a QE identity of that
// number) for tee and, when fmspc is not empty, that FMSPC (lower-case hex).
func (b *Bundle) BaselineNumbers(tee collateral.TEE, fmspc string) []int {
	var out []int
	for r := range b.sets {
		if n := r.TCBEvaluationDataNumber; n != 0 && r.TEE == tee && (fmspc == "" || r.FMSPC == fmspc) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Baselines implements collateral.BaselineLister: every TCB evaluation data
// number the bundle serves for tee on at least one FMSPC, newest first;
// Standard marks the numbers of the sets served for the standard request.
func (b *Bundle) Baselines(_ context.Context, tee collateral.TEE) ([]collateral.Baseline, error) {
	var out []collateral.Baseline
	for r, c := range b.sets {
		if r.TEE != tee {
			continue
		}
		bl, err := collateral.BaselineOf(c, r.TCBEvaluationDataNumber == 0)
		if err != nil {
			return nil, fmt.Errorf("collateral bundle %s: %w", b.path, err)
		}
		out = append(out, bl)
	}
	return collateral.MergeBaselines(out), nil
}

var _ collateral.BaselineLister = (*Bundle)(nil)
