package envelope

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sample() *AttestationInfo {
	d := bytes.Repeat([]byte{7}, 32)
	return &AttestationInfo{ProtocolVersion: "2.0", OSType: "Linux", OSDistro: "Ubuntu", OSBuild: "NotApplication",
		OSVersionMajor: 22, OSVersionMinor: 4, TcgLogs: []byte{1, 2, 3}, ClientPayload: []byte(`{"nonce":"n"}`),
		TPM: TPMInfo{AikPub: []byte{1}, PcrQuote: []byte{2}, PcrSignature: []byte{3}, PcrSet: []int{0, 7},
			PCRs: []PCR{{0, d}, {7, d}}, EncKeyPub: []byte{4}, EncKeyCertifyInfo: []byte{5}, EncKeyCertifyInfoSignature: []byte{6}},
		Isolation: Isolation{Type: IsolationSevSnp, Proof: []byte(`{"SnpReport":"x"}`), RuntimeData: []byte(`{"keys":[]}`)}}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	// The real client's encodings: standard base64 with padding for the
	// OS strings and TPM fields, versions as strings.
	for _, want := range []string{`"OSType":"TGludXg="`, `"OSVersionMajor":"22"`, `"AttestationProtocolVersion":"2.0"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n%+v\n%+v", in, out)
	}
}

func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*AttestationInfo)
		field  string
	}{
		{"protocol version", func(a *AttestationInfo) { a.ProtocolVersion = "1.0" }, "AttestationProtocolVersion"},
		{"no quote", func(a *AttestationInfo) { a.TPM.PcrQuote = nil }, "TpmInfo.PcrQuote"},
		{"PCR digest size", func(a *AttestationInfo) { a.TPM.PCRs[0].Digest = []byte{1} }, "TpmInfo.PCRs[0].Digest"},
		{"repeated PCR", func(a *AttestationInfo) { a.TPM.PCRs[1].Index = 0; a.TPM.PcrSet = nil }, "TpmInfo.PCRs[1]"},
		{"PcrSet names an unreported PCR", func(a *AttestationInfo) { a.TPM.PcrSet = []int{0, 8} }, "TpmInfo.PcrSet"},
		{"isolation type", func(a *AttestationInfo) { a.Isolation.Type = "Sgx" }, "IsolationInfo.Type"},
		{"SNP without proof", func(a *AttestationInfo) { a.Isolation.Proof = nil }, "IsolationInfo.Evidence"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := sample()
			c.mutate(a)
			b, err := Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(b)
			var e *Error
			if !errors.As(err, &e) || e.Field != c.field {
				t.Fatalf("got %v, want a refusal of %s", err, c.field)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"AttestationProtocolVersion":"2.0"} {}`, `{"AttestationProtocolVersion":"2.0","TcgLogs":"***"}`,
		`{"AttestationProtocolVersion":"2.0","OSVersionMajor":"x"}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDecodeAlphabets(t *testing.T) {
	raw := []byte{0xfb, 0xff, 0xfe, 0x01}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := Decode(enc.EncodeToString(raw))
		if err != nil || !bytes.Equal(b, raw) {
			t.Errorf("%v: %x %v", enc, b, err)
		}
	}
}

// FuzzParse: no panic; a parsed document re-encodes and parses to the same value.
func FuzzParse(f *testing.F) {
	b, _ := Marshal(sample())
	f.Add(b)
	a := sample()
	a.Isolation = Isolation{Type: IsolationNone}
	b, _ = Marshal(a)
	f.Add(b)
	f.Add([]byte(`{"AttestationProtocolVersion":"2.0","TpmInfo":{"PcrQuote":"AA==","PcrSignature":"AA=="}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ai, err := Parse(b)
		if err != nil {
			return
		}
		re, err := Marshal(ai)
		if err != nil {
			t.Fatal(err)
		}
		ai2, err := Parse(re)
		if err != nil {
			t.Fatalf("re-encoded document refused: %v", err)
		}
		if !reflect.DeepEqual(ai, ai2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", ai, ai2)
		}
	})
}

func TestSealOpen(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	unwrap := func(w []byte) ([]byte, error) { return rsa.DecryptPKCS1v15(rand.Reader, k, w) }
	sealed, err := Seal("header.payload.sig", &k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		t.Fatalf("sealed token is not base64url: %v", err)
	}
	var st SealedToken
	if err := json.Unmarshal(raw, &st); err != nil || st.Jwt == "" || st.EncryptionParams.Iv == "" || st.AuthenticationData == "" || st.EncryptedInnerKey == "" {
		t.Fatalf("sealed token %s: %v", raw, err)
	}
	got, err := Open(sealed, unwrap)
	if err != nil || got != "header.payload.sig" {
		t.Fatalf("Open: %q %v", got, err)
	}
	// A tampered ciphertext or tag fails authentication.
	st.AuthenticationData = base64.StdEncoding.EncodeToString(make([]byte, 16))
	b, _ := json.Marshal(st)
	if _, err := Open(base64.RawURLEncoding.EncodeToString(b), unwrap); err == nil {
		t.Fatal("tampered tag accepted")
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := Open(sealed, func(w []byte) ([]byte, error) { return rsa.DecryptPKCS1v15(rand.Reader, other, w) }); err == nil {
		t.Fatal("another key opened the token")
	}
}
