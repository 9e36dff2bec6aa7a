// Package attestdtest runs a real attestd in-process for the tests of its
// clients (package client, cmd/attest): the api handler over real
// instances, SQLite store, token keys, development-identity admin auth and
// the real SGX verifier trusting a test SGX platform (testing/sgxplatform),
// served over TLS. Nothing is faked but the SGX hardware.
package attestdtest

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
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/evidence/snp"
	snpverify "github.com/attestd/attestd/evidence/snp/verify"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/testing/dcapfake"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/testing/snpplatform"
	"github.com/attestd/attestd/testing/tdxplatform"
	"github.com/attestd/attestd/token"
)

// IsolatedPrefix is the path of the Isolated instance.
const IsolatedPrefix = "/tenants/iso"

// Key is a policy-management key and its self-signed certificate.
type Key struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// keys memoises keys by name: RSA key generation dominates test run time
// on a busy 2-core machine.
var keys sync.Map

// NewKey returns the (memoised) RSA or ECDSA P-256 key named cn with a
// self-signed certificate valid from an hour ago for a day.
func NewKey(cn string, ec bool) (*Key, error) {
	name := fmt.Sprintf("%s|%v", cn, ec)
	if k, ok := keys.Load(name); ok {
		return k.(*Key), nil
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
	key := &Key{Key: k, Cert: c}
	keys.Store(name, key)
	return key, nil
}

// WritePEM writes the key (PKCS#8) and certificate as PEM files in dir and
// returns their paths.
func (k *Key) WritePEM(dir string) (keyFile, certFile string, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return "", "", err
	}
	name := k.Cert.Subject.CommonName
	keyFile, certFile = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, certFile, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Cert.Raw}), 0o600)
}

// Server is a running attestd with two instances: "default" (AAD) at the
// root and "iso" (Isolated, seeded with PM) at IsolatedPrefix.
type Server struct {
	// URL is the base URL (https://127.0.0.1:port).
	URL string
	// Contributor and Reader are admin bearer tokens (2 h).
	Contributor, Reader string
	// PM is the Isolated instance's first policy-management key.
	PM *Key
	// Platform is the test SGX platform the verifier trusts.
	Platform *sgxplatform.Platform
	// SNP is the test SEV-SNP platform the SevSnpVm verifier trusts.
	SNP *snpplatform.Platform
	// TDX is the test TDX platform the TdxVm verifier trusts.
	TDX *tdxplatform.Platform
	// CAFile is the server's TLS certificate as a PEM file.
	CAFile string

	srv *httptest.Server
	db  interface{ Close() error }
}

// Options add to what Start serves.
type Options struct {
	// Verifiers are registered in every instance beside the SGX and SNP
	// ones (e.g. a Tpm verifier trusting a test AK), replacing them for
	// the same type.
	Verifiers map[evidence.Type]evidence.Verifier
	// Now is the instances' clock (nil: time.Now), e.g. to let a TPM
	// service_context expire.
	Now func() time.Time
}

// Start serves a fresh attestd with its state under dir.
func Start(dir string) (*Server, error) { return StartWith(dir, Options{}) }

// StartWith is Start with o's additions.
func StartWith(dir string, o Options) (*Server, error) {
	ctx := context.Background()
	p, err := sgxplatform.New(sgxplatform.Options{Now: time.Now()})
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
	sp, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		return nil, err
	}
	spRoots, err := snpverify.RootsFromPEM(sp.ProductLine, sp.RootsPEM())
	if err != nil {
		return nil, err
	}
	sv, err := snp.New(snp.Options{Verify: snpverify.Options{Roots: []snpverify.ProductRoots{spRoots}}})
	if err != nil {
		return nil, err
	}
	tp, err := tdxplatform.New(tdxplatform.Options{PKI: dcapfake.Options{Now: time.Now()}})
	if err != nil {
		return nil, err
	}
	tcoll, err := tp.Collateral(dcapfake.Docs{})
	if err != nil {
		return nil, err
	}
	tsrc, err := bundle.FromCollateral(tcoll)
	if err != nil {
		return nil, err
	}
	tv, err := tdx.New(tdx.Options{Collateral: tsrc, Roots: tp.Roots(), Logger: quiet})
	if err != nil {
		return nil, err
	}
	pm, err := NewKey("pm", false)
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		return nil, err
	}
	s := &Server{PM: pm, Platform: p, SNP: sp, TDX: tp, db: db}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	dev, err := auth.OpenDevIdentity(dir)
	if err != nil {
		return nil, err
	}
	authn, err := auth.New(auth.Config{Issuers: []auth.Issuer{dev.Issuer()}, Now: time.Now})
	if err != nil {
		return nil, err
	}
	s.srv = httptest.NewUnstartedServer(nil)
	s.URL = "https://" + s.srv.Listener.Addr().String()
	var mounts []api.Mount
	for _, m := range []struct {
		name, prefix string
		mode         instance.Mode
		certs        []*x509.Certificate
	}{
		{"default", "", instance.ModeAAD, nil},
		{"iso", IsolatedPrefix, instance.ModeIsolated, []*x509.Certificate{pm.Cert}},
	} {
		ks, err := token.OpenKeySet(filepath.Join(dir, "keys", m.name), s.URL+m.prefix, time.Now)
		if err != nil {
			return nil, err
		}
		verifiers := map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: v, evidence.OpenEnclave: v, evidence.SevSnpVm: sv, evidence.TdxVm: tv,
			evidence.AzureGuest: azureguest.New(azureguest.Options{SNP: sv, TDX: tv})}
		for t, ov := range o.Verifiers {
			verifiers[t] = ov
		}
		in, err := instance.New(ctx, instance.Config{Name: m.name, Mode: m.mode, Issuer: s.URL + m.prefix, PolicyCertificates: m.certs},
			instance.Options{Store: db, Keys: ks, Logger: quiet, Verifiers: verifiers, Now: o.Now})
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, api.Mount{Prefix: m.prefix, Instance: in, Auth: authn})
	}
	h, err := api.New(api.Options{Mounts: mounts, Logger: quiet})
	if err != nil {
		return nil, err
	}
	s.srv.Config.Handler = h
	s.srv.StartTLS()
	if s.Contributor, err = dev.Mint(time.Now(), auth.RoleContributor, "", 2*time.Hour); err != nil {
		return nil, err
	}
	if s.Reader, err = dev.Mint(time.Now(), auth.RoleReader, "", 2*time.Hour); err != nil {
		return nil, err
	}
	s.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o600); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// HTTPClient returns an HTTP client trusting the server's certificate.
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// Close stops the server and closes the store.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
	s.db.Close()
}

// Quote mints a quote (or, with oe, an OpenEnclave report) of the test
// enclave (MRENCLAVE a1…, MRSIGNER b2…, product 7, SVN 3) whose report
// data binds SHA-256(runtime).
func (s *Server) Quote(oe bool, runtime []byte, debug bool) ([]byte, error) {
	o := sgxplatform.QuoteOptions{Debug: debug, ProductID: 7, SVN: 3}
	for i := range o.MREnclave {
		o.MREnclave[i], o.MRSigner[i] = 0xa1, 0xb2
	}
	h := sha256.Sum256(runtime)
	copy(o.ReportData[:], h[:])
	if oe {
		return s.Platform.OEReport(o)
	}
	return s.Platform.Quote(o)
}
