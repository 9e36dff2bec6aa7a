package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/migrations"
	"github.com/attestd/attestd/store/postgres/pgtest"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/store/storetest"
)

// testServer is the package's one PostgreSQL server (or startErr), started
// by TestMain and stopped after the last test; each test gets a database.
type testServer struct {
	srv *pgtest.Server
	err error
}

var shared testServer

func TestMain(m *testing.M) {
	shared.srv, shared.err = pgtest.Start(context.Background())
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// newDSN returns the DSN of a fresh database, or skips/fails (see
// pgtest.Require) without PostgreSQL.
func newDSN(t testing.TB) string {
	t.Helper()
	pgtest.Require(t, shared.err)
	return shared.srv.NewDatabase(t)
}

func openT(t testing.TB, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openT(t, newDSN(t)) })
}

// TestTwoHandlesRequireSignerRace is the RequireSigner race through two
// handles on one database, as two replicas run it: the signer check of one
// replica's write and another replica's removal of that signer must be
// ordered by the instance row lock.
func TestTwoHandlesRequireSignerRace(t *testing.T) {
	dsn := newDSN(t)
	a, b := openT(t, dsn), openT(t, dsn)
	defer a.Close()
	defer b.Close()
	storetest.RaceRequireSigner(t, a, b, 24)
}

// TestPolicyChanges: two replicas' handles on one database; the second
// learns of the first's policy changes through NOTIFY attestd_policies.
func TestPolicyChanges(t *testing.T) {
	dsn := newDSN(t)
	a, b := openT(t, dsn), openT(t, dsn)
	defer a.Close()
	defer b.Close()
	storetest.PolicyChanges(t, a, b)
}

// TestConcurrentMigration opens two handles on an empty database at once:
// the advisory lock lets one migrate while the other waits, then finds
// nothing to do. Without the lock both would run CREATE TABLE and one
// would fail (duplicate table or a unique violation in pg_type).
func TestConcurrentMigration(t *testing.T) {
	for round := range 3 {
		dsn := newDSN(t)
		var wg sync.WaitGroup
		dbs := make([]*DB, 4)
		errs := make([]error, len(dbs))
		start := make(chan struct{})
		for i := range dbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				dbs[i], errs[i] = Open(context.Background(), dsn, nil)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Open %d: %v", round, i, err)
			}
			defer dbs[i].Close()
		}
		var n int
		if err := dbs[0].db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != int(migrations.Latest()) {
			t.Fatalf("round %d: schema_migrations rows = %d, %v; want %d", round, n, err, migrations.Latest())
		}
		// Both handles work on the same data.
		p := &store.Policy{Instance: "i", Type: "SgxEnclave", JWS: "j", Text: "t", UpdatedAt: storetest.Base}
		if err := dbs[1].PutPolicy(context.Background(), p, store.AuditEntry{Action: "policy.set"}); err != nil {
			t.Fatal(err)
		}
		if got, err := dbs[2].GetPolicy(context.Background(), "i", "SgxEnclave"); err != nil || got.Text != "t" {
			t.Fatalf("round %d: policy written by one handle, read by another: %+v, %v", round, got, err)
		}
	}
}

// TestTwoHandlesRaceOnRemoval is the last-certificate rule across replicas:
// two handles (two pools, as two attestd processes would have) each remove
// one of the two remaining certificates at the same moment. Exactly one
// must win; the instance keeps one certificate.
func TestTwoHandlesRaceOnRemoval(t *testing.T) {
	ctx := context.Background()
	dsn := newDSN(t)
	a, b := openT(t, dsn), openT(t, dsn)
	defer a.Close()
	defer b.Close()
	handles := []*DB{a, b}
	for round := range 10 {
		inst := fmt.Sprint("inst", round)
		var tps []string
		for i := range 2 {
			der := storetest.NewCertDER(t, fmt.Sprint(round, i))
			if _, err := a.AddCertificate(ctx, store.Certificate{Instance: inst, DER: der}, store.AuditEntry{Action: "certificate.add"}); err != nil {
				t.Fatal(err)
			}
			tps = append(tps, store.Thumbprint(der))
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		removed := make([]bool, 2)
		start := make(chan struct{})
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				removed[i], errs[i] = handles[i].RemoveCertificate(ctx, inst, tps[i], store.AuditEntry{Action: "certificate.remove"})
			}()
		}
		close(start)
		wg.Wait()
		wins, refused := 0, 0
		for i, err := range errs {
			switch {
			case err == nil && removed[i]:
				wins++
			case errors.Is(err, store.ErrLastCertificate):
				refused++
			default:
				t.Errorf("round %d: handle %d: removed=%v err=%v", round, i, removed[i], err)
			}
		}
		if wins != 1 || refused != 1 {
			t.Errorf("round %d: %d wins, %d refusals; want 1 and 1", round, wins, refused)
		}
		cs, err := b.Certificates(ctx, inst)
		if err != nil || len(cs) != 1 {
			t.Errorf("round %d: certificates left = %d, %v; want 1", round, len(cs), err)
		}
		// The audit ids stay dense: 2 adds + 1 removal, no id taken twice.
		au, err := a.Audit(ctx, inst, 0)
		if err != nil || len(au) != 3 || au[0].ID != 3 {
			t.Errorf("round %d: audit = %+v, %v; want ids 3,2,1", round, au, err)
		}
	}
}

// TestRestartPersistence closes the store and opens it again: data,
// counters and the applied migrations survive, and nothing is migrated twice.
func TestRestartPersistence(t *testing.T) {
	ctx := context.Background()
	dsn := newDSN(t)
	db := openT(t, dsn)
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

	db = openT(t, dsn)
	defer db.Close()
	got, err := db.GetPolicy(ctx, "i", "SgxEnclave")
	if err != nil || got.JWS != "jws" || got.Text != "text" || string(got.Signer) != string(signer) || !got.UpdatedAt.Equal(storetest.Base) {
		t.Fatalf("policy after restart: %+v, %v", got, err)
	}
	cs, err := db.Certificates(ctx, "i")
	if err != nil || len(cs) != 2 || cs[0].Thumbprint != store.Thumbprint(certs[0].DER) || cs[1].Thumbprint != store.Thumbprint(certs[1].DER) {
		t.Fatalf("certificates after restart: %v, %v", cs, err)
	}
	if err := db.DeletePolicy(ctx, "i", "SgxEnclave", store.AuditEntry{Action: "policy.reset"}); err != nil {
		t.Fatal(err)
	}
	a, err := db.Audit(ctx, "i", 0)
	if err != nil || len(a) != 3 || a[0].ID != 3 || a[2].ID != 1 || !a[2].At.Equal(storetest.Base) {
		t.Fatalf("audit after restart: %+v, %v", a, err)
	}
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != int(migrations.Latest()) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d (each migration applied once)", n, err, migrations.Latest())
	}
}

// TestSessionSettings checks that every pooled connection runs the
// isolation level and commit durability the package relies on, even when
// the database defaults to something else.
func TestSessionSettings(t *testing.T) {
	ctx := context.Background()
	dsn := newDSN(t)
	// A database whose default would break the design.
	admin := openT(t, dsn)
	var dbname string
	if err := admin.db.QueryRowContext(ctx, `SELECT current_database()`).Scan(&dbname); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.db.ExecContext(ctx, `ALTER DATABASE `+dbname+` SET default_transaction_isolation = 'serializable'`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.db.ExecContext(ctx, `ALTER DATABASE `+dbname+` SET synchronous_commit = 'off'`); err != nil {
		t.Fatal(err)
	}
	admin.Close()

	db := openT(t, dsn)
	defer db.Close()
	var wg sync.WaitGroup
	for range 4 { // several connections at once, so the pool opens several
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := db.db.BeginTx(ctx, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer tx.Rollback()
			var iso, sc string
			if err := tx.QueryRowContext(ctx, `SELECT current_setting('transaction_isolation'), current_setting('synchronous_commit')`).Scan(&iso, &sc); err != nil {
				t.Error(err)
				return
			}
			if iso != "read committed" || sc != "on" {
				t.Errorf("transaction runs %q with synchronous_commit=%q; want read committed, on", iso, sc)
			}
		}()
	}
	wg.Wait()
}

// TestOpenErrors: bad DSNs fail with a message that names the problem and
// never contains the password.
func TestOpenErrors(t *testing.T) {
	pgtest.Require(t, shared.err)
	tests := []struct {
		name, dsn, want string
	}{
		{"empty", "", "empty DSN"},
		{"unparsable", "postgres://attestd:s3cret-pw@[::1/db", "postgres:"},
		{"nobody listening", "postgres://attestd:s3cret-pw@127.0.0.1:1/db?connect_timeout=2", "connect to attestd@127.0.0.1:1/db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(context.Background(), tc.dsn, nil)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error reveals the password: %q", err)
			}
		})
	}
}

// The benchmarks mirror store/sqlite's, so the two backends compare.
func TestDescribe(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://app:s3cret-pw@db.example:6543/attestd?sslmode=require", "app@db.example:6543/attestd"},
		{"host=db.example port=6543 user=app password=s3cret-pw dbname=attestd", "app@db.example:6543/attestd"},
		{"postgres://app:s3cret-pw@[::1/db", "(unparsable PostgreSQL DSN)"},
	}
	for _, tc := range tests {
		if got := Describe(tc.dsn); got != tc.want {
			t.Errorf("Describe(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
}

func BenchmarkPutPolicy(b *testing.B) {
	ctx := context.Background()
	db := openT(b, newDSN(b))
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
	db := openT(b, newDSN(b))
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

// TestParseErrorsHidePassword: a DSN that does not parse fails without any
// part of its password in the error. pgx's own message quotes the DSN with
// best-effort redaction that misses passwords holding (escaped) spaces or
// quotes, so none of its DSN text may reach the error. No server needed.
func TestParseErrorsHidePassword(t *testing.T) {
	for _, dsn := range []string{
		`host=h password=s3cret\ pw0rd sslmode=bogus`,
		`host=h password=s3cret pw0rd`,
		`host=h password='s3cret\' pw0rd' sslmode=bogus`,
		`host=h password=s3cret-pw0rd sslmode=bogus`,
		"postgres://app:s3cret-pw0rd@[::1/db",
		"postgres://app:s3cret-pw0rd@h/db?sslmode=bogus",
	} {
		_, err := Open(context.Background(), dsn, nil)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "pw0rd") {
			t.Errorf("Open: error reveals (part of) the password: %q", msg)
		}
		if !strings.Contains(err.Error(), "postgres:") {
			t.Errorf("Open: error %q does not say which store failed", err)
		}
	}
}

// TestTwoHandlesSigningKeysRace: replicas on one database racing to create
// the first key and to rotate end with one key per round.
func TestTwoHandlesSigningKeysRace(t *testing.T) {
	dsn := newDSN(t)
	a, b := openT(t, dsn), openT(t, dsn)
	defer a.Close()
	defer b.Close()
	storetest.RaceSigningKeys(t, []store.KeyStore{a, b}, 6)
}

// TestResealRace: a rewrap on one handle and replicas writing keys and
// secrets on two others neither deadlock nor fail.
func TestResealRace(t *testing.T) {
	dsn := newDSN(t)
	a, b, c := openT(t, dsn), openT(t, dsn), openT(t, dsn)
	defer a.Close()
	defer b.Close()
	defer c.Close()
	storetest.RaceReseal(t, a, []store.Store{b, c}, 12)
}

// TestWatchSigningKeys: a change committed through one handle is announced
// to another handle's watcher with the instance's name; a rolled-back
// change (a lost IfNewest race) is not.
func TestWatchSigningKeys(t *testing.T) {
	dsn := newDSN(t)
	a, b := openT(t, dsn), openT(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	// Committed before the watcher exists, so never announced to it.
	if err := a.ChangeSigningKeys(ctx, "stale", store.KeyChange{Add: []store.SigningKey{{KID: "s1", Certificate: []byte("c"), Private: []byte("p"), ActivateAt: storetest.Base}}}, store.AuditEntry{Action: "keys.create"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1024)
	done := make(chan error, 1)
	go func() { done <- b.WatchSigningKeys(ctx, func(inst string) { got <- inst }) }()
	// The first call, "", says LISTEN is in force: anything committed
	// before it (s1, and at startup whatever the caller read before it
	// began watching) must be reread; everything after it is announced.
	select {
	case inst := <-got:
		if inst != "" {
			t.Fatalf("first call %q, want the resync \"\"", inst)
		}
	case <-time.After(time.Minute):
		t.Fatal("no resync call once listening")
	}
	k := store.SigningKey{KID: "k1", Certificate: []byte("c"), Private: []byte("p"), ActivateAt: storetest.Base}
	if err := a.ChangeSigningKeys(ctx, "inst", store.KeyChange{Add: []store.SigningKey{k}}, store.AuditEntry{Action: "keys.create"}); err != nil {
		t.Fatal(err)
	}
	select {
	case inst := <-got:
		if inst != "inst" {
			t.Fatalf("notified %q, want inst", inst)
		}
	case <-time.After(time.Minute):
		t.Fatal("no notification for a change made after the resync")
	}
	if err := a.ChangeSigningKeys(ctx, "stale", store.KeyChange{IfNewest: "not-s1", Add: []store.SigningKey{{KID: "k2", Certificate: []byte("c"), Private: []byte("p"), ActivateAt: storetest.Base}}}, store.AuditEntry{Action: "keys.rotate"}); !errors.Is(err, store.ErrKeyConflict) {
		t.Fatalf("stale change: %v", err)
	}
	if err := a.ChangeSigningKeys(ctx, "other", store.KeyChange{Add: []store.SigningKey{{KID: "o1", Certificate: []byte("c"), Private: []byte("p"), ActivateAt: storetest.Base}}}, store.AuditEntry{Action: "keys.create"}); err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: up to "other"'s, none names
	// "stale", so the rolled-back change sent none.
	for inst := ""; inst != "other"; {
		select {
		case inst = <-got:
			if inst == "stale" {
				t.Fatal("a rolled-back change was announced")
			}
		case <-time.After(time.Minute):
			t.Fatal("no notification for other")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}
}

// TestCopyFromSQLite is "attestd store migrate": every table of a filled
// SQLite store arrives in PostgreSQL with equal counts and hashes, and a
// non-empty target is refused.
func TestCopyFromSQLite(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "src.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	storetest.Fill(t, src)
	dst := openT(t, newDSN(t))
	defer dst.Close()
	sums, err := src.DB.CopyTo(ctx, dst.DB)
	if err != nil {
		t.Fatal(err)
	}
	if sums["audit"].Rows != 5 || sums["signing_keys"].Rows != 2 || sums["policies"].Rows != 2 || sums["certificates"].Rows != 2 {
		t.Fatalf("copied %+v", sums)
	}
	p, err := dst.GetPolicy(ctx, "inst", "SgxEnclave")
	if err != nil || p.JWS != "eyJhbGciOiJub25lIn0.e30." || len(p.Signer) == 0 || !p.UpdatedAt.Equal(storetest.Base) {
		t.Fatalf("policy after copy: %+v %v", p, err)
	}
	// The copy continues the audit ids and refuses a replayed nonce.
	if fresh, err := dst.UseNonce(ctx, "inst", "n1", storetest.Base, storetest.Base.Add(time.Hour)); err != nil || fresh {
		t.Fatalf("nonce after copy: fresh %v %v", fresh, err)
	}
	if err := dst.PutPolicy(ctx, &store.Policy{Instance: "inst", Type: "X", JWS: "j", Text: "t"}, store.AuditEntry{Action: "policy.set"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := dst.Audit(ctx, "inst", 1); len(a) != 1 || a[0].ID != 6 {
		t.Fatalf("audit after copy: %+v", a)
	}
	if _, err := src.DB.CopyTo(ctx, dst.DB); err == nil || !strings.Contains(err.Error(), "empty database") {
		t.Fatalf("copy into a non-empty database: %v", err)
	}
}

// TestPolicyWatchReconnects: when a replica's LISTEN session is killed,
// a policy change another replica commits meanwhile (whose notification
// that session never receives) still moves the first replica's epoch by
// the time its watch is back (SyncPolicies), so nothing cached before the
// outage is served after it.
func TestPolicyWatchReconnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := newDSN(t)
	a, b := openT(t, dsn), openT(t, dsn)
	defer a.Close()
	defer b.Close()
	if err := a.SyncPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	before, ok := a.PolicyEpoch()
	if !ok {
		t.Fatal("no vouching after SyncPolicies")
	}
	// Every session LISTENing on the channel: a's and b's watches.
	var killed int
	if err := b.db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+PoliciesChannel+`'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no LISTEN session found to terminate")
	}
	p := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "x", Text: "restrictive", UpdatedAt: storetest.Base}
	if err := b.PutPolicy(ctx, p, store.AuditEntry{Action: "policy.set"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SyncPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if after, ok := a.PolicyEpoch(); !ok || after == before {
		t.Fatalf("after the outage: epoch %d → %d, vouching %v", before, after, ok)
	}
}
