package azureguest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/azureguest"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/evidence/azureguest/hcl"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/cvmplatform"
	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/testing/tdxplatform"
	"github.com/attestd/attestd/tpmclient"
)

func selfSigned(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test db"},
		NotBefore: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// startCVM starts attestd over HTTPS (stopped at cleanup) and the vTPM of
// a test confidential VM.
func startCVM(ctx context.Context, t *testing.T) (*attestdtest.Server, *cvmplatform.VTPM) {
	t.Helper()
	srv, err := attestdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, cvmplatform.StartVTPM(ctx, t, selfSigned(t))
}

// collectJSON collects the AttestationInfo for o (its ephemeral key
// flushed at cleanup) and encodes it as a request body.
func collectJSON(ctx context.Context, t *testing.T, tr transport.TPM, o azureguest.Options) (*azureguest.Evidence, []byte) {
	t.Helper()
	ev, err := azureguest.Collect(ctx, tr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	body, err := ev.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return ev, body
}

// TestEndToEndHTTPS: a software TPM and a test-platform SNP report make a
// full AttestationInfo (synthetic TCG log); attestd over HTTPS answers the
// sealed token, the TPM's ephemeral key opens it, and the claims are the
// boot, isolation and runtime claims the evidence supports.
func TestEndToEndHTTPS(t *testing.T) {
	ctx := context.Background()
	srv, vt := startCVM(ctx, t)
	tr, events, ak := vt.TPM, vt.Events, vt.AK
	hclReport, err := cvmplatform.HCLReport(srv.SNP, ak.Pub.(*rsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	opts := azureguest.Options{
		HCLReport: hclReport,
		AK:        ak.Handle, NoAKCert: true,
		TCGLog:    tpmclient.EncodeLog(events),
		VCEKChain: srv.SNP.ChainPEM(false),
		OSType:    "Linux", OSDistro: "Ubuntu", OSBuild: "NotApplication", OSVersionMajor: 22, OSVersionMinor: 4,
		ClientPayload: []byte(`{"nonce":"n-1"}`),
	}
	ev, body := collectJSON(ctx, t, tr, opts)
	c, err := client.New(srv.URL, &client.Options{HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.AttestAzureGuest(ctx, body, ev.Open, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := res.Token.Claims
	for k, want := range map[string]any{
		"x-ms-attestation-type": "azurevm", "secureboot": true,
		"x-ms-azurevm-dbvalidated": true, "x-ms-azurevm-dbxvalidated": true,
		"x-ms-azurevm-is-windows": false, "x-ms-azurevm-ostype": "Linux", "x-ms-azurevm-osdistro": "Ubuntu",
		"x-ms-azurevm-osversion-major": json.Number("22"), "x-ms-azurevm-osversion-minor": json.Number("4"),
		"x-ms-azurevm-vmid": cvmplatform.VMID, "x-ms-azurevm-attestation-protocol-ver": "2.0",
		"x-ms-azurevm-kerneldebug-enabled": false, "x-ms-azurevm-debuggersdisabled": true,
	} {
		if got := cl[k]; got != want {
			t.Errorf("%s = %v (%T), want %v", k, got, got, want)
		}
	}
	if got, _ := json.Marshal(cl["x-ms-azurevm-attested-pcrs"]); string(got) != "[0,1,2,3,4,5,6,7]" {
		t.Errorf("attested-pcrs %s", got)
	}
	tee, _ := cl["x-ms-isolation-tee"].(map[string]any)
	if tee["x-ms-attestation-type"] != "sevsnpvm" || tee["x-ms-sevsnpvm-is-debuggable"] != false {
		t.Errorf("x-ms-isolation-tee %v", tee)
	}
	if rt, _ := tee["x-ms-runtime"].(map[string]any); rt["user-data"] != strings.Repeat("00", 64) {
		t.Errorf("x-ms-isolation-tee.x-ms-runtime %v", tee["x-ms-runtime"])
	}
	rt, _ := cl["x-ms-runtime"].(map[string]any)
	if cp, _ := rt["client-payload"].(map[string]any); cp["nonce"] != "n-1" {
		t.Errorf("client-payload %v", rt["client-payload"])
	}
	keys, _ := rt["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("x-ms-runtime.keys %v", rt["keys"])
	}
	k0, _ := keys[0].(map[string]any)
	ekPub, err := envelopeKey(ev.Info.TPM.EncKeyPub)
	if err != nil {
		t.Fatal(err)
	}
	if k0["kid"] != "TpmEphemeralEncryptionKey" || k0["n"] != base64.RawURLEncoding.EncodeToString(ekPub.N.Bytes()) {
		t.Errorf("ephemeral key %v", k0)
	}

	// The answer on the wire is not a JWT: it is the sealed envelope.
	raw := post(t, srv, body)
	if strings.Count(raw, ".") == 2 {
		t.Fatal("the token was answered in the clear")
	}
	if _, err := envelope.Open(raw, func([]byte) ([]byte, error) { return make([]byte, 32), nil }); err == nil {
		t.Fatal("a wrong key opened the sealed token")
	}

	t.Run("policy sees the boot and isolation claims", func(t *testing.T) {
		permit := `version=1.0;authorizationrules{c:[type=="x-ms-azurevm-dbvalidated", value==true] && c2:[type=="x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable", value==false] => permit();};` +
			`issuancerules{c:[type=="x-ms-isolation-tee.x-ms-sevsnpvm-vmpl"] => issue(type="vmpl", value=c.value);c:[type=="x-ms-azurevm-ostype"] => issue(type="os", value=c.value);};`
		r, err := c.AttestAzureGuest(ctx, body, ev.Open, &client.AttestOptions{DraftPolicy: permit})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Unsigned || r.PolicyClaims["vmpl"] != json.Number("0") || r.PolicyClaims["os"] != "Linux" {
			t.Fatalf("unsigned %v, policy claims %v", r.Unsigned, r.PolicyClaims)
		}
		deny := `version=1.0;authorizationrules{c:[type=="secureboot", value==false] => permit();};issuancerules{};`
		_, err = c.AttestAzureGuest(ctx, body, ev.Open, &client.AttestOptions{DraftPolicy: deny})
		var he *client.Error
		if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest || he.Code != "PolicyEvaluationError" {
			t.Fatalf("got %v, want 400 PolicyEvaluationError", err)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			mutate func(ai *envelope.AttestationInfo)
			check  string
		}{
			{"log that does not replay", func(ai *envelope.AttestationInfo) {
				ai.TcgLogs = tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, nil))
			}, "tpm.eventlog.replay"},
			{"encryption key not certified", func(ai *envelope.AttestationInfo) {
				ai.TPM.EncKeyCertifyInfoSignature = ai.TPM.PcrSignature
			}, "azureguest.enckey"},
			{"runtime data swapped", func(ai *envelope.AttestationInfo) {
				ai.Isolation.RuntimeData = []byte(`{"keys":[]}`)
			}, "azureguest.runtime.binding"},
			{"no TCG log", func(ai *envelope.AttestationInfo) { ai.TcgLogs = nil }, "azureguest.tcglog"},
		} {
			t.Run(c.name, func(t *testing.T) {
				ai := *ev.Info
				ai.TPM = ev.Info.TPM
				ai.Isolation = ev.Info.Isolation
				c.mutate(&ai)
				b, err := envelope.Marshal(&ai)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c2(srv).AttestAzureGuest(ctx, b, ev.Open, nil)
				var he *client.Error
				if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest || he.Code != "InvalidParameter" || !strings.Contains(he.Message, c.check) {
					t.Fatalf("got %v, want 400 InvalidParameter naming %s", err, c.check)
				}
			})
		}
	})
}

func c2(srv *attestdtest.Server) *client.Client {
	c, err := client.New(srv.URL, &client.Options{HTTPClient: srv.HTTPClient()})
	if err != nil {
		panic(err)
	}
	return c
}

func post(t *testing.T, srv *attestdtest.Server, body []byte) string {
	t.Helper()
	req, _ := json.Marshal(map[string]string{"AttestationInfo": base64.RawURLEncoding.EncodeToString(body)})
	resp, err := srv.HTTPClient().Post(srv.URL+"/attest/AzureGuest?api-version=2020-10-01", "application/json", strings.NewReader(string(req)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || out.Token == "" {
		t.Fatalf("POST /attest/AzureGuest: %s", resp.Status)
	}
	return out.Token
}

// envelopeKey reads the RSA key of a TPM2B_PUBLIC.
func envelopeKey(b []byte) (*rsa.PublicKey, error) {
	p, err := tpm2.Unmarshal[tpm2.TPM2BPublic](b)
	if err != nil {
		return nil, err
	}
	pub, err := p.Contents()
	if err != nil {
		return nil, err
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, err
	}
	return k.(*rsa.PublicKey), nil
}

// imdsFake answers the IMDS TD quote endpoint.
type imdsFake struct {
	t      *testing.T
	report []byte
	quote  []byte
}

func (f imdsFake) RoundTrip(r *http.Request) (*http.Response, error) {
	var body struct{ Report string }
	if r.URL.String() != azureguest.IMDSTDQuoteURL || json.NewDecoder(r.Body).Decode(&body) != nil || body.Report != base64.RawURLEncoding.EncodeToString(f.report) {
		f.t.Errorf("IMDS request %s", r.URL)
		return &http.Response{StatusCode: http.StatusBadRequest, Body: http.NoBody}, nil
	}
	out, _ := json.Marshal(map[string]string{"quote": base64.RawURLEncoding.EncodeToString(f.quote)})
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(out)), Header: http.Header{}}, nil
}

// TestCollectTDX: on a TDX CVM the TDREPORT of the HCL report is turned
// into a TD quote by IMDS, which becomes IsolationInfo's Proof.
func TestCollectTDX(t *testing.T) {
	ctx := context.Background()
	tp := swtpm.Start(t)
	tr := tp.Transport()
	ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.RSA)
	if err != nil {
		t.Fatal(err)
	}
	defer ak.Flush(tr)
	td := bytes.Repeat([]byte{0x81}, hcl.TDReportSize)
	rep, err := hcl.Marshal(&hcl.Report{Version: 2, Type: hcl.TypeTDX, HashType: hcl.HashSHA256, HWReport: td, RuntimeData: []byte(`{"keys":[]}`)})
	if err != nil {
		t.Fatal(err)
	}
	quote := []byte("a TD quote")
	ev, err := azureguest.Collect(ctx, tr, azureguest.Options{HCLReport: rep, AK: ak.Handle, NoAKCert: true, TCGLog: []byte{1}, OSType: "Linux",
		HTTPClient: &http.Client{Transport: imdsFake{t, td, quote}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if iso := ev.Info.Isolation; iso.Type != envelope.IsolationTdx || !bytes.Equal(iso.Proof, quote) || string(iso.RuntimeData) != `{"keys":[]}` {
		t.Fatalf("isolation %+v", iso)
	}
}

// TestEndToEndHTTPSTDX: the same for a TDX CVM: a test-platform TD quote
// binds the runtime JSON; the token's x-ms-isolation-tee holds tdx_* claims.
func TestEndToEndHTTPSTDX(t *testing.T) {
	ctx := context.Background()
	srv, vt := startCVM(ctx, t)
	tr, events, ak := vt.TPM, vt.Events, vt.AK
	rt, err := cvmplatform.RuntimeJSON(ak.Pub.(*rsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	var q tdxplatform.Quote
	q.BindRuntime(rt)
	quote, err := srv.TDX.Mint(q)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := hcl.Marshal(&hcl.Report{Version: 2, Type: hcl.TypeTDX, HashType: hcl.HashSHA256, HWReport: make([]byte, hcl.TDReportSize), RuntimeData: rt})
	if err != nil {
		t.Fatal(err)
	}
	ev, body := collectJSON(ctx, t, tr, azureguest.Options{HCLReport: rep, TDQuote: quote, AK: ak.Handle, NoAKCert: true,
		TCGLog: tpmclient.EncodeLog(events), OSType: "Linux", OSDistro: "Ubuntu"})
	res, err := c2(srv).AttestAzureGuest(ctx, body, ev.Open, nil)
	if err != nil {
		t.Fatal(err)
	}
	tee, _ := res.Token.Claims["x-ms-isolation-tee"].(map[string]any)
	if tee["x-ms-attestation-type"] != "tdxvm" || tee["tdx_report_data"] == nil || res.Token.Claims["x-ms-azurevm-vmid"] != cvmplatform.VMID {
		t.Fatalf("claims %v", res.Token.Claims)
	}
	// A TD quote that binds other runtime data is refused.
	var other tdxplatform.Quote
	other.BindRuntime([]byte("other"))
	bad, err := srv.TDX.Mint(other)
	if err != nil {
		t.Fatal(err)
	}
	ai := *ev.Info
	ai.Isolation.Proof = bad
	b, _ := envelope.Marshal(&ai)
	_, err = c2(srv).AttestAzureGuest(ctx, b, ev.Open, nil)
	var he *client.Error
	if !errors.As(err, &he) || !strings.Contains(he.Message, "azureguest.runtime.binding") {
		t.Fatalf("got %v", err)
	}
}
