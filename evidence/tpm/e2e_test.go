package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/attestdtest"
	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/tpmclient"
)

// tpmPolicy is a 1.2 Tpm policy: permit only a validated AIK with secure
// boot on; issue the boot state, a value queried from the event log with
// JmesPath, a custom claim and the token properties.
const tpmPolicy = `version=1.2;
configurationrules { => issueproperty(type="report_validity_in_minutes", value=60); };
authorizationrules { [type=="aikValidated", value==true] && [type=="secureBootEnabled", value==true] => permit(); };
issuancerules {
	c:[type=="aikValidated"] => issue(type="aikValidated", value=c.value);
	c:[type=="secureBootEnabled"] => issue(type="secureBootEnabled", value=c.value);
	c:[type=="tpmVersion"] => issue(type="tpmVersion", value=c.value);
	c:[type=="events", issuer=="AttestationService"] => issue(type="secureBootVariables", value=JsonToClaimValue(JmesPath(c.value, "Events[? ProcessedData.UnicodeName == 'SecureBoot'] | length(@)")));
	c:[type=="urn:attestd:tpm:custom:tenant", issuer=="CustomClaim"] => issue(type="tenant", value=c.value);
	c:[type=="vbsReportPresent"] => issue(type="vbsReportPresent", value=c.value);
	c:[type=="enclaveSvn"] => issue(type="enclaveSvn", value=c.value);
	c:[type=="x-ms-tpm-other-keys"] => issue(type="certifiedKeys", value=JsonToClaimValue(JmesPath(c.value, "[? info.tpm_certify.name_alg == ` + "`11`" + `] | length(@)")));
};`

// fixture is a software TPM with a measured synthetic boot log, an AK whose
// certificate chains to a test CA, and an attestd (over HTTPS) whose Tpm
// verifier trusts that CA and a test VSM identity key.
type fixture struct {
	tr      transport.TPM
	ak      *tpmclient.Key
	akCert  []byte
	log     []byte
	reqKey  *rsa.PrivateKey
	vsmKey  *rsa.PrivateKey
	srv     *attestdtest.Server
	cl      *client.Client
	dbCert  []byte
	ctx     context.Context
	attestr *tpmclient.Attester
	root    *x509.Certificate
	rootKey crypto.Signer
	// skew moves the server's clock (nanoseconds).
	skew atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{ctx: ctx, dbCert: selfSigned(t, "test db")}
	var events []tpmclient.Event
	f.tr, events, f.ak = measuredTPM(ctx, t, f.dbCert)
	tr := f.tr
	f.log = tpmclient.EncodeLog(events)
	var err error
	f.root, f.rootKey = testCA(t)
	f.akCert = issue(t, f.root, f.rootKey, f.ak.Pub)
	pool := x509.NewCertPool()
	pool.AddCert(f.root)
	if f.reqKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.vsmKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	v := tpm.NewVerifier(tpm.Options{Verify: verify.Options{Roots: pool, VBSSigningKeys: []*rsa.PublicKey{&f.vsmKey.PublicKey}}})
	now := func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }
	if f.srv, err = attestdtest.StartWith(t.TempDir(), attestdtest.Options{Verifiers: map[evidence.Type]evidence.Verifier{evidence.Tpm: v}, Now: now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	f.cl, err = client.New(f.srv.URL, &client.Options{HTTPClient: f.srv.HTTPClient(),
		Credential: func(context.Context) (string, error) { return f.srv.Contributor, nil }})
	if err != nil {
		t.Fatal(err)
	}
	f.attestr = &tpmclient.Attester{TPM: tr, AK: f.ak, AIKCert: f.akCert, Log: f.log, RequestKey: f.reqKey,
		RPID: "https://rp.example", RPData: []byte("relying party data"),
		CustomClaims: []tpmclient.CustomClaim{{Name: "tenant", Value: "contoso", ValueType: "string"}}}
	return f
}

// setPolicy sets the Tpm policy of the default instance.
func (f *fixture) setPolicy(t *testing.T, text string) {
	t.Helper()
	if _, err := f.cl.SetPolicy(f.ctx, "Tpm", text, nil); err != nil {
		t.Fatal(err)
	}
}

// TestProtocolOverHTTPS runs MAA's TPM protocol against attestd with a real
// software TPM: init → challenge → quote → report, then each refusal with
// its named check.
func TestProtocolOverHTTPS(t *testing.T) {
	f := newFixture(t)
	ctx := f.ctx

	t.Run("no policy", func(t *testing.T) {
		if text, _, err := f.cl.GetPolicy(ctx, "Tpm"); err != nil || text != "" {
			t.Fatalf("GetPolicy(Tpm) without a policy = %q, %v; want the empty text", text, err)
		}
		_, err := f.cl.AttestTpm(ctx, f.attestr)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != http.StatusBadRequest || ce.Code != "Bad request" ||
			ce.Message != "A VBS attestation policy has not been set on the attestation provider." {
			t.Fatalf("attest without a Tpm policy: %v, want MAA's 400 Bad request", err)
		}
	})
	f.setPolicy(t, tpmPolicy)

	t.Run("report", func(t *testing.T) {
		res, err := f.cl.AttestTpm(ctx, f.attestr)
		if err != nil {
			t.Fatal(err)
		}
		c := res.Token.Claims
		for k, want := range map[string]any{"aikValidated": true, "secureBootEnabled": true, "tpmVersion": json.Number("2"),
			"secureBootVariables": json.Number("1"), "tenant": "contoso", "vbsReportPresent": false,
			"rp_data": base64.RawURLEncoding.EncodeToString([]byte("relying party data"))} {
			if c[k] != want {
				t.Errorf("claim %s = %#v, want %#v", k, c[k], want)
			}
		}
		for _, k := range []string{"pcrs", "events", "x-ms-policy", "aikPubHash"} {
			if _, ok := c[k]; ok {
				t.Errorf("the report carries %s: only issued claims belong in a Tpm report", k)
			}
		}
		cnf, _ := c["cnf"].(map[string]any)
		jwk, _ := cnf["jwk"].(map[string]any)
		if n, _ := jwk["n"].(string); n != base64.RawURLEncoding.EncodeToString(f.reqKey.N.Bytes()) {
			t.Errorf("cnf.jwk is not the request key: %v", cnf)
		}
		exp, _ := c["exp"].(json.Number).Int64()
		iat, _ := c["iat"].(json.Number).Int64()
		if exp-iat != 3600 {
			t.Errorf("exp-iat = %v, want report_validity_in_minutes 60", exp-iat)
		}
		if len(res.Token.Header.X5c) != 1 {
			t.Errorf("header x5c = %v, want the signing certificate (omit_x5c false)", res.Token.Header.X5c)
		}
	})

	t.Run("ECC AK", func(t *testing.T) {
		tr := f.tr
		ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.ECC)
		if err != nil {
			t.Fatal(err)
		}
		defer ak.Flush(tr)
		a := *f.attestr
		a.AK, a.AIKCert = ak, issue(t, f.root, f.rootKey, ak.Pub)
		res, err := f.cl.AttestTpm(ctx, &a)
		if err != nil {
			t.Fatal(err)
		}
		if res.Token.Claims["aikValidated"] != true {
			t.Errorf("claims %v", res.Token.Claims)
		}
	})

	t.Run("other_keys by TPM2_Certify", func(t *testing.T) {
		tr := f.tr
		k, err := tpmclient.CreatePrimary(ctx, tr, tpmclient.SigningKeyTemplate())
		if err != nil {
			t.Fatal(err)
		}
		defer k.Flush(tr)
		a := *f.attestr
		a.CertifiedKey = k
		res, err := f.cl.AttestTpm(ctx, &a)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Token.Claims["certifiedKeys"]; got != json.Number("1") {
			t.Errorf("certifiedKeys = %v, want 1", got)
		}
		// A certification of another key under this key's public area.
		other, err := tpmclient.CreatePrimary(ctx, tr, tpmclient.AKTemplate(tpmclient.RSA))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Flush(tr)
		swapped := *other
		swapped.PublicBytes, swapped.Pub = k.PublicBytes, k.Pub
		a.CertifiedKey = &swapped
		_, err = f.cl.AttestTpm(ctx, &a)
		wantCheck(t, err, verify.CheckCertify)
	})

	t.Run("RS256 request", func(t *testing.T) {
		a := *f.attestr
		a.Alg = "RS256"
		if _, err := f.cl.AttestTpm(ctx, &a); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("omit_x5c", func(t *testing.T) {
		f.setPolicy(t, strings.Replace(tpmPolicy, `value=60); };`, `value=60); => issueproperty(type="omit_x5c", value=true); };`, 1))
		defer f.setPolicy(t, tpmPolicy)
		res, err := f.cl.AttestTpm(ctx, f.attestr)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(res.Report, ".")
		hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
		if !bytes.Contains(hdr, []byte(`"x5t":`)) || bytes.Contains(hdr, []byte(`"x5c"`)) {
			t.Errorf("header %s: want x5t, no x5c", hdr)
		}
	})

	// A replayed service_context: the second use of one init round.
	t.Run("replayed service_context", func(t *testing.T) {
		rec := &recorder{a: f.attestr}
		if _, err := f.cl.AttestTpm(ctx, rec); err != nil {
			t.Fatal(err)
		}
		_, err := f.cl.AttestTpmProtocol(ctx, rec.msg)
		wantCheck(t, err, evidence.CheckServiceContextReplayed)
	})

	forged := func(t *testing.T, sc string) error {
		ch, _ := f.challenge(t)
		msg, err := f.attestr.TpmRequest(ctx, ch, sc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.cl.AttestTpmProtocol(ctx, msg)
		return err
	}
	t.Run("forged service_context", func(t *testing.T) {
		_, sc := f.challenge(t)
		b := []byte(sc)
		b[len(b)/2] ^= 0x01
		if b[len(b)/2] == '.' || b[len(b)/2] == 0 {
			b[len(b)/2] = 'A'
		}
		wantCheck(t, forged(t, string(b)), evidence.CheckServiceContextForged)
	})
	t.Run("expired service_context", func(t *testing.T) {
		ch, sc := f.challenge(t)
		msg, err := f.attestr.TpmRequest(ctx, ch, sc)
		if err != nil {
			t.Fatal(err)
		}
		f.skew.Store(int64(instance.ServiceContextLifetime + time.Minute))
		defer f.skew.Store(0)
		_, err = f.cl.AttestTpmProtocol(ctx, msg)
		wantCheck(t, err, evidence.CheckServiceContextExpired)
	})
	t.Run("missing service_context", func(t *testing.T) {
		wantCheck(t, forged(t, ""), verify.CheckRequest)
	})

	tr := f.tr
	refuse := func(name string, mut func(t *testing.T, a *tpmclient.Attester), check evidence.Check) {
		t.Run(name, func(t *testing.T) {
			a := *f.attestr
			mut(t, &a)
			_, err := f.cl.AttestTpm(ctx, &a)
			wantCheck(t, err, check)
		})
	}
	refuse("wrong nonce in the quote", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) {
			q, err := tpmclient.QuoteSHA256(ctx, tr, f.ak, []byte("not the challenge binding"))
			if err != nil {
				t.Fatal(err)
			}
			*e.Quote = *q
		}
	}, verify.CheckChallenge)
	refuse("PCR mismatch", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) { e.Quote.PCRs[3] = make([]byte, 32) }
	}, verify.CheckPCRDigest)
	refuse("log that does not replay", func(t *testing.T, a *tpmclient.Attester) {
		a.Log = tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, f.dbCert))
	}, verify.CheckEventLogReplay)
	refuse("log without PCR 7's events (Secure Boot)", func(t *testing.T, a *tpmclient.Attester) {
		l, err := tpmclient.FilterLog(f.log, tpmclient.AllPCRs&^(1<<7))
		if err != nil {
			t.Fatal(err)
		}
		a.Log = l
	}, verify.CheckEventLogReplay)
	refuse("untrusted AK", func(t *testing.T, a *tpmclient.Attester) {
		other, otherKey := testCA(t)
		a.AIKCert = issue(t, other, otherKey, f.ak.Pub)
	}, verify.CheckAIKChain)
	refuse("VBS report with a wrong hash", func(t *testing.T, a *tpmclient.Attester) {
		a.VSMReport = func(h [64]byte) ([]byte, error) {
			h[0] ^= 1
			return vbsReport(t, f.vsmKey, h), nil
		}
	}, verify.CheckVBSReport)
	refuse("VBS report signed by an unknown key", func(t *testing.T, a *tpmclient.Attester) {
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		a.VSMReport = func(h [64]byte) ([]byte, error) { return vbsReport(t, other, h), nil }
	}, verify.CheckVBSReport)
	t.Run("challenge not issued", func(t *testing.T) {
		_, sc := f.challenge(t)
		msg, err := f.attestr.TpmRequest(ctx, []byte("0123456789abcdef"), sc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.cl.AttestTpmProtocol(ctx, msg)
		wantCheck(t, err, verify.CheckChallenge)
	})

	t.Run("VBS enclave", func(t *testing.T) {
		a := *f.attestr
		a.VSMReport = func(h [64]byte) ([]byte, error) { return vbsReport(t, f.vsmKey, h), nil }
		res, err := f.cl.AttestTpm(ctx, &a)
		if err != nil {
			t.Fatal(err)
		}
		if c := res.Token.Claims; c["vbsReportPresent"] != true || c["enclaveSvn"] != json.Number("7") {
			t.Errorf("vbsReportPresent %v, enclaveSvn %v; want true, 7", c["vbsReportPresent"], c["enclaveSvn"])
		}
	})

	t.Run("required_pcr_mask", func(t *testing.T) {
		a := *f.attestr
		a.PCRMask = 0xFFFF // PCRs 0–15 only
		_, err := f.cl.AttestTpm(ctx, &a)
		wantCheck(t, err, verify.CheckPCRMask) // the default mask is 0–23
		f.setPolicy(t, strings.Replace(tpmPolicy, `value=60); };`, `value=60); => issueproperty(type="required_pcr_mask", value=65535); };`, 1))
		defer f.setPolicy(t, tpmPolicy)
		if _, err := f.cl.AttestTpm(ctx, &a); err != nil {
			t.Fatalf("PCRs 0–15 under required_pcr_mask 65535: %v", err)
		}
	})

	t.Run("require_valid_aik_cert false", func(t *testing.T) {
		f.setPolicy(t, `version=1.2; configurationrules { => issueproperty(type="require_valid_aik_cert", value=false); };
authorizationrules { => permit(); }; issuancerules { c:[type=="aikValidated"] => issue(type="aikValidated", value=c.value); };`)
		defer f.setPolicy(t, tpmPolicy)
		a := *f.attestr
		other, otherKey := testCA(t)
		a.AIKCert = issue(t, other, otherKey, f.ak.Pub)
		res, err := f.cl.AttestTpm(ctx, &a)
		if err != nil {
			t.Fatal(err)
		}
		if res.Token.Claims["aikValidated"] != false {
			t.Errorf("aikValidated = %v, want false", res.Token.Claims["aikValidated"])
		}
	})
}

// vbsReport builds a VBS enclave report package whose EnclaveData is h,
// signed (RSA-PSS SHA-256) by key.
func vbsReport(t *testing.T, key *rsa.PrivateKey, h [64]byte) []byte {
	t.Helper()
	r := &abi.VBSReport{SignatureScheme: abi.VBSSchemeRSAPSS256, ReportVersion: abi.VBSReportVersion, EnclaveData: h,
		Signature: make([]byte, key.Size())}
	r.Identity.EnclaveSvn, r.Identity.AuthorID[0], r.Identity.ImageID[0] = 7, 0xA1, 0xB2
	parsed, err := abi.ParseVBSReport(abi.MarshalVBSReport(r))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(parsed.SignedStatement)
	if r.Signature, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		t.Fatal(err)
	}
	return abi.MarshalVBSReport(r)
}

// recorder remembers the request message it built.
type recorder struct {
	a   *tpmclient.Attester
	msg []byte
}

func (r *recorder) TpmRequest(ctx context.Context, challenge []byte, sc string) ([]byte, error) {
	m, err := r.a.TpmRequest(ctx, challenge, sc)
	r.msg = m
	return m, err
}

// challenge runs an init round.
func (f *fixture) challenge(t *testing.T) ([]byte, string) {
	t.Helper()
	reply, err := f.cl.AttestTpmProtocol(f.ctx, tpmclient.InitMessage())
	if err != nil {
		t.Fatal(err)
	}
	ch, sc, err := tpmclient.ParseChallenge(reply)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != tpm.ChallengeSize {
		t.Fatalf("challenge of %d bytes", len(ch))
	}
	return ch, sc
}

// wantCheck requires err to be MAA's 400 naming check.
func wantCheck(t *testing.T, err error, check evidence.Check) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusBadRequest || !strings.Contains(ce.Message, "check "+string(check)+":") {
		t.Fatalf("got %v, want a 400 naming check %s", err, check)
	}
}

// measuredTPM is a software TPM with a Secure Boot log (db: dbCert)
// measured and an RSA AK created: the starting point of the e2e and the
// conformance tests. The AK needs no flushing: the TPM stops with the test.
func measuredTPM(ctx context.Context, t testing.TB, dbCert []byte) (transport.TPM, []tpmclient.Event, *tpmclient.Key) {
	t.Helper()
	tr := swtpm.Start(t).Transport()
	events := tpmclient.SyntheticBootEvents(true, dbCert)
	if err := tpmclient.Measure(ctx, tr, events); err != nil {
		t.Fatal(err)
	}
	ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.RSA)
	if err != nil {
		t.Fatal(err)
	}
	return tr, events, ak
}

// testCA is a test AK CA valid around the real clock, which the e2e
// server judges at.
func testCA(t *testing.T) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	return newCA(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// newCA is a test AK CA valid notBefore…notAfter (never trusted by
// default: only the verifiers these tests build trust it).
func newCA(t testing.TB, notBefore, notAfter time.Time) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "TEST AK CA (never trust)"},
		NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// issue is the AK certificate for pub by ca, valid around the real clock.
func issue(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey) []byte {
	t.Helper()
	return issueAKCert(t, ca, caKey, pub, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// issueAKCert is the AK certificate for pub by ca, valid notBefore…notAfter.
func issueAKCert(t testing.TB, ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test AK"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	ca, _ := testCA(t)
	return ca.Raw
}
