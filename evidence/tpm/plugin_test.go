package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/internal/testenv"
)

// seedRequest is a request message a swtpm produced (testdata/request.json:
// RSA AK sent as aik_pub, synthetic secure-boot log, PCRs 0–23), with the
// challenge it answers.
func seedRequest(t testing.TB) (msg, challenge []byte, ak crypto.PublicKey) {
	t.Helper()
	msg, err := os.ReadFile("testdata/request.json")
	if err != nil {
		t.Fatal(err)
	}
	jws, err := abi.ParseRequestMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := abi.ParseRequest(jws)
	if err != nil {
		t.Fatal(err)
	}
	return msg, r.Data.Challenge, r.Data.TPM.Current.AIKPub.Key
}

func verifyMsg(v *tpm.Verifier, msg, state []byte, props map[string]any) (*evidence.Result, error) {
	ctx := context.Background()
	req := &evidence.Request{Type: evidence.Tpm, Evidence: msg, State: state, Now: time.Now()}
	p, err := v.Parse(ctx, req)
	if err != nil {
		return nil, err
	}
	return p.Verify(ctx, props)
}

func claim(res *evidence.Result, typ string) any {
	for _, c := range res.Claims {
		if c.Type == typ {
			return c.Value
		}
	}
	return nil
}

// TestVerifierOnSeed verifies the stored swtpm request without a TPM: its
// AK untrusted, then trusted; and the refusals that need no TPM.
func TestVerifierOnSeed(t *testing.T) {
	msg, challenge, ak := seedRequest(t)
	untrusted := tpm.NewVerifier(tpm.Options{})
	trusted := tpm.NewVerifier(tpm.Options{Verify: verify.Options{TrustedAKs: []crypto.PublicKey{ak}}})
	defaults := untrusted.ConfigurationDefaults(evidence.Tpm)

	if _, err := verifyMsg(untrusted, msg, challenge, defaults); evidence.CheckOf(err) != string(verify.CheckAIKChain) {
		t.Fatalf("untrusted AK under the defaults: %v, want %s", err, verify.CheckAIKChain)
	}
	lax := map[string]any{"require_valid_aik_cert": false}
	res, err := verifyMsg(untrusted, msg, challenge, lax)
	if err != nil {
		t.Fatal(err)
	}
	if claim(res, "aikValidated") != false || claim(res, "secureBootEnabled") != true || claim(res, evidence.ClaimAttestationType) != "tpm" {
		t.Errorf("claims %+v", res.Claims)
	}
	if res, err = verifyMsg(trusted, msg, challenge, defaults); err != nil || claim(res, "aikValidated") != true {
		t.Fatalf("trusted AK: %v", err)
	}
	// Only cnf, rp_data and x-ms-attestation-type reach the token.
	for _, c := range res.Claims {
		if !c.PolicyOnly && c.Type != "cnf" && c.Type != "rp_data" && c.Type != evidence.ClaimAttestationType {
			t.Errorf("claim %s would be written to the report", c.Type)
		}
	}
	if got := claim(res, tpm.DefaultCustomClaimPrefix+"tenant"); got != "contoso" {
		t.Errorf("custom claim = %v", got)
	}

	other := append([]byte(nil), challenge...)
	other[0] ^= 1
	for _, tc := range []struct {
		name  string
		msg   []byte
		state []byte
		props map[string]any
		check evidence.Check
	}{
		{"another challenge", msg, other, defaults, verify.CheckChallenge},
		{"no state", msg, nil, defaults, verify.CheckChallenge},
		{"init message", []byte(`{"payload":{"type":"aikcert"}}`), challenge, defaults, verify.CheckRequest},
		{"not JSON", []byte("garbage"), challenge, defaults, verify.CheckRequest},
		{"flipped signature", flipSignature(t, msg), challenge, defaults, verify.CheckRequestSignature},
		{"report lifetime over a year", msg, challenge, map[string]any{"report_validity_in_minutes": int64(525601)}, verify.CheckOptions},
		{"mask not an integer", msg, challenge, map[string]any{"required_pcr_mask": "all"}, verify.CheckOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyMsg(trusted, tc.msg, tc.state, tc.props)
			if evidence.CheckOf(err) != string(tc.check) {
				t.Fatalf("%v, want check %s", err, tc.check)
			}
		})
	}
}

// flipSignature changes one byte of the request JWS signature.
func flipSignature(t testing.TB, msg []byte) []byte {
	t.Helper()
	var m struct {
		Payload struct {
			Request string `json:"request"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(m.Payload.Request, '.') + 5
	b := []byte(m.Payload.Request)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	m.Payload.Request = string(b)
	out, _ := json.Marshal(m)
	return out
}

// TestRound: the init message opens a round with a 16-byte challenge and a
// reply carrying it; a request names the service_context to resume.
func TestRound(t *testing.T) {
	v := tpm.NewVerifier(tpm.Options{})
	ctx := context.Background()
	r, err := v.Round(ctx, &evidence.Request{Evidence: []byte(`{"payload":{"type":"aikcert"}}`)})
	if err != nil || len(r.State) != tpm.ChallengeSize || r.Reply == nil {
		t.Fatalf("init round %+v, %v", r, err)
	}
	b, err := r.Reply("sealed")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Payload map[string]string `json:"payload"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Payload["service_context"] != "sealed" || len(m.Payload["challenge"]) != 22 {
		t.Fatalf("reply %s", b)
	}
	if _, err := v.Round(ctx, &evidence.Request{Evidence: []byte(`{"payload":{"type":"other"}}`)}); evidence.CheckOf(err) != string(verify.CheckRequest) {
		t.Errorf("unknown init type: %v", err)
	}
	msg, _, _ := seedRequest(t)
	r, err = v.Round(ctx, &evidence.Request{Evidence: msg})
	if err != nil || r.Resume == "" || r.Reply != nil {
		t.Fatalf("request round %+v, %v", r, err)
	}
	w, err := v.Wrap("a.b.c")
	if err != nil || string(w) != `{"payload":{"report":"a.b.c"}}` {
		t.Errorf("Wrap: %s %v", w, err)
	}
}

// gceAKCert reads the AK certificate (field 6) of a go-tpm-tools
// Attestation protobuf: only the top level is walked.
func gceAKCert(t *testing.T) []byte {
	t.Helper()
	b := testenv.ReadShared(t, "vectors/go-tpm-tools/internal/test/attestations/gce-cos-85-nonce9009.pb")
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatal("bad protobuf key")
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			_, n := binary.Uvarint(b)
			if n <= 0 {
				t.Fatal("bad varint")
			}
			b = b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				t.Fatal("bad length")
			}
			if key>>3 == 6 {
				return b[n : n+int(l)]
			}
			b = b[n+int(l):]
		default:
			t.Fatalf("wire type %d", key&7)
		}
	}
	t.Fatal("no AK certificate in the vector")
	return nil
}

// TestBuiltinRoots: the shipped GCE roots validate a real GCE AK
// certificate, and only when the configuration names them.
func TestBuiltinRoots(t *testing.T) {
	cert, err := x509.ParseCertificate(gceAKCert(t))
	if err != nil {
		t.Fatal(err)
	}
	// crypto/x509 does not interpret the TCG directoryName SAN that AK
	// certificates mark critical (verify.acceptTCGSubjectAltName handles it).
	cert.UnhandledCriticalExtensions = nil
	at := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	chain := func(o tpm.Options) error {
		if o.Verify.Roots == nil {
			return errors.New("no roots")
		}
		_, err := cert.Verify(x509.VerifyOptions{Roots: o.Verify.Roots, Intermediates: o.Verify.Intermediates, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	o, err := tpm.OptionsFromConfig(tpm.Config{BuiltinRoots: []string{"gce"}}, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	if err := chain(o); err != nil {
		t.Fatalf("GCE AK certificate with builtin_roots gce: %v", err)
	}
	none, err := tpm.OptionsFromConfig(tpm.Config{}, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	if chain(none) == nil || len(none.Verify.TrustedAKs) != 0 {
		t.Fatal("an empty configuration trusts something")
	}
}

// TestOptionsFromConfig reads each file kind and refuses the wrong ones.
func TestOptionsFromConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, blk := range blocks {
			b = append(b, pem.EncodeToMemory(blk)...)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecFile := write("ec.pem", &pem.Block{Type: "PUBLIC KEY", Bytes: der})
	empty := write("empty.pem")
	path := func(s string) string { return filepath.Join(dir, s) }
	prefix := "urn:x:"
	o, err := tpm.OptionsFromConfig(tpm.Config{TrustedAKs: []string{ecFile}, CustomClaimPrefix: &prefix}, path)
	if err != nil || len(o.Verify.TrustedAKs) != 1 || o.CustomClaimPrefix != prefix {
		t.Fatalf("trusted AK: %+v %v", o, err)
	}
	for name, c := range map[string]tpm.Config{
		"no PUBLIC KEY":         {TrustedAKs: []string{empty}},
		"signed with RSA-PSS":   {VBSSigningKeys: []string{ecFile}},
		"unknown set":           {BuiltinRoots: []string{"nope"}},
		"no such file":          {Roots: []string{"missing.pem"}},
		"tpm.intermediates: ":   {Intermediates: []string{empty}},
		"tpm.vbs_signing_keys:": {VBSSigningKeys: []string{empty}},
	} {
		if _, err := tpm.OptionsFromConfig(c, path); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzProtocol feeds arbitrary messages through Round, Parse and Verify
// (with the seed's challenge as state and a lax AIK rule, so mutations of
// the seed reach the quote, PCR and log checks): never a panic, and every
// refusal names its check.
func FuzzProtocol(f *testing.F) {
	msg, challenge, _ := seedRequest(f)
	f.Add(msg)
	f.Add([]byte(`{"payload":{"type":"aikcert"}}`))
	f.Add([]byte(`{"payload":{"request":"e30.e30.e30"}}`))
	f.Add([]byte(`{"payload":{}}`))
	v := tpm.NewVerifier(tpm.Options{})
	props := map[string]any{"require_valid_aik_cert": false}
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		req := &evidence.Request{Type: evidence.Tpm, Evidence: b, Now: time.Now()}
		r, err := v.Round(ctx, req)
		if err != nil {
			if evidence.CheckOf(err) == "" {
				t.Fatalf("Round refusal without a check: %v", err)
			}
			return
		}
		if r.Reply != nil {
			return
		}
		req.State = challenge
		p, err := v.Parse(ctx, req)
		if err != nil {
			if evidence.CheckOf(err) == "" {
				t.Fatalf("Parse refusal without a check: %v", err)
			}
			return
		}
		if _, err := p.Verify(ctx, props); err != nil && evidence.CheckOf(err) == "" {
			t.Fatalf("Verify refusal without a check: %v", err)
		}
	})
}

// BenchmarkVerifySeed is the verifier's work for one request round of the
// stored swtpm request (JWS, quote, PCR digest, log replay, claims).
func BenchmarkVerifySeed(b *testing.B) {
	msg, challenge, ak := seedRequest(b)
	v := tpm.NewVerifier(tpm.Options{Verify: verify.Options{TrustedAKs: []crypto.PublicKey{ak}}})
	props := v.ConfigurationDefaults(evidence.Tpm)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifyMsg(v, msg, challenge, props); err != nil {
			b.Fatal(err)
		}
	}
}
