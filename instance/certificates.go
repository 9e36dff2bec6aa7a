package instance

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/attestd/attestd/store"
)

// Certificates handles GET /certificates: a token whose
// x-ms-policy-certificates claim is {"keys":[JWK…]}, empty unless Isolated.
func (in *Instance) Certificates(ctx context.Context) (string, error) {
	keys := []any{}
	if in.cfg.Mode == ModeIsolated {
		certs, err := in.store.Certificates(ctx, in.cfg.Name)
		if err != nil {
			return "", &Error{Code: CodeInternal, Message: "reading policy certificates failed", Err: err}
		}
		for _, c := range certs {
			x, err := x509.ParseCertificate(c.DER)
			if err != nil {
				return "", &Error{Code: CodeInternal, Message: "stored policy certificate " + c.Thumbprint + " is unreadable", Err: err}
			}
			keys = append(keys, certJWK(x))
		}
	}
	return in.sign(map[string]any{"x-ms-policy-certificates": map[string]any{"keys": keys}}, ManagementTokenLifetime)
}

// certChange parses and authorises a certificates:add/remove body: the JWS as
// a JSON string literal (what the SDKs send) or bare. requireSigner is the
// signer's thumbprint for the store write's AuditEntry.RequireSigner.
func (in *Instance) certChange(ctx context.Context, body, what string) (j *jws, c *x509.Certificate, requireSigner string, err error) {
	if err := in.requireWritable(what); err != nil {
		return nil, nil, "", err
	}
	if in.cfg.Mode != ModeIsolated {
		return nil, nil, "", errorf(CodeInvalidOperation, "instance %q is in %s mode: policy-management certificates exist only on Isolated instances", in.cfg.Name, in.cfg.Mode)
	}
	if j, c, err = parseCertBody(body); err != nil {
		return nil, nil, "", err
	}
	if requireSigner, err = in.authorizeSigner(ctx, j, what); err != nil {
		return nil, nil, "", err
	}
	return j, c, requireSigner, nil
}

// AddCertificate handles POST /certificates:add (idempotent).
//
// Which certificates are accepted: trust in a policy-management
// certificate is pinning — a change is authorised when the JWS verifies
// with the key of a certificate whose thumbprint is in the set — so, as in
// MAA, the certificate's validity period, CA flag, key usage and issuer are
// not checked, neither on add nor when it later signs. Checking expiry
// would lock an Isolated instance for good once all its certificates
// expired, since only a signed change can add a new one. What is refused
// (InvalidParameter) is a certificate whose key no accepted JWS alg can
// use (e.g. Ed25519, ECDSA P-224): it could never sign, and if the others
// were removed the instance would be locked the same way.
func (in *Instance) AddCertificate(ctx context.Context, body string, actor Actor) (string, error) {
	unlock := in.lockAdmin()
	defer unlock()
	const what = "adding a policy-management certificate"
	j, c, requireSigner, err := in.certChange(ctx, body, what)
	if err != nil {
		return "", err
	}
	tp := Thumbprint(c)
	if err := usableKey(c); err != nil {
		return "", errorf(CodeInvalidParameter, "certificate %s cannot be a policy-management certificate: %v", tp, err)
	}
	a := auditEntry(store.AuditEntry{Instance: in.cfg.Name, At: in.now(), Actor: actorOf(actor, j), Action: "certificate.add",
		Target: tp, Hash: bodyHash(body), Detail: signerDetail(j) + "; subject " + c.Subject.String()})
	a.RequireSigner = requireSigner
	added, err := in.store.AddCertificate(ctx, store.Certificate{Instance: in.cfg.Name, Thumbprint: tp, DER: c.Raw, AddedAt: in.now()}, a)
	if rerr := in.signerRefused(err, what, requireSigner); rerr != nil {
		return "", rerr
	}
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "storing the certificate failed", Err: err}
	}
	in.log.InfoContext(ctx, "policy certificate add", "thumbprint", tp, "added", added, "actor", a.Actor)
	return in.sign(map[string]any{"x-ms-certificate-thumbprint": tp, "x-ms-policycertificates-result": "IsPresent"}, ManagementTokenLifetime)
}

// RemoveCertificate handles POST /certificates:remove (idempotent; the last
// certificate cannot be removed). As in MAA, the signer may remove its own
// certificate while another remains; the store checks the signer before
// the removal, in the same transaction.
func (in *Instance) RemoveCertificate(ctx context.Context, body string, actor Actor) (string, error) {
	unlock := in.lockAdmin()
	defer unlock()
	const what = "removing a policy-management certificate"
	j, c, requireSigner, err := in.certChange(ctx, body, what)
	if err != nil {
		return "", err
	}
	tp := Thumbprint(c)
	a := auditEntry(store.AuditEntry{Instance: in.cfg.Name, At: in.now(), Actor: actorOf(actor, j), Action: "certificate.remove",
		Target: tp, Hash: bodyHash(body), Detail: signerDetail(j) + "; subject " + c.Subject.String()})
	a.RequireSigner = requireSigner
	removed, err := in.store.RemoveCertificate(ctx, in.cfg.Name, tp, a)
	if rerr := in.signerRefused(err, what, requireSigner); rerr != nil {
		return "", rerr
	}
	if errors.Is(err, store.ErrLastCertificate) {
		return "", &Error{Code: CodeInvalidOperation, Message: "certificate " + tp + " is the instance's last policy-management certificate and cannot be removed", Err: err}
	}
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "removing the certificate failed", Err: err}
	}
	in.log.InfoContext(ctx, "policy certificate remove", "thumbprint", tp, "removed", removed, "actor", a.Actor)
	return in.sign(map[string]any{"x-ms-certificate-thumbprint": tp, "x-ms-policycertificates-result": "IsAbsent"}, ManagementTokenLifetime)
}

// parseCertBody reads a certificates:add/remove body: the JWS as a JSON
// string literal (what the SDKs send) or bare, whose payload names the
// certificate. The JWS signature is verified against its header certificate;
// whether that signer is trusted is the caller's decision.
func parseCertBody(body string) (*jws, *x509.Certificate, error) {
	raw := strings.TrimSpace(body)
	if strings.HasPrefix(raw, `"`) {
		var s string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return nil, nil, errorf(CodeInvalidOperation, "request body is not a JSON string: %v", err)
		}
		raw = s
	}
	if !looksLikeJWS(raw) {
		return nil, nil, errorf(CodeInvalidOperation, "request body must be a JWS (as a JSON string) whose payload names a policyCertificate")
	}
	j, err := parseJWS(raw)
	if err != nil {
		return nil, nil, &Error{Code: CodeInvalidOperation, Message: "invalid certificate-management JWS: " + err.Error(), Err: err}
	}
	x5c, err := certificateX5c(j.Payload)
	if err != nil {
		return nil, nil, &Error{Code: CodeInvalidOperation, Message: err.Error(), Err: err}
	}
	der, err := base64.StdEncoding.DecodeString(x5c[0])
	if err != nil {
		if der, err = decodeB64URL(x5c[0]); err != nil {
			return nil, nil, errorf(CodeInvalidParameter, "policyCertificate.x5c[0] is not base64: %v", err)
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, errorf(CodeInvalidParameter, "policyCertificate.x5c[0] is not an X.509 certificate: %v", err)
	}
	return j, c, nil
}
