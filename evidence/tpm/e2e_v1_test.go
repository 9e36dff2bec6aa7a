package tpm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/verify"
	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/tpmclient"
)

// sameClaimsPolicy issues policy-visible claims of a TPM report (pcrs is
// read-only and cannot be issued: TestV1ClaimsEqualV2 compares it), so that
// a v1 and a v2 attestation of one TPM state can be compared over HTTPS.
const sameClaimsPolicy = `version=1.2;
authorizationrules { [type=="aikValidated", value==true] => permit(); };
issuancerules {
	c:[type=="aikValidated"] => issue(type="aikValidated", value=c.value);
	c:[type=="aikPubHash"] => issue(type="aikPubHash", value=c.value);
	c:[type=="secureBootEnabled"] => issue(type="secureBootEnabled", value=c.value);
	c:[type=="tpmVersion"] => issue(type="tpmVersion", value=c.value);
	c:[type=="events"] => issue(type="eventLog", value=JsonToClaimValue(JmesPath(c.value, "length(Events)")));
	c:[type=="vbsReportPresent"] => issue(type="vbsReportPresent", value=c.value);
	c:[type=="enclaveSvn"] => issue(type="enclaveSvn", value=c.value);
	c:[type=="rp_id"] => issue(type="rp_id", value=c.value);
	c:[type=="urn:attestd:tpm:custom:tenant", issuer=="CustomClaim"] => issue(type="tenant", value=c.value);
};`

// TestProtocolV1OverHTTPS runs MAA's v1 (attReq) TPM protocol against
// attestd with a real software TPM: the request carries PCP platform
// claims (current_claim, boot_claim) built from TPM2_Quote, and the report
// must carry the claims a v2 attestation of the same TPM state carries.
// Each refusal is asserted by its named check.
func TestProtocolV1OverHTTPS(t *testing.T) {
	f := newFixture(t)
	ctx := f.ctx
	tr := f.tr
	f.setPolicy(t, tpmPolicy)
	v1 := *f.attestr
	v1.Protocol = 1

	t.Run("report", func(t *testing.T) {
		res, err := f.cl.AttestTpm(ctx, &v1)
		if err != nil {
			t.Fatal(err)
		}
		c := res.Token.Claims
		for k, want := range map[string]any{"aikValidated": true, "secureBootEnabled": true, "tpmVersion": json.Number("2"),
			"secureBootVariables": json.Number("1"), "tenant": "contoso", "vbsReportPresent": false} {
			if c[k] != want {
				t.Errorf("claim %s = %#v, want %#v", k, c[k], want)
			}
		}
		if _, ok := c["cnf"]; ok {
			t.Errorf("a basic v1 report carries cnf %v: nothing binds attest_key to the TPM", c["cnf"])
		}
	})

	t.Run("claims equal to v2", func(t *testing.T) {
		f.setPolicy(t, sameClaimsPolicy)
		defer f.setPolicy(t, tpmPolicy)
		got := map[int]map[string]any{}
		for _, p := range []int{1, 2} {
			a := *f.attestr
			a.Protocol = p
			res, err := f.cl.AttestTpm(ctx, &a)
			if err != nil {
				t.Fatalf("v%d: %v", p, err)
			}
			got[p] = map[string]any{}
			for _, k := range []string{"aikValidated", "aikPubHash", "secureBootEnabled", "tpmVersion", "eventLog", "vbsReportPresent", "rp_id", "tenant"} {
				v, ok := res.Token.Claims[k]
				if !ok {
					t.Fatalf("v%d report lacks %s: %v", p, k, res.Token.Claims)
				}
				got[p][k] = v
			}
		}
		if !reflect.DeepEqual(got[1], got[2]) {
			t.Errorf("v1 claims %v\nv2 claims %v", got[1], got[2])
		}
	})

	t.Run("boot_claim", func(t *testing.T) {
		boot, err := tpmclient.PlatformClaim(ctx, tr, f.ak, nil, tpmclient.AllPCRs, f.log)
		if err != nil {
			t.Fatal(err)
		}
		a := v1
		a.BootClaim = boot
		if _, err := f.cl.AttestTpm(ctx, &a); err != nil {
			t.Fatal(err)
		}
		other := otherAK(t, f)
		defer other.Flush(tr)
		if a.BootClaim, err = tpmclient.PlatformClaim(ctx, tr, other, nil, tpmclient.AllPCRs, f.log); err != nil {
			t.Fatal(err)
		}
		_, err = f.cl.AttestTpm(ctx, &a)
		wantCheck(t, err, verify.CheckQuoteSignature)
	})

	t.Run("SHA-1 AIK, as PCPTool's GenerateQuote20 requires", func(t *testing.T) {
		tmpl := tpmclient.AKTemplate(tpmclient.RSA)
		tmpl.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Scheme: tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgRSASSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA1})},
			KeyBits: 2048,
		})
		ak, err := tpmclient.CreatePrimary(ctx, tr, tmpl)
		if err != nil {
			t.Fatal(err)
		}
		defer ak.Flush(tr)
		a := v1
		a.AK, a.AIKCert = ak, issue(t, f.root, f.rootKey, ak.Pub)
		a.Mutate = func(e *tpmclient.Evidence) {
			p, err := abi.ParsePlatformBlob(e.Claim)
			if err != nil {
				t.Fatal(err)
			}
			q, err := abi.ParseAttest(p.Quote)
			if err != nil {
				t.Fatal(err)
			}
			if info, _ := q.Attested.Quote(); len(info.PCRDigest.Buffer) != 20 {
				t.Fatalf("pcrDigest of %d bytes, want SHA-1's 20", len(info.PCRDigest.Buffer))
			}
		}
		if _, err := f.cl.AttestTpm(ctx, &a); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("qualifyingData SHA-1(challenge)", func(t *testing.T) {
		// PCPTool's callers pass SHA-1 of their nonce to the PCP.
		a := v1
		a.Mutate = func(e *tpmclient.Evidence) {
			sum := sha1.Sum(f.srvChallenge(e))
			var err error
			if e.Claim, err = tpmclient.PlatformClaim(ctx, tr, f.ak, sum[:], tpmclient.AllPCRs, f.log); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.cl.AttestTpm(ctx, &a); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("VBS enclave", func(t *testing.T) {
		a := v1
		a.VSMReport = func(h [64]byte) ([]byte, error) { return vbsReport(t, f.vsmKey, h), nil }
		res, err := f.cl.AttestTpm(ctx, &a)
		if err != nil {
			t.Fatal(err)
		}
		if c := res.Token.Claims; c["vbsReportPresent"] != true || c["enclaveSvn"] != json.Number("7") || c["cnf"] == nil {
			t.Errorf("vbsReportPresent %v, enclaveSvn %v, cnf %v; want true, 7, attest_key", c["vbsReportPresent"], c["enclaveSvn"], c["cnf"])
		}
	})

	// claim rewrites current_claim with edit applied to its parsed form.
	claim := func(t *testing.T, edit func(p *abi.PlatformBlob)) func(*tpmclient.Evidence) {
		return func(e *tpmclient.Evidence) {
			p, err := abi.ParsePlatformBlob(e.Claim)
			if err != nil {
				t.Fatal(err)
			}
			edit(p)
			e.Claim = abi.MarshalPlatformBlob(p)
		}
	}
	refuse := func(name string, mut func(t *testing.T, a *tpmclient.Attester), check evidence.Check) {
		t.Run(name, func(t *testing.T) {
			a := v1
			mut(t, &a)
			_, err := f.cl.AttestTpm(ctx, &a)
			wantCheck(t, err, check)
		})
	}
	refuse("wrong nonce", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) {
			var err error
			if e.Claim, err = tpmclient.PlatformClaim(ctx, tr, f.ak, []byte("not the challenge"), tpmclient.AllPCRs, f.log); err != nil {
				t.Fatal(err)
			}
		}
	}, verify.CheckChallenge)
	refuse("PCR value tampered", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = claim(t, func(p *abi.PlatformBlob) { p.PCRs[3] = make([]byte, 32) })
	}, verify.CheckPCRDigest)
	refuse("claim log that does not replay", func(t *testing.T, a *tpmclient.Attester) {
		other := tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, f.dbCert))
		a.Mutate = claim(t, func(p *abi.PlatformBlob) { p.Log = other })
	}, verify.CheckEventLogReplay)
	refuse("srtm_boot_log that does not replay", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) {
			e.Log = tpmclient.EncodeLog(tpmclient.SyntheticBootEvents(false, f.dbCert))
		}
	}, verify.CheckEventLogReplay)
	refuse("quote signed by another key", func(t *testing.T, a *tpmclient.Attester) {
		other := otherAK(t, f)
		t.Cleanup(func() { other.Flush(tr) })
		a.Mutate = func(e *tpmclient.Evidence) {
			var err error
			if e.Claim, err = tpmclient.PlatformClaim(ctx, tr, other, f.srvChallenge(e), tpmclient.AllPCRs, f.log); err != nil {
				t.Fatal(err)
			}
		}
	}, verify.CheckQuoteSignature)
	refuse("aik_pub is not the certificate's key", func(t *testing.T, a *tpmclient.Attester) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		a.Mutate = func(e *tpmclient.Evidence) { e.AIKPub = &k.PublicKey }
	}, verify.CheckAIKKey)
	refuse("truncated claim", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) { e.Claim = e.Claim[:len(e.Claim)-1] }
	}, verify.CheckPlatformClaim)
	refuse("oversized claim", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) { e.Claim = append(bytes.Clone(e.Claim), 0) }
	}, verify.CheckPlatformClaim)
	refuse("wrong magic", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) {
			e.Claim = bytes.Clone(e.Claim)
			// 'SDAK', PCP_KEY_ATTESTATION_MAGIC: a key attestation blob, not a platform claim.
			binary.LittleEndian.PutUint32(e.Claim, 0x5344414B)
		}
	}, verify.CheckPlatformClaim)
	refuse("TPM 1.2 platform", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = claim(t, func(p *abi.PlatformBlob) { p.Platform = abi.PlatformTPM12 })
	}, verify.CheckUnsupported)
	refuse("claim log measuring PCRs its quote leaves out", func(t *testing.T, a *tpmclient.Attester) {
		a.Mutate = func(e *tpmclient.Evidence) {
			c, err := tpmclient.PlatformClaim(ctx, tr, f.ak, f.srvChallenge(e), tpmclient.AllPCRs&^(1<<5), f.log)
			if err != nil {
				t.Fatal(err)
			}
			e.Claim = c
			claim(t, func(p *abi.PlatformBlob) { p.Log = f.log })(e) // the unfiltered log
		}
	}, verify.CheckEventLogReplay)
	refuse("untrusted AK", func(t *testing.T, a *tpmclient.Attester) {
		other, otherKey := testCA(t)
		a.AIKCert = issue(t, other, otherKey, f.ak.Pub)
	}, verify.CheckAIKChain)
	refuse("required_pcr_mask", func(t *testing.T, a *tpmclient.Attester) { a.PCRMask = 0xFFFF }, verify.CheckPCRMask)
}

// srvChallenge recovers the challenge a request answers from the current
// claim's quote (the Evidence hook sees the claim, not the challenge).
func (f *fixture) srvChallenge(e *tpmclient.Evidence) []byte {
	p, err := abi.ParsePlatformBlob(e.Claim)
	if err != nil {
		return nil
	}
	a, err := abi.ParseAttest(p.Quote)
	if err != nil {
		return nil
	}
	return a.ExtraData.Buffer
}

// otherAK is an RSA AK of f's TPM that is not f.ak: a primary key is
// derived from the hierarchy seed and its template, so the template's
// unique field must differ.
func otherAK(t *testing.T, f *fixture) *tpmclient.Key {
	t.Helper()
	tmpl := tpmclient.AKTemplate(tpmclient.RSA)
	tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: []byte("another AK")})
	k, err := tpmclient.CreatePrimary(f.ctx, f.tr, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if k.Pub.(*rsa.PublicKey).Equal(f.ak.Pub) {
		t.Fatal("the other AK is f.ak")
	}
	return k
}

// TestV1ClaimsEqualV2 verifies a v1 and a v2 request answering one
// challenge from one TPM state and requires the same incoming claims, all
// of them (pcrs, events and x-ms-tpm-request-key included), but cnf: a
// basic v1 request's attest_key is not bound to the TPM.
func TestV1ClaimsEqualV2(t *testing.T) {
	ctx := context.Background()
	tr, events, ak := measuredTPM(ctx, t, selfSigned(t, "test db"))
	root, rootKey := testCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	reqKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v := tpm.NewVerifier(tpm.Options{Verify: verify.Options{Roots: pool}})
	props := v.ConfigurationDefaults(evidence.Tpm)
	challenge := bytes.Repeat([]byte{0x5a}, tpm.ChallengeSize)
	claims := map[int]map[string]any{}
	for _, p := range []int{1, 2} {
		a := tpmclient.Attester{TPM: tr, AK: ak, AIKCert: issue(t, root, rootKey, ak.Pub), Log: tpmclient.EncodeLog(events),
			RequestKey: reqKey, RPID: "https://rp.example", RPData: []byte("rp"), Protocol: p,
			CustomClaims: []tpmclient.CustomClaim{{Name: "tenant", Value: "contoso", ValueType: "string"}}}
		msg, err := a.TpmRequest(ctx, challenge, "sealed service context")
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := v.Parse(ctx, &evidence.Request{Type: evidence.Tpm, Evidence: msg, State: challenge, Now: time.Now(), Properties: props})
		if err != nil {
			t.Fatalf("v%d: %v", p, err)
		}
		res, err := parsed.Verify(ctx, props)
		if err != nil {
			t.Fatalf("v%d: %v", p, err)
		}
		claims[p] = map[string]any{}
		for _, c := range res.Claims {
			claims[p][c.Type] = c.Value
		}
	}
	if _, ok := claims[1]["cnf"]; ok {
		t.Error("v1 basic: cnf issued for an attest_key nothing binds")
	}
	if _, ok := claims[2]["cnf"]; !ok {
		t.Error("v2: no cnf")
	}
	delete(claims[2], "cnf")
	// x-ms-tpm-request-key: {"jwk"} in v1, {"jwk","info":{"tpm_quote"}} in v2.
	var rk1, rk2 struct {
		JWK  json.RawMessage `json:"jwk"`
		Info json.RawMessage `json:"info"`
	}
	if json.Unmarshal([]byte(claims[1]["x-ms-tpm-request-key"].(string)), &rk1) != nil ||
		json.Unmarshal([]byte(claims[2]["x-ms-tpm-request-key"].(string)), &rk2) != nil ||
		!bytes.Equal(rk1.JWK, rk2.JWK) || rk1.Info != nil || rk2.Info == nil {
		t.Errorf("request key objects: v1 %v, v2 %v", claims[1]["x-ms-tpm-request-key"], claims[2]["x-ms-tpm-request-key"])
	}
	delete(claims[1], "x-ms-tpm-request-key")
	delete(claims[2], "x-ms-tpm-request-key")
	for _, k := range []string{"pcrs", "events", "aikPubHash", "secureBootEnabled"} {
		if claims[1][k] == nil {
			t.Errorf("v1 lacks %s", k)
		}
	}
	if !reflect.DeepEqual(claims[1], claims[2]) {
		for k := range claims[2] {
			if !reflect.DeepEqual(claims[1][k], claims[2][k]) {
				t.Errorf("claim %s: v1 %v, v2 %v", k, claims[1][k], claims[2][k])
			}
		}
		for k := range claims[1] {
			if _, ok := claims[2][k]; !ok {
				t.Errorf("claim %s only in v1", k)
			}
		}
	}
}

// TestPlatformClaimSHA1Log verifies a 'PADS' platform claim, the layout of a
// TPM whose log is SHA-1 only (TCG 1.2 format): the SHA-1 bank of a swtpm,
// PCR 16 reset and extended with the log's one event, quoted by the AK. The
// blob is assembled here (tpmclient builds crypto-agile claims only).
func TestPlatformClaimSHA1Log(t *testing.T) {
	ctx := context.Background()
	tr := swtpm.Start(t).Transport()
	ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.RSA)
	if err != nil {
		t.Fatal(err)
	}
	pcr16 := tpm2.AuthHandle{Handle: 16, Auth: tpm2.PasswordAuth(nil)}
	if _, err := (tpm2.PCRReset{PCRHandle: pcr16}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	data := []byte("attestd SHA-1 log event")
	d := sha1.Sum(data)
	if _, err := (tpm2.PCRExtend{PCRHandle: pcr16, Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA1, Digest: d[:]}}}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	// TCG_PCClientPCREvent: PCR, type (EV_EFI_ACTION), SHA-1 digest, size, data.
	log := binary.LittleEndian.AppendUint32(nil, 16)
	log = binary.LittleEndian.AppendUint32(log, tpmclient.EvEFIAction)
	log = append(log, d[:]...)
	log = binary.LittleEndian.AppendUint32(log, uint32(len(data)))
	log = append(log, data...)

	p := &abi.PlatformBlob{Magic: abi.PlatformMagic, Platform: abi.PlatformTPM20, PCRAlg: 0x0004, Log: log}
	for g := 0; g < 3; g++ {
		sel := []byte{0, 0, 0}
		sel[g] = 0xFF
		rsp, err := (tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA1, PCRSelect: sel}}}}).Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range rsp.PCRValues.Digests {
			p.PCRs[8*g+i] = v.Buffer
		}
	}
	nonce := bytes.Repeat([]byte{7}, tpm.ChallengeSize)
	q, err := (tpm2.Quote{SignHandle: tpm2.AuthHandle{Handle: ak.Handle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce}, InScheme: tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA1, PCRSelect: []byte{0, 0, 1}}}}}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := q.Signature.Signature.RSASSA()
	if err != nil {
		t.Fatal(err)
	}
	p.Quote, p.Signature = q.Quoted.Bytes(), sig.Sig.Buffer
	blob := abi.MarshalPlatformBlob(p)
	if !bytes.HasPrefix(blob, []byte("PADS")) {
		t.Fatalf("magic bytes %q", blob[:4])
	}
	res, l, err := verify.VerifyPlatformClaim(ak.Pub, blob, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mask != 1<<16 || len(res.PCRs) != 1 || len(l.Events) != 1 || !bytes.Equal(l.Events[0].Data, data) {
		t.Fatalf("mask %#x, PCRs %v, events %v", res.Mask, res.PCRs, l.Events)
	}
	p.PCRs[16] = make([]byte, 20)
	if _, _, err := verify.VerifyPlatformClaim(ak.Pub, abi.MarshalPlatformBlob(p), nonce); evidence.CheckOf(err) != string(verify.CheckPCRDigest) {
		t.Fatalf("tampered PCR 16: %v, want %s", err, verify.CheckPCRDigest)
	}
}
