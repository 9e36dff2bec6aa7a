package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// testKey is a policy-management key and its self-signed certificate.
type testKey struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// keys memoises test keys by name: RSA key generation dominates the run
// time on a busy 2-core machine.
var keys sync.Map

func newKey(t testing.TB, cn string, ec bool) *testKey {
	t.Helper()
	k, err := makeKey(cn, ec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeKey(cn string, ec bool) (*testKey, error) {
	name := cn
	if ec {
		name += "|ec"
	}
	if k, ok := keys.Load(name); ok {
		return k.(*testKey), nil
	}
	var k crypto.Signer
	var err error
	if ec {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	tk := &testKey{key: k, cert: c}
	keys.Store(name, tk)
	return tk, nil
}

func (k *testKey) signer(t testing.TB) *client.Signer {
	t.Helper()
	s, err := client.NewSigner(k.key, k.cert)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// env is a real attestd (api + instance + sqlite + token keys + the real
// SGX verifier trusting a test platform's root) served over TLS:
// "default" (AAD) at the root and "iso" (Isolated) at /tenants/iso.
type env struct {
	srv         *httptest.Server
	base        string
	contributor string
	reader      string
	pm          *testKey // the Isolated instance's first policy-management certificate
	platform    *sgxplatform.Platform
	caFile      string // the server's TLS certificate as PEM
	closeDB     func() error
}

func (e *env) close() {
	e.srv.Close()
	e.closeDB()
}

var (
	envOnce   sync.Once
	shared    *env
	sharedDir string
	envErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// sharedEnv starts one env for the package: every test that uses it works
// on its own attestation type or instance state it restores, and starting
// attestd (keys, SQLite) per test would dominate the run time.
func sharedEnv(t *testing.T) *env {
	t.Helper()
	envOnce.Do(startShared)
	if envErr != nil {
		t.Fatal(envErr)
	}
	return shared
}

func startShared() {
	if sharedDir, envErr = os.MkdirTemp("", "attestd-client-test-"); envErr == nil {
		shared, envErr = startEnv(sharedDir)
	}
}

// newEnv starts a private env (for tests that change instance state).
func newEnv(t *testing.T) *env {
	t.Helper()
	e, err := startEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

func startEnv(dir string) (*env, error) {
	ctx := context.Background()
	now := time.Now()
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		return nil, err
	}
	src, err := bundle.FromCollateral(p.Collateral())
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	v, err := sgx.NewVerifier(sgx.Options{Collateral: src, Roots: p.Roots(), Logger: quiet})
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		return nil, err
	}
	dev, err := auth.OpenDevIdentity(dir)
	if err != nil {
		return nil, err
	}
	authn, err := auth.New(auth.Config{Issuers: []auth.Issuer{dev.Issuer()}, Now: time.Now})
	if err != nil {
		return nil, err
	}
	pm, err := makeKey("pm", false)
	if err != nil {
		return nil, err
	}
	e := &env{pm: pm, platform: p, closeDB: db.Close}
	e.srv = httptest.NewUnstartedServer(nil)
	e.base = "https://" + e.srv.Listener.Addr().String()
	var mounts []api.Mount
	for _, m := range []struct {
		name, prefix string
		mode         instance.Mode
		certs        []*x509.Certificate
	}{
		{"default", "", instance.ModeAAD, nil},
		{"iso", "/tenants/iso", instance.ModeIsolated, []*x509.Certificate{pm.cert}},
	} {
		ks, err := token.OpenKeySet(filepath.Join(dir, "keys", m.name), e.base+m.prefix, time.Now)
		if err != nil {
			return nil, err
		}
		in, err := instance.New(ctx, instance.Config{Name: m.name, Mode: m.mode, Issuer: e.base + m.prefix, PolicyCertificates: m.certs},
			instance.Options{Store: db, Keys: ks, Logger: quiet,
				Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v}})
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, api.Mount{Prefix: m.prefix, Instance: in, Auth: authn})
	}
	h, err := api.New(api.Options{Mounts: mounts, Logger: quiet})
	if err != nil {
		return nil, err
	}
	e.srv.Config.Handler = h
	e.srv.StartTLS()
	if e.contributor, err = dev.Mint(time.Now(), auth.RoleContributor, "", 2*time.Hour); err != nil {
		return nil, err
	}
	if e.reader, err = dev.Mint(time.Now(), auth.RoleReader, "", 2*time.Hour); err != nil {
		return nil, err
	}
	e.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(e.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw}), 0o600); err != nil {
		return nil, err
	}
	return e, nil
}

// client returns a client for the instance at path ("" or "/tenants/iso")
// with the given bearer token ("" for none) and validation options.
func (e *env) client(t testing.TB, path, bearer string, v client.Validation) *client.Client {
	t.Helper()
	opts := &client.Options{HTTPClient: e.srv.Client(), Validation: v}
	if bearer != "" {
		opts.Credential = func(context.Context) (string, error) { return bearer, nil }
	}
	c, err := client.New(e.base+path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// quote mints a test-platform quote (or OE report) whose report data binds
// runtime.
func (e *env) quote(t testing.TB, oe bool, runtime []byte, debug bool) []byte {
	t.Helper()
	o := sgxplatform.QuoteOptions{Debug: debug, ProductID: 7, SVN: 3}
	for i := range o.MREnclave {
		o.MREnclave[i], o.MRSigner[i] = 0xa1, 0xb2
	}
	h := sha256.Sum256(runtime)
	copy(o.ReportData[:], h[:])
	var b []byte
	var err error
	if oe {
		b, err = e.platform.OEReport(o)
	} else {
		b, err = e.platform.Quote(o)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}
