package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// TestAuditNamesKeySets: "attestd keys list" heads its table with the key
// set as "name: NAME, alg: ALG", for --instance NAME/es256 as for
// --instance NAME --alg ES256 (a contradicting --alg is a usage error);
// "attestd audit list" shows the ES256 set's events under instance NAME
// with alg ES256 (table and JSON), the RSA set's with alg RS256, never the
// storage name NAME/es256, which the database keeps (no migration).
func TestAuditNamesKeySets(t *testing.T) {
	t.Setenv("ATTESTD_STORE_DSN", "")
	ctx := context.Background()
	data := t.TempDir()
	kek, _, err := token.EnsureKEKFile(filepath.Join(data, DefaultKEKFile))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(data, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, inst := range []string{DefaultName, es256Name(DefaultName)} {
		if _, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: inst, Subject: "https://audit.test", Keys: token.KEKKeys{KEK: kek},
			Now: time.Now, Algorithm: keySetAlgorithm(inst)}); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"keys"}, append(args, "--data", data)...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := keys("rotate", "--now", "--instance", DefaultName, "--alg", "ES256")
	if code != 0 || !strings.HasPrefix(out, "name: default, alg: ES256\n") {
		t.Fatalf("keys rotate --alg ES256: %d\n%s%s", code, out, errs)
	}
	for _, c := range []struct {
		args []string
		head string
	}{{[]string{"list", "--instance", "default/es256"}, "name: default, alg: ES256\n"},
		{[]string{"list", "--instance", "default", "--alg", "es256"}, "name: default, alg: ES256\n"},
		{[]string{"list"}, "name: default, alg: RS256\n"},
		{[]string{"list", "--alg", "RS256"}, "name: default, alg: RS256\n"}} {
		if code, out, errs := keys(c.args...); code != 0 || !strings.HasPrefix(out, c.head) || !regexp.MustCompile(`(?m)^\S{44}\s+active\s`).MatchString(out) {
			t.Errorf("keys %v: %d\n%s%s", c.args, code, out, errs)
		}
	}
	for _, args := range [][]string{{"list", "--instance", "default/es256", "--alg", "RS256"}, {"list", "--alg", "HS256"}} {
		if code, _, errs := keys(args...); code != 2 {
			t.Errorf("keys %v: %d %s, want a usage error", args, code, errs)
		}
	}

	audit := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := run(ctx, append([]string{"audit", "list", "--data", data}, args...), &out, &errb); code != 0 {
			t.Fatalf("audit list %v: %d %s", args, code, errb.String())
		}
		return out.String()
	}
	byAlg := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(audit("--json")), "\n") {
		var e auditJSON
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Instance != DefaultName {
			t.Errorf("entry %s names instance %q", l, e.Instance)
		}
		byAlg[e.Alg] = append(byAlg[e.Alg], e.Action)
	}
	if strings.Join(byAlg["ES256"], ",") != "keys.rotate,keys.create" || strings.Join(byAlg["RS256"], ",") != "keys.create" || len(byAlg) != 2 {
		t.Fatalf("audit list --json by alg: %v", byAlg)
	}
	table := audit()
	if strings.Contains(table, "default/es256") || !regexp.MustCompile(`(?m)^\S+\s+default\s+\d+\s+attestd keys rotate\s+keys\.rotate\s+\S+\s+-\s+ES256\s*$`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^\S+\s+default\s+\d+\s+attestd\s+keys\.create\s+\S+\s+-\s+RS256\s*$`).MatchString(table) || !regexp.MustCompile(`^AT\s+INSTANCE\s+ID\s+ACTOR\s+ACTION\s+TARGET\s+HASH\s+ALG\s*\n`).MatchString(table) {
		t.Fatalf("audit list:\n%s", table)
	}
	only := audit("--json", "--instance", "default/es256")
	if strings.Count(only, `"alg":"ES256"`) != 2 || strings.Contains(only, "RS256") {
		t.Fatalf("audit list --instance default/es256:\n%s", only)
	}
	// Stored as before: the ES256 set's entries are under default/es256.
	if es, err := db.Audit(ctx, es256Name(DefaultName), 0); err != nil || len(es) != 2 {
		t.Fatalf("stored ES256 entries: %d %v", len(es), err)
	}
}
