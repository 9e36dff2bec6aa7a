package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attestd/attestd/store/postgres/pgtest"
)

// TestStoreMigrate moves a single node from SQLite to PostgreSQL: after
// "attestd store migrate" a server on PostgreSQL with a fresh data
// directory and the node's key-encryption key serves the same policy and
// publishes the same signing keys (active first), and its audit trail
// holds the node's entries.
func TestStoreMigrate(t *testing.T) {
	srv, err := pgtest.Start(context.Background())
	pgtest.Require(t, err)
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn := srv.NewDatabase(t)
	t.Setenv("ATTESTD_STORE_DSN", "")
	old := t.TempDir()
	a := startServer(t, "--data", old)
	const text = "version=1.0; authorizationrules{=> permit();}; issuancerules{ => issue(type=\"moved\", value=true); };"
	if code, body := a.do(t, "PUT", "/policies/SgxEnclave?api-version=2020-10-01", devToken(t, old, "contributor"), text); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	kids := certKIDs(t, a)
	a.stop(t)

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"store", "migrate", "--from", "sqlite:" + filepath.Join(old, "attestd.db"), "--to", dsn}, &out, &errb); code != 0 {
		t.Fatalf("store migrate: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "every table verified") || !strings.Contains(out.String(), "signing_keys") {
		t.Fatalf("migrate output:\n%s", out.String())
	}
	if code := run(context.Background(), []string{"store", "migrate", "--from", "sqlite:" + filepath.Join(old, "attestd.db"), "--to", dsn}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "empty database") {
		t.Fatalf("second migrate into the same database: %d %s", code, errb.String())
	}

	fresh := t.TempDir()
	b := startServer(t, "--data", fresh, "--store-dsn", dsn, "--key-encryption-key", filepath.Join(old, DefaultKEKFile))
	defer b.stop(t)
	if got := certKIDs(t, b); !slices.Equal(got, kids) {
		t.Fatalf("/certs after migration %v, before %v", got, kids)
	}
	if got := servedPolicy(t, b, devToken(t, fresh, "reader")); got != text {
		t.Fatalf("policy after migration %q", got)
	}
}
