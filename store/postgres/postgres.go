// Package postgres implements store.Store on PostgreSQL (12 or later)
// through github.com/jackc/pgx/v5's database/sql driver, so that several
// stateless attestd replicas can share one database. All SQL and the rules of
// the Store contract live in store/sqlstore; this package only opens the
// database, pins the session settings those rules rely on, and migrates the
// schema under an advisory lock.
//
// Concurrency: sessions run at READ COMMITTED, whatever the database's
// default. Every write transaction of sqlstore starts with an upsert of the
// instance's counter row, which locks it; all writes of one instance, from
// any replica, therefore run one after the other, and the certificate count
// the last-certificate check reads afterwards (a new snapshot per statement
// at READ COMMITTED) already includes every committed removal. A database
// defaulting to SERIALIZABLE would turn those waits into serialisation
// failures that sqlstore does not retry, hence the pinned level.
//
// Durability: synchronous_commit is pinned to on, so a write that returned
// nil has its commit record flushed to the server's disk; the server's own
// fsync setting cannot be changed by a client, and Open warns when it is off.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/migrations"
	"github.com/attestd/attestd/store/sqlstore"
)

// MigrationLockKey is the pg_advisory_lock key held while migrating: two
// replicas starting together apply each migration once, one after the
// other, instead of racing on CREATE TABLE. The value is "attestd\x01".
const MigrationLockKey int64 = 0x6174746573746401

// MaxConns bounds the connections one replica opens. Writes of one instance
// serialise on its row lock anyway; more connections would only queue
// there, and N replicas × MaxConns must stay under max_connections.
const MaxConns = 16

// DB is a store.Store backed by a PostgreSQL database. It is safe for
// concurrent use, and any number of DBs (in one process or many) may share
// the database.
type DB struct {
	*sqlstore.DB
	db     *sql.DB
	logger *slog.Logger
	now    func() time.Time
	cfg    *pgx.ConnConfig // for the LISTEN sessions of WatchSigningKeys and the policy watch
	watch  *policyWatch    // see policywatch.go
}

var _ store.Store = (*DB)(nil)

// Dialect is the sqlstore dialect of PostgreSQL: "$n" placeholders.
var Dialect = sqlstore.Dialect{Name: "postgres", Rebind: sqlstore.RebindDollar,
	NotifyKeys:     `SELECT pg_notify('` + KeysChannel + `', ?)`,
	NotifyPolicies: `SELECT pg_notify('` + PoliciesChannel + `', ?)`,
	// EXCLUSIVE blocks every writer (each write touches "instances"
	// first, and is queued behind this lock before it holds one of the
	// other two) and no reader: replicas keep serving during a rewrap.
	LockSealed: `LOCK TABLE instances, signing_keys, instance_secrets IN EXCLUSIVE MODE`}

// KeysChannel is the LISTEN/NOTIFY channel on which every committed change
// of signing keys names its instance (see WatchSigningKeys).
const KeysChannel = "attestd_signing_keys"

// Open connects to the database named by dsn (a libpq URL
// "postgres://user@host:5432/db?sslmode=verify-full" or keyword/value string;
// the password may come from PGPASSWORD or a .pgpass file instead), applies
// pending migrations under MigrationLockKey, and returns the store. The
// caller must Close it. ctx bounds only the opening work. Neither logs nor
// errors contain the DSN's password.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	return open(ctx, dsn, logger, time.Now)
}

func open(ctx context.Context, dsn string, logger *slog.Logger, now func() time.Time) (*DB, error) {
	if dsn == "" {
		return nil, errors.New("postgres: empty DSN")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the DSN with best-effort redaction
		// that misses passwords holding (escaped) spaces or quotes, and
		// the keyword parser's own errors may quote a password fragment,
		// so none of their text is passed on.
		return nil, errors.New("postgres: the DSN does not parse (details withheld: they would quote the DSN, which may hold a password); check it against https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING")
	}
	cfg.RuntimeParams["default_transaction_isolation"] = "read committed"
	cfg.RuntimeParams["synchronous_commit"] = "on"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "attestd"
	}
	where := describe(cfg)

	sdb := stdlib.OpenDB(*cfg)
	// Migration holds one connection for its lock while Apply uses others,
	// so the pool must allow at least two.
	sdb.SetMaxOpenConns(MaxConns)
	sdb.SetMaxIdleConns(MaxConns)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{DB: sqlstore.New(sdb, Dialect, now), db: sdb, logger: logger, now: now, cfg: cfg.Copy()}
	if err := d.db.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", where, err)
	}
	var fsync string
	if err := d.db.QueryRowContext(ctx, `SHOW fsync`).Scan(&fsync); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("postgres: %s: read fsync: %w", where, err)
	}
	if fsync != "on" {
		logger.WarnContext(ctx, "store: the PostgreSQL server runs with fsync=off; acknowledged writes may be lost in a crash", "database", where)
	}
	applied, err := d.migrate(ctx)
	if err != nil {
		sdb.Close()
		return nil, fmt.Errorf("postgres: %s: %w", where, err)
	}
	if len(applied) > 0 {
		logger.InfoContext(ctx, "store: schema migrated", "database", where, "applied", applied)
	}
	if err := d.startPolicyWatch(); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("postgres: %s: %w", where, err)
	}
	logger.InfoContext(ctx, "store: postgres", "database", where)
	return d, nil
}

// Describe names the database of dsn as user@host:port/database, for logs
// and messages: it never contains the password, which a DSN may carry.
func Describe(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable PostgreSQL DSN)"
	}
	return describe(cfg)
}

func describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// migrate applies pending migrations while holding MigrationLockKey on a
// dedicated session; the lock is a session lock, so it is released by the
// unlock below or, if this process dies, by the end of the session.
func (d *DB) migrate(ctx context.Context) (applied []int64, err error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, MigrationLockKey); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must run even if ctx was cancelled;
		// should it fail, closing the connection ends the session and the lock.
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, MigrationLockKey); uerr != nil {
			// driver.ErrBadConn makes database/sql discard the connection
			// (ending its session and the lock) instead of pooling it.
			conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // the error is the point
			if err == nil {
				err = fmt.Errorf("migration unlock: %w", uerr)
			}
		}
	}()
	return migrations.Apply(ctx, d.db, sqlstore.RebindDollar, d.now)
}

// Close stops the policy-change watch and closes the connection pool.
func (d *DB) Close() error {
	d.stopPolicyWatch()
	return d.db.Close()
}
