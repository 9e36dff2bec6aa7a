package verify

import (
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tpm/abi"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
	"github.com/attestd/attestd/internal/testenv"
)

// gceAttestation is the part of go-tpm-tools' attest.Attestation protobuf
// (proto/attest.proto, tpm.proto) these tests use, decoded by hand below.
type gceAttestation struct {
	AKPub         []byte
	Quotes        []gceQuote
	EventLog      []byte
	AKCert        []byte
	Intermediates [][]byte
}

type gceQuote struct {
	Quote, Sig []byte
	Hash       uint16
	PCRs       map[int][]byte
}

// protoFields splits a protobuf message into (field number, wire type,
// varint value or bytes) triples; only varint and length-delimited fields
// occur in these messages.
func protoFields(b []byte) ([]struct {
	num  int
	v    uint64
	data []byte
}, error) {
	var out []struct {
		num  int
		v    uint64
		data []byte
	}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[n:]
		f := struct {
			num  int
			v    uint64
			data []byte
		}{num: int(key >> 3)}
		switch key & 7 {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errors.New("bad varint")
			}
			f.v, b = v, b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errors.New("bad length")
			}
			f.data, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, fmt.Errorf("wire type %d", key&7)
		}
		out = append(out, f)
	}
	return out, nil
}

func loadGCE(t testing.TB, name string) *gceAttestation {
	t.Helper()
	raw := testenv.ReadShared(t, "vectors/go-tpm-tools/internal/test/attestations/"+name)
	fields, err := protoFields(raw)
	if err != nil {
		t.Fatal(err)
	}
	a := &gceAttestation{}
	for _, f := range fields {
		switch f.num {
		case 1:
			a.AKPub = f.data
		case 2:
			q := gceQuote{PCRs: map[int][]byte{}}
			qf, err := protoFields(f.data)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range qf {
				switch g.num {
				case 1:
					q.Quote = g.data
				case 2:
					q.Sig = g.data
				case 3:
					pf, err := protoFields(g.data)
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range pf {
						switch p.num {
						case 1:
							q.Hash = uint16(p.v)
						case 2:
							ef, err := protoFields(p.data)
							if err != nil {
								t.Fatal(err)
							}
							var k int
							var v []byte
							for _, e := range ef {
								if e.num == 1 {
									k = int(e.v)
								} else if e.num == 2 {
									v = e.data
								}
							}
							q.PCRs[k] = v
						}
					}
				}
			}
			a.Quotes = append(a.Quotes, q)
		case 3:
			a.EventLog = f.data
		case 6:
			a.AKCert = f.data
		case 7:
			a.Intermediates = append(a.Intermediates, f.data)
		}
	}
	return a
}

func banksOf(q gceQuote) []abi.PCRBank {
	b := abi.PCRBank{Algorithm: q.Hash}
	for i := 0; i < 24; i++ {
		if d, ok := q.PCRs[i]; ok {
			b.Values = append(b.Values, abi.PCRValue{Index: i, Digest: d})
		}
	}
	return []abi.PCRBank{b}
}

func gceRoots(t testing.TB) (*x509.CertPool, *x509.CertPool) {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, f := range []string{"tpm_ek_root_1.cer", "gcp_ek_ak_ca_root.crt"} {
		c, err := x509.ParseCertificate(testenv.ReadShared(t, "vectors/go-tpm-tools/server/ca-certs/"+f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		roots.AddCert(c)
	}
	for _, f := range []string{"tpm_ek_intermediate_2.crt", "tpm_ek_intermediate_3.crt", "gcp_ek_ak_ca_intermediate_v3.crt"} {
		c, err := x509.ParseCertificate(testenv.ReadShared(t, "vectors/go-tpm-tools/server/ca-certs/"+f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		inter.AddCert(c)
	}
	return roots, inter
}

// gceNow lies inside the AK certificate's validity (2021-08-31…2051-08-24).
var gceNow = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// TestGCEVectors verifies the real GCE attestations end to end through this
// package: AK certificate chain to Google's bundled roots, each bank's quote,
// event log replay and the secure boot state.
func TestGCEVectors(t *testing.T) {
	roots, inter := gceRoots(t)
	for _, tc := range []struct {
		file  string
		nonce []byte
	}{{"gce-cos-85-nonce9009.pb", []byte{0x90, 0x09}}, {"gce-cos-85-no-nonce.pb", nil}} {
		t.Run(tc.file, func(t *testing.T) {
			a := loadGCE(t, tc.file)
			if len(a.Quotes) != 3 || len(a.AKCert) == 0 {
				t.Fatalf("%d quotes, AK cert %d bytes", len(a.Quotes), len(a.AKCert))
			}
			aikCert := a.AKCert
			for _, d := range a.Intermediates {
				c, err := x509.ParseCertificate(d)
				if err != nil {
					t.Fatal(err)
				}
				inter.AddCert(c)
			}
			ak, _, validated, err := establishAIK(aikCert, nil, Options{Roots: roots, Intermediates: inter, Now: gceNow})
			if err != nil || !validated {
				t.Fatalf("AK chain: validated=%v err=%v", validated, err)
			}
			pub, err := abi.ParsePublic(a.AKPub)
			if err != nil {
				t.Fatal(err)
			}
			tpub, err := tpm2.Pub(*pub)
			if err != nil || !samePublicKey(tpub, ak) {
				t.Fatalf("AK TPMT_PUBLIC is not the certificate's key (%v)", err)
			}
			for _, q := range a.Quotes {
				res, err := VerifyQuote(ak, q.Quote, q.Sig, tc.nonce, banksOf(q))
				if err != nil {
					t.Fatalf("bank %#x: %v", q.Hash, err)
				}
				if res.Mask != DefaultRequiredPCRMask {
					t.Errorf("bank %#x quotes mask %#x", q.Hash, res.Mask)
				}
				l, err := eventlog.Replay(a.EventLog, res.PCRs)
				if err != nil {
					t.Fatalf("bank %#x replay: %v", q.Hash, err)
				}
				// v2's replay also requires every quoted PCR the log
				// measures nothing into to hold its reset value, PCR 10
				// aside: COS runs IMA, which extends PCR 10 outside the
				// TCG log, and a client on this machine is accepted with
				// the TCG log alone (the go-tpm-tools vector carries no IMA
				// list) or with an IMA list beside it (not read).
				tcg := abi.Log{Type: "TCG", Data: a.EventLog}
				for _, logs := range [][]abi.Log{{tcg}, {tcg, {Type: "IMA", Data: []byte("not read")}}} {
					if _, err := replayLogs(logs, res.PCRs); err != nil {
						t.Fatalf("bank %#x replayLogs (%d logs): %v", q.Hash, len(logs), err)
					}
				}
				if q.Hash == 0x000C {
					continue // go-attestation checks SecureBoot variable digests in SHA-1/SHA-256 only
				}
				if on, err := l.SecureBoot(); err != nil || !on {
					t.Errorf("bank %#x secure boot = %v (%v), want enabled", q.Hash, on, err)
				}
			}
		})
	}
}

// TestGCEVectorRefusals flips one thing at a time in a real attestation.
func TestGCEVectorRefusals(t *testing.T) {
	roots, inter := gceRoots(t)
	a := loadGCE(t, "gce-cos-85-nonce9009.pb")
	for _, d := range a.Intermediates {
		c, _ := x509.ParseCertificate(d)
		inter.AddCert(c)
	}
	ak, _, _, err := establishAIK(a.AKCert, nil, Options{Roots: roots, Intermediates: inter, Now: gceNow})
	if err != nil {
		t.Fatal(err)
	}
	var q gceQuote
	for _, x := range a.Quotes {
		if x.Hash == 0x000B {
			q = x
		}
	}
	clone := func(b []byte) []byte { return append([]byte(nil), b...) }
	tests := []struct {
		name      string
		run       func() error
		wantCheck evidence.Check
	}{
		{"flipped quote byte", func() error {
			b := clone(q.Quote)
			b[len(b)-1] ^= 1
			_, err := VerifyQuote(ak, b, q.Sig, []byte{0x90, 0x09}, banksOf(q))
			return err
		}, CheckQuoteSignature},
		{"flipped signature byte", func() error {
			s := clone(q.Sig)
			s[len(s)-1] ^= 1
			_, err := VerifyQuote(ak, q.Quote, s, []byte{0x90, 0x09}, banksOf(q))
			return err
		}, CheckQuoteSignature},
		{"wrong nonce", func() error {
			_, err := VerifyQuote(ak, q.Quote, q.Sig, []byte{0x90, 0x0a}, banksOf(q))
			return err
		}, CheckChallenge},
		{"PCR mismatch", func() error {
			b := banksOf(q)
			b[0].Values[4].Digest = clone(b[0].Values[4].Digest)
			b[0].Values[4].Digest[0] ^= 1
			_, err := VerifyQuote(ak, q.Quote, q.Sig, []byte{0x90, 0x09}, b)
			return err
		}, CheckPCRDigest},
		{"PCR left out", func() error {
			b := banksOf(q)
			b[0].Values = b[0].Values[1:]
			_, err := VerifyQuote(ak, q.Quote, q.Sig, []byte{0x90, 0x09}, b)
			return err
		}, CheckPCRDigest},
		{"log that does not replay", func() error {
			res, err := VerifyQuote(ak, q.Quote, q.Sig, []byte{0x90, 0x09}, banksOf(q))
			if err != nil {
				return err
			}
			pcrs := append([]eventlog.PCR(nil), res.PCRs...)
			pcrs[0].Digest = make([]byte, 32)
			_, err = replayLogs([]abi.Log{{Type: "TCG", Data: a.EventLog}}, pcrs)
			return err
		}, CheckEventLogReplay},
		{"untrusted AK (no roots)", func() error {
			_, _, _, err := establishAIK(a.AKCert, nil, Options{Now: gceNow})
			return err
		}, CheckAIKChain},
		{"untrusted AK (other roots)", func() error {
			other := x509.NewCertPool()
			c, _ := x509.ParseCertificate(testenv.ReadShared(t, "vectors/go-tpm-tools/server/ca-certs/gcp_ek_ak_ca_root.crt"))
			other.AddCert(c)
			_, _, _, err := establishAIK(a.AKCert, nil, Options{Roots: other, Now: gceNow})
			return err
		}, CheckAIKChain},
		{"AK certificate expired", func() error {
			_, _, _, err := establishAIK(a.AKCert, nil, Options{Roots: roots, Intermediates: inter, Now: time.Date(2052, 1, 1, 0, 0, 0, 0, time.UTC)})
			return err
		}, CheckAIKChain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if got := evidence.CheckOf(err); got != string(tc.wantCheck) {
				t.Fatalf("check %q (%v), want %q", got, err, tc.wantCheck)
			}
		})
	}
}

// windowsDump is go-attestation's windows_gcp_shielded_vm.json layout.
type windowsDump struct {
	AK    struct{ Public []byte }
	Quote struct {
		Nonce, Quote, Signature []byte
	}
	Log struct {
		PCRs []struct {
			Index     int
			Digest    []byte
			DigestAlg crypto.Hash
		}
		Raw []byte
	}
}

// TestWindowsVector: the Windows GCP shielded VM quote verifies with the AK
// trusted by key (no certificate), and its WBCL replays.
func TestWindowsVector(t *testing.T) {
	var d windowsDump
	if err := json.Unmarshal(testenv.ReadShared(t, "vectors/go-attestation/attest/testdata/windows_gcp_shielded_vm.json"), &d); err != nil {
		t.Fatal(err)
	}
	pub, err := abi.ParsePublic(d.AK.Public)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := tpm2.Pub(*pub)
	if err != nil {
		t.Fatal(err)
	}
	bank := abi.PCRBank{Algorithm: 0x0004}
	for i := 0; i < 24; i++ {
		for _, p := range d.Log.PCRs {
			if p.Index == i {
				bank.Values = append(bank.Values, abi.PCRValue{Index: i, Digest: p.Digest})
			}
		}
	}
	att := &abi.JWK{Key: ak}
	if _, _, _, err := establishAIK(nil, att, Options{}); evidence.CheckOf(err) != string(CheckAIKChain) {
		t.Fatalf("an AK trusted by nobody: %v", err)
	}
	key, _, validated, err := establishAIK(nil, att, Options{TrustedAKs: []crypto.PublicKey{ak}})
	if err != nil || !validated {
		t.Fatalf("trusted AK: %v", err)
	}
	res, err := VerifyQuote(key, d.Quote.Quote, d.Quote.Signature, d.Quote.Nonce, []abi.PCRBank{bank})
	if err != nil {
		t.Fatal(err)
	}
	l, err := replayLogs([]abi.Log{{Type: "TCG", Data: d.Log.Raw}}, res.PCRs)
	if err != nil {
		t.Fatal(err)
	}
	if f := l.WindowsFlags(); !f.Seen || f.BootDebugging {
		t.Errorf("windows flags %+v", f)
	}
}
