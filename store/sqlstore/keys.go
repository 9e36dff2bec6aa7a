package sqlstore

import (
	"context"
	"database/sql"
	"sort"
	"time"

	"github.com/attestd/attestd/store"
)

var _ store.KeyStore = (*DB)(nil)

// unixNano maps the zero time to 0 (the column's "not set").
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// SigningKeys implements store.KeyStore.
func (d *DB) SigningKeys(ctx context.Context, instance string) ([]store.SigningKey, error) {
	if err := checkKey(instance); err != nil {
		return nil, d.errf("signing keys: %w", err)
	}
	return d.signingKeys(ctx, d.db, instance)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (d *DB) signingKeys(ctx context.Context, q querier, instance string) ([]store.SigningKey, error) {
	rows, err := q.QueryContext(ctx, d.q(`SELECT kid, certificate, private, created_at, activate_at, retire_at
		FROM signing_keys WHERE instance = ? ORDER BY activate_at, kid`), instance)
	if err != nil {
		return nil, d.errf("signing keys of %s: %w", instance, err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		k := store.SigningKey{Instance: instance}
		var created, activate, retire int64
		if err := rows.Scan(&k.KID, &k.Certificate, &k.Private, &created, &activate, &retire); err != nil {
			return nil, d.errf("signing keys of %s: %w", instance, err)
		}
		k.Created, k.ActivateAt, k.RetireAt = fromUnixNano(created), fromUnixNano(activate), fromUnixNano(retire)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, d.errf("signing keys of %s: %w", instance, err)
	}
	return out, nil
}

// ChangeSigningKeys implements store.KeyStore. The IfNewest check reads the
// keys after write has locked the instance row (see write), so two
// replicas checking the same newest key cannot both commit.
func (d *DB) ChangeSigningKeys(ctx context.Context, instance string, c store.KeyChange, a store.AuditEntry) error {
	if err := checkKey(instance); err != nil {
		return d.errf("change signing keys: %w", err)
	}
	for _, k := range c.Add {
		if k.Instance != "" && k.Instance != instance {
			return d.errf("change signing keys of %s: key %s names instance %q", instance, k.KID, k.Instance)
		}
		if k.KID == "" || len(k.Certificate) == 0 || len(k.Private) == 0 {
			return d.errf("change signing keys of %s: a key needs a kid, a certificate and its private part", instance)
		}
		if k.ActivateAt.IsZero() {
			return d.errf("change signing keys of %s: key %s has no activation time", instance, k.KID)
		}
		if err := checkText(k.KID); err != nil {
			return err
		}
	}
	return d.write(ctx, "change signing keys", instance, a, func(tx *sql.Tx) error {
		cur, err := d.signingKeys(ctx, tx, instance)
		if err != nil {
			return err
		}
		if !c.Unconditional {
			newest := ""
			if len(cur) > 0 {
				newest = cur[len(cur)-1].KID
			}
			if newest != c.IfNewest {
				return d.errf("change signing keys of %s: newest key is %q, the change expected %q: %w", instance, newest, c.IfNewest, store.ErrKeyConflict)
			}
		}
		have := map[string]bool{}
		for _, k := range cur {
			have[k.KID] = true
		}
		created := d.now()
		for _, k := range c.Add {
			if have[k.KID] {
				return d.errf("change signing keys of %s: key %s exists: %w", instance, k.KID, store.ErrKeyConflict)
			}
			at := k.Created
			if at.IsZero() {
				at = created
			}
			if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO signing_keys (instance, kid, certificate, private, created_at, activate_at, retire_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`), instance, k.KID, k.Certificate, k.Private, at.UnixNano(), k.ActivateAt.UnixNano(), unixNano(k.RetireAt)); err != nil {
				return d.errf("change signing keys of %s: insert %s: %w", instance, k.KID, err)
			}
			have[k.KID] = true
		}
		akids := make([]string, 0, len(c.Activate))
		for kid := range c.Activate {
			akids = append(akids, kid)
		}
		sort.Strings(akids)
		for _, kid := range akids {
			if !have[kid] || c.Activate[kid].IsZero() {
				return d.errf("change signing keys of %s: activate %s: %w", instance, kid, store.ErrNotFound)
			}
			if _, err := tx.ExecContext(ctx, d.q(`UPDATE signing_keys SET activate_at = ? WHERE instance = ? AND kid = ?`),
				c.Activate[kid].UnixNano(), instance, kid); err != nil {
				return d.errf("change signing keys of %s: activate %s: %w", instance, kid, err)
			}
		}
		kids := make([]string, 0, len(c.Retire))
		for kid := range c.Retire {
			kids = append(kids, kid)
		}
		sort.Strings(kids) // one lock order for every writer
		for _, kid := range kids {
			if !have[kid] {
				return d.errf("change signing keys of %s: retire %s: %w", instance, kid, store.ErrNotFound)
			}
			if _, err := tx.ExecContext(ctx, d.q(`UPDATE signing_keys SET retire_at = ? WHERE instance = ? AND kid = ?`),
				unixNano(c.Retire[kid]), instance, kid); err != nil {
				return d.errf("change signing keys of %s: retire %s: %w", instance, kid, err)
			}
		}
		for _, kid := range c.Purge {
			if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM signing_keys WHERE instance = ? AND kid = ?`), instance, kid); err != nil {
				return d.errf("change signing keys of %s: purge %s: %w", instance, kid, err)
			}
		}
		if d.dialect.NotifyKeys != "" {
			if _, err := tx.ExecContext(ctx, d.q(d.dialect.NotifyKeys), instance); err != nil {
				return d.errf("change signing keys of %s: notify: %w", instance, err)
			}
		}
		return nil
	})
}
