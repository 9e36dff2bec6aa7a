package snp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/collateral/cache"
	amdkds "github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/collateral/kds/kdstest"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp"
	"github.com/attestd/attestd/evidence/snp/verify"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/snpplatform"
)

// server is attestd's HTTP API over TLS with one AAD instance whose
// SevSnpVm verifier is v, and a SevSnpVm policy set.
func server(t *testing.T, v evidence.Verifier, policyText string) (*httptest.Server, *client.Client) {
	t.Helper()
	o := attestdtest.InstanceOptions{Verifiers: map[evidence.Type]evidence.Verifier{evidence.SevSnpVm: v}, DevAuth: true}
	if policyText != "" {
		o.Policies = map[evidence.Type]string{evidence.SevSnpVm: policyText}
	}
	s := attestdtest.StartInstance(t, o)
	// Retries of 429/503 without sleeping: the tests assert the answers.
	noWait := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	c, err := client.New(s.URL, &client.Options{HTTPClient: s.Server.Client(), Validation: client.Validation{Issuer: s.URL, Leeway: time.Minute},
		Retry: client.Retry{Wait: noWait}})
	if err != nil {
		t.Fatal(err)
	}
	return s.Server, c
}

const notDebuggable = `version=1.0;
authorizationrules{
  c:[type=="x-ms-sevsnpvm-is-debuggable", value==false] => permit();
};
issuancerules{
  c:[type=="x-ms-sevsnpvm-launchmeasurement"] => issue(type="measurement", value=c.value);
};`

func platform(t testing.TB) (*snpplatform.Platform, verify.ProductRoots) {
	t.Helper()
	p, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := verify.RootsFromPEM(p.ProductLine, p.RootsPEM())
	if err != nil {
		t.Fatal(err)
	}
	return p, r
}

func sum(b []byte) (out [64]byte) {
	h := sha256.Sum256(b)
	copy(out[:], h[:])
	return out
}

func errCode(t *testing.T, err error) (int, string, string) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *client.Error", err)
	}
	return ce.StatusCode, ce.Code, ce.Message
}

// TestAttestSevSnpVmHTTPS runs SEV-SNP attestations of a test-platform VM
// through attestd's HTTPS API and the Go SDK.
func TestAttestSevSnpVmHTTPS(t *testing.T) {
	p, roots := platform(t)
	v, err := snp.New(snp.Options{Verify: verify.Options{Roots: []verify.ProductRoots{roots}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, c := server(t, v, notDebuggable)
	ctx := context.Background()

	runtime := []byte(`{"keys":[{"kid":"HCLTransferKey","kty":"RSA"}],"vm-configuration":{"secure-boot":true}}`)
	hostPolicy := []byte("package policy\nallow := true\n")
	var meas [48]byte
	meas[0] = 0x42
	raw, err := p.Sign(snpplatform.Report{Version: 3, ReportData: sum(runtime), HostData: sha256.Sum256(hostPolicy), Measurement: meas})
	if err != nil {
		t.Fatal(err)
	}
	body := snpplatform.MAAReport(raw, p.ChainPEM(false), nil)
	r, err := c.AttestSevSnpVm(ctx, body, &client.AttestOptions{RuntimeJSON: runtime, InitTimeData: hostPolicy, Nonce: "n-1"})
	if err != nil {
		t.Fatal(err)
	}
	cl := r.Claims
	if r.AttestationType != "sevsnpvm" || cl["x-ms-sevsnpvm-is-debuggable"] != false || r.Nonce != "n-1" {
		t.Fatalf("claims %v", cl)
	}
	if got := cl["x-ms-sevsnpvm-launchmeasurement"]; got != "42"+strings.Repeat("00", 47) || r.PolicyClaims["measurement"] != got {
		t.Fatalf("measurement %v, policy claims %v", got, r.PolicyClaims)
	}
	if hd := sha256.Sum256(hostPolicy); cl["x-ms-sevsnpvm-hostdata"] != hexOf(hd[:]) {
		t.Fatalf("hostdata %v", cl["x-ms-sevsnpvm-hostdata"])
	}
	if r.RuntimeClaims["vm-configuration"] == nil {
		t.Fatalf("x-ms-runtime %v", r.RuntimeClaims)
	}

	// Refusals, each naming its check.
	dbg, _ := p.Sign(snpplatform.Report{Version: 3, Debug: true})
	other, _ := p.Sign(snpplatform.Report{Version: 3, ReportData: sum([]byte("other"))})
	tampered := bytes.Clone(raw)
	tampered[0x90] ^= 1
	for _, tc := range []struct {
		name   string
		body   []byte
		opts   *client.AttestOptions
		status int
		code   string
		check  string
	}{
		{"debuggable denied by policy", snpplatform.MAAReport(dbg, p.ChainPEM(false), nil), nil, 400, "PolicyEvaluationError", ""},
		{"runtime data not bound", snpplatform.MAAReport(other, p.ChainPEM(false), nil), &client.AttestOptions{RuntimeJSON: runtime}, 400, "InvalidParameter", "runtimedata.binding"},
		{"init-time data not HOST_DATA", body, &client.AttestOptions{InitTimeData: []byte("another policy")}, 400, "InvalidParameter", "inittimedata.binding"},
		{"tampered report", snpplatform.MAAReport(tampered, p.ChainPEM(false), nil), nil, 400, "InvalidParameter", string(verify.CheckSignature)},
		{"no VCEK and no KDS", snpplatform.MAAReport(raw, nil, nil), nil, 400, "InvalidParameter", string(verify.CheckEndorsementMissing)},
		{"garbage", []byte("not a report"), nil, 400, "InvalidParameter", string(snp.CheckParse)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AttestSevSnpVm(ctx, tc.body, tc.opts)
			st, code, msg := errCode(t, err)
			if st != tc.status || code != tc.code || !strings.Contains(msg, tc.check) {
				t.Fatalf("%d %s %q, want %d %s naming %s", st, code, msg, tc.status, tc.code, tc.check)
			}
		})
	}

	// The ACI sidecar's exact request: padded base64url, nonce as a JSON
	// number, empty initTimeData, JSON runtime data.
	enc := base64.URLEncoding
	aci, _ := json.Marshal(map[string]any{
		"report":       enc.EncodeToString(body),
		"runtimeData":  map[string]string{"data": enc.EncodeToString(runtime), "dataType": "JSON"},
		"initTimeData": map[string]string{"data": "", "dataType": ""},
		"nonce":        uint64(18446744073709551615),
	})
	res, err := srv.Client().Post(srv.URL+"/attest/SevSnpVm?api-version=2022-08-01", "application/json", bytes.NewReader(aci))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("ACI request: %d %s", res.StatusCode, b)
	}
	var tr struct{ Token string }
	json.Unmarshal(b, &tr)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tr.Token, ".")[1])
	if !bytes.Contains(payload, []byte(`"nonce":18446744073709551615`)) {
		t.Fatalf("nonce not echoed as the number sent: %s", payload)
	}
}

func hexOf(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, d[x>>4], d[x&15])
	}
	return string(out)
}

// TestAttestSevSnpVmKDS: a report sent without certificates is verified
// with the VCEK a local KDS stub serves; a KDS answering 429 makes attestd
// answer 503 (retry later), not a rejection of the evidence.
func TestAttestSevSnpVmKDS(t *testing.T) {
	p, roots := platform(t)
	raw, _ := p.Sign(snpplatform.Report{Version: 3})
	key, _ := amdkds.NewVCEKKey(amdkds.Milan, p.ChipID[:], mustReported(t, raw))
	throttle := false
	h := &kdstest.Handler{VCEKs: map[amdkds.VCEKKey][]byte{key: p.VCEK()}, Override: func(w http.ResponseWriter, r *http.Request) bool {
		if throttle {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}
		return throttle
	}}
	kdsSrv := httptest.NewServer(h)
	defer kdsSrv.Close()
	newClient := func(t *testing.T) *client.Client {
		cl, _ := amdkds.NewClient(amdkds.ClientConfig{BaseURL: kdsSrv.URL})
		kc, err := amdkds.NewCache(cl, cache.Options{Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kc.Close() })
		v, err := snp.New(snp.Options{Verify: verify.Options{Roots: []verify.ProductRoots{roots}, Endorsements: snp.KDS{Source: kc}}})
		if err != nil {
			t.Fatal(err)
		}
		_, c := server(t, v, "")
		return c
	}
	ctx := context.Background()
	if _, err := newClient(t).AttestSevSnpVm(ctx, snpplatform.MAAReport(raw, nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	throttle = true
	_, err := newClient(t).AttestSevSnpVm(ctx, snpplatform.MAAReport(raw, nil, nil), nil)
	st, code, msg := errCode(t, err)
	if st != 503 || code != "ServiceUnavailable" || !strings.Contains(msg, string(verify.CheckEndorsementUnavailable)) {
		t.Fatalf("%d %s %q", st, code, msg)
	}
}

func mustReported(t *testing.T, raw []byte) uint64 {
	t.Helper()
	ev, err := snp.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Report.GetReportedTcb()
}
