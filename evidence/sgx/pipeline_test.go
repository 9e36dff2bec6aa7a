package sgx_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// TestPipeline runs the real attest pipeline (instance, default policy,
// token) over the SGX verifier and the test platform: the claims reach the
// token as MAA shapes them, and a policy can decide on the TCB status and
// advisory IDs.
func TestPipeline(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now, TCBStatus: pcs.SWHardeningNeeded, AdvisoryIDs: []string{"INTEL-SA-00615", "INTEL-SA-00657"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sgx.NewVerifier(sgx.Options{Collateral: p.Source(), Roots: p.Roots(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	in, err := instance.New(ctx, instance.Config{Name: "t", Mode: instance.ModeAAD, Issuer: "https://attestd.test"},
		instance.Options{Store: db, Keys: keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v},
			Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rt := []byte(`{"jwk":{"kty":"EC"}}`)
	var rd [64]byte
	h := sha256Sum(rt)
	copy(rd[:], h[:])
	report, err := p.OEReport(sgxplatform.QuoteOptions{Debug: false, ProductID: 1, SVN: 2, ReportData: rd})
	if err != nil {
		t.Fatal(err)
	}

	tok, err := tokenOf(in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: report, Runtime: &evidence.Data{Bytes: rt}}))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := keys.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	checks := map[string]any{
		"x-ms-attestation-type": "sgx", "x-ms-sgx-is-debuggable": false, "x-ms-sgx-product-id": 1.0, "x-ms-sgx-svn": 2.0,
		"is-debuggable": false, "tee": "sgx", "svn": 2.0, // issued by the default policy
		"x-ms-sgx-tcb-status": "SWHardeningNeeded", "x-ms-sgx-ehd": base64.RawURLEncoding.EncodeToString(rt),
		"maa-ehd": base64.RawURLEncoding.EncodeToString(rt), "aas-ehd": base64.RawURLEncoding.EncodeToString(rt),
	}
	for k, want := range checks {
		if c[k] != want {
			t.Errorf("%s = %v, want %v", k, c[k], want)
		}
	}
	if adv, _ := json.Marshal(c["x-ms-sgx-advisory-ids"]); string(adv) != `["INTEL-SA-00615","INTEL-SA-00657"]` {
		t.Errorf("advisory ids %s", adv)
	}
	if coll, ok := c["x-ms-sgx-collateral"].(map[string]any); !ok || len(coll) != 7 {
		t.Errorf("x-ms-sgx-collateral %v", c["x-ms-sgx-collateral"])
	}
	for k := range c {
		if strings.HasPrefix(k, "$") {
			t.Errorf("policy-only claim %s in the token", k)
		}
	}

	// A policy deciding on the advisory IDs and the TCB status.
	deny := `version=1.0;authorizationrules{c:[type=="x-ms-sgx-advisory-ids", value=="INTEL-SA-00657"] => deny(); => permit();};issuancerules{};`
	if _, err := in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: report, DraftPolicy: &deny}); err == nil || !strings.Contains(err.Error(), "Deny") {
		t.Errorf("advisory policy: %v", err)
	}
	allow := `version=1.0;authorizationrules{c:[type=="x-ms-sgx-tcb-status", value=="SWHardeningNeeded"] && d:[type=="$is-debuggable", value==false] => permit();};issuancerules{c:[type=="x-ms-sgx-advisory-ids"] => issue(type="adv", value=c.value);};`
	draft, err := tokenOf(in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: report, DraftPolicy: &allow}))
	if err != nil {
		t.Fatalf("status policy: %v", err)
	}
	parts := strings.Split(draft, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var dc map[string]any
	if err := json.Unmarshal(raw, &dc); err != nil {
		t.Fatal(err)
	}
	if adv, _ := json.Marshal(dc["adv"]); string(adv) != `["INTEL-SA-00615","INTEL-SA-00657"]` {
		t.Errorf("policy-issued advisories %s", adv)
	}
	// A rejected quote surfaces its check.
	bad := append([]byte(nil), report...)
	bad[16+100] ^= 1
	if _, err := in.Attest(ctx, &instance.AttestRequest{Type: evidence.OpenEnclave, Evidence: bad}); err == nil || !strings.Contains(err.Error(), "quote.signature") {
		t.Errorf("tampered report: %v", err)
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// newPipelineInstance is an instance with the SGX verifier over p's
// collateral and roots, verifying at now.
func newPipelineInstance(t *testing.T, p *sgxplatform.Platform, now time.Time) (*instance.Instance, *token.KeySet) {
	t.Helper()
	v, err := sgx.NewVerifier(sgx.Options{Collateral: p.Source(), Roots: p.Roots(), Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	in, err := instance.New(ctx, instance.Config{Name: "t", Mode: instance.ModeAAD, Issuer: "https://attestd.test"},
		instance.Options{Store: db, Keys: keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v},
			Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return in, keys
}

// TestPipelineInitTimeKSS runs KSS enclaves (quote v3, v4 and an OE report)
// through the real attest pipeline: init-time data (binary or JSON) whose
// SHA-256 is the lower half of CONFIGID is accepted, the token carries the
// four KSS claims and, for JSON, x-ms-inittime; init-time data the CONFIGID
// does not bind is InvalidParameter at inittimedata.binding; a non-KSS
// enclave carries none of the KSS claims and binds no init-time data.
func TestPipelineInitTimeKSS(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	in, keys := newPipelineInstance(t, p, now)
	ctx := context.Background()

	initBin := []byte{0x00, 0xff, 'k', 's', 's'}
	initJSON := []byte(`{"config":{"mode":"prod","replicas":3},"owner":"attestd"}`)
	rt := []byte("runtime")
	var rd [64]byte
	h := sha256Sum(rt)
	copy(rd[:], h[:])
	kss := func(version int, init []byte) sgxplatform.QuoteOptions {
		o := sgxplatform.QuoteOptions{Version: version, ProductID: 1, SVN: 2, ReportData: rd, ConfigSVN: 0x1234}
		for i := 32; i < 64; i++ {
			o.ConfigID[i] = byte(i) // upper half: not part of the binding, but of the claim
		}
		for i := range o.ISVExtendedProductID {
			o.ISVExtendedProductID[i], o.ISVFamilyID[i] = byte(0xe0+i), byte(0xf0-i)
		}
		o.BindInitTime(init)
		return o
	}
	mint := func(typ evidence.Type, o sgxplatform.QuoteOptions) []byte {
		t.Helper()
		var b []byte
		var err error
		if typ == evidence.OpenEnclave {
			b, err = p.OEReport(o)
		} else {
			b, err = p.Quote(o)
		}
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	verified := func(t *testing.T, tok string) map[string]any {
		t.Helper()
		payload, err := keys.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	kssClaims := []string{sgx.ClaimConfigID, sgx.ClaimConfigSVN, sgx.ClaimISVExtendedProductID, sgx.ClaimISVFamilyID}

	for _, c := range []struct {
		name    string
		typ     evidence.Type
		version int
		bound   []byte // the init-time data CONFIGID binds
		json    bool
	}{
		{"quote v3 binary", evidence.SgxEnclave, 3, initBin, false},
		{"quote v4 binary", evidence.SgxEnclave, 4, initBin, false},
		{"quote v3 JSON", evidence.SgxEnclave, 3, initJSON, true},
		{"quote v4 JSON", evidence.SgxEnclave, 4, initJSON, true},
		{"OE report JSON", evidence.OpenEnclave, 3, initJSON, true},
		{"OE report binary", evidence.OpenEnclave, 3, initBin, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := kss(c.version, c.bound)
			ev := mint(c.typ, o)
			init := &evidence.Data{Bytes: c.bound, JSON: c.json}
			tok, err := tokenOf(in.Attest(ctx, &instance.AttestRequest{Type: c.typ, Evidence: ev, Runtime: &evidence.Data{Bytes: rt}, InitTime: init}))
			if err != nil {
				t.Fatal(err)
			}
			cl := verified(t, tok)
			want := map[string]any{
				sgx.ClaimConfigID:             hex.EncodeToString(o.ConfigID[:]),
				sgx.ClaimConfigSVN:            float64(0x1234),
				sgx.ClaimISVExtendedProductID: "e0e1e2e3e4e5e6e7e8e9eaebecedeeef",
				sgx.ClaimISVFamilyID:          "f0efeeedecebeae9e8e7e6e5e4e3e2e1",
			}
			for k, w := range want {
				if cl[k] != w {
					t.Errorf("%s = %v, want %v", k, cl[k], w)
				}
			}
			if id, _ := cl[sgx.ClaimConfigID].(string); len(id) != 128 || !strings.HasPrefix(id, hex.EncodeToString(sha256Bytes(c.bound))) {
				t.Errorf("config id %q does not start with SHA-256 of the init-time data", id)
			}
			if c.json {
				var w any
				if err := json.Unmarshal(c.bound, &w); err != nil {
					t.Fatal(err)
				}
				if got, _ := json.Marshal(cl["x-ms-inittime"]); string(got) != mustJSON(t, w) {
					t.Errorf("x-ms-inittime = %s, want %s", got, mustJSON(t, w))
				}
			} else if _, ok := cl["x-ms-inittime"]; ok {
				t.Errorf("x-ms-inittime %v for binary init-time data", cl["x-ms-inittime"])
			}

			// The policy sees the KSS claims as incoming claims.
			pol := `version=1.0; authorizationrules{ c:[type=="x-ms-sgx-config-svn", value==4660] && d:[type=="x-ms-sgx-isv-family-id", value=="f0efeeedecebeae9e8e7e6e5e4e3e2e1"] => permit(); };` +
				` issuancerules{ c:[type=="x-ms-sgx-config-id"] => issue(type="cfg", value=c.value); };`
			draft, err := tokenOf(in.Attest(ctx, &instance.AttestRequest{Type: c.typ, Evidence: ev, InitTime: init, DraftPolicy: &pol}))
			if err != nil {
				t.Fatalf("policy over KSS claims: %v", err)
			}
			if dc := unsignedPayload(t, draft); dc["cfg"] != hex.EncodeToString(o.ConfigID[:]) {
				t.Errorf("policy-issued cfg = %v", dc["cfg"])
			}

			// Init-time data the CONFIGID does not bind: other bytes, the
			// right bytes with a flipped bit, none.
			flipped := append([]byte(nil), c.bound...)
			flipped[len(flipped)-1] ^= 1
			for _, bad := range []*evidence.Data{
				{Bytes: []byte("other"), JSON: c.json},
				{Bytes: flipped, JSON: false},
				{Bytes: []byte{}},
			} {
				_, err := in.Attest(ctx, &instance.AttestRequest{Type: c.typ, Evidence: ev, InitTime: bad})
				if instance.CodeOf(err) != instance.CodeInvalidParameter || !strings.Contains(err.Error(), "inittimedata.binding") {
					t.Errorf("init-time data %q: %v, want InvalidParameter naming inittimedata.binding", bad.Bytes, err)
				}
			}
			// Without init-time data the KSS enclave still attests (the
			// binding is checked only when data is sent), with its claims.
			tok, err = tokenOf(in.Attest(ctx, &instance.AttestRequest{Type: c.typ, Evidence: ev}))
			if err != nil {
				t.Fatal(err)
			}
			if cl := verified(t, tok); cl[sgx.ClaimConfigSVN] != float64(0x1234) || cl["x-ms-inittime"] != nil {
				t.Errorf("without init-time data: config svn %v, inittime %v", cl[sgx.ClaimConfigSVN], cl["x-ms-inittime"])
			}
		})
	}

	t.Run("non-KSS", func(t *testing.T) {
		// CONFIGID fields set but ATTRIBUTES.KSS clear: the platform writes
		// no KSS fields, the token carries no KSS claims, and no init-time
		// data binds (CONFIGID is zero).
		o := kss(4, initBin)
		o.KSS = false
		for _, typ := range []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave} {
			ev := mint(typ, o)
			tok, err := tokenOf(in.Attest(ctx, &instance.AttestRequest{Type: typ, Evidence: ev}))
			if err != nil {
				t.Fatal(err)
			}
			cl := verified(t, tok)
			for _, k := range append(kssClaims, "x-ms-inittime") {
				if v, ok := cl[k]; ok {
					t.Errorf("%s: %s = %v without KSS", typ, k, v)
				}
			}
			for _, init := range [][]byte{initBin, make([]byte, 0)} {
				_, err = in.Attest(ctx, &instance.AttestRequest{Type: typ, Evidence: ev, InitTime: &evidence.Data{Bytes: init}})
				if instance.CodeOf(err) != instance.CodeInvalidParameter || !strings.Contains(err.Error(), "inittimedata.binding") {
					t.Errorf("%s: init-time data %q on a non-KSS enclave: %v", typ, init, err)
				}
			}
		}
	})
}

func sha256Bytes(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unsignedPayload decodes the claims of an alg-none (draft policy) token.
func unsignedPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("not an unsigned token: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenOf is the token of a single-shot attestation's response.
func tokenOf(r *instance.AttestResponse, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if r.Token == "" {
		return "", errors.New("the response carries no token")
	}
	return r.Token, nil
}
