// Package sqlstore implements store.Store over database/sql with the
// portable SQL of store/migrations. It holds everything the SQL backends
// share: the statements, the transaction shapes and the rules of the Store
// contract (idempotency, the last-certificate check, audit in the same
// transaction). A backend (store/sqlite, store/postgres) opens the
// database with its durability settings, applies migrations, and wraps a
// *DB made by New.
//
// Serialisation: every write transaction starts by bumping a per-instance
// counter with INSERT … ON CONFLICT … DO UPDATE … RETURNING. In PostgreSQL
// (READ COMMITTED) that row lock orders all writes of one instance, so the
// certificate count read afterwards cannot be invalidated by a concurrent
// removal; in SQLite the backend's BEGIN IMMEDIATE already serialises
// writers. Statements use "?" placeholders, turned into the driver's by
// Dialect.Rebind.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attestd/attestd/store"
)

// Dialect adapts the shared SQL to one driver.
type Dialect struct {
	Name string // for error messages, e.g. "sqlite"
	// Rebind rewrites "?" placeholders (nil: keep them, as SQLite does).
	Rebind func(query string) string
	// NotifyKeys, when set, is run inside every ChangeSigningKeys
	// transaction with the instance name as its one argument, to tell
	// other processes once the change commits (PostgreSQL: pg_notify,
	// which is delivered on commit and dropped on rollback).
	NotifyKeys string
	// NotifyPolicies, when set, is run inside every PutPolicy and
	// DeletePolicy transaction with the instance name as its one
	// argument, so that other processes drop their cached policies once
	// the change commits (store.PolicyChanges).
	NotifyPolicies string
	// LockSealed, when set, is run first in a Reseal transaction to hold
	// off every other writer of the instances, signing_keys and
	// instance_secrets tables until it commits (PostgreSQL: LOCK TABLE;
	// SQLite's BEGIN IMMEDIATE already excludes every other writer).
	LockSealed string
}

// RebindDollar turns "?" placeholders into $1, $2, … (PostgreSQL). The
// shared statements contain no "?" inside string literals.
func RebindDollar(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// DB is a store.Store over a *sql.DB. It is safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
	stmts   stmts       // see stmt.go
	policy  policyEpoch // see policyepoch.go
}

var _ store.Store = (*DB)(nil)

// New wraps db, whose schema must be migrated. now fills zero timestamps
// (AuditEntry.At, Policy.UpdatedAt, Certificate.AddedAt).
func New(db *sql.DB, d Dialect, now func() time.Time) *DB {
	if d.Name == "" {
		d.Name = "sql"
	}
	if d.Rebind == nil {
		d.Rebind = func(q string) string { return q }
	}
	out := &DB{db: db, dialect: d, now: now}
	out.policy.init()
	return out
}

// Close closes the underlying *sql.DB.
func (d *DB) Close() error { return d.db.Close() }

// errf formats an error prefixed with the backend name.
func (d *DB) errf(format string, args ...any) error {
	return fmt.Errorf(d.dialect.Name+": "+format, args...)
}

// q rebinds a statement for the driver.
func (d *DB) q(query string) string { return d.dialect.Rebind(query) }

// errNoChange makes withTx roll back and report success: the transaction
// found nothing to do (nothing is kept, not even an audit entry).
var errNoChange = errors.New("no change")

// withTx runs fn in one write transaction and commits it.
func (d *DB) withTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.errf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		rerr := tx.Rollback()
		if errors.Is(err, errNoChange) {
			if rerr != nil {
				return d.errf("%s: rollback: %w", what, rerr)
			}
			return nil
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return d.errf("%s: commit: %w", what, err)
	}
	return nil
}

// bump increments and returns one of the per-instance counters, creating
// the instance row on first use.
func (d *DB) bump(ctx context.Context, tx *sql.Tx, instance, column string) (int64, error) {
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
		return 0, d.errf("unknown counter %q", column)
	}
	var v int64
	if err := tx.QueryRowContext(ctx, d.q(q), instance).Scan(&v); err != nil {
		return 0, fmt.Errorf("bump %s: %w", column, err)
	}
	return v, nil
}

// checkAudit validates an audit entry before any transaction starts.
func checkAudit(instance string, a store.AuditEntry) error {
	if a.Instance != "" && a.Instance != instance {
		return fmt.Errorf("audit entry names instance %q but the change is to %q", a.Instance, instance)
	}
	if a.Action == "" {
		return errors.New("audit entry has no action")
	}
	if err := checkText(a.Actor, a.Action, a.Target, a.Hash, a.Detail, a.RequireSigner); err != nil {
		return fmt.Errorf("audit entry: %w", err)
	}
	return nil
}

// write runs one admin change of instance: in a single transaction it
// first reserves the next audit id (which, in PostgreSQL, locks the
// instance row, so every write of one instance is serialised and takes its
// locks in the same order), then checks a.RequireSigner, then runs fn,
// then appends a under that id. If the check or fn fails nothing is kept,
// the audit id included.
//
// The signer check reads the certificates table after the instance row
// lock is held. Every certificate change bumps the same row first, so a
// removal either committed before the lock was granted (and READ
// COMMITTED's fresh snapshot for the next statement sees it gone) or waits
// until this transaction ends: the check cannot be invalidated before the
// commit. In SQLite BEGIN IMMEDIATE gives the same order.
func (d *DB) write(ctx context.Context, what, instance string, a store.AuditEntry, fn func(tx *sql.Tx) error) error {
	if err := checkAudit(instance, a); err != nil {
		return d.errf("%s: %w", what, err)
	}
	at := a.At
	if at.IsZero() {
		at = d.now()
	}
	return d.withTx(ctx, what, func(tx *sql.Tx) error {
		id, err := d.bump(ctx, tx, instance, "audit_seq")
		if err != nil {
			return d.errf("%s: %w", what, err)
		}
		if a.RequireSigner != "" {
			if err := d.checkSigner(ctx, tx, instance, a.RequireSigner); err != nil {
				return d.errf("%s: %w", what, err)
			}
		}
		if err := fn(tx); err != nil {
			return err
		}
		return d.insertAudit(ctx, tx, what, instance, id, at, a)
	})
}

// insertAudit appends a under id (reserved by bump) in tx.
func (d *DB) insertAudit(ctx context.Context, tx *sql.Tx, what, instance string, id int64, at time.Time, a store.AuditEntry) error {
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO audit (instance, id, at, actor, action, target, hash, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), instance, id, at.UnixNano(), a.Actor, a.Action, a.Target, a.Hash, a.Detail); err != nil {
		return d.errf("%s: insert audit entry: %w", what, err)
	}
	return nil
}

// checkSigner returns store.ErrSignerNotCurrent unless instance has the
// certificate with thumbprint. It must run inside a write transaction
// after bump has locked the instance (see write).
func (d *DB) checkSigner(ctx context.Context, tx *sql.Tx, instance, thumbprint string) error {
	tp := strings.ToUpper(thumbprint)
	var n int
	if err := tx.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM certificates WHERE instance = ? AND thumbprint = ?`),
		instance, tp).Scan(&n); err != nil {
		return fmt.Errorf("check signer %s: %w", tp, err)
	}
	if n == 0 {
		return fmt.Errorf("signer %s of instance %s: %w", tp, instance, store.ErrSignerNotCurrent)
	}
	return nil
}

// checkText enforces store.ErrInvalidText on every string a write stores.
func checkText(fields ...string) error {
	for _, f := range fields {
		if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
			return store.ErrInvalidText
		}
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
	st, err := d.prepared(ctx, d.q(`SELECT jws, body, signer, updated_at FROM policies
		WHERE instance = ? AND att_type = ?`))
	if err != nil {
		return nil, d.errf("get policy %s/%s: %w", instance, typ, err)
	}
	row := st.QueryRowContext(ctx, instance, typ)
	p := &store.Policy{Instance: instance, Type: typ}
	var signer []byte
	var updated int64
	if err := row.Scan(&p.JWS, &p.Text, &signer, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, d.errf("policy %s/%s: %w", instance, typ, store.ErrNotFound)
		}
		return nil, d.errf("get policy %s/%s: %w", instance, typ, err)
	}
	if len(signer) > 0 {
		p.Signer = signer
	}
	p.UpdatedAt = time.Unix(0, updated).UTC()
	return p, nil
}

// PutPolicy implements store.Store.
func (d *DB) PutPolicy(ctx context.Context, p *store.Policy, a store.AuditEntry) error {
	// On every return, after the transaction, committed or not (an error
	// may hide a commit): policies cached by this handle's users are stale.
	defer d.PolicyChanged()
	if p == nil {
		return d.errf("put policy: nil policy")
	}
	if err := checkKey(p.Instance, p.Type); err != nil {
		return d.errf("put policy: %w", err)
	}
	if err := checkText(p.Instance, p.Type, p.JWS, p.Text); err != nil {
		return d.errf("put policy %q/%q: %w", p.Instance, p.Type, err)
	}
	updated := p.UpdatedAt
	if updated.IsZero() {
		updated = d.now()
	}
	var signer any // NULL for unsigned policies
	if len(p.Signer) > 0 {
		signer = p.Signer
	}
	return d.write(ctx, "put policy", p.Instance, a, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO policies (instance, att_type, jws, body, signer, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (instance, att_type) DO UPDATE SET
			  jws = excluded.jws, body = excluded.body, signer = excluded.signer, updated_at = excluded.updated_at`),
			p.Instance, p.Type, p.JWS, p.Text, signer, updated.UnixNano()); err != nil {
			return d.errf("put policy %s/%s: %w", p.Instance, p.Type, err)
		}
		return d.notifyPolicies(ctx, tx, p.Instance)
	})
}

// DeletePolicy implements store.Store.
func (d *DB) DeletePolicy(ctx context.Context, instance, typ string, a store.AuditEntry) error {
	defer d.PolicyChanged() // as in PutPolicy
	if err := checkKey(instance, typ); err != nil {
		return d.errf("delete policy: %w", err)
	}
	if err := checkText(instance, typ); err != nil {
		return d.errf("delete policy %q/%q: %w", instance, typ, err)
	}
	return d.write(ctx, "delete policy", instance, a, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM policies WHERE instance = ? AND att_type = ?`), instance, typ); err != nil {
			return d.errf("delete policy %s/%s: %w", instance, typ, err)
		}
		return d.notifyPolicies(ctx, tx, instance)
	})
}

// notifyPolicies runs the dialect's NotifyPolicies in tx, if any.
func (d *DB) notifyPolicies(ctx context.Context, tx *sql.Tx, instance string) error {
	if d.dialect.NotifyPolicies == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, d.q(d.dialect.NotifyPolicies), instance); err != nil {
		return d.errf("policy change of %s: notify: %w", instance, err)
	}
	return nil
}

// Certificates implements store.Store.
func (d *DB) Certificates(ctx context.Context, instance string) ([]store.Certificate, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT thumbprint, der, added_at FROM certificates
		WHERE instance = ? ORDER BY seq`), instance)
	if err != nil {
		return nil, d.errf("list certificates of %s: %w", instance, err)
	}
	defer rows.Close()
	var out []store.Certificate
	for rows.Next() {
		c := store.Certificate{Instance: instance}
		var added int64
		if err := rows.Scan(&c.Thumbprint, &c.DER, &added); err != nil {
			return nil, d.errf("list certificates of %s: %w", instance, err)
		}
		c.AddedAt = time.Unix(0, added).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, d.errf("list certificates of %s: %w", instance, err)
	}
	return out, nil
}

// normalizeCert checks c and fills its thumbprint and time. The thumbprint is
// derived from the DER, never trusted from the caller: a mismatch would make
// the certificate impossible to remove by its real thumbprint.
func (d *DB) normalizeCert(instance string, c store.Certificate) (store.Certificate, error) {
	if err := checkText(instance); err != nil {
		return c, err
	}
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
	seq, err := d.bump(ctx, tx, c.Instance, "cert_seq")
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, d.q(`INSERT INTO certificates (instance, thumbprint, der, added_at, seq)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance, thumbprint) DO NOTHING`),
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
		return false, d.errf("add certificate: %w", err)
	}
	c, err := d.normalizeCert(instance, c)
	if err != nil {
		return false, d.errf("add certificate to %s: %w", instance, err)
	}
	var added bool
	err = d.write(ctx, "add certificate", instance, a, func(tx *sql.Tx) error {
		var err error
		if added, err = d.insertCert(ctx, tx, c); err != nil {
			return d.errf("add certificate to %s: %w", instance, err)
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
		return false, d.errf("remove certificate: %w", err)
	}
	if err := checkText(instance, thumbprint); err != nil {
		return false, d.errf("remove certificate: %w", err)
	}
	thumbprint = strings.ToUpper(thumbprint)
	var removed bool
	// write locks the instance first, so the count below cannot be
	// invalidated by a concurrent removal (PostgreSQL, READ COMMITTED).
	err := d.write(ctx, "remove certificate", instance, a, func(tx *sql.Tx) error {
		var present, total int
		if err := tx.QueryRowContext(ctx, d.q(`SELECT
			  COALESCE(SUM(CASE WHEN thumbprint = ? THEN 1 ELSE 0 END), 0), COUNT(*)
			FROM certificates WHERE instance = ?`), thumbprint, instance).Scan(&present, &total); err != nil {
			return d.errf("remove certificate from %s: count: %w", instance, err)
		}
		if present == 0 {
			removed = false
		} else {
			if total <= 1 {
				return d.errf("remove certificate %s from %s: %w", thumbprint, instance, store.ErrLastCertificate)
			}
			if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM certificates WHERE instance = ? AND thumbprint = ?`), instance, thumbprint); err != nil {
				return d.errf("remove certificate %s from %s: %w", thumbprint, instance, err)
			}
			removed = true
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
		return d.errf("seed certificates: %w", err)
	}
	if len(certs) == 0 {
		return d.errf("seed certificates of %s: no certificates given", instance)
	}
	norm := make([]store.Certificate, len(certs))
	for i, c := range certs {
		var err error
		if norm[i], err = d.normalizeCert(instance, c); err != nil {
			return d.errf("seed certificates of %s: certificate %d: %w", instance, i, err)
		}
	}
	return d.write(ctx, "seed certificates", instance, a, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM certificates WHERE instance = ?`), instance).Scan(&n); err != nil {
			return d.errf("seed certificates of %s: count: %w", instance, err)
		}
		if n > 0 {
			return errNoChange
		}
		for _, c := range norm {
			if _, err := d.insertCert(ctx, tx, c); err != nil {
				return d.errf("seed certificates of %s: %w", instance, err)
			}
		}
		return nil
	})
}

// Audit implements store.Store. limit <= 0 means no limit.
func (d *DB) Audit(ctx context.Context, instance string, limit int) ([]store.AuditEntry, error) {
	return d.AuditPage(ctx, store.AuditQuery{Instance: instance, Limit: limit})
}

// AuditPage implements store.Store. It reads the primary key (instance, id)
// backwards, so a page costs Limit rows however long the trail is.
func (d *DB) AuditPage(ctx context.Context, aq store.AuditQuery) ([]store.AuditEntry, error) {
	instance := aq.Instance
	q := `SELECT id, at, actor, action, target, hash, detail FROM audit WHERE instance = ?`
	args := []any{instance}
	if aq.Before > 0 {
		q += ` AND id < ?`
		args = append(args, aq.Before)
	}
	if !aq.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, aq.Since.UnixNano())
	}
	q += ` ORDER BY id DESC`
	if aq.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, aq.Limit)
	}
	rows, err := d.db.QueryContext(ctx, d.q(q), args...)
	if err != nil {
		return nil, d.errf("audit of %s: %w", instance, err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		e := store.AuditEntry{Instance: instance}
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Hash, &e.Detail); err != nil {
			return nil, d.errf("audit of %s: %w", instance, err)
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, d.errf("audit of %s: %w", instance, err)
	}
	return out, nil
}

// InstanceSecret implements store.Store: read, else insert (first writer
// wins) and read back what was stored.
func (d *DB) InstanceSecret(ctx context.Context, instance, name string, generate func() ([]byte, error)) ([]byte, error) {
	if err := checkKey(instance, name); err != nil {
		return nil, d.errf("instance secret: %w", err)
	}
	read := func() ([]byte, error) {
		var v []byte
		err := d.db.QueryRowContext(ctx, d.q(`SELECT value FROM instance_secrets WHERE instance = ? AND name = ?`), instance, name).Scan(&v)
		return v, err
	}
	v, err := read()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, d.errf("instance secret %s/%s: %w", instance, name, err)
	}
	nv, err := generate()
	if err != nil {
		return nil, d.errf("instance secret %s/%s: generate: %w", instance, name, err)
	}
	if len(nv) == 0 {
		return nil, d.errf("instance secret %s/%s: generated an empty secret", instance, name)
	}
	if _, err := d.db.ExecContext(ctx, d.q(`INSERT INTO instance_secrets (instance, name, value, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (instance, name) DO NOTHING`), instance, name, nv, d.now().UnixNano()); err != nil {
		return nil, d.errf("instance secret %s/%s: insert: %w", instance, name, err)
	}
	if v, err = read(); err != nil {
		return nil, d.errf("instance secret %s/%s: read back: %w", instance, name, err)
	}
	return v, nil
}

// UseNonce implements store.Store in one transaction: prune the instance's
// expired records, then insert; a conflict is a replay.
func (d *DB) UseNonce(ctx context.Context, instance, nonce string, now, expires time.Time) (bool, error) {
	if err := checkKey(instance, nonce); err != nil {
		return false, d.errf("use nonce: %w", err)
	}
	if err := checkText(nonce); err != nil {
		return false, err
	}
	fresh := false
	err := d.withTx(ctx, "use nonce", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM used_nonces WHERE instance = ? AND expires_at <= ?`), instance, now.UnixNano()); err != nil {
			return d.errf("use nonce: prune: %w", err)
		}
		r, err := tx.ExecContext(ctx, d.q(`INSERT INTO used_nonces (instance, nonce, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (instance, nonce) DO NOTHING`), instance, nonce, expires.UnixNano())
		if err != nil {
			return d.errf("use nonce: insert: %w", err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return d.errf("use nonce: %w", err)
		}
		fresh = n == 1
		return nil
	})
	return fresh, err
}
