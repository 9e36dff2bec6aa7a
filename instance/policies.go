package instance

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/policy"
	"github.com/attestd/attestd/store"
)

// activePolicy is the policy in force for one attestation type.
type activePolicy struct {
	Text string
	// stored is the exact JWS kept in the store ("" for defaults); see jws.
	stored string
	Signer *x509.Certificate // nil unless set by a signed JWS
	// None is true when the type has no policy at all (Tpm before a PUT).
	None bool
}

// jws is the policy as GET returns it in x-ms-policy: the exact stored JWS,
// or an unsigned JWS built from the text (defaults, raw-text sets). Built on
// demand: the attest path needs only the text.
func (ap *activePolicy) jws() string {
	if looksLikeJWS(ap.stored) {
		return ap.stored
	}
	return unsignedPolicyJWS(ap.Text)
}

// cachedPolicy is the policy in force for one type as read from the store
// at a store.PolicyChanges epoch.
type cachedPolicy struct {
	epoch uint64
	ap    *activePolicy // never modified once cached
}

// active returns the policy in force for t.
//
// Every attestation needs it, and reading it from the store was the
// largest part of attestd's own cost with ES256 tokens (issue 9), so it is
// kept in memory when the store can say when a policy may have changed
// (store.PolicyChanges: this handle's writes at once, other replicas'
// within their notification latency). The epoch is read before the store
// is, so a change committed after the read moves the epoch past the one the
// entry is kept under: a cached policy is never newer than its epoch
// claims, and never served after the store has seen a change. A store that
// cannot vouch (no watch, watch down or silent for
// store.MaxPolicyStaleness) is read every time.
func (in *Instance) active(ctx context.Context, t evidence.Type) (*activePolicy, error) {
	if in.cfg.Mode == ModeShared {
		return defaultPolicy(t), nil
	}
	pc, _ := in.store.(store.PolicyChanges)
	var epoch uint64
	cacheable := false
	if pc != nil {
		epoch, cacheable = pc.PolicyEpoch()
		if cacheable {
			in.mu.Lock()
			c, ok := in.inForce[t]
			in.mu.Unlock()
			if ok && c.epoch == epoch {
				return c.ap, nil
			}
		}
	}
	ap, err := in.readActive(ctx, t)
	if err == nil && cacheable {
		in.mu.Lock()
		if c, ok := in.inForce[t]; !ok || c.epoch <= epoch {
			in.inForce[t] = cachedPolicy{epoch: epoch, ap: ap}
		}
		in.mu.Unlock()
	}
	return ap, err
}

// readActive reads the policy in force for t from the store.
func (in *Instance) readActive(ctx context.Context, t evidence.Type) (*activePolicy, error) {
	p, err := in.store.GetPolicy(ctx, in.cfg.Name, string(t))
	switch {
	case err == nil:
		ap := &activePolicy{Text: p.Text, stored: p.JWS}
		if len(p.Signer) > 0 {
			c, err := in.signerCert(p.Signer)
			if err != nil {
				return nil, &Error{Code: CodeInternal, Message: "stored policy signer certificate is unreadable", Err: err}
			}
			ap.Signer = c
		}
		return ap, nil
	case errors.Is(err, store.ErrNotFound):
		return defaultPolicy(t), nil
	default:
		return nil, &Error{Code: CodeInternal, Message: "reading the policy from the store failed", Err: err}
	}
}

// defaultPolicy is the policy in force for t when none was set.
func defaultPolicy(t evidence.Type) *activePolicy {
	text, ok := policy.Default(string(t))
	if !ok {
		return &activePolicy{None: true}
	}
	return &activePolicy{Text: text}
}

// signerCert parses the stored signer certificate of a policy, reusing an
// earlier parse of the same DER: a signed policy in force would otherwise
// cost an X.509 parse on every attestation. Only stored signers (vetted by
// an admin change) reach it, and the map is bounded like the policy cache.
func (in *Instance) signerCert(der []byte) (*x509.Certificate, error) {
	in.mu.Lock()
	c, ok := in.signers[string(der)]
	in.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	if len(in.signers) >= maxCompiled {
		clear(in.signers)
	}
	in.signers[string(der)] = c
	in.mu.Unlock()
	return c, nil
}

// GetPolicy returns the PolicyResult token for GET /policies/{type}: its
// x-ms-policy claim is the policy JWS in force.
func (in *Instance) GetPolicy(ctx context.Context, typ string) (string, error) {
	t, err := ParseType(typ)
	if err != nil {
		return "", err
	}
	// Read from the store, not the attestation path's cache: an admin
	// who reads right after a change through another replica sees it,
	// without waiting for the notification (and these reads are rare).
	ap := defaultPolicy(t)
	if in.cfg.Mode != ModeShared {
		if ap, err = in.readActive(ctx, t); err != nil {
			return "", err
		}
	}
	return in.sign(map[string]any{"x-ms-policy": ap.jws()}, ManagementTokenLifetime)
}

// requireWritable refuses admin writes on Shared instances.
func (in *Instance) requireWritable(what string) error {
	if in.cfg.Mode == ModeShared {
		return errorf(CodeInvalidOperation, "instance %q is a Shared instance: its policies and certificates are fixed and %s is not allowed", in.cfg.Name, what)
	}
	return nil
}

// authorizeSigner applies the mode's rule to a parsed management JWS:
// Isolated requires a signature by a current policy-management certificate;
// AAD accepts unsigned bodies and any (verified) signer.
//
// In Isolated mode it returns the signer's thumbprint, which the caller
// puts in the store write's AuditEntry.RequireSigner: this check gives the
// clear error early, but only the store's check, made inside the write's
// transaction under the instance lock, holds across replicas sharing one
// database (another replica may remove the certificate between this read
// and the write). Map the store's refusal with signerRefused.
func (in *Instance) authorizeSigner(ctx context.Context, j *jws, what string) (requireSigner string, err error) {
	if in.cfg.Mode != ModeIsolated {
		return "", nil
	}
	if j == nil || !j.Signed() {
		return "", errorf(CodeInvalidOperation, "instance %q is Isolated: %s must be a JWS signed by a policy-management certificate (got an unsigned body)", in.cfg.Name, what)
	}
	tp := Thumbprint(j.Signer())
	certs, err := in.store.Certificates(ctx, in.cfg.Name)
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "reading policy certificates failed", Err: err}
	}
	for _, c := range certs {
		if c.Thumbprint == tp {
			return tp, nil
		}
	}
	return "", in.signerNotCurrent(what, tp, nil)
}

// signerNotCurrent is the InvalidOperation answer to a change signed by a
// certificate that is not (or no longer) a policy-management certificate;
// cause is the store's ErrSignerNotCurrent when the store refused it.
func (in *Instance) signerNotCurrent(what, tp string, cause error) error {
	return &Error{Code: CodeInvalidOperation, Err: cause, Message: fmt.Sprintf(
		"instance %q is Isolated: the %s JWS is signed by certificate %s, which is not one of its policy-management certificates", in.cfg.Name, what, tp)}
}

// signerRefused maps a store write error: ErrSignerNotCurrent (the signer
// was removed, possibly by another replica, after authorizeSigner) is the
// same InvalidOperation the pre-check gives; anything else is nil (the
// caller reports it).
func (in *Instance) signerRefused(err error, what, tp string) error {
	if errors.Is(err, store.ErrSignerNotCurrent) {
		return in.signerNotCurrent(what, tp, err)
	}
	return nil
}

// lockAdmin serialises the admin changes of this instance: in Isolated mode
// a change is authorised by the certificates in force when it is checked,
// and without the lock two changes could each be authorised against a set
// the other one is changing (two signers removing each other would both
// succeed). It covers one process only; across replicas sharing a database
// the authority is the store's check of AuditEntry.RequireSigner inside the
// write transaction (see authorizeSigner). The lock stays so that within a
// process the pre-check's answer is the final one.
func (in *Instance) lockAdmin() (unlock func()) {
	in.adminMu.Lock()
	return in.adminMu.Unlock
}

// validText reports whether s can be stored: valid UTF-8 without NUL
// (store.ErrInvalidText).
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// auditText makes an untrusted name (bearer subject, certificate subject)
// storable in the audit trail: invalid UTF-8 and NUL become U+FFFD, so an
// odd name cannot turn an authorised change into a store error.
func auditText(s string) string {
	if validText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// auditEntry returns a with its free-text fields made storable.
func auditEntry(a store.AuditEntry) store.AuditEntry {
	a.Actor, a.Target, a.Detail = auditText(a.Actor), auditText(a.Target), auditText(a.Detail)
	return a
}

// actorOf names who made a change for the audit trail.
func actorOf(a Actor, j *jws) string {
	switch {
	case a.Subject != "":
		return a.Subject
	case j != nil && j.Signed():
		return "signer:" + Thumbprint(j.Signer())
	}
	return "anonymous"
}

func signerDetail(j *jws) string {
	if j != nil && j.Signed() {
		return "signed by " + Thumbprint(j.Signer()) + " (" + j.Signer().Subject.String() + ")"
	}
	return "unsigned"
}

// SetPolicy handles PUT /policies/{type}. body is the exact request body: a
// StoredAttestationPolicy JWS (unsigned or signed, every header variant of
// maa-api.md §1.4) or, where signing is not required, raw policy text.
func (in *Instance) SetPolicy(ctx context.Context, typ, body string, actor Actor) (string, error) {
	t, err := ParseType(typ)
	if err != nil {
		return "", err
	}
	if err := in.requireWritable("setting a policy"); err != nil {
		return "", err
	}
	j, text, err := parsePolicyBody(body)
	if err != nil {
		return "", err
	}
	unlock := in.lockAdmin()
	defer unlock()
	requireSigner, err := in.authorizeSigner(ctx, j, "a policy")
	if err != nil {
		return "", err
	}
	// The store holds only UTF-8 without NUL (store.ErrInvalidText); such a
	// policy is the client's error, not a 500.
	if !validText(text) {
		return "", errorf(CodePolicyParsingError, "the policy text is not valid UTF-8 or contains a NUL character")
	}
	if _, err := policy.Parse(text); err != nil {
		return "", parseError(err)
	}
	hash := bodyHash(body)
	// Store the exact JWS without surrounding whitespace (a JSON-quoted body
	// is stored unquoted, so GET returns the JWS itself); raw text is stored
	// as sent. The token hash stays over the exact body.
	stored := body
	if j != nil {
		stored = strings.TrimSpace(unquoteJWS(body))
	}
	sp := &store.Policy{Instance: in.cfg.Name, Type: string(t), JWS: stored, Text: text, UpdatedAt: in.now()}
	if j.signedOrNil() != nil {
		sp.Signer = j.Signer().Raw
	}
	a := auditEntry(store.AuditEntry{Instance: in.cfg.Name, At: in.now(), Actor: actorOf(actor, j), Action: "policy.set",
		Target: string(t), Hash: hash, Detail: signerDetail(j) + "; x-ms-policy-hash " + policy.Hash(text)})
	a.RequireSigner = requireSigner
	if err := in.store.PutPolicy(ctx, sp, a); err != nil {
		if rerr := in.signerRefused(err, "a policy", requireSigner); rerr != nil {
			return "", rerr
		}
		return "", &Error{Code: CodeInternal, Message: "storing the policy failed", Err: err}
	}
	in.log.InfoContext(ctx, "policy set", "type", t, "actor", a.Actor, "token_hash", hash, "policy_hash", policy.Hash(text), "signed", j.signedOrNil() != nil)
	claims := map[string]any{"x-ms-policy-result": "Updated", "x-ms-policy-token-hash": hash}
	if j.signedOrNil() != nil {
		claims["x-ms-policy-signer"] = certJWK(j.Chain...)
	}
	return in.sign(claims, ManagementTokenLifetime)
}

// ResetPolicy handles POST /policies/{type}:reset: body is a JWS with an
// empty payload (unsigned `eyJhbGciOiJub25lIn0..` or signed `hdr..sig`); an
// empty body counts as unsigned. The type reverts to its default policy.
func (in *Instance) ResetPolicy(ctx context.Context, typ, body string, actor Actor) (string, error) {
	t, err := ParseType(typ)
	if err != nil {
		return "", err
	}
	if err := in.requireWritable("resetting a policy"); err != nil {
		return "", err
	}
	var j *jws
	if raw := unquoteJWS(body); looksLikeJWS(raw) {
		if j, err = parseJWS(raw); err != nil {
			return "", &Error{Code: CodeInvalidOperation, Message: "invalid policy reset JWS: " + err.Error(), Err: err}
		}
		// A signed set-policy JWS is public (GET returns it to readers)
		// and certificate-change JWS travel too: if :reset took any signed
		// body, whoever holds one could replay it to drop an Isolated
		// instance back to its default policy without the signing key.
		if !isEmptyResetPayload(j.Payload) {
			return "", errorf(CodeInvalidOperation, "policy reset JWS must have an empty payload (this one carries %d bytes: a policy or certificate body is not a reset)", len(j.Payload))
		}
	} else if len(body) != 0 {
		return "", errorf(CodeInvalidOperation, "policy reset body must be a JWS with an empty payload")
	}
	unlock := in.lockAdmin()
	defer unlock()
	requireSigner, err := in.authorizeSigner(ctx, j, "a policy reset")
	if err != nil {
		return "", err
	}
	hash := bodyHash(body)
	a := auditEntry(store.AuditEntry{Instance: in.cfg.Name, At: in.now(), Actor: actorOf(actor, j), Action: "policy.reset",
		Target: string(t), Hash: hash, Detail: signerDetail(j)})
	a.RequireSigner = requireSigner
	if err := in.store.DeletePolicy(ctx, in.cfg.Name, string(t), a); err != nil {
		if rerr := in.signerRefused(err, "a policy reset", requireSigner); rerr != nil {
			return "", rerr
		}
		return "", &Error{Code: CodeInternal, Message: "resetting the policy failed", Err: err}
	}
	in.log.InfoContext(ctx, "policy reset", "type", t, "actor", a.Actor, "token_hash", hash)
	claims := map[string]any{"x-ms-policy-result": "Removed", "x-ms-policy-token-hash": hash}
	if j.signedOrNil() != nil {
		claims["x-ms-policy-signer"] = certJWK(j.Chain...)
	}
	return in.sign(claims, ManagementTokenLifetime)
}

// parsePolicyBody reads a policy set body: a StoredAttestationPolicy JWS
// (signature verified against its header certificate when signed) or raw
// policy text. j is nil for raw text.
func parsePolicyBody(body string) (j *jws, text string, err error) {
	raw := unquoteJWS(body)
	if !looksLikeJWS(raw) {
		return nil, body, nil
	}
	if j, err = parseJWS(raw); err != nil {
		return nil, "", &Error{Code: CodeInvalidOperation, Message: "invalid policy JWS: " + err.Error(), Err: err}
	}
	text, err = policyText(j.Payload)
	if err != nil {
		return nil, "", &Error{Code: CodeInvalidOperation, Message: err.Error(), Err: err}
	}
	return j, text, nil
}

// unquoteJWS returns the JWS inside a JSON string literal body ("eyJ…"),
// which some clients send with Content-Type application/json; other bodies
// are returned unchanged. The token hash is still taken over the exact body.
func unquoteJWS(body string) string {
	t := strings.TrimSpace(body)
	if !strings.HasPrefix(t, `"`) {
		return body
	}
	var s string
	if err := json.Unmarshal([]byte(t), &s); err != nil || !looksLikeJWS(s) {
		return body
	}
	return s
}

// signedOrNil returns j when it carries a signature, else nil (nil-safe).
func (j *jws) signedOrNil() *jws {
	if j == nil || !j.Signed() {
		return nil
	}
	return j
}

// maaMessager is implemented by the policy package's errors: the message in
// real MAA's wording (maa-policy.md §10).
type maaMessager interface{ MAAMessage() string }

func parseError(err error) error {
	msg := err.Error()
	var m maaMessager
	if errors.As(err, &m) {
		msg = m.MAAMessage()
	}
	return &Error{Code: CodePolicyParsingError, Message: msg, Err: err}
}

func evalError(err error) error {
	var m maaMessager
	if errors.As(err, &m) {
		return &Error{Code: CodePolicyEvaluationError, Message: m.MAAMessage(), Err: err}
	}
	return &Error{Code: CodePolicyEvaluationError, Message: fmt.Sprintf("Policy Engine Exception: %v", err), Err: err}
}
