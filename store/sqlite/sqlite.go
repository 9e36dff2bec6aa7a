// Package sqlite implements store.Store on SQLite through modernc.org/sqlite
// (pure Go, no cgo), the default embedded backend of attestd.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so every
// commit fsyncs the WAL before it returns; a write method that returned nil
// survives a crash or power loss. Every write and its audit entry share one
// transaction. Transactions start with BEGIN IMMEDIATE (_txlock=immediate):
// the write lock is taken up front instead of being upgraded from a read lock
// half-way, which would fail with SQLITE_BUSY instead of waiting; waiting is
// bounded by busy_timeout. Readers are never blocked by the writer (WAL).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/migrations"
	"github.com/attestd/attestd/store/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// BusyTimeout bounds how long a writer waits for another writer's lock
// (another process sharing the file, or a long transaction) before failing.
const BusyTimeout = 10 * time.Second

// DB is a store.Store backed by one SQLite file. It is safe for concurrent
// use by many goroutines; several processes may share the file (SQLite's
// locking serialises their writes), though attestd normally runs one.
type DB struct {
	*sqlstore.DB
	db     *sql.DB
	path   string
	logger *slog.Logger
	watch  *policyWatch // see policywatch.go
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path, applies pending
// migrations and checks that the durability settings are in effect. The
// caller must Close it. ctx bounds only the opening work.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	return open(ctx, path, logger, time.Now)
}

func open(ctx context.Context, path string, logger *slog.Logger, now func() time.Time) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	// modernc splits the DSN at the first '?'; a path containing one would be
	// cut silently, so refuse it instead.
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: database path %q must not contain '?' or '#'", path)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Pragmas in the DSN are applied by the driver to every new pooled
	// connection, so all connections share the same settings.
	dsn := path + "?" + strings.Join([]string{
		"_pragma=journal_mode(WAL)",
		fmt.Sprintf("_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds()),
		"_pragma=synchronous(FULL)",
		"_pragma=foreign_keys(1)",
		"_txlock=immediate",
	}, "&")
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// SQLite admits one writer at a time; a few connections let readers run
	// beside it without piling up blocked writers.
	sdb.SetMaxOpenConns(4)
	sdb.SetMaxIdleConns(4)
	d := &DB{DB: sqlstore.New(sdb, sqlstore.Dialect{Name: "sqlite"}, now), db: sdb, path: path, logger: logger}
	if err := d.checkPragmas(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	applied, err := migrations.Apply(ctx, sdb, func(q string) string { return q }, now)
	if err != nil {
		sdb.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if len(applied) > 0 {
		logger.InfoContext(ctx, "store: schema migrated", "path", path, "applied", applied)
	}
	if err := d.startPolicyWatch(dsn); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("sqlite: %s: policy watch: %w", path, err)
	}
	return d, nil
}

// Close stops the policy-change poll and closes the database.
func (d *DB) Close() error {
	d.stopPolicyWatch()
	return d.DB.Close()
}

// checkPragmas verifies that the connection really runs in WAL mode with
// synchronous=FULL: a driver that ignored the DSN would silently weaken the
// durability promise of store.Store.
func (d *DB) checkPragmas(ctx context.Context) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: connect %s: %w", d.path, err)
	}
	defer conn.Close()
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: %s: read journal_mode: %w", d.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: %s: journal_mode is %q, want wal", d.path, mode)
	}
	var syncMode int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return fmt.Errorf("sqlite: %s: read synchronous: %w", d.path, err)
	}
	if syncMode != 2 { // 2 = FULL
		return fmt.Errorf("sqlite: %s: synchronous is %d, want 2 (FULL)", d.path, syncMode)
	}
	return nil
}
