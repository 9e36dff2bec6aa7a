package pcs

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/collateral/pcs/pcstest"
	"github.com/attestd/attestd/internal/testenv"
)

var (
	reqD1 = collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110000", CA: "processor"}
	reqG1 = collateral.Request{TEE: collateral.TDX, FMSPC: "50806f000000", CA: "platform"}
)

func load(t *testing.T, rel string, req collateral.Request) *collateral.Collateral {
	t.Helper()
	b, err := bundle.Load(testenv.Shared(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Get(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newD1 serves the D1 set (dcap-qvl sample, SGX, processor CA).
func newD1(t *testing.T) (*pcstest.Handler, *collateral.Collateral) {
	c := load(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json", reqD1)
	return &pcstest.Handler{Sets: []*collateral.Collateral{c}}, c
}

// newG1 serves go-tdx-guest's stored PCS response bodies verbatim.
func newG1(t *testing.T) (*pcstest.Handler, *collateral.Collateral) {
	c := load(t, "vectors/go-tdx-guest", reqG1)
	return &pcstest.Handler{
		Sets:          []*collateral.Collateral{c},
		RawTCBInfo:    map[string][]byte{"tdx/50806f000000": testenv.ReadShared(t, "vectors/go-tdx-guest/testing/testdata/sample_tcbInfo_response")},
		RawQEIdentity: map[string][]byte{"tdx": testenv.ReadShared(t, "vectors/go-tdx-guest/testing/testdata/sample_qeIdentity_response")},
	}, c
}

func sameCollateral(t *testing.T, got, want *collateral.Collateral) {
	t.Helper()
	for _, f := range []struct {
		name string
		x, y []byte
	}{
		{"PCKCRLIssuerChain", got.PCKCRLIssuerChain, want.PCKCRLIssuerChain}, {"RootCACRL", got.RootCACRL, want.RootCACRL},
		{"PCKCRL", got.PCKCRL, want.PCKCRL}, {"TCBInfoIssuerChain", got.TCBInfoIssuerChain, want.TCBInfoIssuerChain},
		{"TCBInfo", got.TCBInfo, want.TCBInfo}, {"TCBInfoSignature", got.TCBInfoSignature, want.TCBInfoSignature},
		{"QEIdentityIssuerChain", got.QEIdentityIssuerChain, want.QEIdentityIssuerChain}, {"QEIdentity", got.QEIdentity, want.QEIdentity},
		{"QEIdentitySignature", got.QEIdentitySignature, want.QEIdentitySignature},
	} {
		if !bytes.Equal(f.x, f.y) {
			t.Errorf("%s differs from the stored collateral", f.name)
		}
	}
}

func TestGetSuccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		mk   func(*testing.T) (*pcstest.Handler, *collateral.Collateral)
		req  collateral.Request
	}{
		{"SGX D1", newD1, reqD1},
		{"TDX G1 stored bodies", newG1, reqG1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, want := tc.mk(t)
			srv := httptest.NewServer(fake)
			defer srv.Close()
			var logs bytes.Buffer
			c, err := New(Config{
				BaseURL: srv.URL, SubscriptionKey: "s3cret-key", RootCACRLURL: srv.URL + pcstest.RootCACRLPath,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			sameCollateral(t, got, want)
			seen := fake.Requests()
			for _, r := range seen {
				if r.SubscriptionKey != "s3cret-key" {
					t.Errorf("request carried subscription key %q", r.SubscriptionKey)
				}
			}
			if len(seen) != 4 {
				t.Errorf("%d requests, want 4", len(seen))
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Error("the subscription key was logged")
			}
			if !strings.Contains(logs.String(), "request_id=pcstest-0001") {
				t.Errorf("debug log lacks the request id: %s", logs.String())
			}
		})
	}
}

// rewrite sends every request, whatever its host, to the test server: the
// real Intel hosts are never contacted.
type rewrite struct{ target *url.URL }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = r.target.Scheme, r.target.Host
	out.Host = req.URL.Host
	return http.DefaultTransport.RoundTrip(out)
}

// TestRootCRLFromDistributionPoint: with no configured URL the Root CA CRL
// comes from the root certificate's CRL distribution point, and the
// subscription key is not sent there.
func TestRootCRLFromDistributionPoint(t *testing.T) {
	fake, want := newD1(t)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	c, err := New(Config{BaseURL: IntelPCSURL, SubscriptionKey: "k", HTTPClient: &http.Client{Transport: rewrite{target}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(context.Background(), reqD1)
	if err != nil {
		t.Fatal(err)
	}
	sameCollateral(t, got, want)
	var sawCDP bool
	for _, r := range fake.Requests() {
		if r.Host == "certificates.trustedservices.intel.com" {
			sawCDP = true
			if r.Path != pcstest.RootCACRLPath || r.SubscriptionKey != "" {
				t.Errorf("CDP request: path %s, key %q", r.Path, r.SubscriptionKey)
			}
		} else if r.Host != "api.trustedservices.intel.com" || r.SubscriptionKey != "k" {
			t.Errorf("request to %s with key %q", r.Host, r.SubscriptionKey)
		}
	}
	if !sawCDP {
		t.Errorf("root CRL not fetched from the distribution point; requests %v", fake.Requests())
	}
}

func TestPCCSWithPrivateCA(t *testing.T) {
	fake, want := newD1(t)
	srv := httptest.NewUnstartedServer(fake)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "pccs-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{BaseURL: srv.URL, PCCS: true, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(context.Background(), reqD1)
	if err != nil {
		t.Fatal(err)
	}
	sameCollateral(t, got, want)
	if seen := fake.Requests(); seen[len(seen)-1].Path != pcstest.PCCSRootCACRLPath {
		p := seen[len(seen)-1].Path
		t.Errorf("root CRL fetched from %s, want the PCCS path", p)
	}
	// Without the CA file the self-signed certificate is refused.
	c2, _ := New(Config{BaseURL: srv.URL, PCCS: true})
	if _, err := c2.Get(context.Background(), reqD1); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Get without CA file = %v, want a TLS certificate error", err)
	}
}

func TestGetErrors(t *testing.T) {
	fake, _ := newD1(t)
	set := fake.Sets[0]
	chain := string(set.TCBInfoIssuerChain)
	for _, tc := range []struct {
		name        string
		req         collateral.Request
		override    func(w http.ResponseWriter, r *http.Request) bool
		cfg         func(*Config)
		notFound    bool
		unavailable bool
		want        []string
	}{
		{name: "unknown FMSPC", req: collateral.Request{TEE: collateral.SGX, FMSPC: "00a067119999", CA: "processor"},
			notFound: true, want: []string{"no TCB info for FMSPC 00a067119999", "HTTP 404"}},
		{name: "server error", req: reqD1, unavailable: true, want: []string{"HTTP 503", "Request-ID r-9", "maintenance"},
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/qe/identity") {
					w.Header().Set("Request-ID", "r-9")
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write([]byte("<html>down for maintenance\x00\x01</html>"))
					return true
				}
				return false
			}},
		{name: "oversized body", req: reqD1, unavailable: true, want: []string{"exceeds the 1000-byte limit"},
			cfg: func(c *Config) { c.MaxResponseBytes = 1000 }},
		{name: "oversized chunked body", req: reqD1, unavailable: true, want: []string{"exceeds the 100000-byte limit"},
			cfg: func(c *Config) { c.MaxResponseBytes = 100000 },
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/tcb") {
					w.Header().Set(HeaderTCBInfoIssuerChain, pcstest.EscapeHeader(chain))
					for i := 0; i < 200; i++ {
						w.Write(bytes.Repeat([]byte(" "), 1000))
						w.(http.Flusher).Flush()
					}
					return true
				}
				return false
			}},
		{name: "bad issuer chain header", req: reqD1, unavailable: true, want: []string{"TCB-Info-Issuer-Chain header", "not PEM"},
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/tcb") {
					w.Header().Set(HeaderTCBInfoIssuerChain, "garbage%20chain")
					w.Write(pcstest.Body("tcbInfo", set.TCBInfo, set.TCBInfoSignature))
					return true
				}
				return false
			}},
		{name: "bad escaping in header", req: reqD1, unavailable: true, want: []string{"not URL-encoded"},
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/pckcrl") {
					w.Header().Set(HeaderPCKCRLIssuerChain, "%zz")
					w.Write(set.PCKCRL)
					return true
				}
				return false
			}},
		{name: "missing issuer chain header", req: reqD1, unavailable: true, want: []string{"no SGX-Enclave-Identity-Issuer-Chain header"},
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/qe/identity") {
					w.Write(pcstest.Body("enclaveIdentity", set.QEIdentity, set.QEIdentitySignature))
					return true
				}
				return false
			}},
		{name: "wrong FMSPC served", req: collateral.Request{TEE: collateral.SGX, FMSPC: "00a067110001", CA: "processor"}, unavailable: true,
			want: []string{"asked for the SGX TCB info of FMSPC 00a067110001, got SGX FMSPC 00a067110000"},
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/tcb") {
					w.Header().Set(HeaderTCBInfoIssuerChain, pcstest.EscapeHeader(chain))
					w.Write(pcstest.Body("tcbInfo", set.TCBInfo, set.TCBInfoSignature))
					return true
				}
				return false
			}},
		{name: "garbage body", req: reqD1, unavailable: true, want: []string{"TCB info response", "not JSON"},
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/tcb") {
					w.Header().Set(HeaderTCBInfoIssuerChain, pcstest.EscapeHeader(chain))
					w.Write([]byte("<html>"))
					return true
				}
				return false
			}},
		{name: "timeout", req: reqD1, unavailable: true, want: []string{"context deadline exceeded"},
			cfg: func(c *Config) { c.Timeout = 50 * time.Millisecond },
			override: func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/pckcrl") {
					<-r.Context().Done()
					return true
				}
				return false
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newD1(t)
			f.Override = tc.override
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := Config{BaseURL: srv.URL, RootCACRLURL: srv.URL + pcstest.RootCACRLPath}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Get(context.Background(), tc.req)
			if err == nil {
				t.Fatal("Get succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if got := errors.Is(err, collateral.ErrNotFound); got != tc.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v", got, tc.notFound)
			}
			var ue *collateral.UnavailableError
			if got := errors.As(err, &ue); got != tc.unavailable {
				t.Errorf("errors.As(UnavailableError) = %v, want %v", got, tc.unavailable)
			}
		})
	}
}

func TestStatusErrorFields(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Request-ID", "abc")
		w.Header().Set("Error-Code", "InvalidParameter")
		w.Header().Set("Error-Message", "fmspc is invalid")
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL})
	_, _, err := c.TCBInfo(context.Background(), collateral.SGX, "00a067110000")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 400 || se.RequestID != "abc" || se.ErrorCode != "InvalidParameter" || se.ErrorMessage != "fmspc is invalid" {
		t.Fatalf("err = %v (%+v)", err, se)
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{BaseURL: "ftp://x"},
		{BaseURL: "https://x", TCBUpdate: "later"},
		{BaseURL: "https://x", RootCACRLURL: "file:///etc/crl"},
		{BaseURL: "https://x", CAFile: "/nonexistent"},
		{BaseURL: "https://x", CAFile: "x", HTTPClient: http.DefaultClient},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func FuzzDecodeIssuerChainHeader(f *testing.F) {
	f.Add("-----BEGIN%20CERTIFICATE-----%0A")
	f.Add("%zz")
	for _, b := range testenv.Seeds(f, "vectors/go-tdx-guest/derived/tcbInfoIssuerChain.pem") {
		f.Add(pcstest.EscapeHeader(string(b)))
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, v string) {
		pemText, err := DecodeIssuerChainHeader(HeaderTCBInfoIssuerChain, v)
		if err != nil {
			return
		}
		if _, err := collateral.ParseCertChain(pemText); err != nil {
			t.Fatalf("accepted header does not hold a chain: %v", err)
		}
		// Re-encoding the way PCS does gives the same chain.
		again, err := DecodeIssuerChainHeader(HeaderTCBInfoIssuerChain, pcstest.EscapeHeader(string(pemText)))
		if err != nil || !bytes.Equal(again, pemText) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestRedirectDropsSubscriptionKey: a redirect to another host must not
// carry the key (net/http forwards custom headers across hosts).
func TestRedirectDropsSubscriptionKey(t *testing.T) {
	fake, want := newD1(t)
	other := httptest.NewServer(fake)
	defer other.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer front.Close()
	c, err := New(Config{BaseURL: front.URL, SubscriptionKey: "k", RootCACRLURL: front.URL + pcstest.RootCACRLPath})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(context.Background(), reqD1)
	if err != nil {
		t.Fatal(err)
	}
	sameCollateral(t, got, want)
	seen := fake.Requests()
	if len(seen) != 4 {
		t.Fatalf("%d requests reached the redirect target, want 4", len(seen))
	}
	for _, r := range seen {
		if r.SubscriptionKey != "" {
			t.Errorf("key sent to the redirect target (%s)", r.Path)
		}
	}
}
