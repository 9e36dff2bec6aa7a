package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/internal/pemfile"
	"github.com/attestd/attestd/token"
)

// Defaults of the serve command.
const (
	DefaultListen = "127.0.0.1:8443"
	DefaultData   = "./data"
	DefaultName   = "default"
)

// Config is the attestd configuration file (JSON). Every field is optional;
// flags and environment variables override listen, data and the TLS files.
//
//	{
//	  "listen": "127.0.0.1:8443",
//	  "data": "./data",
//	  "tls": {"cert": "server.pem", "key": "server.key"},
//	  "log_level": "info",
//	  "store": {"type": "postgres", "dsn": "postgres://attestd@db.internal:5432/attestd?sslmode=verify-full"},
//	  "instances": [
//	    {"name": "default", "mode": "AAD", "auth": {"dev": true}},
//	    {"name": "t1", "prefix": "/tenants/t1", "mode": "Isolated",
//	     "url": "https://attest.example.com/tenants/t1",
//	     "policy_certificates": ["t1-signer.pem"],
//	     "auth": {"oidc_issuer": "https://login.example.com/", "audience": "https://attest.azure.net",
//	              "roles": {"reader": ["Attestation.Reader"], "contributor": ["Attestation.Contributor"]}}}
//	  ]
//	}
//
// Relative paths are relative to the configuration file's directory.
type Config struct {
	Listen    string    `json:"listen"`
	Data      string    `json:"data"`
	TLS       TLSConfig `json:"tls"`
	LogLevel  string    `json:"log_level"`
	LogFormat string    `json:"log_format"` // text (default) or json
	// MetricsListen serves /metrics over plain HTTP on a separate address.
	MetricsListen string           `json:"metrics_listen"`
	Instances     []InstanceConfig `json:"instances"`
	Store         StoreConfig      `json:"store"`
	// Limits tunes overload behaviour: connection limit, admission control
	// of attest requests, per-client rate (see LimitsConfig).
	Limits LimitsConfig `json:"limits"`
	// KeyEncryptionKey is the file of the key-encryption key sealing the
	// signing keys and instance secrets in the database (keys.go).
	KeyEncryptionKey string `json:"key_encryption_key"`
	// PreviousKeyEncryptionKey is the file of the KEK being rotated out:
	// still read, never written (keys.go, "attestd keys rewrap").
	PreviousKeyEncryptionKey string `json:"previous_key_encryption_key"`
	// SigningKeys: rotation schedule and PKCS#11 (keys.go).
	SigningKeys SigningKeysConfig `json:"signing_keys"`
	// Blocks are the members read by the evidence verifier plugins
	// (plugins.go), raw: "sgx" and "collateral" (evidence/sgx.Config and
	// collateral/source.Config, see README.md), later "tpm", "snp", "tdx".
	// Each plugin decodes and validates its own blocks.
	Blocks map[string]json.RawMessage `json:"-"`

	dir string // directory of the config file, for relative paths
}

// TLSConfig names the server certificate and key (PEM). Both empty: a
// self-signed certificate is created under DATA/tls on first start.
type TLSConfig struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Store types.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// StoreConfig selects the database. Absent: SQLite at DATA/attestd.db.
// Type "postgres" shares one PostgreSQL database between replicas; its DSN
// (libpq URL or keyword/value string) is better kept free of the password,
// which pgx also reads from PGPASSWORD or a .pgpass file. For "sqlite" the
// DSN, when given, is the database file's path. A DSN without a type means
// postgres.
type StoreConfig struct {
	Type string `json:"type"`
	DSN  string `json:"dsn"`
}

// InstanceConfig is one instance.
type InstanceConfig struct {
	Name string `json:"name"`
	// Prefix is the path prefix. Absent: "" (root) for the instance named
	// "default", "/tenants/NAME" for others. "/" or "" means root.
	Prefix *string `json:"prefix"`
	// Mode is AAD (default), Isolated or Shared.
	Mode string `json:"mode"`
	// URL is the instance URL: token issuer and jku base. Default
	// https://<listen address><prefix>.
	URL string `json:"url"`
	// PolicyCertificates are PEM files with the first policy-management
	// certificates of an Isolated instance.
	PolicyCertificates []string    `json:"policy_certificates"`
	Auth               *AuthConfig `json:"auth"`
	// RequireAttestToken makes attest calls need a valid bearer token of
	// the instance's auth (any role), as a private MAA instance can.
	RequireAttestToken bool `json:"require_attest_token"`
	// TokenAlgorithm signs the instance's attestation tokens: "RS256"
	// (default, what MAA and every MAA SDK use) or "ES256" (P-256, beyond
	// MAA, for relying parties that accept it; Python's 1.0.1 SDK does
	// not). Management tokens stay RS256. The ES256 keys are the store
	// key set NAME/es256, shared by replicas like the RSA keys, and are
	// published in /certs beside them.
	TokenAlgorithm string `json:"token_algorithm"`
	// Playground serves the policy playground at
	// {prefix}/attestd/playground (default true; false turns it off).
	Playground *bool `json:"playground"`
}

// AuthConfig says whom an instance's admin API trusts. Exactly one source:
// dev (the local development identity kept in the data directory, what
// `attestd token` mints for), oidc_issuer (OIDC discovery at
// oidc_issuer/.well-known/openid-configuration, then its JWKS) or jwks_file
// (with issuer). Audience defaults to https://attest.azure.net; roles
// default to Attestation.Reader / Attestation.Contributor.
type AuthConfig struct {
	Dev        bool   `json:"dev"`
	OIDCIssuer string `json:"oidc_issuer"`
	JWKSFile   string `json:"jwks_file"`
	// Issuer is the exact iss of the tokens a jwks_file verifies.
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// Roles maps attestd roles ("reader", "contributor") to the values of
	// the token's roles claim that grant them.
	Roles map[string][]string `json:"roles"`
	// Assignments maps attestd roles ("reader", "contributor") to the
	// principals granted them whatever their roles claim, as Azure RBAC
	// role assignments do (Entra ID access tokens for
	// https://attest.azure.net carry no roles claim).
	Assignments map[string]AssignmentConfig `json:"assignments"`
}

// AssignmentConfig names principals by Entra ID object id (oid claim of a
// user, service principal or managed identity), group object id (groups
// claim) or application (client) id (azp of v2 tokens, appid of v1;
// "azp" and "appid" are the same list).
type AssignmentConfig struct {
	ObjectIDs []string `json:"oid"`
	Groups    []string `json:"groups"`
	AppIDs    []string `json:"appid"`
	AZP       []string `json:"azp"`
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// LoadConfig reads a configuration file; path "" gives the defaults.
func LoadConfig(path string) (*Config, error) {
	c := &Config{}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	// The plugins' blocks are split off first; everything else must be a
	// field of Config (unknown members are refused, as always).
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, jsonPosition(b, err))
	}
	c.Blocks = map[string]json.RawMessage{}
	for _, p := range plugins() {
		for _, name := range p.Blocks {
			if raw, ok := members[name]; ok {
				c.Blocks[name] = raw
				delete(members, name)
			}
		}
	}
	rest, err := json.Marshal(members)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, fieldPosition(b, err))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c.dir = filepath.Dir(abs)
	return c, nil
}

// jsonPosition adds the line and column of a JSON syntax error in b
// (encoding/json reports only a byte offset, or none for a truncated file).
func jsonPosition(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if se.Offset >= int64(len(b)) {
			line, col := lineCol(b, se.Offset)
			return fmt.Errorf("line %d, column %d: the JSON ends early (missing } or ]?): %w", line, col, err)
		}
		// Offset counts the bytes read, the offending one included.
		line, col := lineCol(b, se.Offset-1)
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	}
	return err
}

// fieldPosition places an unknown-field or wrong-type error of the second
// decoding pass (which reads a re-encoded copy, so its offsets are not the
// file's) at the first occurrence of the member's name in the file.
func fieldPosition(b []byte, err error) error {
	name := ""
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		name = te.Field
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ = strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	if name == "" {
		return err
	}
	key, _ := json.Marshal(name)
	i := bytes.Index(b, append(key, ':'))
	if i < 0 {
		i = bytes.Index(b, key)
	}
	if i < 0 {
		return err
	}
	line, col := lineCol(b, int64(i))
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// lineCol converts a byte offset into a 1-based line and column.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	prefix := b[:off]
	line = bytes.Count(prefix, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(prefix, '\n') + 1) + 1
	return line, col
}

func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// resolvedInstance is an instance ready to be built.
type resolvedInstance struct {
	Name   string
	Prefix string
	Mode   instance.Mode
	URL    string
	Certs  []*x509.Certificate
	Auth   AuthConfig
	// RequireAttestToken: see InstanceConfig.
	RequireAttestToken bool
	// TokenAlgorithm: see InstanceConfig.
	TokenAlgorithm token.Algorithm
	// NoPlayground: InstanceConfig.Playground set to false.
	NoPlayground bool
}

// resolve validates the instance list and fills defaults. listenAddr is the
// bound address (for default URLs). Without instances in the file there is
// one: "default", AAD, at the root, trusting the development identity.
func (c *Config) resolve(listenAddr string) ([]resolvedInstance, error) {
	list := c.Instances
	if len(list) == 0 {
		list = []InstanceConfig{{Name: DefaultName, Mode: string(instance.ModeAAD), Auth: &AuthConfig{Dev: true}}}
	}
	host := defaultHost(listenAddr)
	var out []resolvedInstance
	names, prefixes := map[string]bool{}, map[string]bool{}
	for i, ic := range list {
		if !namePattern.MatchString(ic.Name) {
			return nil, fmt.Errorf("config: instances[%d]: name %q must match %s", i, ic.Name, namePattern)
		}
		if names[ic.Name] {
			return nil, fmt.Errorf("config: instance name %q used twice", ic.Name)
		}
		names[ic.Name] = true
		r := resolvedInstance{Name: ic.Name, RequireAttestToken: ic.RequireAttestToken, NoPlayground: ic.Playground != nil && !*ic.Playground}
		alg, err := token.ParseAlgorithm(ic.TokenAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("config: instance %s: token_algorithm: %w", ic.Name, err)
		}
		r.TokenAlgorithm = alg
		switch {
		case ic.Prefix != nil:
			r.Prefix = strings.TrimRight(*ic.Prefix, "/")
		case ic.Name != DefaultName:
			r.Prefix = "/tenants/" + ic.Name
		}
		if r.Prefix != "" && !strings.HasPrefix(r.Prefix, "/") {
			return nil, fmt.Errorf("config: instance %s: prefix %q must start with /", ic.Name, r.Prefix)
		}
		if prefixes[r.Prefix] {
			return nil, fmt.Errorf("config: instance %s: prefix %q is already used by another instance", ic.Name, r.Prefix)
		}
		prefixes[r.Prefix] = true
		mode := ic.Mode
		if mode == "" {
			mode = string(instance.ModeAAD)
		}
		m, err := instance.ParseMode(mode)
		if err != nil {
			return nil, fmt.Errorf("config: instance %s: %w", ic.Name, err)
		}
		r.Mode = m
		r.URL = strings.TrimRight(ic.URL, "/")
		if r.URL == "" {
			r.URL = "https://" + host + r.Prefix
		}
		for _, f := range ic.PolicyCertificates {
			certs, err := pemfile.Certificates(c.path(f))
			if err != nil {
				return nil, fmt.Errorf("config: instance %s: %w", ic.Name, err)
			}
			r.Certs = append(r.Certs, certs...)
		}
		if m == instance.ModeIsolated && len(r.Certs) == 0 {
			return nil, fmt.Errorf("config: instance %s is Isolated and needs policy_certificates (its first policy-management certificates)", ic.Name)
		}
		if m != instance.ModeIsolated && len(r.Certs) > 0 {
			return nil, fmt.Errorf("config: instance %s: policy_certificates only apply to Isolated instances", ic.Name)
		}
		switch {
		case ic.Auth != nil:
			r.Auth = *ic.Auth
			r.Auth.JWKSFile = c.path(r.Auth.JWKSFile)
		case m == instance.ModeShared:
		default:
			return nil, fmt.Errorf("config: instance %s (%s) needs an \"auth\" block: {\"dev\": true}, {\"oidc_issuer\": …} or {\"jwks_file\": …}", ic.Name, m)
		}
		n := 0
		for _, set := range []bool{r.Auth.Dev, r.Auth.OIDCIssuer != "", r.Auth.JWKSFile != ""} {
			if set {
				n++
			}
		}
		if n > 1 {
			return nil, fmt.Errorf("config: instance %s: auth must name exactly one of dev, oidc_issuer, jwks_file", ic.Name)
		}
		if n == 0 && r.RequireAttestToken {
			return nil, fmt.Errorf("config: instance %s: require_attest_token needs an \"auth\" block naming who may attest", ic.Name)
		}
		if n == 0 && m != instance.ModeShared {
			return nil, fmt.Errorf("config: instance %s: auth must name one of dev, oidc_issuer, jwks_file", ic.Name)
		}
		out = append(out, r)
	}
	return out, nil
}

// defaultHost is the host:port for default instance URLs: the bound address,
// with unspecified hosts (":8443", "0.0.0.0") replaced by localhost.
func defaultHost(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		h = "localhost"
	}
	return net.JoinHostPort(h, p)
}
