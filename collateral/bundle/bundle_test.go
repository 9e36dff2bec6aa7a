package bundle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/internal/testenv"
)

// vectorSets are the collateral sets named in vectors/README.md. The windows
// are the exact intersections; the README states them to the minute (D2
// "10:00Z" is the PCK CRL's 10:00:35Z, near's "07:03" is 07:03:51Z, occlum's
// "03:40Z" is the platform CRL's 03:40:28Z, the OE eval21 "22:44Z" is
// 22:44:48Z).
var vectorSets = []struct {
	name          string
	path          string
	req           collateral.Request
	from, to      string
	empty         bool
	expiredItem   string // for empty windows: what Check names just after the TCB info is issued
	tcbEvalNumber int
}{
	{"D1", "vectors/dcap-qvl/sample/sgx_quote_collateral.json", collateral.Request{TEE: collateral.SGX, FMSPC: "00A067110000", CA: "processor"}, "2025-06-19T10:56:11Z", "2025-07-19T10:01:18Z", false, "", 0},
	{"D2", "vectors/dcap-qvl/sample/tdx_quote_collateral.json", collateral.Request{TEE: collateral.TDX, FMSPC: "B0C06F000000", CA: "platform"}, "2025-06-19T10:32:27Z", "2025-07-19T10:00:35Z", false, "", 0},
	{"D-outdated", "vectors/dcap-qvl/sample/tdx_quote_outdated_collateral.json", collateral.Request{TEE: collateral.TDX, FMSPC: "90C06F000000", CA: "platform"}, "2026-02-18T10:58:51Z", "2026-03-20T10:41:15Z", false, "", 0},
	{"near", "vectors/dcap-qvl/tests/near/contracts/gas-test/tests/quote/quote_collateral.json", collateral.Request{TEE: collateral.TDX, FMSPC: "20A06F000000", CA: "platform"}, "2025-09-02T07:41:59Z", "2025-10-02T07:03:51Z", false, "", 0},
	{"G1 dir", "vectors/go-tdx-guest", collateral.Request{TEE: collateral.TDX, FMSPC: "50806f000000", CA: "platform"}, "2023-06-18T08:42:58Z", "2023-07-08T07:24:59Z", false, "", 0},
	{"G1 json", "vectors/derived-dcapqvl-collateral/go-tdx-guest_50806f000000_2023-06.json", collateral.Request{TEE: collateral.TDX, FMSPC: "50806f000000", CA: "platform"}, "2023-06-18T08:42:58Z", "2023-07-08T07:24:59Z", false, "", 0},
	{"M1 dir", "vectors/mobilecoin-sgx/verifier/data/tests", collateral.Request{TEE: collateral.SGX, FMSPC: "00906ED50000", CA: "processor"}, "2023-07-12T20:48:25Z", "2023-05-21T22:00:36Z", true, collateral.ItemPCKCRL, 0},
	{"M1 json", "vectors/derived-dcapqvl-collateral/mobilecoin_00906ed50000_2023-07.json", collateral.Request{TEE: collateral.SGX, FMSPC: "00906ED50000", CA: "processor"}, "2023-07-12T20:48:25Z", "2023-05-21T22:00:36Z", true, collateral.ItemPCKCRL, 0},
	{"automata dir TDX", "vectors/automata-dcap-rs/data", collateral.Request{TEE: collateral.TDX, FMSPC: "00806f050000", CA: "platform"}, "2025-02-13T03:50:41Z", "2025-03-15T03:39:00Z", false, "", 17},
	{"automata json", "vectors/derived-dcapqvl-collateral/automata_00806f050000_2025-02.json", collateral.Request{TEE: collateral.TDX, FMSPC: "00806f050000", CA: "platform"}, "2025-02-13T03:50:41Z", "2025-03-15T03:39:00Z", false, "", 17},
	{"occlum tcbinfov2", "vectors/automata-dcap-rs/data", collateral.Request{TEE: collateral.SGX, FMSPC: "00606A000000", CA: "platform"}, "2025-02-13T03:40:28Z", "2025-03-15T03:29:42Z", false, "", 17},
	{"OE eval21 dump", "vectors/openenclave-tdx/tests/secure_verify/data/tdx_quote_v5_endorsement_eval21.bin", collateral.Request{TEE: collateral.TDX, FMSPC: "00806F050000", CA: "platform"}, "2026-06-12T22:44:48Z", "2026-07-12T22:09:43Z", false, "", 21},
	{"OE eval21 json", "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json", collateral.Request{TEE: collateral.TDX, FMSPC: "00806F050000", CA: "platform"}, "2026-06-12T22:44:48Z", "2026-07-12T22:09:43Z", false, "", 21},
	{"OE 2025 dump", "vectors/openenclave-tdx/tests/host_verify/data/tdx_endorsement.bin", collateral.Request{TEE: collateral.TDX, FMSPC: "90c06f000000", CA: "platform"}, "2025-02-26T10:37:20Z", "2025-03-22T11:31:38Z", false, "", 18},
	{"OE 2025 json", "vectors/derived-dcapqvl-collateral/openenclave_90c06f000000_2025-02.json", collateral.Request{TEE: collateral.TDX, FMSPC: "90c06f000000", CA: "platform"}, "2025-02-26T10:37:20Z", "2025-03-22T11:31:38Z", false, "", 18},
	{"OE dir", "vectors/openenclave-tdx", collateral.Request{TEE: collateral.TDX, FMSPC: "90c06f000000", CA: "platform"}, "2025-02-26T10:37:20Z", "2025-03-22T11:31:38Z", false, "", 18},
	{"derived dir", "vectors/derived-dcapqvl-collateral", collateral.Request{TEE: collateral.TDX, FMSPC: "00806f050000", CA: "platform"}, "2026-06-12T22:44:48Z", "2026-07-12T22:09:43Z", false, "", 21},
}

func TestLoadVectors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range vectorSets {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Load(testenv.Shared(t, tc.path))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			c, err := b.Get(ctx, tc.req)
			if err != nil {
				t.Fatalf("Get(%v): %v", tc.req, err)
			}
			info, err := c.Inspect()
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			want, _ := tc.req.Normalize()
			if info.Request != want {
				t.Errorf("collateral is for %v, want %v", info.Request, want)
			}
			v := info.Validity
			if got := v.NotBefore.Format(time.RFC3339); got != tc.from {
				t.Errorf("window starts %s, want %s", got, tc.from)
			}
			if got := v.NotAfter.Format(time.RFC3339); got != tc.to {
				t.Errorf("window ends %s, want %s", got, tc.to)
			}
			if v.Empty() != tc.empty {
				t.Errorf("Empty() = %v, want %v", v.Empty(), tc.empty)
			}
			if tc.tcbEvalNumber != 0 && info.TCBInfo.TCBEvaluationDataNumber != tc.tcbEvalNumber {
				t.Errorf("tcbEvaluationDataNumber = %d, want %d", info.TCBInfo.TCBEvaluationDataNumber, tc.tcbEvalNumber)
			}
			if !tc.empty {
				for _, at := range []time.Time{v.NotBefore, v.NotAfter} {
					if err := v.Check(at); err != nil {
						t.Errorf("Check(%s) inside the window: %v", at, err)
					}
				}
				var nv *collateral.NotValidError
				if err := v.Check(v.NotAfter.Add(time.Second)); !errors.As(err, &nv) || !strings.Contains(err.Error(), "expired") {
					t.Errorf("Check after the window = %v, want an expiry NotValidError", err)
				}
				if err := v.Check(v.NotBefore.Add(-time.Second)); !errors.As(err, &nv) || !strings.Contains(err.Error(), "not yet valid") {
					t.Errorf("Check before the window = %v, want a not-yet-valid NotValidError", err)
				}
			} else {
				// M1: there is no instant at which everything is valid;
				// right after the TCB info appears, the PCK CRL is stale.
				err := v.Check(info.TCBInfo.IssueDate.Add(time.Hour))
				var nv *collateral.NotValidError
				if !errors.As(err, &nv) || nv.Item != tc.expiredItem {
					t.Errorf("Check = %v, want %s named", err, tc.expiredItem)
				}
				for at := v.NotAfter.Add(-48 * time.Hour); at.Before(v.NotBefore.Add(48 * time.Hour)); at = at.Add(time.Hour) {
					if v.Check(at) == nil {
						t.Fatalf("Check(%s) passed inside an empty window", at)
					}
				}
			}
			if len(c.TCBInfoSignature) != 64 || len(c.QEIdentitySignature) != 64 {
				t.Errorf("signature lengths %d/%d", len(c.TCBInfoSignature), len(c.QEIdentitySignature))
			}
		})
	}
}

// TestDirMatchesDerivedJSON checks that a directory of PCS responses yields
// the same collateral as the hand-made dcap-qvl file derived from it: same
// signed bytes, signatures and CRLs, same certificates in the issuer chains.
func TestDirMatchesDerivedJSON(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, dir, json string
		req             collateral.Request
	}{
		{"go-tdx-guest", "vectors/go-tdx-guest", "vectors/derived-dcapqvl-collateral/go-tdx-guest_50806f000000_2023-06.json", collateral.Request{TEE: collateral.TDX, FMSPC: "50806f000000", CA: "platform"}},
		{"automata", "vectors/automata-dcap-rs/data", "vectors/derived-dcapqvl-collateral/automata_00806f050000_2025-02.json", collateral.Request{TEE: collateral.TDX, FMSPC: "00806f050000", CA: "platform"}},
		{"mobilecoin", "vectors/mobilecoin-sgx/verifier/data/tests", "vectors/derived-dcapqvl-collateral/mobilecoin_00906ed50000_2023-07.json", collateral.Request{TEE: collateral.SGX, FMSPC: "00906ed50000", CA: "processor"}},
		{"openenclave", "vectors/openenclave-tdx/tests/secure_verify/data/tdx_quote_v5_endorsement_eval21.bin", "vectors/derived-dcapqvl-collateral/openenclave_00806f050000_eval21_2026-06.json", collateral.Request{TEE: collateral.TDX, FMSPC: "00806f050000", CA: "platform"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustGet(t, ctx, tc.dir, tc.req)
			b := mustGet(t, ctx, tc.json, tc.req)
			for _, f := range []struct {
				name string
				x, y []byte
			}{
				{"TCBInfo", a.TCBInfo, b.TCBInfo}, {"TCBInfoSignature", a.TCBInfoSignature, b.TCBInfoSignature},
				{"QEIdentity", a.QEIdentity, b.QEIdentity}, {"QEIdentitySignature", a.QEIdentitySignature, b.QEIdentitySignature},
				{"PCKCRL", a.PCKCRL, b.PCKCRL}, {"RootCACRL", a.RootCACRL, b.RootCACRL},
			} {
				if !bytes.Equal(f.x, f.y) {
					t.Errorf("%s differs", f.name)
				}
			}
			for _, f := range []struct {
				name string
				x, y []byte
			}{
				{"TCBInfoIssuerChain", a.TCBInfoIssuerChain, b.TCBInfoIssuerChain},
				{"QEIdentityIssuerChain", a.QEIdentityIssuerChain, b.QEIdentityIssuerChain},
				{"PCKCRLIssuerChain", a.PCKCRLIssuerChain, b.PCKCRLIssuerChain},
			} {
				cx, err1 := collateral.ParseCertChain(f.x)
				cy, err2 := collateral.ParseCertChain(f.y)
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: %v / %v", f.name, err1, err2)
				}
				if len(cx) != len(cy) {
					t.Fatalf("%s: %d vs %d certificates", f.name, len(cx), len(cy))
				}
				for i := range cx {
					if !bytes.Equal(cx[i].Raw, cy[i].Raw) {
						t.Errorf("%s: certificate %d differs (%s vs %s)", f.name, i, cx[i].Subject.CommonName, cy[i].Subject.CommonName)
					}
				}
			}
		})
	}
}

func mustGet(t *testing.T, ctx context.Context, rel string, req collateral.Request) *collateral.Collateral {
	t.Helper()
	b, err := Load(testenv.Shared(t, rel))
	if err != nil {
		t.Fatalf("Load(%s): %v", rel, err)
	}
	c, err := b.Get(ctx, req)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return c
}

func TestGetErrors(t *testing.T) {
	ctx := context.Background()
	b, err := Load(testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		req      collateral.Request
		notFound bool
		want     string
	}{
		{"unknown FMSPC", collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110001", CA: "processor"}, true, "no collateral for FMSPC 00a067110001"},
		{"wrong TEE", collateral.Request{TEE: collateral.TDX, FMSPC: "00a067110000", CA: "processor"}, true, "no collateral for FMSPC 00a067110000 (TDX"},
		{"other CA", collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110000", CA: "platform"}, true, "it has it only for the PCK processor CA"},
		{"bad FMSPC", collateral.Request{TEE: collateral.SGX, FMSPC: "xyz", CA: "processor"}, false, "FMSPC"},
		{"bad CA", collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110000", CA: "root"}, false, "CA \"root\""},
		{"bad TEE", collateral.Request{TEE: "SEV", FMSPC: "00a067110000", CA: "processor"}, false, "TEE \"SEV\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Get(ctx, tc.req)
			if err == nil {
				t.Fatal("Get succeeded")
			}
			if errors.Is(err, collateral.ErrNotFound) != tc.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v (%v)", !tc.notFound, tc.notFound, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	b, err := Load(testenv.Shared(t, "vectors/automata-dcap-rs/data"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range b.Requests() {
		got = append(got, r.String())
	}
	want := []string{
		"SGX FMSPC 00606a000000 (PCK platform CA)",
		"TDX FMSPC 00806f050000 (PCK platform CA)",
		"TDX FMSPC 90c06f000000 (PCK platform CA)",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Requests = %q, want %q", got, want)
	}
	// Of the three SGX QE identities the newest (qeidentityv2.json) wins.
	c, _ := b.Get(context.Background(), b.Requests()[0])
	h, err := collateral.ParseEnclaveIdentityHeader(c.QEIdentity)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.IssueDate.Format(time.RFC3339); got != "2025-02-13T03:33:12Z" {
		t.Errorf("QE identity issued %s, want the newest (2025-02-13T03:33:12Z)", got)
	}
}

func TestWriteDirRoundTrip(t *testing.T) {
	ctx := context.Background()
	var sets []*collateral.Collateral
	for _, rel := range []string{
		"vectors/dcap-qvl/sample/sgx_quote_collateral.json",
		"vectors/dcap-qvl/sample/tdx_quote_collateral.json",
	} {
		b, err := Load(testenv.Shared(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.Get(ctx, b.Requests()[0])
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, c)
	}
	dir := t.TempDir()
	if err := WriteDir(dir, sets...); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"rootcacrl.der", "pckcrl-processor.der", "pckcrl-platform-issuer-chain.pem", "sgx/qeidentity.json", "tdx/qeidentity-issuer-chain.pem", "sgx/00a067110000/tcbinfo.json", "tdx/b0c06f000000/tcbinfo-issuer-chain.pem"} {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range sets {
		info, _ := want.Inspect()
		got, err := b.Get(ctx, info.Request)
		if err != nil {
			t.Fatalf("Get(%v): %v", info.Request, err)
		}
		// The two sets have different Root CA CRLs; the newer one is kept.
		if !bytes.Equal(got.TCBInfo, want.TCBInfo) || !bytes.Equal(got.TCBInfoSignature, want.TCBInfoSignature) ||
			!bytes.Equal(got.QEIdentity, want.QEIdentity) || !bytes.Equal(got.PCKCRL, want.PCKCRL) ||
			!bytes.Equal(got.TCBInfoIssuerChain, want.TCBInfoIssuerChain) || !bytes.Equal(got.PCKCRLIssuerChain, want.PCKCRLIssuerChain) ||
			!bytes.Equal(got.QEIdentityIssuerChain, want.QEIdentityIssuerChain) {
			t.Errorf("%v: collateral changed through WriteDir/Load", info.Request)
		}
	}
}

func TestQVLJSONRoundTrip(t *testing.T) {
	raw := testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	c, err := ParseQVLJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := MarshalQVLJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ParseQVLJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equal(c2) {
		t.Error("collateral changed through MarshalQVLJSON/ParseQVLJSON")
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	good := testenv.ReadShared(t, "vectors/go-tdx-guest/testing/testdata/sample_tcbInfo_response")
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"truncated TCB info", map[string]string{"tcbinfo.json": string(good[:200])}, "not a JSON object"},
		{"TCB info without signature", map[string]string{"tcbinfo.json": `{"tcbInfo":{"id":"SGX","version":3}}`}, "no \"signature\""},
		{"short signature", map[string]string{"tcbinfo.json": `{"tcbInfo":{},"signature":"abcd"}`}, "signature is 2 bytes"},
		{"duplicate tcbInfo", map[string]string{"tcbinfo.json": `{"tcbInfo":{},"tcbInfo":{},"signature":"00"}`}, "duplicate member"},
		{"bad PEM", map[string]string{"chain.pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "issuer chain certificate 0"},
		{"bad dcap-qvl", map[string]string{"c.json": `{"tcb_info":"{}","pck_crl":"zz"}`}, "missing or empty"},
		{"nothing", map[string]string{"README": "hello"}, "no TCB info found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want error containing %q", err, tc.want)
			}
		})
	}
	t.Run("missing chain", func(t *testing.T) {
		dir := t.TempDir()
		for _, f := range []string{"sample_tcbInfo_response", "sample_qeIdentity_response", "pckcrl", "rootcrl.der"} {
			b := testenv.ReadShared(t, "vectors/go-tdx-guest/testing/testdata/"+f)
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Load(dir)
		if err == nil || !errors.Is(err, collateral.ErrNotFound) || !strings.Contains(err.Error(), "no issuer chain") {
			t.Fatalf("Load = %v, want a missing-issuer-chain error", err)
		}
	})
}

// TestLoadSymlinkedFiles mimics a Kubernetes ConfigMap volume: every file is
// a symlink into a hidden, timestamped directory reached through ..data, and
// the bundle path itself is a symlink.
func TestLoadSymlinkedFiles(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "cm", "..2026_11_23_18_00_00.123")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"tcbinfo.json":         "vectors/go-tdx-guest/testing/testdata/sample_tcbInfo_response",
		"qeidentity.json":      "vectors/go-tdx-guest/testing/testdata/sample_qeIdentity_response",
		"pckcrl.der":           "vectors/go-tdx-guest/testing/testdata/pckcrl",
		"rootcacrl.der":        "vectors/go-tdx-guest/testing/testdata/rootcrl.der",
		"tcbinfo-chain.pem":    "vectors/go-tdx-guest/derived/tcbInfoIssuerChain.pem",
		"pckcrl-chain.pem":     "vectors/go-tdx-guest/derived/pckCrlIssuerChain.pem",
		"qeidentity-chain.pem": "vectors/go-tdx-guest/derived/qeIdentityIssuerChain.pem",
	}
	for name, rel := range files {
		if err := os.WriteFile(filepath.Join(real, name), testenv.ReadShared(t, rel), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(base, "cm", name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(real), filepath.Join(base, "cm", "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("does-not-exist", filepath.Join(base, "cm", "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "cm"), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	b, err := Load(filepath.Join(base, "link"))
	if err != nil {
		t.Fatal(err)
	}
	want := mustGet(t, context.Background(), "vectors/derived-dcapqvl-collateral/go-tdx-guest_50806f000000_2023-06.json", collateral.Request{TEE: collateral.TDX, FMSPC: "50806f000000", CA: "platform"})
	got, err := b.Get(context.Background(), collateral.Request{TEE: collateral.TDX, FMSPC: "50806f000000", CA: "platform"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.TCBInfo, want.TCBInfo) || !bytes.Equal(got.PCKCRL, want.PCKCRL) {
		t.Error("collateral differs from the derived JSON")
	}
}
