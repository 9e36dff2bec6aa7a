package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/attestd/attestd/store/postgres/pgtest"
)

// TestStoreOptions: how --store/--store-dsn, their environment variables
// and the "store" block combine (flag > environment > file > default).
func TestStoreOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		config   string
		env      map[string]string
		args     []string
		wantType string
		wantDSN  string
		wantErr  string
	}{
		{name: "default sqlite", wantType: "sqlite"},
		{name: "DSN flag implies postgres", args: []string{"--store-dsn", "postgres://a@h/db"}, wantType: "postgres", wantDSN: "postgres://a@h/db"},
		{name: "env DSN", env: map[string]string{"ATTESTD_STORE_DSN": "host=h dbname=db"}, wantType: "postgres", wantDSN: "host=h dbname=db"},
		{name: "file", config: `{"store":{"type":"postgres","dsn":"postgres://file@h/db"}}`, wantType: "postgres", wantDSN: "postgres://file@h/db"},
		{name: "flag beats env beats file", config: `{"store":{"dsn":"postgres://file@h/db"}}`,
			env: map[string]string{"ATTESTD_STORE_DSN": "postgres://env@h/db"}, args: []string{"--store-dsn", "postgres://flag@h/db"},
			wantType: "postgres", wantDSN: "postgres://flag@h/db"},
		{name: "env beats file", config: `{"store":{"dsn":"postgres://file@h/db"}}`,
			env: map[string]string{"ATTESTD_STORE_DSN": "postgres://env@h/db"}, wantType: "postgres", wantDSN: "postgres://env@h/db"},
		{name: "sqlite file relative to the config", config: `{"store":{"type":"sqlite","dsn":"state/a.db"}}`,
			wantType: "sqlite", wantDSN: filepath.Join(dir, "state/a.db")},
		{name: "explicit sqlite with env type", env: map[string]string{"ATTESTD_STORE": "sqlite"}, wantType: "sqlite"},
		{name: "postgres without DSN", args: []string{"--store", "postgres"}, wantErr: "needs a DSN"},
		{name: "unknown type", config: `{"store":{"type":"mysql"}}`, wantErr: `store type "mysql"`},
		{name: "unknown field", config: `{"store":{"kind":"postgres"}}`, wantErr: "unknown field"},
		// A PostgreSQL DSN left in the environment while the type says
		// sqlite would become a file name, printed with its password.
		{name: "sqlite with a postgres URL", env: map[string]string{"ATTESTD_STORE": "sqlite", "ATTESTD_STORE_DSN": "postgres://app:s3cret-pw@h/db"},
			wantErr: "looks like a PostgreSQL DSN"},
		{name: "sqlite with a keyword DSN", args: []string{"--store", "sqlite", "--store-dsn", "host=h password=s3cret-pw dbname=db"},
			wantErr: "looks like a PostgreSQL DSN"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"ATTESTD_STORE", "ATTESTD_STORE_DSN", "ATTESTD_CONFIG"} {
				t.Setenv(k, tc.env[k])
			}
			args := tc.args
			if tc.config != "" {
				path := filepath.Join(dir, "c"+string(rune('a'+i))+".json")
				if err := os.WriteFile(path, []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"--config", path}, args...)
			}
			o, _, err := parseServeFlags(args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v", tc.wantErr, err)
				}
				if strings.Contains(err.Error(), "s3cret-pw") {
					t.Fatalf("error reveals the DSN's password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.StoreType != tc.wantType || o.StoreDSN != tc.wantDSN {
				t.Fatalf("store = %q %q, want %q %q", o.StoreType, o.StoreDSN, tc.wantType, tc.wantDSN)
			}
		})
	}
}

// TestServeOnPostgres runs two attestd replicas on one PostgreSQL database
// and one shared data directory (the signing keys): a policy set through
// one is served by the other, both publish the same signing keys, a third
// process started after both stopped still has the policy, SQLite is never
// touched, and the DSN's password appears in no output.
func TestServeOnPostgres(t *testing.T) {
	srv, err := pgtest.Start(context.Background())
	pgtest.Require(t, err)
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn, password := withPassword(t, srv.NewDatabase(t))
	t.Setenv("ATTESTD_STORE_DSN", dsn)
	data := t.TempDir()

	a := startServer(t, "--data", data)
	b := startServer(t, "--data", data)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "--data", data, "--role", "contributor"}, &out, &errb); code != 0 {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	tok := lastLine(out.String())
	const text = "version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"replica\", value=\"shared\"); };"
	if code, body := a.do(t, "PUT", "/policies/SgxEnclave?api-version=2020-10-01", tok, text); code != 200 {
		t.Fatalf("PUT through replica A: %d %s", code, body)
	}
	if got := servedPolicy(t, b, tok); got != text {
		t.Fatalf("replica B serves policy %q, want the one set through A", got)
	}
	_, certsA := a.do(t, "GET", "/certs", "", "")
	_, certsB := b.do(t, "GET", "/certs", "", "")
	if !bytes.Equal(certsA, certsB) {
		t.Fatalf("replicas publish different signing keys:\n%s\n%s", certsA, certsB)
	}
	for name, s := range map[string]*server{"A": a, "B": b} {
		if code, body := s.do(t, "GET", "/healthz", "", ""); code != 200 {
			t.Errorf("replica %s healthz: %d %s", name, code, body)
		}
	}
	a.stop(t)
	b.stop(t)

	c := startServer(t, "--data", data, "--log-level", "info")
	if got := servedPolicy(t, c, tok); got != text {
		t.Fatalf("after restart the policy is %q", got)
	}
	c.stop(t)

	if _, err := os.Stat(filepath.Join(data, "attestd.db")); !os.IsNotExist(err) {
		t.Errorf("a SQLite database was created in the data directory (stat: %v)", err)
	}
	for name, s := range map[string]*server{"A": a, "B": b, "C": c} {
		o := s.out.String()
		if strings.Contains(o, password) {
			t.Errorf("replica %s printed the DSN's password:\n%s", name, o)
		}
		if name == "C" && !strings.Contains(o, "postgres://attestd@127.0.0.1:") {
			t.Errorf("replica C does not say which database it uses:\n%s", o)
		}
	}
}

// withPassword returns dsn with a password, and the password, for checking
// that no output reveals it: the DSN's own, or else a made-up one (the test
// server started by pgtest trusts local connections and ignores it).
func withPassword(t *testing.T, dsn string) (string, string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "" {
		return dsn, cfg.Password
	}
	const password = "s3cret-pw-0x5f"
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.User = url.UserPassword(u.User.Username(), password)
		return u.String(), password
	}
	return dsn + " password=" + password, password
}

// servedPolicy GETs the text of the SgxEnclave policy in force.
func servedPolicy(t *testing.T, s *server, tok string) string {
	t.Helper()
	code, body := s.do(t, "GET", "/policies/SgxEnclave?api-version=2020-10-01", tok, "")
	if code != 200 {
		t.Fatalf("GET policy: %d %s", code, body)
	}
	var r struct{ Token string }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(r.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("policy response token %q", r.Token)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Policy string `json:"x-ms-policy"`
	}
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	// x-ms-policy is the unsecured JWS {"AttestationPolicy": base64url(text)}.
	jws := strings.Split(c.Policy, ".")
	if len(jws) != 3 {
		t.Fatalf("x-ms-policy %q is not a JWS", c.Policy)
	}
	if p, err = base64.RawURLEncoding.DecodeString(jws[1]); err != nil {
		t.Fatal(err)
	}
	var ap struct{ AttestationPolicy string }
	if err := json.Unmarshal(p, &ap); err != nil {
		t.Fatal(err)
	}
	text, err := base64.RawURLEncoding.DecodeString(ap.AttestationPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}
