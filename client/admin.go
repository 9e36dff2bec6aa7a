package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/attestd/attestd/internal/strictjson"
)

// AttestationType names an MAA attestation type (the {type} of /attest and
// /policies).
type AttestationType string

// Attestation types of api-version 2020-10-01 and later.
const (
	SgxEnclave  AttestationType = "SgxEnclave"
	OpenEnclave AttestationType = "OpenEnclave"
	Tpm         AttestationType = "Tpm"
	SevSnpVm    AttestationType = "SevSnpVm"
	TdxVm       AttestationType = "TdxVm"
)

// Signer signs policy and certificate-management bodies: a private key and
// its certificate (Certificates[0]; more certificates are sent as its
// chain). The JWS header is {"alg":…,"x5c":[…]}, as the JS SDK sends it;
// RSA keys sign RS256, ECDSA keys ES256/ES384/ES512 by curve.
type Signer struct {
	Key          crypto.Signer
	Certificates []*x509.Certificate
}

// NewSigner checks that key belongs to chain[0] and returns a Signer.
func NewSigner(key crypto.Signer, chain ...*x509.Certificate) (*Signer, error) {
	if key == nil || len(chain) == 0 || chain[0] == nil {
		return nil, errors.New("client: a signer needs a key and its certificate")
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("client: the signing key does not match certificate %q", chain[0].Subject)
	}
	if _, err := signerAlg(key); err != nil {
		return nil, err
	}
	return &Signer{Key: key, Certificates: chain}, nil
}

func signerAlg(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	}
	return "", fmt.Errorf("client: cannot sign with a %T key (want RSA or ECDSA P-256/384/521)", key.Public())
}

// sign returns the compact JWS of payload; with a nil signer the unsigned
// form {"alg":"none"} with an empty signature, as the SDKs send it (go-jose
// cannot emit alg "none").
func (s *Signer) sign(payload []byte) (string, error) {
	if s == nil {
		return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(payload) + ".", nil
	}
	if len(s.Certificates) == 0 {
		return "", errors.New("client: signer has no certificate")
	}
	alg, err := signerAlg(s.Key)
	if err != nil {
		return "", err
	}
	x5c := make([]string, len(s.Certificates))
	for i, c := range s.Certificates {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	var key any = s.Key
	switch s.Key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
	default: // an HSM or KMS key
		key = cryptosigner.Opaque(s.Key)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("x5c", x5c))
	if err != nil {
		return "", fmt.Errorf("client: signer: %w", err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("client: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// PolicyResult is the validated answer to a policy set or reset.
type PolicyResult struct {
	// Resolution is x-ms-policy-result: "Updated" (set) or "Removed" (reset).
	Resolution string
	// TokenHash is x-ms-policy-token-hash, checked to be SHA-256 of the
	// body that was sent.
	TokenHash []byte
	// Signer is the certificate the service saw sign the policy
	// (x-ms-policy-signer), nil for unsigned bodies.
	Signer *x509.Certificate
	Token  *Token
}

func policyPath(t AttestationType) string { return "/policies/" + url.PathEscape(string(t)) }

// GetPolicy returns the policy in force for t and the certificate that
// signed it (nil when it was set unsigned, or is the default). An instance
// without a policy for t (Tpm before one is set) returns "".
func (c *Client) GetPolicy(ctx context.Context, t AttestationType) (text string, signer *x509.Certificate, err error) {
	tok, err := c.adminToken(ctx, request{method: "GET", path: policyPath(t)})
	if err != nil {
		return "", nil, err
	}
	jws, ok := tok.Claims["x-ms-policy"].(string)
	if !ok {
		return "", nil, invalid(ReasonMalformed, "policy token has no x-ms-policy string")
	}
	payload, chain, err := parsePolicyJWS(jws)
	if err != nil {
		return "", nil, invalid(ReasonMalformed, "x-ms-policy: %v", err)
	}
	if len(chain) > 0 {
		signer = chain[0]
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		return "", signer, nil
	}
	m, err := strictjson.Object(payload)
	if err != nil {
		return "", nil, invalid(ReasonMalformed, "x-ms-policy payload: %v", err)
	}
	var enc string
	if ok, err := strictjson.Member(m, "AttestationPolicy", &enc); err != nil || !ok {
		return "", nil, invalid(ReasonMalformed, "x-ms-policy payload has no AttestationPolicy string")
	}
	b, err := b64url(enc)
	if err != nil {
		if b, err = base64.StdEncoding.DecodeString(enc); err != nil {
			return "", nil, invalid(ReasonMalformed, "AttestationPolicy is not base64url")
		}
	}
	return string(b), signer, nil
}

// SetPolicy sets the policy for t: unsigned when signer is nil (AAD
// instances), else signed by signer (required on Isolated instances).
func (c *Client) SetPolicy(ctx context.Context, t AttestationType, text string, signer *Signer) (*PolicyResult, error) {
	payload, err := json.Marshal(map[string]string{"AttestationPolicy": base64.RawURLEncoding.EncodeToString([]byte(text))})
	if err != nil {
		return nil, err
	}
	body, err := signer.sign(payload)
	if err != nil {
		return nil, err
	}
	return c.policyChange(ctx, request{method: "PUT", path: policyPath(t), contentType: "text/plain", body: []byte(body)}, "Updated")
}

// ResetPolicy returns t to the instance's default policy. The body is a JWS
// with an empty payload, signed when signer is non-nil.
func (c *Client) ResetPolicy(ctx context.Context, t AttestationType, signer *Signer) (*PolicyResult, error) {
	body, err := signer.sign(nil)
	if err != nil {
		return nil, err
	}
	return c.policyChange(ctx, request{method: "POST", path: policyPath(t) + ":reset", contentType: "text/plain", body: []byte(body)}, "Removed")
}

func (c *Client) policyChange(ctx context.Context, req request, want string) (*PolicyResult, error) {
	tok, err := c.adminToken(ctx, req)
	if err != nil {
		return nil, err
	}
	r := &PolicyResult{Token: tok}
	r.Resolution, _ = tok.Claims["x-ms-policy-result"].(string)
	h, _ := tok.Claims["x-ms-policy-token-hash"].(string)
	if r.TokenHash, err = b64url(h); err != nil || h == "" {
		return nil, invalid(ReasonMalformed, "policy result has no valid x-ms-policy-token-hash")
	}
	if !c.val.SkipValidation {
		sum := sha256.Sum256(req.body)
		if subtle.ConstantTimeCompare(sum[:], r.TokenHash) != 1 {
			return nil, invalid(ReasonMalformed, "x-ms-policy-token-hash %s is not the SHA-256 of the request body (%s): the answer is not about this change",
				h, base64.RawURLEncoding.EncodeToString(sum[:]))
		}
		if r.Resolution != want {
			return nil, invalid(ReasonMalformed, "x-ms-policy-result is %q, want %q", r.Resolution, want)
		}
	}
	if s, ok := tok.Claims["x-ms-policy-signer"].(map[string]any); ok {
		if x5c, _ := s["x5c"].([]any); len(x5c) > 0 {
			if str, ok := x5c[0].(string); ok {
				certs, err := parseX5c([]string{str})
				if err != nil {
					return nil, invalid(ReasonMalformed, "x-ms-policy-signer: %v", err)
				}
				r.Signer = certs[0]
			}
		}
	}
	return r, nil
}

// CertificateResult is the validated answer to a certificate add/remove.
type CertificateResult struct {
	// Thumbprint is x-ms-certificate-thumbprint (upper-case hex SHA-1 of the
	// certificate), checked to be the certificate sent.
	Thumbprint string
	// Result is x-ms-policycertificates-result: "IsPresent" after add,
	// "IsAbsent" after remove.
	Result string
	Token  *Token
}

// GetPolicyCertificates returns the instance's policy-management
// certificates (empty unless the instance is Isolated).
func (c *Client) GetPolicyCertificates(ctx context.Context) ([]*x509.Certificate, error) {
	tok, err := c.adminToken(ctx, request{method: "GET", path: "/certificates"})
	if err != nil {
		return nil, err
	}
	pc, ok := tok.Claims["x-ms-policy-certificates"].(map[string]any)
	if !ok {
		return nil, invalid(ReasonMalformed, "token has no x-ms-policy-certificates object")
	}
	keys, ok := pc["keys"].([]any)
	if !ok && pc["keys"] != nil {
		return nil, invalid(ReasonMalformed, "x-ms-policy-certificates.keys is not an array")
	}
	var out []*x509.Certificate
	for i, k := range keys {
		jwk, _ := k.(map[string]any)
		arr, _ := jwk["x5c"].([]any)
		if len(arr) == 0 {
			return nil, invalid(ReasonMalformed, "x-ms-policy-certificates key %d has no x5c", i)
		}
		s, _ := arr[0].(string)
		certs, err := parseX5c([]string{s})
		if err != nil {
			return nil, invalid(ReasonMalformed, "x-ms-policy-certificates key %d: %v", i, err)
		}
		out = append(out, certs[0])
	}
	return out, nil
}

// AddPolicyCertificate adds cert to an Isolated instance's
// policy-management certificates; signer must be one already there.
func (c *Client) AddPolicyCertificate(ctx context.Context, cert *x509.Certificate, signer *Signer) (*CertificateResult, error) {
	return c.certificateChange(ctx, "add", cert, signer, "IsPresent")
}

// RemovePolicyCertificate removes cert; signer must be a policy-management
// certificate (the last one cannot be removed).
func (c *Client) RemovePolicyCertificate(ctx context.Context, cert *x509.Certificate, signer *Signer) (*CertificateResult, error) {
	return c.certificateChange(ctx, "remove", cert, signer, "IsAbsent")
}

func (c *Client) certificateChange(ctx context.Context, op string, cert *x509.Certificate, signer *Signer, want string) (*CertificateResult, error) {
	if cert == nil {
		return nil, errors.New("client: no certificate given")
	}
	if signer == nil {
		// MAA refuses unsigned certificate changes; so do the SDKs.
		return nil, errors.New("client: certificate changes must be signed by a policy-management certificate")
	}
	kty := "RSA"
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
		kty = "EC"
	}
	payload, err := json.Marshal(map[string]any{"policyCertificate": map[string]any{
		"kty": kty, "x5c": []string{base64.StdEncoding.EncodeToString(cert.Raw)}}})
	if err != nil {
		return nil, err
	}
	jws, err := signer.sign(payload)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(jws) // a JSON string literal (maa-api.md §1.5)
	tok, err := c.adminToken(ctx, request{method: "POST", path: "/certificates:" + op, contentType: "application/json", body: body})
	if err != nil {
		return nil, err
	}
	r := &CertificateResult{Token: tok}
	r.Thumbprint, _ = tok.Claims["x-ms-certificate-thumbprint"].(string)
	r.Result, _ = tok.Claims["x-ms-policycertificates-result"].(string)
	if !c.val.SkipValidation {
		sum := sha1.Sum(cert.Raw)
		if want := strings.ToUpper(hex.EncodeToString(sum[:])); !strings.EqualFold(r.Thumbprint, want) {
			return nil, invalid(ReasonMalformed, "x-ms-certificate-thumbprint %q is not the certificate sent (%s)", r.Thumbprint, want)
		}
		if r.Result != want {
			return nil, invalid(ReasonMalformed, "x-ms-policycertificates-result is %q, want %q", r.Result, want)
		}
	}
	return r, nil
}

// adminToken sends req and validates the {"token"} answer (always signed).
func (c *Client) adminToken(ctx context.Context, req request) (*Token, error) {
	b, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	raw, err := tokenResponse(b)
	if err != nil {
		return nil, err
	}
	return c.validate(ctx, raw, false)
}

// GetSigningCertificates fetches GET /certs: the keys that sign the
// instance's tokens.
func (c *Client) GetSigningCertificates(ctx context.Context) (*JWKS, error) {
	b, err := c.do(ctx, request{method: "GET", path: "/certs", noVersion: true, accept: "application/jwk+json, application/json"})
	if err != nil {
		return nil, err
	}
	return ParseJWKS(b)
}

// OpenIDMetadata is GET /.well-known/openid-configuration.
type OpenIDMetadata struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	RevocationEndpoint               string   `json:"revocation_endpoint,omitempty"`
	ResponseTypesSupported           []string `json:"response_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported                  []string `json:"claims_supported,omitempty"`
	// Raw is the whole document.
	Raw map[string]any `json:"-"`
}

// GetOpenIDMetadata fetches the instance's OpenID metadata.
func (c *Client) GetOpenIDMetadata(ctx context.Context) (*OpenIDMetadata, error) {
	b, err := c.do(ctx, request{method: "GET", path: "/.well-known/openid-configuration", noVersion: true})
	if err != nil {
		return nil, err
	}
	var m OpenIDMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("client: OpenID metadata: %w", err)
	}
	if err := json.Unmarshal(b, &m.Raw); err != nil {
		return nil, fmt.Errorf("client: OpenID metadata: %w", err)
	}
	return &m, nil
}

// parsePolicyJWS reads a stored policy JWS (x-ms-policy): alg "none" with an
// empty signature, or a signature by its header certificate (x5c or jwk.x5c,
// "RSA256" read as RS256, as Python 1.0.1 writes it), which is verified so
// the reported signer is the one that really signed.
func parsePolicyJWS(s string) (payload []byte, chain []*x509.Certificate, err error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("want 3 dot-separated parts, got %d", len(parts))
	}
	hb, err := b64url(parts[0])
	if err != nil {
		return nil, nil, fmt.Errorf("header: %v", err)
	}
	hm, err := strictjson.Object(hb)
	if err != nil {
		return nil, nil, fmt.Errorf("header: %v", err)
	}
	var alg string
	if _, err := strictjson.Member(hm, "alg", &alg); err != nil {
		return nil, nil, err
	}
	if payload, err = b64url(parts[1]); err != nil {
		return nil, nil, fmt.Errorf("payload: %v", err)
	}
	sig, err := b64url(parts[2])
	if err != nil {
		return nil, nil, fmt.Errorf("signature: %v", err)
	}
	if alg == "none" {
		if len(sig) != 0 {
			return nil, nil, errors.New("alg \"none\" with a signature")
		}
		return payload, nil, nil
	}
	var x5c []string
	if _, err := strictjson.Member(hm, "x5c", &x5c); err != nil {
		return nil, nil, err
	}
	if len(x5c) == 0 {
		var jwk json.RawMessage
		if ok, _ := strictjson.Member(hm, "jwk", &jwk); ok {
			if jm, err := strictjson.Object(jwk); err == nil {
				_, _ = strictjson.Member(jm, "x5c", &x5c)
			}
		}
	}
	if len(x5c) == 0 {
		return nil, nil, errors.New("signed policy has no x5c")
	}
	if chain, err = parseX5c(x5c); err != nil {
		return nil, nil, err
	}
	if err := verifyJWS(alg, chain[0].PublicKey, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		return nil, nil, fmt.Errorf("policy signature: %v", err)
	}
	return payload, chain, nil
}

// verifyJWS checks an RS*/ES* JWS signature with the stdlib verifiers.
func verifyJWS(alg string, pub crypto.PublicKey, signed, sig []byte) error {
	var h crypto.Hash
	switch alg {
	case "RS256", "RSA256", "ES256":
		h = crypto.SHA256
	case "RS384", "ES384":
		h = crypto.SHA384
	case "RS512", "ES512":
		h = crypto.SHA512
	default:
		return fmt.Errorf("unsupported alg %q", alg)
	}
	hf := h.New()
	hf.Write(signed)
	d := hf.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] != 'R' {
			return fmt.Errorf("alg %s with an RSA key", alg)
		}
		return rsa.VerifyPKCS1v15(k, h, d, sig)
	case *ecdsa.PublicKey:
		if alg[0] != 'E' {
			return fmt.Errorf("alg %s with an ECDSA key", alg)
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return fmt.Errorf("ECDSA signature is %d bytes, want %d", len(sig), 2*n)
		}
		if !ecdsa.Verify(k, d, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	}
	return fmt.Errorf("unsupported key %T", pub)
}
