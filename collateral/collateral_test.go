package collateral_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/internal/testenv"
)

// d1 builds the D1 collateral (dcap-qvl sample, SGX) by hand from its JSON,
// independently of the bundle package.
func d1(t testing.TB) *collateral.Collateral {
	t.Helper()
	var v map[string]string
	if err := json.Unmarshal(testenv.ReadShared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json"), &v); err != nil {
		t.Fatal(err)
	}
	h := func(k string) []byte {
		b, err := hex.DecodeString(v[k])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return &collateral.Collateral{
		PCKCRLIssuerChain:     []byte(v["pck_crl_issuer_chain"]),
		RootCACRL:             h("root_ca_crl"),
		PCKCRL:                h("pck_crl"),
		TCBInfoIssuerChain:    []byte(v["tcb_info_issuer_chain"]),
		TCBInfo:               []byte(v["tcb_info"]),
		TCBInfoSignature:      h("tcb_info_signature"),
		QEIdentityIssuerChain: []byte(v["qe_identity_issuer_chain"]),
		QEIdentity:            []byte(v["qe_identity"]),
		QEIdentitySignature:   h("qe_identity_signature"),
	}
}

func TestInspectD1(t *testing.T) {
	c := d1(t)
	info, err := c.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	if want := (collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110000", CA: collateral.CAProcessor}); info.Request != want {
		t.Errorf("Request = %v, want %v", info.Request, want)
	}
	v := info.Validity
	if v.NotBefore.Format(time.RFC3339) != "2025-06-19T10:56:11Z" || v.NotAfter.Format(time.RFC3339) != "2025-07-19T10:01:18Z" {
		t.Errorf("window %s .. %s, want 2025-06-19T10:56:11Z .. 2025-07-19T10:01:18Z", v.NotBefore, v.NotAfter)
	}
	// The window's ends are set by the TCB info's issueDate and the QE
	// identity's nextUpdate.
	items := map[string]collateral.ItemValidity{}
	for _, it := range v.Items {
		items[it.Item] = it
	}
	if it := items[collateral.ItemTCBInfo]; !it.NotBefore.Equal(v.NotBefore) {
		t.Errorf("TCB info issueDate %s does not start the window", it.NotBefore)
	}
	if it := items[collateral.ItemQEIdentity]; !it.NotAfter.Equal(v.NotAfter) {
		t.Errorf("QE identity nextUpdate %s does not end the window", it.NotAfter)
	}
	if _, ok := items["TCB info issuer chain: Intel SGX TCB Signing"]; !ok {
		t.Errorf("no item for the TCB signing certificate in %v", v.Items)
	}
	var nv *collateral.NotValidError
	err = v.Check(ts("2025-07-19T10:01:19Z"))
	if !errors.As(err, &nv) || nv.Item != collateral.ItemQEIdentity || !strings.Contains(err.Error(), "QE identity expired at 2025-07-19T10:01:18Z") {
		t.Errorf("Check one second late = %v", err)
	}
	err = v.Check(ts("2025-06-19T10:56:10Z"))
	if !errors.As(err, &nv) || nv.Item != collateral.ItemTCBInfo || !strings.Contains(err.Error(), "not yet valid") {
		t.Errorf("Check one second early = %v", err)
	}
}

func TestInspectRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *collateral.Collateral)
		want   string
	}{
		{"swapped CRLs", func(c *collateral.Collateral) { c.PCKCRL, c.RootCACRL = c.RootCACRL, c.PCKCRL }, "not a PCK Processor/Platform CA"},
		{"short signature", func(c *collateral.Collateral) { c.TCBInfoSignature = c.TCBInfoSignature[:63] }, "signature is 63 bytes"},
		{"QE identity of other TEE", func(c *collateral.Collateral) {
			c.QEIdentity = bytes.Replace(c.QEIdentity, []byte(`"id":"QE"`), []byte(`"id":"TD_QE"`), 1)
		}, "QE identity TD_QE is for TDX"},
		{"QVE identity", func(c *collateral.Collateral) {
			c.QEIdentity = bytes.Replace(c.QEIdentity, []byte(`"id":"QE"`), []byte(`"id":"QVE"`), 1)
		}, "not a quoting enclave identity"},
		{"bad date", func(c *collateral.Collateral) {
			c.TCBInfo = bytes.Replace(c.TCBInfo, []byte(`"issueDate":"2025-06-19T10:56:11Z"`), []byte(`"issueDate":"yesterday"`), 1)
		}, "issueDate \"yesterday\""},
		{"TCB info v4", func(c *collateral.Collateral) {
			c.TCBInfo = bytes.Replace(c.TCBInfo, []byte(`"version":3`), []byte(`"version":4`), 1)
		}, "unsupported id \"SGX\" version 4"},
		{"garbage chain", func(c *collateral.Collateral) { c.TCBInfoIssuerChain = []byte("hello") }, "TCB info issuer chain"},
		{"garbage CRL", func(c *collateral.Collateral) { c.PCKCRL = []byte{0x30, 0x03, 1, 2, 3} }, "PCK CRL"},
		{"empty", func(c *collateral.Collateral) { *c = collateral.Collateral{} }, "TCB info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := d1(t)
			tc.mutate(c)
			_, err := c.Inspect()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Inspect = %v, want error containing %q", err, tc.want)
			}
			if !errors.Is(err, collateral.ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
		})
	}
}

func TestParseTCBInfoResponseExactBytes(t *testing.T) {
	body := testenv.ReadShared(t, "vectors/go-tdx-guest/testing/testdata/sample_tcbInfo_response")
	d, err := collateral.ParseTCBInfoResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	// The signed bytes are the raw value between `{"tcbInfo":` and `,"signature"`.
	start := len(`{"tcbInfo":`)
	end := bytes.LastIndex(body, []byte(`,"signature"`))
	if !bytes.Equal(d.Body, body[start:end]) {
		t.Error("signed bytes are not the exact served bytes")
	}
	// Whitespace around the value is not part of it; inside it is kept.
	spaced := []byte("{ \"signature\" : \"" + hex.EncodeToString(d.Signature) + "\",\n \"tcbInfo\" :  " + string(d.Body) + " \n}\n")
	d2, err := collateral.ParseTCBInfoResponse(spaced)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d2.Body, d.Body) || !bytes.Equal(d2.Signature, d.Signature) {
		t.Error("member order or whitespace changed the result")
	}
	h, err := collateral.ParseTCBInfoHeader(d.Body)
	if err != nil {
		t.Fatal(err)
	}
	if h.TEE() != collateral.TDX || h.FMSPC != "50806f000000" || h.IssueDate.Format(time.RFC3339) != "2023-06-18T08:42:58Z" || h.TCBEvaluationDataNumber != 15 {
		t.Errorf("header = %+v", h)
	}
}

func TestParseCRLEncodings(t *testing.T) {
	der := testenv.ReadShared(t, "vectors/mobilecoin-sgx/verifier/data/tests/processor_crl.der")
	pemText := testenv.ReadShared(t, "vectors/mobilecoin-sgx/verifier/data/tests/processor_crl.pem")
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"DER", der},
		{"PEM", pemText},
		{"hex", []byte(hex.EncodeToString(der))},
		{"HEX with NUL", append([]byte(strings.ToUpper(hex.EncodeToString(der))), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := collateral.ParseCRL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(info.DER, der) || info.CA != collateral.CAProcessor ||
				info.ThisUpdate.Format(time.RFC3339) != "2023-04-21T22:00:36Z" || info.NextUpdate.Format(time.RFC3339) != "2023-05-21T22:00:36Z" {
				t.Errorf("ParseCRL = CA %s %s..%s", info.CA, info.ThisUpdate, info.NextUpdate)
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte("zz"), []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), {0x30, 0x00}} {
		if _, err := collateral.ParseCRL(bad); !errors.Is(err, collateral.ErrMalformed) {
			t.Errorf("ParseCRL(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestRequestNormalize(t *testing.T) {
	n, err := collateral.Request{TEE: "sgx", FMSPC: "00A067110000", CA: "Processor"}.Normalize()
	if err != nil || n != (collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110000", CA: "processor"}) {
		t.Errorf("Normalize = %v, %v", n, err)
	}
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// --- fuzz targets for every parser of untrusted bytes ---

func seedFiles(f *testing.F, rels ...string) {
	for _, b := range testenv.Seeds(f, rels...) {
		f.Add(b)
	}
}

func FuzzParseTCBInfoResponse(f *testing.F) {
	f.Add([]byte(`{"tcbInfo":{"id":"SGX","version":3},"signature":"` + strings.Repeat("00", 64) + `"}`))
	f.Add([]byte(`{"tcbInfo":{},"tcbInfo":{},"signature":""}`))
	seedFiles(f, "vectors/go-tdx-guest/testing/testdata/sample_tcbInfo_response", "vectors/automata-dcap-rs/data/tcbinfov2.json", "vectors/mobilecoin-sgx/verifier/data/tests/example_tcb.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := collateral.ParseTCBInfoResponse(b)
		if err != nil {
			return
		}
		if len(d.Signature) != 64 || !bytes.Contains(b, d.Body) {
			t.Fatalf("accepted body gives %d-byte signature / bytes not in the input", len(d.Signature))
		}
		if h, err := collateral.ParseTCBInfoHeader(d.Body); err == nil && h.NextUpdate.Before(h.IssueDate) {
			t.Fatal("nextUpdate before issueDate accepted")
		}
	})
}

func FuzzParseQEIdentityResponse(f *testing.F) {
	f.Add([]byte(`{"enclaveIdentity":{"id":"QE","version":2},"signature":"` + strings.Repeat("00", 64) + `"}`))
	seedFiles(f, "vectors/go-tdx-guest/testing/testdata/sample_qeIdentity_response", "vectors/automata-dcap-rs/data/qeidentityv2.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := collateral.ParseQEIdentityResponse(b)
		if err != nil {
			return
		}
		if !bytes.Contains(b, d.Body) {
			t.Fatal("signed bytes not taken from the input")
		}
		if len(d.Signature) != 64 {
			t.Fatalf("accepted body gives a %d-byte signature", len(d.Signature))
		}
		if h, err := collateral.ParseEnclaveIdentityHeader(d.Body); err == nil && (h.ID == "" || h.Version != 2 || h.NextUpdate.Before(h.IssueDate)) {
			t.Fatalf("accepted an invalid identity header %+v", h)
		}
	})
}

func FuzzParseCRL(f *testing.F) {
	f.Add([]byte("30"))
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	seedFiles(f, "vectors/go-tdx-guest/testing/testdata/rootcrl.der", "vectors/mobilecoin-sgx/verifier/data/tests/processor_crl.pem")
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := collateral.ParseCRL(b)
		if err != nil {
			return
		}
		again, err := collateral.ParseCRL(info.DER)
		if err != nil || !bytes.Equal(again.DER, info.DER) {
			t.Fatalf("DER of an accepted CRL does not parse back: %v", err)
		}
	})
}

func FuzzParseCertChain(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE----------BEGIN CERTIFICATE-----\n"))
	seedFiles(f, "vectors/go-tdx-guest/derived/pckCrlIssuerChain.pem", "vectors/automata-dcap-rs/data/pck_certchain.pem")
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := collateral.ParseCertChain(b)
		if err == nil && len(certs) == 0 {
			t.Fatal("empty chain accepted")
		}
	})
}
