package instance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// fakeTPM is a two-round verifier in the shape of MAA's TPM protocol
// (maa-api.md §1.3): {"payload":{"type":"aikcert"}} opens a round and gets
// {"payload":{"challenge","service_context"}}; {"payload":{"request":
// <challenge>,"service_context"}} is verified against the sealed challenge;
// the token comes back as {"payload":{"report":token}}.
type fakeTPM struct{ parsed atomic.Int64 }

type tpmMsg struct {
	Payload struct {
		Type           string `json:"type,omitempty"`
		Request        string `json:"request,omitempty"`
		Challenge      string `json:"challenge,omitempty"`
		ServiceContext string `json:"service_context,omitempty"`
		Report         string `json:"report,omitempty"`
	} `json:"payload"`
}

func (f *fakeTPM) Round(ctx context.Context, req *evidence.Request) (*evidence.Round, error) {
	var m tpmMsg
	if err := json.Unmarshal(req.Evidence, &m); err != nil {
		return nil, evidence.Errorf(evidence.CheckEvidenceParse, "not a TPM protocol message: %v", err)
	}
	if m.Payload.Type == "aikcert" {
		challenge := make([]byte, 16)
		rand.Read(challenge)
		return &evidence.Round{State: challenge, Reply: func(sc string) ([]byte, error) {
			var r tpmMsg
			r.Payload.Challenge, r.Payload.ServiceContext = base64.RawURLEncoding.EncodeToString(challenge), sc
			return json.Marshal(r)
		}}, nil
	}
	return &evidence.Round{Resume: m.Payload.ServiceContext}, nil
}

func (f *fakeTPM) Wrap(tok string) ([]byte, error) {
	var r tpmMsg
	r.Payload.Report = tok
	return json.Marshal(r)
}

type fakeTPMParsed struct{ ok bool }

func (f *fakeTPM) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	f.parsed.Add(1)
	var m tpmMsg
	if err := json.Unmarshal(req.Evidence, &m); err != nil {
		return nil, evidence.Errorf(evidence.CheckEvidenceParse, "%v", err)
	}
	if req.State == nil {
		return nil, evidence.Errorf("tpm.challenge", "the request carries no service_context")
	}
	got, err := base64.RawURLEncoding.DecodeString(m.Payload.Request)
	return fakeTPMParsed{ok: err == nil && bytes.Equal(got, req.State)}, nil
}

func (p fakeTPMParsed) Verify(ctx context.Context, props map[string]any) (*evidence.Result, error) {
	if !p.ok {
		return nil, evidence.Errorf("tpm.challenge", "the quote does not answer the sealed challenge")
	}
	return &evidence.Result{Claims: []evidence.Claim{{Type: "x-ms-attestation-type", Value: "tpm"}, {Type: "aikValidated", Value: true}}}, nil
}

// tpmEnv is one or more instances sharing one store, with a fixed clock.
type tpmEnv struct {
	db    *sqlite.DB
	keys  *token.KeySet
	clock time.Time
	v     *fakeTPM
}

func newTPMEnv(t *testing.T) *tpmEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &tpmEnv{db: db, clock: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), v: &fakeTPM{}}
	if e.keys, err = token.OpenKeySet(filepath.Join(dir, "keys"), "https://attestd.test", func() time.Time { return e.clock }); err != nil {
		t.Fatal(err)
	}
	return e
}

// instance returns instance name over the shared store with policy text
// set for Tpm (each call a fresh Instance: another replica).
func (e *tpmEnv) instance(t *testing.T, name, policyText string) *Instance {
	t.Helper()
	in, err := New(context.Background(), Config{Name: name, Mode: ModeAAD, Issuer: "https://attestd.test/" + name},
		Options{Store: e.db, Keys: e.keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.Tpm: e.v},
			Now: func() time.Time { return e.clock }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.SetPolicy(context.Background(), "Tpm", unsignedJWS(policyPayloadFor(policyText)), Actor{}); err != nil {
		t.Fatal(err)
	}
	return in
}

// challenge runs the init round and returns the challenge and context.
func challenge(t *testing.T, in *Instance) (string, string) {
	t.Helper()
	res, err := in.Attest(context.Background(), &AttestRequest{Type: evidence.Tpm, Evidence: []byte(`{"payload":{"type":"aikcert"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Token != "" || res.Data == nil {
		t.Fatalf("challenge round answered %+v, want data only", res)
	}
	var m tpmMsg
	if err := json.Unmarshal(res.Data, &m); err != nil || m.Payload.Challenge == "" || m.Payload.ServiceContext == "" {
		t.Fatalf("challenge reply %s: %v", res.Data, err)
	}
	return m.Payload.Challenge, m.Payload.ServiceContext
}

func answer(challenge, sc string) []byte {
	var m tpmMsg
	m.Payload.Request, m.Payload.ServiceContext = challenge, sc
	b, _ := json.Marshal(m)
	return b
}

func decodeJWT(t *testing.T, tok string) (hdr, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	return hdr, claims
}

// TestMultiRoundProtocol: the challenge round is answered with data and no
// token; the answer, through another replica, gets the report wrapped by
// the verifier, signed with the header and lifetime the policy's token
// properties ask for.
func TestMultiRoundProtocol(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, policy string
		header       string // the key member of the JOSE header
		lifetime     int64
	}{
		{"defaults", permitAll, "x5c", 1440 * 60},
		{"omit_x5c and lifetime", `version=1.0; authorizationrules{=> permit();}; issuancerules{=> issueproperty(type="omit_x5c", value=true); => issueproperty(type="report_validity_in_minutes", value=30);};`, "x5t", 30 * 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTPMEnv(t)
			a := e.instance(t, "t", tc.policy)
			ch, sc := challenge(t, a)
			if n := e.v.parsed.Load(); n != 0 {
				t.Fatalf("the challenge round parsed evidence %d times", n)
			}
			b := e.instance(t, "t", tc.policy) // another replica: same store, same name
			res, err := b.Attest(ctx, &AttestRequest{Type: evidence.Tpm, Evidence: answer(ch, sc)})
			if err != nil {
				t.Fatal(err)
			}
			var m tpmMsg
			if err := json.Unmarshal(res.Data, &m); err != nil || m.Payload.Report == "" || res.Token != "" {
				t.Fatalf("final reply %s / %+v: %v", res.Data, res, err)
			}
			if _, err := e.keys.Verify(m.Payload.Report); err != nil {
				t.Fatalf("report does not verify: %v", err)
			}
			hdr, claims := decodeJWT(t, m.Payload.Report)
			if _, ok := hdr[tc.header]; !ok {
				t.Errorf("header %v lacks %s", hdr, tc.header)
			}
			if claims["aikValidated"] != true || claims["x-ms-attestation-type"] != "tpm" {
				t.Errorf("claims %v", claims)
			}
			iat, _ := claims["iat"].(float64)
			exp, _ := claims["exp"].(float64)
			if int64(iat) != e.clock.Unix() || int64(exp-iat) != tc.lifetime {
				t.Errorf("iat %v exp %v: want iat = the fixed clock and a lifetime of %d s", iat, exp, tc.lifetime)
			}
		})
	}
}

// TestServiceContextRefusals: each refusal of the sealed state names its
// reason as a check, through errors.Is.
func TestServiceContextRefusals(t *testing.T) {
	ctx := context.Background()
	e := newTPMEnv(t)
	a := e.instance(t, "a", permitAll)
	other := e.instance(t, "b", permitAll)
	attest := func(in *Instance, ev []byte) error {
		_, err := in.Attest(ctx, &AttestRequest{Type: evidence.Tpm, Evidence: ev})
		return err
	}
	flip := func(s string) string {
		b := []byte(s)
		i := len(b) - 5
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name  string
		run   func(t *testing.T) error
		check evidence.Check
	}{
		{"forged: altered ciphertext", func(t *testing.T) error {
			ch, sc := challenge(t, a)
			return attest(a, answer(ch, flip(sc)))
		}, evidence.CheckServiceContextForged},
		{"forged: not ours at all", func(t *testing.T) error {
			ch, _ := challenge(t, a)
			return attest(a, answer(ch, "v1.e30.AAAA"))
		}, evidence.CheckServiceContextForged},
		{"forged: header rewritten to our name", func(t *testing.T) error {
			ch, sc := challenge(t, other)
			parts := strings.Split(sc, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"i":"a"}`))
			return attest(a, answer(ch, strings.Join(parts, ".")))
		}, evidence.CheckServiceContextForged},
		{"other instance", func(t *testing.T) error {
			ch, sc := challenge(t, other)
			return attest(a, answer(ch, sc))
		}, evidence.CheckServiceContextInstance},
		{"expired", func(t *testing.T) error {
			ch, sc := challenge(t, a)
			e.clock = e.clock.Add(ServiceContextLifetime)
			defer func() { e.clock = e.clock.Add(-ServiceContextLifetime) }()
			return attest(a, answer(ch, sc))
		}, evidence.CheckServiceContextExpired},
		{"replayed", func(t *testing.T) error {
			ch, sc := challenge(t, a)
			if err := attest(a, answer(ch, sc)); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return attest(a, answer(ch, sc))
		}, evidence.CheckServiceContextReplayed},
		{"wrong answer to the challenge", func(t *testing.T) error {
			_, sc := challenge(t, a)
			return attest(a, answer("AAAAAAAAAAAAAAAAAAAAAA", sc))
		}, "tpm.challenge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			if !errors.Is(err, tc.check) {
				t.Fatalf("err = %v, want check %s", err, tc.check)
			}
			wantCode(t, err, CodeInvalidParameter)
			if !strings.Contains(err.Error(), string(tc.check)) {
				t.Errorf("message %q does not name %s", err, tc.check)
			}
		})
	}
}

// TestServiceContextStoreFailure: a store that cannot record the nonce is
// an internal error, never an accepted (or replayable) context.
func TestServiceContextStoreFailure(t *testing.T) {
	e := newTPMEnv(t)
	a := e.instance(t, "a", permitAll)
	ch, sc := challenge(t, a)
	broken := &failingNonces{Store: e.db}
	in, err := New(context.Background(), Config{Name: "a", Mode: ModeAAD, Issuer: "https://attestd.test/a"},
		Options{Store: broken, Keys: e.keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.Tpm: e.v},
			Now: func() time.Time { return e.clock }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.Attest(context.Background(), &AttestRequest{Type: evidence.Tpm, Evidence: answer(ch, sc)})
	wantCode(t, err, CodeInternal)
}

type failingNonces struct{ store.Store }

func (f *failingNonces) UseNonce(context.Context, string, string, time.Time, time.Time) (bool, error) {
	return false, errors.New("database is down")
}

// FuzzServiceContextOpen: opening attacker-supplied service contexts never
// panics, and nothing but a context this instance sealed ever opens.
func FuzzServiceContextOpen(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := &sealer{store: db, instance: "a", lifetime: ServiceContextLifetime}
	valid, err := s.Seal(ctx, []byte("challenge"), now)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{valid, "", "v1", "v1..", "v1.e30.AAAA", "v1.eyJpIjoiYSJ9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "v2." + valid[3:], valid + "A"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sc string) {
		st, err := s.Open(ctx, sc, now)
		if err == nil && (sc != valid || string(st) != "challenge") {
			t.Fatalf("Open(%q) succeeded with state %q", sc, st)
		}
		var ee *evidence.Error
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("Open(%q): %v is not a named check", sc, err)
		}
	})
}
