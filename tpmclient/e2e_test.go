package tpmclient_test

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
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	tpmclaims "github.com/attestd/attestd/evidence/tpm"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/tpmclient"
)

// TestEndToEnd: swtpm → tpmclient builds a request → the verifier, called
// directly, verifies it and yields the expected claims; each negative case
// is refused with its named check.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	tp := swtpm.Start(t)
	tr := tp.Transport()
	dbCert := selfSigned(t)
	events := tpmclient.SyntheticBootEvents(true, dbCert)
	if err := tpmclient.Measure(ctx, tr, events); err != nil {
		t.Fatal(err)
	}
	log := tpmclient.EncodeLog(events)
	reqKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	challenge := []byte("0123456789abcdef")

	for _, alg := range []tpmclient.KeyAlg{tpmclient.RSA, tpmclient.ECC} {
		ak, err := tpmclient.CreateAK(ctx, tr, alg)
		if err != nil {
			t.Fatal(err)
		}
		certified, err := tpmclient.CreatePrimary(ctx, tr, tpmclient.SigningKeyTemplate())
		if err != nil {
			t.Fatal(err)
		}
		trusted := verify.Options{TrustedAKs: []crypto.PublicKey{ak.Pub}}
		base := tpmclient.Request{Challenge: challenge, ServiceContext: "c2M", RPID: "https://rp.example", RPData: []byte("rp"),
			AK: ak, Log: log, RequestKey: reqKey, CertifiedKey: certified,
			CustomClaims: []tpmclient.CustomClaim{{Name: "n", Value: "v", ValueType: "string"}}}

		build := func(t *testing.T, r tpmclient.Request) *abi.Request {
			t.Helper()
			jws, err := tpmclient.BuildRequest(ctx, tr, r)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := abi.ParseRequestMessage(tpmclient.RequestMessage(jws))
			if err != nil {
				t.Fatal(err)
			}
			req, err := abi.ParseRequest(msg)
			if err != nil {
				t.Fatal(err)
			}
			return req
		}

		t.Run(map[tpmclient.KeyAlg]string{tpmclient.RSA: "RSA", tpmclient.ECC: "ECC"}[alg], func(t *testing.T) {
			res, err := verify.VerifyRequest(ctx, build(t, base), challenge, trusted)
			if err != nil {
				t.Fatal(err)
			}
			claims, err := tpmclaims.Claims(res)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for _, c := range claims {
				got[c.Type] = c.Value
			}
			if on, err := res.Log.SecureBoot(); !on {
				t.Logf("secure boot: %v", err)
			}
			for k, want := range map[string]any{"aikValidated": true, "tpmVersion": int64(2), "secureBootEnabled": true, "vbsReportPresent": false} {
				if got[k] != want {
					t.Errorf("claim %s = %v, want %v", k, got[k], want)
				}
			}
			// PCR 7 = extend(extend(0, SecureBoot event), separator).
			pcr7 := make([]byte, 32)
			for _, e := range events {
				if e.PCR == 7 {
					d := sha256.Sum256(e.Data)
					s := sha256.Sum256(append(pcr7, d[:]...))
					pcr7 = s[:]
				}
			}
			var pcrs struct {
				PCRs []struct {
					Index   int
					Digests map[string]string
				}
			}
			if err := json.Unmarshal([]byte(got["pcrs"].(string)), &pcrs); err != nil || len(pcrs.PCRs) != 24 {
				t.Fatalf("pcrs claim: %v %s", err, got["pcrs"])
			}
			if hexd := pcrs.PCRs[7].Digests["SHA256"]; hexd != hexOf(pcr7) {
				t.Errorf("PCR 7 = %s, want %s", hexd, hexOf(pcr7))
			}
			if ev := got["events"].(string); !strings.Contains(ev, `"UnicodeName":"SecureBoot","VariableData":"AQ"`) {
				t.Errorf("events claim lacks the SecureBoot variable: %s", ev)
			}
			if ok := got["x-ms-tpm-other-keys"].(string); !strings.Contains(ok, `"obj_attr":`) || !strings.Contains(ok, `"name_alg":11`) {
				t.Errorf("other keys claim: %s", ok)
			}
			if len(res.CustomClaims) != 1 || string(res.RPData) != "rp" {
				t.Errorf("custom claims %v, rp_data %q", res.CustomClaims, res.RPData)
			}
		})

		neg := []struct {
			name      string
			mutate    func(*testing.T, *tpmclient.Request)
			challenge []byte
			opts      *verify.Options
			wantCheck evidence.Check
		}{
			{"flipped quote byte", func(t *testing.T, r *tpmclient.Request) {
				r.Mutate = func(e *tpmclient.Evidence) { e.Quote.Attest[len(e.Quote.Attest)-1] ^= 1 }
			}, nil, nil, verify.CheckQuoteSignature},
			{"wrong nonce", func(t *testing.T, r *tpmclient.Request) { r.Challenge = []byte("another challenge") }, nil, nil, verify.CheckChallenge},
			{"challenge not issued", nil, []byte("fedcba9876543210"), nil, verify.CheckChallenge},
			{"PCR mismatch", func(t *testing.T, r *tpmclient.Request) {
				r.Mutate = func(e *tpmclient.Evidence) { e.Quote.PCRs[3] = make([]byte, 32) }
			}, nil, nil, verify.CheckPCRDigest},
			{"log that does not replay", func(t *testing.T, r *tpmclient.Request) {
				r.Log = tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, dbCert))
			}, nil, nil, verify.CheckEventLogReplay},
			{"untrusted AK", nil, nil, &verify.Options{}, verify.CheckAIKChain},
			{"PCR mask", nil, nil, &verify.Options{TrustedAKs: trusted.TrustedAKs, RequiredPCRMask: ptr(uint32(1 << 24))}, verify.CheckPCRMask},
			{"wrong certify name", func(t *testing.T, r *tpmclient.Request) {
				other, err := tpmclient.CreatePrimary(ctx, tr, tpmclient.AKTemplate(tpmclient.RSA))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { other.Flush(tr) })
				// certify "other" but claim the certified key's public area
				swapped := *other
				swapped.PublicBytes, swapped.Pub = certified.PublicBytes, certified.Pub
				r.CertifiedKey = &swapped
			}, nil, nil, verify.CheckCertify},
		}
		for _, tc := range neg {
			t.Run(map[tpmclient.KeyAlg]string{tpmclient.RSA: "RSA", tpmclient.ECC: "ECC"}[alg]+"/"+tc.name, func(t *testing.T) {
				r := base
				if tc.mutate != nil {
					tc.mutate(t, &r)
				}
				c := challenge
				if tc.challenge != nil {
					c = tc.challenge
				}
				o := trusted
				if tc.opts != nil {
					o = *tc.opts
				}
				_, err := verify.VerifyRequest(ctx, build(t, r), c, o)
				if got := evidence.CheckOf(err); got != string(tc.wantCheck) {
					t.Fatalf("check %q (%v), want %q", got, err, tc.wantCheck)
				}
			})
		}
		if err := certified.Flush(tr); err != nil {
			t.Fatal(err)
		}
		if err := ak.Flush(tr); err != nil {
			t.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func selfSigned(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test db"},
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
