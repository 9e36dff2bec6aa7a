// Package auth authenticates the bearer tokens that MAA clients send on
// administrative calls (policy and certificate management) in AAD mode,
// without depending on Azure: any OpenID Connect issuer (Entra ID, Keycloak,
// Dex, …) or a static JWKS file can be trusted, and a local development
// identity (see DevIdentity) lets a developer mint tokens for their own
// server.
//
// A token is accepted when it is a JWS signed RS256, PS256 or ES256 by a key
// of a configured issuer, its iss equals that issuer, its aud is
// https://attest.azure.net (the resource both SDKs request a token for, as
// scope https://attest.azure.net/.default) or another configured audience,
// and it is inside exp/nbf with a small leeway. Authorization then maps the
// roles claim to Reader or Contributor (Contributor implies Reader).
//
// Every rejection is an *Error whose Reason names the failed check. Neither
// errors nor logs ever contain the token.
package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/attestd/attestd/internal/strictjson"
)

// Audience is the resource both MAA SDKs request tokens for (scope
// https://attest.azure.net/.default).
const Audience = "https://attest.azure.net"

// Default role values: "Attestation.Reader"/"Attestation.Contributor" (as
// app roles are usually named for the built-in Attestation Reader and
// Contributor roles) plus short aliases for self-hosted identity providers.
const (
	ReaderRole           = "Attestation.Reader"
	ContributorRole      = "Attestation.Contributor"
	ReaderRoleAlias      = "reader"
	ContributorRoleAlias = "contributor"
)

// DefaultAudiences returns the audiences accepted unless Config.Audiences
// replaces them: Entra ID issues https://attest.azure.net (no slash) for
// the scope https://attest.azure.net/.default; some token services keep
// the slash.
func DefaultAudiences() []string { return []string{Audience, Audience + "/"} }

// DefaultReaderRoles returns the role values mapped to RoleReader by default.
func DefaultReaderRoles() []string { return []string{ReaderRole, ReaderRoleAlias} }

// DefaultContributorRoles returns the role values mapped to RoleContributor by default.
func DefaultContributorRoles() []string { return []string{ContributorRole, ContributorRoleAlias} }

// Defaults for zero Config fields.
const (
	DefaultLeeway             = time.Minute
	DefaultFetchTimeout       = 10 * time.Second
	DefaultRefreshInterval    = time.Hour
	DefaultMinRefreshInterval = 30 * time.Second
	// MaxTokenBytes bounds the Authorization header value; Entra ID tokens
	// with many groups stay well below 16 KiB.
	MaxTokenBytes = 16 << 10
)

// SignatureAlgorithms returns the JWS algorithms accepted on bearer tokens.
func SignatureAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}
}

// Role is a permission level; a higher role implies the lower ones.
type Role int

const (
	// RoleNone: authenticated, but no attestd role.
	RoleNone Role = iota
	// RoleReader may read policies and certificates.
	RoleReader
	// RoleContributor may also set/reset policies and change certificates.
	RoleContributor
)

func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleReader:
		return "reader"
	case RoleContributor:
		return "contributor"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole parses "reader" or "contributor" (also the default Entra role
// values Attestation.Reader / Attestation.Contributor), case-insensitively.
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(s) {
	case "reader", "attestation.reader":
		return RoleReader, nil
	case "contributor", "attestation.contributor":
		return RoleContributor, nil
	}
	return RoleNone, fmt.Errorf("auth: unknown role %q (want reader or contributor)", s)
}

// Reason names why a token was rejected.
type Reason string

// Rejection reasons.
const (
	ReasonMissingHeader   Reason = "missing_header"   // no Authorization header
	ReasonMalformed       Reason = "malformed"        // not "Bearer <JWS>", bad encoding, alg not allowed, bad claim types
	ReasonWrongIssuer     Reason = "wrong_issuer"     // iss is not a configured issuer
	ReasonUnknownKey      Reason = "unknown_key"      // no key of the issuer has the token's kid (after a refresh)
	ReasonBadSignature    Reason = "bad_signature"    // signature does not verify
	ReasonExpired         Reason = "expired"          // exp passed (beyond leeway) or missing
	ReasonNotYetValid     Reason = "not_yet_valid"    // nbf or iat in the future (beyond leeway)
	ReasonWrongAudience   Reason = "wrong_audience"   // aud lists no accepted audience
	ReasonMissingRole     Reason = "missing_role"     // valid token without the needed role
	ReasonWrongInstance   Reason = "wrong_instance"   // token scoped to another instance
	ReasonKeysUnavailable Reason = "keys_unavailable" // the issuer's keys could not be fetched
)

// Error is a rejected authentication or authorization. Message never
// contains the token; it may contain claim values (iss, aud, roles).
type Error struct {
	Reason  Reason
	Message string
	Err     error // underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "auth: " + string(e.Reason) + ": " + e.Message + ": " + e.Err.Error()
	}
	return "auth: " + string(e.Reason) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of an *Error in err's chain, or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func reject(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// Issuer is one trusted token issuer and where its keys come from. Exactly
// one of DiscoveryURL, JWKSURL, JWKSFile may be set; with none set the
// discovery URL is Issuer + "/.well-known/openid-configuration".
//
// Entra ID: v1 access tokens (the default for https://attest.azure.net)
// carry iss https://sts.windows.net/<tenant>/ and the keys are found through
// https://login.microsoftonline.com/<tenant>/.well-known/openid-configuration
// (whose "issuer" is that same sts URL); v2 tokens use
// https://login.microsoftonline.com/<tenant>/v2.0.
type Issuer struct {
	Issuer       string // exact expected "iss"
	DiscoveryURL string // OIDC discovery document; its "issuer" must equal Issuer
	JWKSURL      string // JWKS fetched directly
	JWKSFile     string // JWKS read from a file (reread on refresh)
}

// Config configures an Authenticator. Zero values mean the documented
// defaults, except Now, which is required.
type Config struct {
	Issuers []Issuer
	// Audiences replaces DefaultAudiences() when non-empty.
	Audiences []string
	// ExtraAudiences are accepted in addition to Audiences/DefaultAudiences.
	ExtraAudiences []string
	// ReaderRoles / ContributorRoles replace the default role names when
	// non-empty. Matching is exact.
	ReaderRoles, ContributorRoles []string
	// Assignments grant roles by who the caller is rather than by the
	// token's roles claim, as Azure RBAC role assignments do: Entra ID puts
	// no roles claim in access tokens for https://attest.azure.net, so a
	// DefaultAzureCredential caller is known only by its oid, groups and
	// azp/appid. A principal gets the highest role of its roles claim and
	// of every assignment it matches.
	Assignments []Assignment
	// Leeway tolerates clock skew on exp, nbf and iat (default 1 min).
	Leeway time.Duration
	// HTTPClient fetches discovery documents and JWKS (default: a client
	// with system roots). Each fetch is bounded by FetchTimeout (default 10 s).
	HTTPClient   *http.Client
	FetchTimeout time.Duration
	// RefreshInterval: keys older than this are refetched (default 1 h).
	RefreshInterval time.Duration
	// MinRefreshInterval rate-limits refetches triggered by unknown kids or
	// fetch failures (default 30 s), so forged kids cannot hammer the IdP.
	MinRefreshInterval time.Duration
	// AllowInsecureHTTP permits http:// discovery and JWKS URLs (tests only).
	AllowInsecureHTTP bool
	Now               func() time.Time
	Logger            *slog.Logger
}

// Assignment grants Role to the principals it names: an Entra ID object id
// (the oid claim of a user, service principal or managed identity), a
// group object id (in the groups claim) or an application (client) id (azp
// in v2 tokens, appid in v1). Matching is exact.
type Assignment struct {
	Role      Role
	ObjectIDs []string
	Groups    []string
	AppIDs    []string
}

// matches reports whether p is named by the assignment.
func (as Assignment) matches(p *Principal) bool {
	if p.ObjectID != "" && slices.Contains(as.ObjectIDs, p.ObjectID) {
		return true
	}
	if p.ClientID != "" && slices.Contains(as.AppIDs, p.ClientID) {
		return true
	}
	for _, g := range p.Groups {
		if slices.Contains(as.Groups, g) {
			return true
		}
	}
	return false
}

// Authenticator validates bearer tokens. It is safe for concurrent use.
type Authenticator struct {
	cfg         Config
	audiences   []string
	reader      []string
	contributor []string
	issuers     map[string]*keySource
	logger      *slog.Logger
}

// New checks cfg and returns an Authenticator. No network I/O happens here:
// keys are fetched on first use (or by Prefetch), so the server starts even
// while the identity provider is unreachable.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Now == nil {
		return nil, errors.New("auth: Config.Now is required")
	}
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("auth: no trusted issuers configured")
	}
	if cfg.Leeway < 0 || cfg.FetchTimeout < 0 || cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 {
		return nil, errors.New("auth: negative duration in Config")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.FetchTimeout}
	}
	a := &Authenticator{cfg: cfg, issuers: map[string]*keySource{}, logger: cfg.Logger}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	a.audiences = append(DefaultAudiences(), cfg.ExtraAudiences...)
	if len(cfg.Audiences) > 0 {
		a.audiences = append(slices.Clone(cfg.Audiences), cfg.ExtraAudiences...)
	}
	a.reader, a.contributor = DefaultReaderRoles(), DefaultContributorRoles()
	if len(cfg.ReaderRoles) > 0 {
		a.reader = slices.Clone(cfg.ReaderRoles)
	}
	if len(cfg.ContributorRoles) > 0 {
		a.contributor = slices.Clone(cfg.ContributorRoles)
	}
	for i, as := range cfg.Assignments {
		if as.Role != RoleReader && as.Role != RoleContributor {
			return nil, fmt.Errorf("auth: assignment %d: role %s: want reader or contributor", i, as.Role)
		}
		if len(as.ObjectIDs)+len(as.Groups)+len(as.AppIDs) == 0 {
			return nil, fmt.Errorf("auth: assignment %d (%s) names no object id, group or application id", i, as.Role)
		}
		for _, v := range slices.Concat(as.ObjectIDs, as.Groups, as.AppIDs) {
			if strings.TrimSpace(v) == "" {
				return nil, fmt.Errorf("auth: assignment %d (%s) has an empty id", i, as.Role)
			}
		}
	}
	for _, is := range cfg.Issuers {
		ks, err := newKeySource(is, &a.cfg, a.logger)
		if err != nil {
			return nil, err
		}
		if _, dup := a.issuers[is.Issuer]; dup {
			return nil, fmt.Errorf("auth: issuer %q configured twice", is.Issuer)
		}
		a.issuers[is.Issuer] = ks
	}
	return a, nil
}

// Prefetch fetches every issuer's keys now, returning the first failure.
// Servers may call it at start-up to surface misconfiguration early.
func (a *Authenticator) Prefetch(ctx context.Context) error {
	var errs []error
	for _, ks := range a.issuers {
		if err := ks.refresh(ctx, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Principal is an authenticated caller.
type Principal struct {
	Issuer   string
	Subject  string   // sub
	ObjectID string   // oid (Entra ID object id), if present
	TenantID string   // tid, if present
	ClientID string   // azp / appid, if present
	Groups   []string // groups claim (group object ids), if present
	Roles    []string
	Role     Role   // highest role mapped from Roles and Config.Assignments
	Instance string // attestd_instance claim: token valid only for this instance ("" = any)
	Expiry   time.Time
}

// Actor names the principal in audit entries: the object id when present
// (stable across apps in Entra ID), else the subject, prefixed by kind.
func (p *Principal) Actor() string {
	if p.ObjectID != "" {
		return "oid:" + p.ObjectID
	}
	return "sub:" + p.Subject
}

// Authorize checks that p may act with role need on instance.
func (p *Principal) Authorize(instance string, need Role) error {
	if p.Instance != "" && p.Instance != instance {
		return reject(ReasonWrongInstance, "token is scoped to instance %q, not %q", p.Instance, instance)
	}
	if p.Role < need {
		return reject(ReasonMissingRole, "operation needs role %s; token roles %q and the role assignments of oid %q, azp/appid %q and its groups map to %s", need, p.Roles, p.ObjectID, p.ClientID, p.Role)
	}
	return nil
}

// tokenClaims are the claims read from a bearer token.
type tokenClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ObjectID  string           `json:"oid"`
	TenantID  string           `json:"tid"`
	AZP       string           `json:"azp"`
	AppID     string           `json:"appid"`
	Roles     stringList       `json:"roles"`
	Groups    stringList       `json:"groups"`
	Instance  string           `json:"attestd_instance"`
}

// decodeClaims reads the claims set with exact, unique claim names (RFC 7519
// §4). Not json.Unmarshal into tokenClaims directly: encoding/json matches
// field names case-insensitively and lets the last duplicate win, so a
// token carrying "roles" and "ROLES" (or "aud"/"AUD", "attestd_instance"/
// "Attestd_Instance") would be read by whichever came last, although every
// other JWT consumer reads only the exact name. The object is split into
// members by exact name first (duplicates and trailing data refused), then
// only the claims attestd knows are decoded, each into its typed field.
func decodeClaims(b []byte) (tokenClaims, error) {
	var c tokenClaims
	members, err := strictjson.Object(b)
	if err != nil {
		return c, fmt.Errorf("claims: %w", err)
	}
	fields := map[string]any{
		"iss": &c.Issuer, "sub": &c.Subject, "aud": &c.Audience, "exp": &c.Expiry, "nbf": &c.NotBefore,
		"iat": &c.IssuedAt, "oid": &c.ObjectID, "tid": &c.TenantID, "azp": &c.AZP, "appid": &c.AppID,
		"roles": &c.Roles, "groups": &c.Groups, "attestd_instance": &c.Instance,
	}
	for name, dst := range fields {
		if _, err := strictjson.Member(members, name, dst); err != nil {
			return c, fmt.Errorf("claim: %w", err)
		}
	}
	return c, nil
}

// stringList accepts a JSON string or array of strings (some providers
// emit a single role as a plain string).
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or an array of strings")
	}
	*s = many
	return nil
}

// AuthenticateRequest authenticates r's Authorization header.
func (a *Authenticator) AuthenticateRequest(r *http.Request) (*Principal, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) > 1 {
		return nil, reject(ReasonMalformed, "%d Authorization headers", len(vals))
	}
	return a.Authenticate(r.Context(), r.Header.Get("Authorization"))
}

// Authenticate validates an Authorization header value ("Bearer <JWT>").
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (*Principal, error) {
	if strings.TrimSpace(authorization) == "" {
		return nil, reject(ReasonMissingHeader, "no Authorization header; admin operations need a bearer token for https://attest.azure.net")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, reject(ReasonMalformed, "Authorization header is not of the form \"Bearer <token>\"")
	}
	tok = strings.TrimSpace(tok)
	if len(tok) > MaxTokenBytes {
		return nil, reject(ReasonMalformed, "bearer token is %d bytes, limit %d", len(tok), MaxTokenBytes)
	}
	if strings.Count(tok, ".") != 2 {
		return nil, reject(ReasonMalformed, "bearer token is not a compact JWS (want 3 dot-separated parts)")
	}
	jws, err := jose.ParseSignedCompact(tok, SignatureAlgorithms())
	if err != nil {
		return nil, &Error{Reason: ReasonMalformed, Message: "bearer token does not parse as a JWS with an accepted algorithm (RS256, PS256, ES256)", Err: scrub(err)}
	}
	if len(jws.Signatures) != 1 {
		return nil, reject(ReasonMalformed, "bearer token has %d signatures, want 1", len(jws.Signatures))
	}
	hdr := jws.Signatures[0].Header
	unverifiedPayload := jws.UnsafePayloadWithoutVerification()
	unverified, err := decodeClaims(unverifiedPayload)
	if err != nil {
		return nil, &Error{Reason: ReasonMalformed, Message: "bearer token claims are not a valid JSON object", Err: scrub(err)}
	}
	ks, ok := a.issuers[unverified.Issuer]
	if !ok {
		return nil, reject(ReasonWrongIssuer, "token issuer %q is not trusted", unverified.Issuer)
	}
	keys, err := ks.keysFor(ctx, hdr.KeyID)
	if err != nil {
		return nil, err
	}
	var payload []byte
	verr := fmt.Errorf("no key of kid %q is for algorithm %s", hdr.KeyID, hdr.Algorithm)
	for _, k := range keys {
		// RFC 7517 §4.4: a key that names its algorithm is used only with it
		// (an RSA key published for RS256 must not verify PS256 tokens).
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if payload, verr = jws.Verify(k.Key); verr == nil {
			break
		}
	}
	if verr != nil || payload == nil {
		return nil, &Error{Reason: ReasonBadSignature, Message: fmt.Sprintf("signature (%s, kid %q) does not verify with the keys of %s", hdr.Algorithm, hdr.KeyID, unverified.Issuer), Err: scrub(verr)}
	}
	// The signature covers the very bytes decoded above (a compact JWS has
	// one payload); decode again only if go-jose ever returned other bytes.
	c := unverified
	if !bytes.Equal(payload, unverifiedPayload) {
		if c, err = decodeClaims(payload); err != nil {
			return nil, &Error{Reason: ReasonMalformed, Message: "bearer token claims do not decode", Err: scrub(err)}
		}
	}
	now := a.cfg.Now()
	lw := a.cfg.Leeway
	if c.Expiry == nil {
		return nil, reject(ReasonExpired, "token has no exp claim")
	}
	if exp := c.Expiry.Time(); now.After(exp.Add(lw)) {
		return nil, reject(ReasonExpired, "token expired at %s (now %s, leeway %s)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), lw)
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); now.Add(lw).Before(nbf) {
			return nil, reject(ReasonNotYetValid, "token not valid before %s (now %s, leeway %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), lw)
		}
	}
	if c.IssuedAt != nil {
		if iat := c.IssuedAt.Time(); now.Add(lw).Before(iat) {
			return nil, reject(ReasonNotYetValid, "token issued in the future at %s (now %s, leeway %s)", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), lw)
		}
	}
	audOK := false
	for _, aud := range c.Audience {
		if slices.Contains(a.audiences, aud) {
			audOK = true
			break
		}
	}
	if !audOK {
		return nil, reject(ReasonWrongAudience, "token audience %q is none of %q", []string(c.Audience), a.audiences)
	}
	p := &Principal{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		ObjectID: c.ObjectID,
		TenantID: c.TenantID,
		ClientID: c.AZP,
		Groups:   c.Groups,
		Roles:    c.Roles,
		Role:     a.mapRoles(c.Roles),
		Instance: c.Instance,
		Expiry:   c.Expiry.Time(),
	}
	if p.ClientID == "" {
		p.ClientID = c.AppID
	}
	for _, as := range a.cfg.Assignments {
		if as.matches(p) {
			p.Role = max(p.Role, as.Role)
		}
	}
	return p, nil
}

func (a *Authenticator) mapRoles(roles []string) Role {
	r := RoleNone
	for _, name := range roles {
		switch {
		case slices.Contains(a.contributor, name):
			r = max(r, RoleContributor)
		case slices.Contains(a.reader, name):
			r = max(r, RoleReader)
		}
	}
	return r
}

// scrub bounds the text of a parse error kept in an *Error. go-jose and
// encoding/json errors describe the problem and quote at most one offending
// character, never the input; scrub additionally caps the length and strips
// non-printable bytes as defence in depth, since *Error text reaches logs.
func scrub(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, truncate(err.Error(), 200)))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
