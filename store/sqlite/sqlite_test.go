package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/migrations"
	"github.com/attestd/attestd/store/storetest"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "attestd.db"), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestRestartPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "attestd.db")
	db, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := storetest.NewCertDER(t, "signer")
	p := &store.Policy{Instance: "i", Type: "SgxEnclave", JWS: "jws", Text: "text", Signer: signer, UpdatedAt: storetest.Base}
	if err := db.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set", Target: "SgxEnclave", At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	certs := []store.Certificate{{DER: storetest.NewCertDER(t, "a")}, {DER: storetest.NewCertDER(t, "b")}}
	if err := db.SeedCertificates(ctx, "i", certs, store.AuditEntry{Action: "certificate.seed", At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(ctx, path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	got, err := db.GetPolicy(ctx, "i", "SgxEnclave")
	if err != nil || got.JWS != "jws" || got.Text != "text" || string(got.Signer) != string(signer) || !got.UpdatedAt.Equal(storetest.Base) {
		t.Fatalf("policy after restart: %+v, %v", got, err)
	}
	cs, err := db.Certificates(ctx, "i")
	if err != nil || len(cs) != 2 || cs[0].Thumbprint != store.Thumbprint(certs[0].DER) {
		t.Fatalf("certificates after restart: %v, %v", cs, err)
	}
	// Counters continue: the next audit ID follows the old ones.
	if err := db.DeletePolicy(ctx, "i", "SgxEnclave", store.AuditEntry{Action: "policy.reset"}); err != nil {
		t.Fatal(err)
	}
	a, err := db.Audit(ctx, "i", 0)
	if err != nil || len(a) != 3 || a[0].ID != 3 || a[2].ID != 1 {
		t.Fatalf("audit after restart: %+v, %v", a, err)
	}
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != int(migrations.Latest()) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d (each migration applied once)", n, err, migrations.Latest())
	}
}

// TestDurabilitySettings checks every pooled connection runs WAL,
// synchronous=FULL, a busy timeout, and BEGIN IMMEDIATE transactions.
func TestDurabilitySettings(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	defer db.Close()
	// Hold several connections at once so the pool opens more than one.
	var conns []*sql.Conn
	for range 3 {
		c, err := db.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var mode string
		var syncMode, busy int
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("conn %d: journal_mode %q, %v", i, mode, err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode != 2 {
			t.Errorf("conn %d: synchronous %d, %v; want 2 (FULL)", i, syncMode, err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != int(BusyTimeout.Milliseconds()) {
			t.Errorf("conn %d: busy_timeout %d, %v", i, busy, err)
		}
		c.Close()
	}
	// BEGIN IMMEDIATE: an open (idle) transaction already holds the write
	// lock, so a second writer with a short timeout fails at BEGIN.
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", db.path+"?_pragma=busy_timeout(50)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if tx2, err := other.BeginTx(ctx, nil); err == nil {
		tx2.Rollback()
		t.Fatal("a second BEGIN IMMEDIATE succeeded while a transaction was open: transactions are not immediate")
	}
}

// TestTwoHandlesRequireSignerRace is the RequireSigner race through two
// handles on one file, as two processes would run it.
func TestTwoHandlesRequireSignerRace(t *testing.T) {
	a, b := openTwoHandles(t)
	storetest.RaceRequireSigner(t, a, b, 24)
}

// openTwoHandles opens one new database file twice, as two processes
// would; both handles are closed when t ends.
func openTwoHandles(t *testing.T) (a, b *DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shared.db")
	for _, p := range []**DB{&a, &b} {
		db, err := Open(context.Background(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		*p = db
	}
	return a, b
}

// TestTwoHandlesConcurrentWriters runs writers through two independent
// handles on one file, as two processes would: busy_timeout and BEGIN
// IMMEDIATE must serialise them without SQLITE_BUSY errors.
func TestTwoHandlesConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	a, b := openTwoHandles(t)
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 4*each)
	for w, db := range []*DB{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := &store.Policy{Instance: "i", Type: fmt.Sprint("T", w), JWS: fmt.Sprint(i), Text: fmt.Sprint(i)}
				if err := db.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set", Target: p.Type}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	entries, err := b.Audit(ctx, "i", 0)
	if err != nil || len(entries) != 4*each {
		t.Fatalf("%d audit entries, %v; want %d", len(entries), err, 4*each)
	}
	for i, e := range entries {
		if e.ID != int64(4*each-i) {
			t.Fatalf("audit IDs not dense: entry %d has ID %d", i, e.ID)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, path := range []string{"", filepath.Join(dir, "a?b.db"), filepath.Join(dir, "missing-dir", "x.db")} {
		if db, err := Open(ctx, path, nil); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
	// A database written by a newer attestd is refused.
	path := filepath.Join(dir, "newer.db")
	db, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := Open(ctx, path, nil); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func BenchmarkPutPolicy(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p := &store.Policy{Instance: "i", Type: "SgxEnclave", JWS: strings.Repeat("j", 2000), Text: strings.Repeat("t", 1000)}
	b.ReportAllocs()
	for b.Loop() {
		if err := db.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set", Target: "SgxEnclave"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetPolicy(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p := &store.Policy{Instance: "i", Type: "SgxEnclave", JWS: strings.Repeat("j", 2000), Text: strings.Repeat("t", 1000)}
	if err := db.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.GetPolicy(ctx, "i", "SgxEnclave"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFaultyWrapper(t *testing.T) {
	ctx := context.Background()
	f := storetest.NewFaulty(openTemp(t))
	defer f.Close()
	boom := fmt.Errorf("disk on fire")
	f.Fail(storetest.MethodPutPolicy, boom)
	p := &store.Policy{Instance: "i", Type: "SgxEnclave", JWS: "j", Text: "t"}
	if err := f.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set"}); err != boom {
		t.Fatalf("PutPolicy = %v, want injected error", err)
	}
	if _, err := f.GetPolicy(ctx, "i", "SgxEnclave"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed write reached the store: %v", err)
	}
	f.Fail(storetest.MethodPutPolicy, nil)
	if err := f.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set"}); err != nil {
		t.Fatalf("healed PutPolicy: %v", err)
	}
}

// TestPolicyChanges: two handles on one file, as two processes would use
// it; the second learns of the first's policy changes by polling
// data_version.
func TestPolicyChanges(t *testing.T) {
	a, b := openTwoHandles(t)
	storetest.PolicyChanges(t, a, b)
}
