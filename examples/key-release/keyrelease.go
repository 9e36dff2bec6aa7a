// Package keyrelease is a runnable secure key release between an SGX
// enclave (the attester) and a relying party that holds a secret, with
// attestd (or MAA) as the verifier, in both of the models Microsoft's
// attestation overview describes:
//
//   - passport: the attester sends its evidence to attestd, gets a token and
//     hands the token to the relying party (POST /passport);
//   - background check: the attester hands its evidence to the relying
//     party, which calls attestd itself (POST /background-check).
//
// The attester holds an ephemeral key; its public JWK is the JSON runtime
// data of the attestation, so the enclave's report data starts with
// SHA-256(JWK) and attestd, which checks that binding before it signs,
// puts the JWK in the token's x-ms-runtime. The relying party verifies the
// token (package client/verifier), applies its policy to the claims, and
// answers with the secret encrypted to that key as a compact JWE
// (ECDH-ES+A256KW for an EC key, RSA-OAEP-256 for an RSA key; A256GCM): only
// the attested enclave can read it. See README.md.
package keyrelease

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/verifier"
	jose "github.com/go-jose/go-jose/v4"
)

// Policy is what the relying party requires of an attested enclave, on top
// of an authentic, unexpired token of its issuer.
type Policy struct {
	// MREnclave and MRSigner (lower-case hex) are the enclave measurement
	// and signer the secret belongs to. MRSigner empty means any signer
	// (MREnclave pins the code); both empty is refused by NewRelyingParty.
	MREnclave, MRSigner string
	// ProductID is the required ISV product id; MinSVN the least ISV SVN.
	ProductID, MinSVN int64
	// AllowDebug admits debuggable enclaves, whose memory the host can
	// read: a secret released to one is released to the host.
	AllowDebug bool
	// TCBStatuses lists the x-ms-sgx-tcb-status values accepted; empty
	// means only "UpToDate".
	TCBStatuses []string
}

// Checks the relying party names in a refusal, besides "token:<reason>"
// for the verifier's (token:expired, token:issuer, token:signature,
// token:unsigned, …).
const (
	CheckRequest     = "request"     // the request body is not what the endpoint takes
	CheckAttestation = "attestation" // background check: attestd refused the evidence
	CheckMREnclave   = "mrenclave"
	CheckMRSigner    = "mrsigner"
	CheckProductID   = "product-id"
	CheckSVN         = "svn"
	CheckDebuggable  = "debuggable"
	CheckTCBStatus   = "tcb-status"
	CheckRuntimeKey  = "runtime-key" // x-ms-runtime is not a usable public key
	CheckUnavailable = "unavailable" // the issuer could not be reached
)

// Refusal is why the relying party did not release the secret: the body of
// its 403 (or 502 for CheckUnavailable) answers, {"check":…,"message":…}.
type Refusal struct {
	Check   string `json:"check"`
	Message string `json:"message"`
}

func (r *Refusal) Error() string { return "key release refused (" + r.Check + "): " + r.Message }

func refuse(check, format string, args ...any) *Refusal {
	return &Refusal{Check: check, Message: fmt.Sprintf(format, args...)}
}

// RelyingPartyOptions configure a RelyingParty.
type RelyingPartyOptions struct {
	// Verifier checks tokens; its issuer is the one the relying party trusts.
	Verifier *verifier.Verifier
	// Attestd, for the background-check model, is a client of the same
	// instance; nil disables POST /background-check.
	Attestd *client.Client
	Policy  Policy
	// Secret is what is released.
	Secret []byte
	// Logger records every decision; nil discards.
	Logger *slog.Logger
}

// RelyingParty is the secret holder's HTTP service: POST /passport with
// {"token": JWT} or POST /background-check with {"quote": b64url,
// "runtimeData": b64url(JWK JSON)}; 200 {"wrapped": compact JWE}.
type RelyingParty struct {
	o   RelyingPartyOptions
	mux *http.ServeMux
}

// NewRelyingParty returns the service.
func NewRelyingParty(o RelyingPartyOptions) (*RelyingParty, error) {
	if o.Verifier == nil {
		return nil, errors.New("keyrelease: a Verifier is required")
	}
	if o.Policy.MREnclave == "" && o.Policy.MRSigner == "" {
		return nil, errors.New("keyrelease: the policy names neither MREnclave nor MRSigner: any enclave would get the secret")
	}
	if len(o.Secret) == 0 {
		return nil, errors.New("keyrelease: no secret to release")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	rp := &RelyingParty{o: o, mux: http.NewServeMux()}
	rp.mux.HandleFunc("POST /passport", rp.passport)
	if o.Attestd != nil {
		rp.mux.HandleFunc("POST /background-check", rp.backgroundCheck)
	}
	return rp, nil
}

func (rp *RelyingParty) ServeHTTP(w http.ResponseWriter, r *http.Request) { rp.mux.ServeHTTP(w, r) }

// maxBody caps requests: a token is a few KiB, a quote with its PCK chain
// under 16 KiB.
const maxBody = 256 << 10

func (rp *RelyingParty) passport(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := readJSON(r, &req); err != nil || req.Token == "" {
		rp.answer(w, r, "", "", refuse(CheckRequest, "want {\"token\": JWT}"))
		return
	}
	jwe, ref := rp.release(r.Context(), req.Token)
	rp.answer(w, r, "passport", jwe, ref)
}

func (rp *RelyingParty) backgroundCheck(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Quote       string `json:"quote"`
		RuntimeData string `json:"runtimeData"`
	}
	if err := readJSON(r, &req); err != nil {
		rp.answer(w, r, "", "", refuse(CheckRequest, "want {\"quote\": b64url, \"runtimeData\": b64url}"))
		return
	}
	quote, err1 := verifier.B64URL(req.Quote)
	runtime, err2 := verifier.B64URL(req.RuntimeData)
	if err := errors.Join(err1, err2); err != nil || len(quote) == 0 || len(runtime) == 0 {
		rp.answer(w, r, "", "", refuse(CheckRequest, "quote and runtimeData must be non-empty base64url"))
		return
	}
	res, err := rp.o.Attestd.AttestSgxEnclave(r.Context(), quote, &client.AttestOptions{RuntimeJSON: runtime})
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) {
			rp.answer(w, r, "background-check", "", refuse(CheckAttestation, "%v", err))
		} else {
			rp.answer(w, r, "background-check", "", refuse(CheckUnavailable, "%v", err))
		}
		return
	}
	// The token is checked exactly as a passport is: one code path.
	jwe, ref := rp.release(r.Context(), res.Token.Raw)
	rp.answer(w, r, "background-check", jwe, ref)
}

// release verifies raw, applies the policy and wraps the secret to the
// key in x-ms-runtime: the compact JWE, or why not.
func (rp *RelyingParty) release(ctx context.Context, raw string) (string, *Refusal) {
	res, err := rp.o.Verifier.Verify(ctx, raw)
	if err != nil {
		var ve *verifier.ValidationError
		if errors.As(err, &ve) {
			return "", refuse("token:"+ve.Reason, "%v", err)
		}
		return "", refuse(CheckUnavailable, "%v", err)
	}
	if ref := rp.o.Policy.check(res); ref != nil {
		return "", ref
	}
	key, err := PublicKeyFromRuntime(res.RuntimeClaims)
	if err != nil {
		return "", refuse(CheckRuntimeKey, "%v", err)
	}
	jwe, err := Wrap(rp.o.Secret, key)
	if err != nil {
		return "", refuse(CheckRuntimeKey, "%v", err)
	}
	return jwe, nil
}

// check applies p to a verified result, naming the first claim that fails.
func (p *Policy) check(r *verifier.Result) *Refusal {
	if r.AttestationType != verifier.TypeSGX {
		return refuse("token:"+verifier.ReasonAttestationType, "x-ms-attestation-type %q, want sgx", r.AttestationType)
	}
	if p.MREnclave != "" && !strings.EqualFold(r.MREnclave, p.MREnclave) {
		return refuse(CheckMREnclave, "x-ms-sgx-mrenclave %s, want %s", r.MREnclave, p.MREnclave)
	}
	if p.MRSigner != "" && !strings.EqualFold(r.MRSigner, p.MRSigner) {
		return refuse(CheckMRSigner, "x-ms-sgx-mrsigner %s, want %s", r.MRSigner, p.MRSigner)
	}
	if p.ProductID != 0 && r.ProductID != p.ProductID {
		return refuse(CheckProductID, "x-ms-sgx-product-id %d, want %d", r.ProductID, p.ProductID)
	}
	if r.SVN < p.MinSVN {
		return refuse(CheckSVN, "x-ms-sgx-svn %d, want at least %d", r.SVN, p.MinSVN)
	}
	if dbg, ok := r.Bool("x-ms-sgx-is-debuggable"); !ok || (dbg && !p.AllowDebug) {
		return refuse(CheckDebuggable, "x-ms-sgx-is-debuggable is %v (present: %v): the host can read a debuggable enclave's memory", dbg, ok)
	}
	ok := []string{"UpToDate"}
	if len(p.TCBStatuses) > 0 {
		ok = p.TCBStatuses
	}
	if !slices.Contains(ok, r.TCBStatus) {
		return refuse(CheckTCBStatus, "x-ms-sgx-tcb-status %q, want one of %q", r.TCBStatus, ok)
	}
	return nil
}

func (rp *RelyingParty) answer(w http.ResponseWriter, r *http.Request, model, jwe string, ref *Refusal) {
	w.Header().Set("Content-Type", "application/json")
	if ref == nil {
		rp.o.Logger.InfoContext(r.Context(), "key released", "model", model)
		json.NewEncoder(w).Encode(map[string]string{"wrapped": jwe})
		return
	}
	rp.o.Logger.WarnContext(r.Context(), "key release refused", "model", model, "check", ref.Check, "message", ref.Message)
	status := http.StatusForbidden
	switch ref.Check {
	case CheckUnavailable:
		status = http.StatusBadGateway
	case CheckRequest:
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ref)
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxBody {
		return errors.New("body too large")
	}
	return json.Unmarshal(b, v)
}

// PublicKeyFromRuntime reads the attester's public key from x-ms-runtime:
// a JWK, EC P-256 or RSA of at least 2048 bits, without private members.
func PublicKeyFromRuntime(runtime map[string]any) (crypto.PublicKey, error) {
	if runtime == nil {
		return nil, errors.New("the token has no x-ms-runtime (the attester sent no JSON runtime data)")
	}
	b, err := json.Marshal(runtime)
	if err != nil {
		return nil, err
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("x-ms-runtime is not a JWK: %v", err)
	}
	if !jwk.IsPublic() {
		return nil, errors.New("x-ms-runtime holds a private key")
	}
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key on %s, want P-256", k.Curve.Params().Name)
		}
		return k, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%d-bit RSA key, want at least 2048", k.N.BitLen())
		}
		return k, nil
	}
	return nil, fmt.Errorf("a %T key cannot receive a wrapped secret", jwk.Key)
}

// Wrap encrypts secret to key as a compact JWE: ECDH-ES+A256KW for P-256,
// RSA-OAEP-256 for RSA, content A256GCM.
func Wrap(secret []byte, key crypto.PublicKey) (string, error) {
	alg := jose.ECDH_ES_A256KW
	if _, ok := key.(*rsa.PublicKey); ok {
		alg = jose.RSA_OAEP_256
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: alg, Key: key}, nil)
	if err != nil {
		return "", err
	}
	obj, err := enc.Encrypt(secret)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Attester is the enclave side: an ephemeral key pair and the quote that
// binds its public JWK. In a real enclave the key never leaves enclave
// memory and Quote asks the platform's quoting enclave.
type Attester struct {
	key     crypto.PrivateKey // *ecdsa.PrivateKey or *rsa.PrivateKey
	runtime []byte
	// Quote returns an SGX quote whose report data starts with
	// SHA-256(runtime); it is called by Evidence.
	Quote func(runtime []byte) ([]byte, error)
}

// NewAttester makes a fresh key pair: EC P-256 (ecdh=true) or RSA 3072.
func NewAttester(ecdh bool, quote func(runtime []byte) ([]byte, error)) (*Attester, error) {
	var k crypto.Signer
	var err error
	if ecdh {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	}
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: k.Public()}
	b, err := pub.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return &Attester{key: k, runtime: b, Quote: quote}, nil
}

// RuntimeData is the public JWK, the JSON runtime data of the attestation.
func (a *Attester) RuntimeData() []byte { return slices.Clone(a.runtime) }

// Evidence returns the quote binding RuntimeData.
func (a *Attester) Evidence() ([]byte, error) { return a.Quote(a.runtime) }

// Passport attests to attestd (c) and returns the token to hand on.
func (a *Attester) Passport(ctx context.Context, c *client.Client) (string, error) {
	q, err := a.Evidence()
	if err != nil {
		return "", err
	}
	r, err := c.AttestSgxEnclave(ctx, q, &client.AttestOptions{RuntimeJSON: a.runtime})
	if err != nil {
		return "", err
	}
	return r.Token.Raw, nil
}

// Unwrap decrypts the relying party's answer with the attester's key.
func (a *Attester) Unwrap(jwe string) ([]byte, error) {
	obj, err := jose.ParseEncryptedCompact(jwe, []jose.KeyAlgorithm{jose.ECDH_ES_A256KW, jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, err
	}
	return obj.Decrypt(a.key)
}

// Request posts body to the relying party's url and returns the unwrapped
// secret, or the *Refusal it answered.
func (a *Attester) Request(ctx context.Context, hc *http.Client, url string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		ref := &Refusal{}
		if err := json.Unmarshal(rb, ref); err != nil || ref.Check == "" {
			return nil, fmt.Errorf("relying party: HTTP %d: %s", resp.StatusCode, rb)
		}
		return nil, ref
	}
	var ok struct {
		Wrapped string `json:"wrapped"`
	}
	if err := json.Unmarshal(rb, &ok); err != nil || ok.Wrapped == "" {
		return nil, fmt.Errorf("relying party: answer has no wrapped secret: %s", rb)
	}
	return a.Unwrap(ok.Wrapped)
}

// PassportBody and BackgroundCheckBody are the request bodies of the two
// models.
func PassportBody(token string) any { return map[string]string{"token": token} }

// BackgroundCheckBody carries the evidence itself.
func BackgroundCheckBody(quote, runtime []byte) any {
	return map[string]string{"quote": base64.RawURLEncoding.EncodeToString(quote), "runtimeData": base64.RawURLEncoding.EncodeToString(runtime)}
}
