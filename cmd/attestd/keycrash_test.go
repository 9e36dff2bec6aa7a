package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/postgres"
	"github.com/attestd/attestd/store/postgres/pgtest"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// TestKillMidRotation runs "attestd keys rotate --now" as real processes
// and SIGKILLs some of them at random points (key generation, sealing, the
// transaction). Afterwards the keys are consistent: every rotation that
// reported success is in the database, rows and audit entries agree (each
// rotation added exactly one standby key and one keys.rotate entry, or
// neither), there is one standby, every published key opens under the KEK,
// and the set signs.
func TestKillMidRotation(t *testing.T) {
	data, open := sqliteKeyStore(t)
	killMidRotation(t, data, open)
}

// sqliteKeyStore is the SQLite store of a kill test: the data directory
// the children use and how the test opens its database.
func sqliteKeyStore(t *testing.T) (data string, open func() keyTestStore) {
	t.Setenv("ATTESTD_STORE_DSN", "")
	data = t.TempDir()
	return data, func() keyTestStore {
		db, err := sqlite.Open(context.Background(), filepath.Join(data, "attestd.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
}

// postgresKeyStore is the PostgreSQL store of a kill test: a database of
// its own, which the children reach through ATTESTD_STORE_DSN.
func postgresKeyStore(t *testing.T) (data string, open func() keyTestStore) {
	srv, err := pgtest.Start(context.Background())
	pgtest.Require(t, err)
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn := srv.NewDatabase(t)
	t.Setenv("ATTESTD_STORE_DSN", dsn) // the children inherit it
	return t.TempDir(), func() keyTestStore {
		db, err := postgres.Open(context.Background(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
}

// TestKillMidRotationPostgres is TestKillMidRotation on PostgreSQL, as a
// replica's operator runs it.
func TestKillMidRotationPostgres(t *testing.T) {
	data, open := postgresKeyStore(t)
	killMidRotation(t, data, open)
}

// keyTestStore is what the crash test reads back.
type keyTestStore interface {
	store.Store
	store.KeyStore
}

func killMidRotation(t *testing.T, data string, open func() keyTestStore) {
	ctx := context.Background()
	kek, _, err := token.EnsureKEKFile(filepath.Join(data, DefaultKEKFile))
	if err != nil {
		t.Fatal(err)
	}
	db := open()
	if _, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: DefaultName, Subject: "https://crash.test", Keys: token.KEKKeys{KEK: kek}, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	activeRE := regexp.MustCompile(`(?m)^(\S{44})\s+active\s`)
	var acked []string
	killed := 0
	for round := range 10 {
		cmd := exec.Command(os.Args[0], "keys", "rotate", "--now", "--data", data)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kill := round%2 == 1
		if kill {
			time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it may have finished already
		}
		err := cmd.Wait()
		switch {
		case err == nil:
			m := activeRE.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("round %d: rotate output lists no active key:\n%s", round, out.String())
			}
			acked = append(acked, m[1])
		case kill:
			killed++
		default:
			t.Fatalf("round %d: rotate failed: %v\n%s", round, err, errb.String())
		}
	}
	t.Logf("%d rotations acknowledged, %d processes killed", len(acked), killed)

	db = open()
	defer db.Close()
	rows, err := db.SigningKeys(ctx, DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	standbys := 0
	for _, r := range rows {
		have[r.KID] = true
		if r.ActivateAt.Equal(token.StandbyAt) && (r.RetireAt.IsZero() || time.Now().Before(r.RetireAt)) {
			standbys++
		}
	}
	for _, kid := range acked {
		if !have[kid] {
			t.Errorf("acknowledged rotation to %s is not in the database", kid)
		}
	}
	au, err := db.Audit(ctx, DefaultName, 0)
	if err != nil {
		t.Fatal(err)
	}
	rotations := 0
	for _, e := range au {
		if e.Action == "keys.rotate" {
			rotations++
		}
	}
	if len(rows) != 2+rotations || rotations < len(acked) || standbys != 1 {
		t.Fatalf("inconsistent after kills: %d rows, %d keys.rotate entries (%d acknowledged), %d standby keys", len(rows), rotations, len(acked), standbys)
	}
	ks, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: DefaultName, Subject: "https://crash.test", Keys: token.KEKKeys{KEK: kek}, Now: time.Now})
	if err != nil {
		t.Fatalf("key set after kills: %v", err)
	}
	tok, err := ks.Sign("https://crash.test/certs", map[string]any{"after": "crash"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if len(acked) > 0 && ks.ActiveKID() != acked[len(acked)-1] && rotations == len(acked) {
		t.Fatalf("active key %s, last acknowledged %s, and no unacknowledged rotation committed", ks.ActiveKID(), acked[len(acked)-1])
	}
}
