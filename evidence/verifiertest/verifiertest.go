// Package verifiertest is the conformance suite every evidence.Verifier
// passes (issue 8). A verifier package calls Run from its own tests with a
// Harness: a fake platform that makes good evidence, the instants at which
// that evidence's collateral is no longer valid, and named ways to make it
// bad. The suite then checks the contract of package evidence that the
// pipeline relies on, the same way for every TEE:
//
//   - Parse does no cryptography and reads no collateral: structurally
//     valid evidence with a broken signature or an untrusted root passes
//     Parse (Case.ParseOK) and fails only at Verify, and Parse fetches
//     nothing (Harness.Fetches);
//   - Parse refuses garbage and truncated evidence with a typed
//     evidence.Check, and the wrong attestation type with
//     evidence.CheckEvidenceType;
//   - Verify judges at Request.Now: the good evidence is refused at an
//     instant past its collateral's expiry (and before its validity, when
//     given) with one of the harness's time checks, and accepted again at
//     the good instant afterwards (nothing about the clock is cached);
//     evidence the harness declares clock-free (Harness.NoClock) verifies
//     at any instant instead;
//   - every refusal is an *evidence.Error whose check errors.Is matches;
//   - the claims start with x-ms-attestation-type, with the value MAA gives
//     the type, and are identical for identical input;
//   - no mutated byte makes Parse or Verify panic, and every refusal of a
//     mutation is typed (a bounded, seeded loop; the seed is in the
//     failure);
//   - a cancelled context stops Verify with an error errors.Is matches to
//     context.Canceled.
//
// The suite knows no TEE: SGX (evidence/sgx), SEV-SNP (evidence/snp), TDX
// (evidence/tdx), TPM (evidence/tpm) and the Azure guests
// (evidence/azureguest) plug in by writing a Harness.
package verifiertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
)

// Case is one named way to make evidence bad.
type Case struct {
	Name string
	// Request returns a fresh request carrying the bad evidence, with Now
	// set to an instant at which the good evidence verifies.
	Request func(t testing.TB) *evidence.Request
	// Checks lists the checks the refusal may name; it must name one of
	// them (errors.Is). Empty means any typed check.
	Checks []evidence.Check
	// ParseOK says the evidence is structurally valid (a tampered
	// signature, an untrusted root, expired collateral): Parse must accept
	// it and Verify refuse it. This is how the suite proves that Parse does
	// no cryptography.
	ParseOK bool
	// Properties are the configuration properties Verify receives (nil:
	// the request's).
	Properties map[string]any
}

// Harness is what a verifier package supplies to Run.
type Harness struct {
	// Verifier is the verifier under test, trusting the fake platform's
	// (test) roots.
	Verifier evidence.Verifier
	// Good returns a fresh request whose evidence verifies at its Now.
	// The suite changes the request it is given, never the bytes of
	// another call's.
	Good func(t testing.TB) *evidence.Request
	// Expired is an instant after the good evidence's collateral (TCB info,
	// CRLs, endorsement certificate, …) expired; ExpiredChecks are the
	// checks that may refuse it there.
	Expired       time.Time
	ExpiredChecks []evidence.Check
	// NotYetValid, when non-zero, is an instant before the good evidence's
	// collateral became valid; NotYetValidChecks may refuse it there.
	NotYetValid       time.Time
	NotYetValidChecks []evidence.Check
	// Bad are the ways the fake platform makes bad evidence; the suite
	// runs each as a subtest.
	Bad []Case
	// Types lists the attestation types the verifier handles (nil: only
	// the good request's); the suite sends another type and expects
	// evidence.CheckEvidenceType.
	Types []evidence.Type
	// Fetches, when set, returns how many collateral or endorsement
	// fetches the verifier has made so far; the suite asserts that Parse
	// makes none. The good evidence should then need a fetch at Verify
	// (e.g. an SNP report sent without its VCEK), which the suite also
	// asserts, so the counter is known to count.
	Fetches func() int
	// Mutations bounds the mutation loop (0: 256; 32 with -short).
	Mutations int
	// Seed seeds the mutation loop (0: 1), so a failure is reproducible.
	Seed uint64
	// NoRuntimeData, when set, is why the verifier's evidence carries no
	// user report data (MAA's TPM protocol has no runtimeData: the request
	// key is bound by the quote and attested as cnf instead). The suite
	// then requires Result.ReportData to be empty, so that the pipeline
	// refuses runtime data sent beside such evidence (instance.Bind)
	// rather than binding it to bytes the TEE never signed.
	NoRuntimeData string
	// NoClock, when set, is why the good evidence has no time-bounded
	// collateral (its trust is a configured key, such as a TPM AK enrolled
	// by its public key, and it carries no certificate). Expired and
	// NotYetValid must then be zero, and JudgesAtRequestNow requires
	// instead that the good evidence verifies at instants decades apart:
	// a verifier that refuses such evidence at some instant has a clock
	// the harness does not know about.
	NoClock string
}

// Run runs the conformance suite against h as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Verifier == nil || h.Good == nil {
		t.Fatal("verifiertest: Harness.Verifier and Harness.Good are required")
	}
	if h.NoClock != "" {
		if !h.Expired.IsZero() || !h.NotYetValid.IsZero() {
			t.Fatal("verifiertest: Harness.NoClock says the evidence has no time-bounded collateral, but Expired or NotYetValid is set")
		}
	} else if h.Expired.IsZero() || len(h.ExpiredChecks) == 0 {
		t.Fatal("verifiertest: Harness.Expired and ExpiredChecks are required: Verify must be shown to judge at Request.Now")
	}
	t.Run("Good", h.testGood)
	t.Run("Deterministic", h.testDeterministic)
	t.Run("ParseDoesNoCollateral", h.testParseNoCollateral)
	t.Run("Garbage", h.testGarbage)
	t.Run("Truncated", h.testTruncated)
	t.Run("WrongType", h.testWrongType)
	t.Run("JudgesAtRequestNow", h.testNow)
	t.Run("Bad", func(t *testing.T) {
		if len(h.Bad) == 0 {
			t.Fatal("verifiertest: no Bad cases: a harness must at least tamper with a signature and use an untrusted root")
		}
		for _, c := range h.Bad {
			t.Run(c.Name, func(t *testing.T) { h.testCase(t, c) })
		}
	})
	t.Run("Mutations", h.testMutations)
	t.Run("Cancelled", h.testCancelled)
}

// verify runs Parse then Verify, reporting which step refused.
func (h *Harness) verify(ctx context.Context, req *evidence.Request, props map[string]any) (res *evidence.Result, parseErr, verifyErr error) {
	p, err := h.Verifier.Parse(ctx, req)
	if err != nil {
		return nil, err, nil
	}
	if p == nil {
		return nil, errors.New("verifiertest: Parse returned neither Parsed nor an error"), nil
	}
	if props == nil {
		props = req.Properties
	}
	res, err = p.Verify(ctx, props)
	if err == nil && res == nil {
		err = errors.New("verifiertest: Verify returned neither a Result nor an error")
	}
	return res, nil, err
}

// typed fails t unless err is an *evidence.Error matched by errors.Is on
// its own check.
func typed(t testing.TB, what string, err error) evidence.Check {
	t.Helper()
	var ee *evidence.Error
	if !errors.As(err, &ee) {
		t.Fatalf("%s: refusal %q (%T) is not an *evidence.Error naming its check", what, err, err)
	}
	if ee.Check == "" || !errors.Is(err, ee.Check) {
		t.Fatalf("%s: refusal %q: check %q is empty or not matched by errors.Is", what, err, ee.Check)
	}
	return ee.Check
}

// oneOf fails t unless err names one of checks (any typed check when
// checks is empty).
func oneOf(t testing.TB, what string, err error, checks []evidence.Check) {
	t.Helper()
	got := typed(t, what, err)
	if len(checks) == 0 {
		return
	}
	for _, c := range checks {
		if errors.Is(err, c) {
			return
		}
	}
	t.Fatalf("%s: refused at check %q (%v), want one of %v", what, got, err, checks)
}

func (h *Harness) good(t testing.TB) *evidence.Request {
	t.Helper()
	req := h.Good(t)
	if req == nil || req.Now.IsZero() {
		t.Fatal("verifiertest: Good must return a request with Now set")
	}
	return req
}

func (h *Harness) testGood(t *testing.T) {
	req := h.good(t)
	res, perr, verr := h.verify(context.Background(), req, nil)
	if perr != nil || verr != nil {
		t.Fatalf("good evidence refused: parse %v, verify %v", perr, verr)
	}
	if len(res.Claims) == 0 || res.Claims[0].Type != evidence.ClaimAttestationType {
		t.Fatalf("the first claim is not %s: %v", evidence.ClaimAttestationType, res.Claims)
	}
	if want := evidence.AttestationTypeValue(req.Type); res.Claims[0].Value != want {
		t.Fatalf("%s = %v, want %q for type %s", evidence.ClaimAttestationType, res.Claims[0].Value, want, req.Type)
	}
	switch {
	case h.NoRuntimeData != "" && len(res.ReportData) != 0:
		t.Fatalf("Result.ReportData is %x, but the harness says the evidence carries none (%s)", res.ReportData, h.NoRuntimeData)
	case h.NoRuntimeData == "" && len(res.ReportData) == 0:
		t.Fatal("Result.ReportData is empty: runtime data could never be bound")
	}
	for i, c := range res.Claims {
		if c.Type == "" {
			t.Fatalf("claim %d has no type", i)
		}
		if c.TokenOnly && c.PolicyOnly {
			t.Fatalf("claim %s is both token-only and policy-only: it would go nowhere", c.Type)
		}
	}
}

func (h *Harness) testDeterministic(t *testing.T) {
	orig := h.good(t)
	var first *evidence.Result
	for i := range 3 {
		req := clone(orig)
		res, perr, verr := h.verify(context.Background(), req, nil)
		if perr != nil || verr != nil {
			t.Fatalf("run %d: parse %v, verify %v", i, perr, verr)
		}
		if first == nil {
			first = res
			continue
		}
		if !bytes.Equal(first.ReportData, res.ReportData) || !bytes.Equal(first.InitTimeBinding, res.InitTimeBinding) {
			t.Fatalf("run %d: report data or init-time binding differ for identical input", i)
		}
		if len(first.Claims) != len(res.Claims) {
			t.Fatalf("run %d: %d claims, first run %d, for identical input", i, len(res.Claims), len(first.Claims))
		}
		for j := range res.Claims {
			if !reflect.DeepEqual(first.Claims[j], res.Claims[j]) {
				t.Fatalf("run %d: claim %d differs for identical input: %#v, first run %#v", i, j, res.Claims[j], first.Claims[j])
			}
		}
	}
}

// clone is a deep copy of req: a verifier may not depend on the identity
// of its input, only on its bytes.
func clone(req *evidence.Request) *evidence.Request {
	c := *req
	c.Evidence = bytes.Clone(req.Evidence)
	for _, d := range []**evidence.Data{&c.Runtime, &c.InitTime} {
		if *d != nil {
			dd := **d
			dd.Bytes = bytes.Clone(dd.Bytes)
			*d = &dd
		}
	}
	c.State = bytes.Clone(req.State)
	return &c
}

func (h *Harness) testParseNoCollateral(t *testing.T) {
	if h.Fetches == nil {
		t.Skip("the harness counts no fetches; Parse's freedom from crypto is shown by the ParseOK cases")
	}
	req := h.good(t)
	before := h.Fetches()
	p, err := h.Verifier.Parse(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.Fetches() - before; n != 0 {
		t.Fatalf("Parse made %d collateral fetches", n)
	}
	if _, err := p.Verify(context.Background(), req.Properties); err != nil {
		t.Fatal(err)
	}
	if h.Fetches() == before {
		t.Fatal("Verify of the good evidence made no fetch either: the harness's counter counts nothing, so this test proves nothing")
	}
}

// mustRefuseAtParse fails t unless Parse refuses ev with a typed check.
func (h *Harness) mustRefuseAtParse(t *testing.T, what string, ev []byte) {
	t.Helper()
	req := h.good(t)
	req.Evidence = ev
	_, perr, verr := h.verify(context.Background(), req, nil)
	if perr == nil {
		t.Fatalf("%s: Parse accepted it (Verify: %v)", what, verr)
	}
	typed(t, what, perr)
}

func (h *Harness) testGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(h.seed(), 7))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	for _, g := range []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"one zero byte", []byte{0}},
		{"4 KiB of zeros", make([]byte, 4096)},
		{"4 KiB of 0xff", bytes.Repeat([]byte{0xff}, 4096)},
		{"random", random},
		{"text", []byte("this is not evidence")},
		{"JSON object", []byte(`{}`)},
		{"JSON null", []byte(`null`)},
	} {
		h.mustRefuseAtParse(t, g.name, g.b)
	}
}

func (h *Harness) testTruncated(t *testing.T) {
	ev := h.good(t).Evidence
	for _, n := range cuts(len(ev)) {
		h.mustRefuseAtParse(t, fmt.Sprintf("first %d of %d bytes", n, len(ev)), bytes.Clone(ev[:n]))
	}
}

// cuts are the truncation lengths tried for evidence of n bytes: every
// length of the first and last 64 bytes, and 64 spread in between.
func cuts(n int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if i < 64 || i >= n-64 || i%max(1, n/64) == 0 {
			out = append(out, i)
		}
	}
	return out
}

func (h *Harness) testWrongType(t *testing.T) {
	req := h.good(t)
	handled := h.Types
	if handled == nil {
		handled = []evidence.Type{req.Type}
	}
	for _, other := range evidence.Types {
		if slices.Contains(handled, other) {
			continue
		}
		r := h.good(t)
		r.Type = other
		_, perr, verr := h.verify(context.Background(), r, nil)
		if perr == nil {
			t.Fatalf("type %s: Parse accepted it (Verify: %v)", other, verr)
		}
		oneOf(t, "type "+string(other), perr, []evidence.Check{evidence.CheckEvidenceType})
	}
}

func (h *Harness) testNow(t *testing.T) {
	if h.NoClock != "" {
		h.testNoClock(t)
		return
	}
	for _, c := range []struct {
		name   string
		at     time.Time
		checks []evidence.Check
	}{
		{"expired", h.Expired, h.ExpiredChecks},
		{"not yet valid", h.NotYetValid, h.NotYetValidChecks},
	} {
		if c.at.IsZero() {
			continue
		}
		req := h.good(t)
		good := req.Now
		req.Now = c.at
		_, perr, verr := h.verify(context.Background(), req, nil)
		if perr != nil {
			t.Fatalf("%s: Parse refused it (%v): Parse must not read the clock", c.name, perr)
		}
		if verr == nil {
			t.Fatalf("%s: evidence valid at %s accepted at Request.Now %s: the verifier does not judge at Request.Now", c.name, good.Format(time.RFC3339), c.at.Format(time.RFC3339))
		}
		oneOf(t, c.name, verr, c.checks)
		// And valid again at the good instant: no verdict about the clock
		// is cached.
		if _, perr, verr := h.verify(context.Background(), h.good(t), nil); perr != nil || verr != nil {
			t.Fatalf("%s: good evidence refused after a refusal at another instant: parse %v, verify %v", c.name, perr, verr)
		}
	}
}

// testNoClock: evidence without time-bounded collateral verifies at any
// instant, from just after the Unix epoch to decades after the good one.
func (h *Harness) testNoClock(t *testing.T) {
	good := h.good(t).Now
	for _, at := range []time.Time{time.Unix(1, 0).UTC(), good.AddDate(-20, 0, 0), good.AddDate(50, 0, 0)} {
		req := h.good(t)
		req.Now = at
		if _, perr, verr := h.verify(context.Background(), req, nil); perr != nil || verr != nil {
			t.Fatalf("evidence without time-bounded collateral (%s) refused at Request.Now %s: parse %v, verify %v", h.NoClock, at.Format(time.RFC3339), perr, verr)
		}
	}
}

func (h *Harness) testCase(t *testing.T, c Case) {
	req := c.Request(t)
	if req == nil || req.Now.IsZero() {
		t.Fatal("verifiertest: Case.Request must return a request with Now set")
	}
	_, perr, verr := h.verify(context.Background(), req, c.Properties)
	switch {
	case perr == nil && verr == nil:
		t.Fatal("bad evidence accepted")
	case c.ParseOK && perr != nil:
		t.Fatalf("structurally valid evidence refused by Parse (%v): Parse must do no cryptography or collateral checks", perr)
	case perr != nil:
		oneOf(t, "parse", perr, c.Checks)
	default:
		oneOf(t, "verify", verr, c.Checks)
	}
}

func (h *Harness) seed() uint64 {
	if h.Seed == 0 {
		return 1
	}
	return h.Seed
}

func (h *Harness) testMutations(t *testing.T) {
	n := h.Mutations
	if n == 0 {
		n = 256
		if testing.Short() {
			n = 32
		}
	}
	good := h.good(t).Evidence
	if len(good) == 0 {
		t.Fatal("the good evidence is empty")
	}
	r := rand.New(rand.NewPCG(h.seed(), 11))
	accepted := 0
	for i := range n {
		ev := bytes.Clone(good)
		flips := 1 + r.IntN(3)
		var at []int
		for range flips {
			pos := r.IntN(len(ev))
			ev[pos] ^= byte(1 + r.IntN(255))
			at = append(at, pos)
		}
		what := fmt.Sprintf("mutation %d (seed %d, bytes %v)", i, h.seed(), at)
		req := h.good(t)
		req.Evidence = ev
		perr, verr := h.mutate(t, what, req)
		switch {
		case perr != nil:
			typed(t, what+" at Parse", perr)
		case verr != nil:
			typed(t, what+" at Verify", verr)
		default:
			accepted++ // an unsigned byte (padding, whitespace of an envelope)
		}
	}
	t.Logf("%d of %d mutations accepted (bytes no signature covers)", accepted, n)
}

// mutate verifies req, turning a panic into a test failure naming the
// mutation.
func (h *Harness) mutate(t *testing.T, what string, req *evidence.Request) (perr, verr error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s: panic: %v", what, p)
		}
	}()
	_, perr, verr = h.verify(context.Background(), req, nil)
	return perr, verr
}

func (h *Harness) testCancelled(t *testing.T) {
	req := h.good(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := h.Verifier.Parse(ctx, req)
	if err != nil {
		t.Fatalf("Parse refused good evidence: %v", err)
	}
	cancel()
	_, err = p.Verify(ctx, req.Properties)
	if err == nil {
		t.Fatal("Verify with a cancelled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a cancelled context: %v, which errors.Is does not match to context.Canceled", err)
	}
	// Parse with a cancelled context may refuse or not, but must not
	// panic, and the verifier still works afterwards.
	h.Verifier.Parse(ctx, h.good(t))
	if _, perr, verr := h.verify(context.Background(), h.good(t), nil); perr != nil || verr != nil {
		t.Fatalf("good evidence refused after a cancelled verification: parse %v, verify %v", perr, verr)
	}
}
