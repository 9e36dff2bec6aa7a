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

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// BusyTimeout bounds how long a writer waits for another writer's lock
// (another process sharing the file, or a long transaction) before failing.
const BusyTimeout = 10 * time.Second

// DB is a store.Store backed by one SQLite file. It is safe for concurrent
// use by many goroutines; several processes may share the file (SQLite's
// locking serialises their writes), though attestd normally runs one.
type DB struct {
	db     *sql.DB
	path   string
	logger *slog.Logger
	now    func() time.Time
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
	d := &DB{db: sdb, path: path, logger: logger, now: now}
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
	return d, nil
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

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// errNoChange makes withTx roll back and report success: the transaction
// found nothing to do.
var errNoChange = errors.New("no change")

// withTx runs fn in one write transaction and commits it.
func (d *DB) withTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		rerr := tx.Rollback()
		if errors.Is(err, errNoChange) {
			if rerr != nil {
				return fmt.Errorf("sqlite: %s: rollback: %w", what, rerr)
			}
			return nil
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", what, err)
	}
	return nil
}

// bump increments and returns one of the per-instance counters, creating
// the instance row on first use.
func bump(ctx context.Context, tx *sql.Tx, instance, column string) (int64, error) {
	var q string
	switch column {
	case "audit_seq":
		q = `INSERT INTO instances (name, audit_seq, cert_seq) VALUES (?, 1, 0)
		     ON CONFLICT (name) DO UPDATE SET audit_seq = instances.audit_seq + 1
		     RETURNING audit_seq`
	case "cert_seq":
		q = `INSERT INTO instances (name, audit_seq, cert_seq) VALUES (?, 0, 1)
		     ON CONFLICT (name) DO UPDATE SET cert_seq = instances.cert_seq + 1
		     RETURNING cert_seq`
	default:
		return 0, fmt.Errorf("sqlite: unknown counter %q", column)
	}
	var v int64
	if err := tx.QueryRowContext(ctx, q, instance).Scan(&v); err != nil {
		return 0, fmt.Errorf("bump %s: %w", column, err)
	}
	return v, nil
}

// appendAudit writes a as the next audit entry of instance.
func (d *DB) appendAudit(ctx context.Context, tx *sql.Tx, instance string, a store.AuditEntry) error {
	if a.Instance != "" && a.Instance != instance {
		return fmt.Errorf("audit entry names instance %q but the change is to %q", a.Instance, instance)
	}
	if a.Action == "" {
		return errors.New("audit entry has no action")
	}
	at := a.At
	if at.IsZero() {
		at = d.now()
	}
	id, err := bump(ctx, tx, instance, "audit_seq")
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (instance, id, at, actor, action, target, hash, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, instance, id, at.UnixNano(), a.Actor, a.Action, a.Target, a.Hash, a.Detail)
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

func checkKey(instance string, more ...string) error {
	if instance == "" {
		return errors.New("empty instance name")
	}
	for _, m := range more {
		if m == "" {
			return errors.New("empty key")
		}
	}
	return nil
}

// GetPolicy implements store.Store.
func (d *DB) GetPolicy(ctx context.Context, instance, typ string) (*store.Policy, error) {
	row := d.db.QueryRowContext(ctx, `SELECT jws, body, signer, updated_at FROM policies
		WHERE instance = ? AND att_type = ?`, instance, typ)
	p := &store.Policy{Instance: instance, Type: typ}
	var signer []byte
	var updated int64
	if err := row.Scan(&p.JWS, &p.Text, &signer, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: policy %s/%s: %w", instance, typ, store.ErrNotFound)
		}
		return nil, fmt.Errorf("sqlite: get policy %s/%s: %w", instance, typ, err)
	}
	if len(signer) > 0 {
		p.Signer = signer
	}
	p.UpdatedAt = time.Unix(0, updated).UTC()
	return p, nil
}

// PutPolicy implements store.Store.
func (d *DB) PutPolicy(ctx context.Context, p *store.Policy, a store.AuditEntry) error {
	if p == nil {
		return errors.New("sqlite: put policy: nil policy")
	}
	if err := checkKey(p.Instance, p.Type); err != nil {
		return fmt.Errorf("sqlite: put policy: %w", err)
	}
	updated := p.UpdatedAt
	if updated.IsZero() {
		updated = d.now()
	}
	var signer any // NULL for unsigned policies
	if len(p.Signer) > 0 {
		signer = p.Signer
	}
	return d.withTx(ctx, "put policy", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO policies (instance, att_type, jws, body, signer, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (instance, att_type) DO UPDATE SET
			  jws = excluded.jws, body = excluded.body, signer = excluded.signer, updated_at = excluded.updated_at`,
			p.Instance, p.Type, p.JWS, p.Text, signer, updated.UnixNano()); err != nil {
			return fmt.Errorf("sqlite: put policy %s/%s: %w", p.Instance, p.Type, err)
		}
		if err := d.appendAudit(ctx, tx, p.Instance, a); err != nil {
			return fmt.Errorf("sqlite: put policy %s/%s: %w", p.Instance, p.Type, err)
		}
		return nil
	})
}

// DeletePolicy implements store.Store.
func (d *DB) DeletePolicy(ctx context.Context, instance, typ string, a store.AuditEntry) error {
	if err := checkKey(instance, typ); err != nil {
		return fmt.Errorf("sqlite: delete policy: %w", err)
	}
	return d.withTx(ctx, "delete policy", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM policies WHERE instance = ? AND att_type = ?`, instance, typ); err != nil {
			return fmt.Errorf("sqlite: delete policy %s/%s: %w", instance, typ, err)
		}
		if err := d.appendAudit(ctx, tx, instance, a); err != nil {
			return fmt.Errorf("sqlite: delete policy %s/%s: %w", instance, typ, err)
		}
		return nil
	})
}

// Certificates implements store.Store.
func (d *DB) Certificates(ctx context.Context, instance string) ([]store.Certificate, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT thumbprint, der, added_at FROM certificates
		WHERE instance = ? ORDER BY seq`, instance)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list certificates of %s: %w", instance, err)
	}
	defer rows.Close()
	var out []store.Certificate
	for rows.Next() {
		c := store.Certificate{Instance: instance}
		var added int64
		if err := rows.Scan(&c.Thumbprint, &c.DER, &added); err != nil {
			return nil, fmt.Errorf("sqlite: list certificates of %s: %w", instance, err)
		}
		c.AddedAt = time.Unix(0, added).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list certificates of %s: %w", instance, err)
	}
	return out, nil
}

// normalizeCert checks c and fills its thumbprint and time. The thumbprint is
// derived from the DER, never trusted from the caller: a mismatch would make
// the certificate impossible to remove by its real thumbprint.
func (d *DB) normalizeCert(instance string, c store.Certificate) (store.Certificate, error) {
	if c.Instance != "" && c.Instance != instance {
		return c, fmt.Errorf("certificate names instance %q, want %q", c.Instance, instance)
	}
	c.Instance = instance
	if len(c.DER) == 0 {
		return c, errors.New("certificate has no DER bytes")
	}
	tp := store.Thumbprint(c.DER)
	if c.Thumbprint != "" && !strings.EqualFold(c.Thumbprint, tp) {
		return c, fmt.Errorf("certificate thumbprint %q does not match its DER (SHA-1 %s)", c.Thumbprint, tp)
	}
	c.Thumbprint = tp
	if c.AddedAt.IsZero() {
		c.AddedAt = d.now()
	}
	return c, nil
}

func (d *DB) insertCert(ctx context.Context, tx *sql.Tx, c store.Certificate) (bool, error) {
	seq, err := bump(ctx, tx, c.Instance, "cert_seq")
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO certificates (instance, thumbprint, der, added_at, seq)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance, thumbprint) DO NOTHING`,
		c.Instance, c.Thumbprint, c.DER, c.AddedAt.UnixNano(), seq)
	if err != nil {
		return false, fmt.Errorf("insert certificate %s: %w", c.Thumbprint, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert certificate %s: %w", c.Thumbprint, err)
	}
	return n == 1, nil
}

// AddCertificate implements store.Store.
func (d *DB) AddCertificate(ctx context.Context, c store.Certificate, a store.AuditEntry) (bool, error) {
	instance := c.Instance
	if err := checkKey(instance); err != nil {
		return false, fmt.Errorf("sqlite: add certificate: %w", err)
	}
	c, err := d.normalizeCert(instance, c)
	if err != nil {
		return false, fmt.Errorf("sqlite: add certificate to %s: %w", instance, err)
	}
	var added bool
	err = d.withTx(ctx, "add certificate", func(tx *sql.Tx) error {
		var err error
		if added, err = d.insertCert(ctx, tx, c); err != nil {
			return fmt.Errorf("sqlite: add certificate to %s: %w", instance, err)
		}
		if err := d.appendAudit(ctx, tx, instance, a); err != nil {
			return fmt.Errorf("sqlite: add certificate to %s: %w", instance, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return added, nil
}

// RemoveCertificate implements store.Store.
func (d *DB) RemoveCertificate(ctx context.Context, instance, thumbprint string, a store.AuditEntry) (bool, error) {
	if err := checkKey(instance, thumbprint); err != nil {
		return false, fmt.Errorf("sqlite: remove certificate: %w", err)
	}
	thumbprint = strings.ToUpper(thumbprint)
	var removed bool
	err := d.withTx(ctx, "remove certificate", func(tx *sql.Tx) error {
		// Bump first: in PostgreSQL this locks the instance row, so the count
		// below cannot be invalidated by a concurrent removal.
		if _, err := bump(ctx, tx, instance, "cert_seq"); err != nil {
			return fmt.Errorf("sqlite: remove certificate from %s: %w", instance, err)
		}
		var present, total int
		if err := tx.QueryRowContext(ctx, `SELECT
			  COALESCE(SUM(CASE WHEN thumbprint = ? THEN 1 ELSE 0 END), 0), COUNT(*)
			FROM certificates WHERE instance = ?`, thumbprint, instance).Scan(&present, &total); err != nil {
			return fmt.Errorf("sqlite: remove certificate from %s: count: %w", instance, err)
		}
		if present == 0 {
			removed = false
		} else {
			if total <= 1 {
				return fmt.Errorf("sqlite: remove certificate %s from %s: %w", thumbprint, instance, store.ErrLastCertificate)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM certificates WHERE instance = ? AND thumbprint = ?`, instance, thumbprint); err != nil {
				return fmt.Errorf("sqlite: remove certificate %s from %s: %w", thumbprint, instance, err)
			}
			removed = true
		}
		if err := d.appendAudit(ctx, tx, instance, a); err != nil {
			return fmt.Errorf("sqlite: remove certificate from %s: %w", instance, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return removed, nil
}

// SeedCertificates implements store.Store.
func (d *DB) SeedCertificates(ctx context.Context, instance string, certs []store.Certificate, a store.AuditEntry) error {
	if err := checkKey(instance); err != nil {
		return fmt.Errorf("sqlite: seed certificates: %w", err)
	}
	if len(certs) == 0 {
		return fmt.Errorf("sqlite: seed certificates of %s: no certificates given", instance)
	}
	norm := make([]store.Certificate, len(certs))
	for i, c := range certs {
		var err error
		if norm[i], err = d.normalizeCert(instance, c); err != nil {
			return fmt.Errorf("sqlite: seed certificates of %s: certificate %d: %w", instance, i, err)
		}
	}
	return d.withTx(ctx, "seed certificates", func(tx *sql.Tx) error {
		// The first bump locks the instance row (PostgreSQL) before counting.
		if _, err := bump(ctx, tx, instance, "cert_seq"); err != nil {
			return fmt.Errorf("sqlite: seed certificates of %s: %w", instance, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM certificates WHERE instance = ?`, instance).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: seed certificates of %s: count: %w", instance, err)
		}
		if n > 0 {
			return errNoChange
		}
		for _, c := range norm {
			if _, err := d.insertCert(ctx, tx, c); err != nil {
				return fmt.Errorf("sqlite: seed certificates of %s: %w", instance, err)
			}
		}
		if err := d.appendAudit(ctx, tx, instance, a); err != nil {
			return fmt.Errorf("sqlite: seed certificates of %s: %w", instance, err)
		}
		return nil
	})
}

// Audit implements store.Store. limit <= 0 means no limit.
func (d *DB) Audit(ctx context.Context, instance string, limit int) ([]store.AuditEntry, error) {
	q := `SELECT id, at, actor, action, target, hash, detail FROM audit WHERE instance = ? ORDER BY id DESC`
	args := []any{instance}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit of %s: %w", instance, err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		e := store.AuditEntry{Instance: instance}
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Hash, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: audit of %s: %w", instance, err)
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit of %s: %w", instance, err)
	}
	return out, nil
}
