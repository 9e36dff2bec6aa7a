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
// a JSON string literal (what the SDKs send) or bare.
func (in *Instance) certChange(ctx context.Context, body, what string) (*jws, *x509.Certificate, error) {
	if err := in.requireWritable(what); err != nil {
		return nil, nil, err
	}
	if in.cfg.Mode != ModeIsolated {
		return nil, nil, errorf(CodeInvalidOperation, "instance %q is in %s mode: policy-management certificates exist only on Isolated instances", in.cfg.Name, in.cfg.Mode)
	}
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
	if err := in.authorizeSigner(ctx, j, what); err != nil {
		return nil, nil, err
	}
	var p certPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return nil, nil, errorf(CodeInvalidOperation, "certificate-management JWS payload is not a JSON object: %v", err)
	}
	k := p.PolicyCertificate
	if k == nil {
		k = p.MAAPolicyCertificate
	}
	if k == nil || len(k.X5c) == 0 {
		return nil, nil, errorf(CodeInvalidOperation, "certificate-management JWS payload lacks policyCertificate.x5c")
	}
	der, err := base64.StdEncoding.DecodeString(k.X5c[0])
	if err != nil {
		if der, err = decodeB64URL(k.X5c[0]); err != nil {
			return nil, nil, errorf(CodeInvalidParameter, "policyCertificate.x5c[0] is not base64: %v", err)
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, errorf(CodeInvalidParameter, "policyCertificate.x5c[0] is not an X.509 certificate: %v", err)
	}
	return j, c, nil
}

// AddCertificate handles POST /certificates:add (idempotent).
func (in *Instance) AddCertificate(ctx context.Context, body string, actor Actor) (string, error) {
	j, c, err := in.certChange(ctx, body, "adding a policy-management certificate")
	if err != nil {
		return "", err
	}
	tp := Thumbprint(c)
	a := store.AuditEntry{Instance: in.cfg.Name, At: in.now(), Actor: actorOf(actor, j), Action: "certificate.add",
		Target: tp, Hash: bodyHash(body), Detail: signerDetail(j) + "; subject " + c.Subject.String()}
	added, err := in.store.AddCertificate(ctx, store.Certificate{Instance: in.cfg.Name, Thumbprint: tp, DER: c.Raw, AddedAt: in.now()}, a)
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "storing the certificate failed", Err: err}
	}
	in.log.Info("policy certificate add", "thumbprint", tp, "added", added, "actor", a.Actor)
	return in.sign(map[string]any{"x-ms-certificate-thumbprint": tp, "x-ms-policycertificates-result": "IsPresent"}, ManagementTokenLifetime)
}

// RemoveCertificate handles POST /certificates:remove (idempotent; the last
// certificate cannot be removed).
func (in *Instance) RemoveCertificate(ctx context.Context, body string, actor Actor) (string, error) {
	j, c, err := in.certChange(ctx, body, "removing a policy-management certificate")
	if err != nil {
		return "", err
	}
	tp := Thumbprint(c)
	a := store.AuditEntry{Instance: in.cfg.Name, At: in.now(), Actor: actorOf(actor, j), Action: "certificate.remove",
		Target: tp, Hash: bodyHash(body), Detail: signerDetail(j) + "; subject " + c.Subject.String()}
	removed, err := in.store.RemoveCertificate(ctx, in.cfg.Name, tp, a)
	if errors.Is(err, store.ErrLastCertificate) {
		return "", &Error{Code: CodeInvalidOperation, Message: "certificate " + tp + " is the instance's last policy-management certificate and cannot be removed", Err: err}
	}
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "removing the certificate failed", Err: err}
	}
	in.log.Info("policy certificate remove", "thumbprint", tp, "removed", removed, "actor", a.Actor)
	return in.sign(map[string]any{"x-ms-certificate-thumbprint": tp, "x-ms-policycertificates-result": "IsAbsent"}, ManagementTokenLifetime)
}
