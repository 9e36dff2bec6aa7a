package azureguest_test

import (
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
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/azureguest"
	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/cvmplatform"
	"github.com/attestd/attestd/testing/swtpm"
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

// TestEndToEndHTTPS: a software TPM and a test-platform SNP report make a
// full AttestationInfo (synthetic TCG log); attestd over HTTPS answers the
// sealed token, the TPM's ephemeral key opens it, and the claims are the
// boot, isolation and runtime claims the evidence supports.
func TestEndToEndHTTPS(t *testing.T) {
	ctx := context.Background()
	srv, err := attestdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tp := swtpm.Start(t)
	tr := tp.Transport()
	events, err := cvmplatform.BootEvents(selfSigned(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := tpmclient.Measure(ctx, tr, events); err != nil {
		t.Fatal(err)
	}
	ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.RSA)
	if err != nil {
		t.Fatal(err)
	}
	defer ak.Flush(tr)
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
	ev, err := azureguest.Collect(ctx, tr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	body, err := ev.JSON()
	if err != nil {
		t.Fatal(err)
	}
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
