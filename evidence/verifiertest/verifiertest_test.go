package verifiertest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/verifiertest"
)

// toy is a minimal TEE for testing the suite itself: evidence is
// "TOY1" | not-after (8 bytes, Unix seconds) | report data (32) | HMAC-SHA256
// over the rest (32), under the platform's key. Its flaws are switched on
// one at a time to show that the suite catches each.
type toy struct {
	key   []byte
	flaw  string
	count atomic.Int64
}

const toyLen = 4 + 8 + 32 + 32

const (
	checkToyParse evidence.Check = "toy.parse"
	checkToyMAC   evidence.Check = "toy.mac"
	checkToyTime  evidence.Check = "toy.expired"
)

var toyNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (v *toy) mint(key []byte, notAfter time.Time, rd byte) []byte {
	b := append([]byte("TOY1"), binary.BigEndian.AppendUint64(nil, uint64(notAfter.Unix()))...)
	b = append(b, bytes.Repeat([]byte{rd}, 32)...)
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(b)
}

type toyParsed struct {
	v   *toy
	req *evidence.Request
}

func (v *toy) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	if req.Type != evidence.SgxEnclave {
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "toy handles SgxEnclave only")
	}
	if len(req.Evidence) != toyLen || string(req.Evidence[:4]) != "TOY1" {
		if v.flaw == "untyped" {
			return nil, errors.New("not toy evidence")
		}
		return nil, evidence.Errorf(checkToyParse, "not toy evidence")
	}
	if v.flaw == "crypto in parse" {
		if err := v.mac(req.Evidence); err != nil {
			return nil, err
		}
	}
	return &toyParsed{v: v, req: req}, nil
}

func (v *toy) mac(b []byte) error {
	m := hmac.New(sha256.New, v.key)
	m.Write(b[:toyLen-32])
	if !hmac.Equal(m.Sum(nil), b[toyLen-32:]) {
		return evidence.Errorf(checkToyMAC, "MAC mismatch")
	}
	return nil
}

func (p *toyParsed) Verify(ctx context.Context, _ map[string]any) (*evidence.Result, error) {
	v, b := p.v, p.req.Evidence
	if v.flaw != "ignores cancel" {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if v.flaw == "panics" && b[20] != b[21] {
		_ = b[1000] // a bounds bug reached only by inconsistent report data
	}
	if err := v.mac(b); err != nil {
		return nil, err
	}
	now := p.req.Now
	if v.flaw == "own clock" {
		now = toyNow
	}
	if notAfter := time.Unix(int64(binary.BigEndian.Uint64(b[4:12])), 0); now.After(notAfter) {
		return nil, evidence.Errorf(checkToyTime, "expired at %s", notAfter)
	}
	claims := []evidence.Claim{{Type: evidence.ClaimAttestationType, Value: "sgx"}, {Type: "toy-rd", Value: hex.EncodeToString(b[12:44])}}
	if v.flaw == "counter claim" {
		claims = append(claims, evidence.Claim{Type: "toy-n", Value: v.count.Add(1)})
	}
	if v.flaw == "no type claim" {
		claims = claims[1:]
	}
	return &evidence.Result{ReportData: bytes.Clone(b[12:44]), Claims: claims}, nil
}

func toyHarness(flaw string) verifiertest.Harness {
	v := &toy{key: []byte("platform key"), flaw: flaw}
	req := func(b []byte) *evidence.Request {
		return &evidence.Request{Type: evidence.SgxEnclave, Evidence: b, Now: toyNow}
	}
	h := verifiertest.Harness{
		Verifier:      v,
		Good:          func(testing.TB) *evidence.Request { return req(v.mint(v.key, toyNow.Add(24*time.Hour), 7)) },
		Expired:       toyNow.Add(48 * time.Hour),
		ExpiredChecks: []evidence.Check{checkToyTime},
		Bad: []verifiertest.Case{
			{Name: "foreign key", ParseOK: true, Checks: []evidence.Check{checkToyMAC},
				Request: func(testing.TB) *evidence.Request { return req(v.mint([]byte("other"), toyNow.Add(time.Hour), 7)) }},
		},
		Types:     []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave},
		Mutations: 256,
	}
	if flaw == "report data despite NoRuntimeData" {
		// A harness that declares no runtime data for a verifier that
		// reports some: the pipeline would bind runtime data the
		// declaration says cannot be bound.
		h.NoRuntimeData = "the toy declares none"
	}
	if flaw == "expiring evidence declared clock-free" {
		// The toy's evidence expires a day after toyNow: declaring it
		// clock-free must fail JudgesAtRequestNow.
		h.NoClock = "the toy declares none"
		h.Expired, h.ExpiredChecks = time.Time{}, nil
	}
	return h
}

// TestToyConforms: the flawless toy passes the suite.
func TestToyConforms(t *testing.T) { verifiertest.Run(t, toyHarness("")) }

// TestToyFlawed runs the suite on the flawed toy named by
// VERIFIERTEST_FLAW; TestSuiteCatchesFlaws runs it in a child process and
// expects it to fail.
func TestToyFlawed(t *testing.T) {
	flaw := os.Getenv("VERIFIERTEST_FLAW")
	if flaw == "" {
		t.Skip("run by TestSuiteCatchesFlaws in a child process")
	}
	verifiertest.Run(t, toyHarness(flaw))
}

// TestSuiteCatchesFlaws: each flaw a verifier can have makes the suite
// fail, in the subtest that names it.
func TestSuiteCatchesFlaws(t *testing.T) {
	for _, c := range []struct{ flaw, subtest string }{
		{"own clock", "JudgesAtRequestNow"},
		{"untyped", "Garbage"},
		{"crypto in parse", "Bad/foreign_key"},
		{"counter claim", "Deterministic"},
		{"no type claim", "Good"},
		{"report data despite NoRuntimeData", "Good"},
		{"expiring evidence declared clock-free", "JudgesAtRequestNow"},
		{"panics", "Mutations"},
		{"ignores cancel", "Cancelled"},
	} {
		t.Run(c.flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestToyFlawed$", "-test.v")
			cmd.Env = append(os.Environ(), "VERIFIERTEST_FLAW="+c.flaw)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a verifier whose flaw is %q:\n%s", c.flaw, out)
			}
			if want := fmt.Sprintf("--- FAIL: TestToyFlawed/%s", c.subtest); !strings.Contains(string(out), want) {
				t.Fatalf("flaw %q: no %q in:\n%s", c.flaw, want, out)
			}
		})
	}
}
