// Package migrations holds attestd's SQL schema as versioned migrations shared
// by every SQL backend (store/sqlite and store/postgres).
//
// Each migration is an embedded file NNNN_name.sql applied once, in order, in
// its own transaction together with the row recording it in
// schema_migrations. The SQL is written to be accepted unchanged by SQLite and
// PostgreSQL (see the header of 0001_init.sql for the rules), so both backends
// run the very same schema. A backend applies migrations with Apply, handing
// it a transaction-opening function; store/postgres also holds an advisory
// lock around Apply so that concurrently starting replicas do not race.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed *.sql
var files embed.FS

// CreateTable creates the bookkeeping table. It is idempotent and portable.
const CreateTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)`

// Migration is one schema step.
type Migration struct {
	Version int64
	Name    string // file name, e.g. "0001_init.sql"
	SQL     string
}

// All returns the embedded migrations sorted by version. It fails if a file
// name does not start with a positive version number or two files share one.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: list embedded files: %w", err)
	}
	var ms []Migration
	seen := map[int64]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migrations: file %q: name must be NNNN_description.sql", name)
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migrations: file %q: bad version number %q", name, num)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations: files %q and %q share version %d", prev, name, v)
		}
		seen[v] = name
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("migrations: read %q: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Latest returns the highest embedded version.
func Latest() int64 {
	ms, err := All()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Apply brings the schema up to date. beginTx must open a transaction that
// serialises against other writers (SQLite: BEGIN IMMEDIATE; PostgreSQL: hold
// an advisory lock around the call). rebind turns the "?" placeholders used
// here into the driver's own (identity for SQLite, $n for pgx). Each pending
// migration and its schema_migrations row are committed together, so a crash
// leaves the schema either before or after a step, never inside it. Apply
// refuses a database whose recorded version is newer than this binary knows:
// running old code on a newer schema could silently corrupt it.
func Apply(ctx context.Context, db *sql.DB, rebind func(string) string, now func() time.Time) (applied []int64, err error) {
	ms, err := All()
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, CreateTable); err != nil {
		return nil, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}
	latest := ms[len(ms)-1].Version
	for _, m := range ms {
		done, err := applyOne(ctx, db, rebind, m, latest, now)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

func applyOne(ctx context.Context, db *sql.DB, rebind func(string) string, m Migration, latest int64, now func() time.Time) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrations: begin %s: %w", m.Name, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op

	var maxV sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&maxV); err != nil {
		return false, fmt.Errorf("migrations: read schema version: %w", err)
	}
	if maxV.Valid && maxV.Int64 > latest {
		return false, fmt.Errorf("migrations: database schema version %d is newer than this binary's %d; refusing to run", maxV.Int64, latest)
	}
	var n int
	if err := tx.QueryRowContext(ctx, rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version).Scan(&n); err != nil {
		return false, fmt.Errorf("migrations: check %s: %w", m.Name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrations: apply %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		m.Version, m.Name, now().UnixNano()); err != nil {
		return false, fmt.Errorf("migrations: record %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrations: commit %s: %w", m.Name, err)
	}
	return true, nil
}
