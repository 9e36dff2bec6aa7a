package sqlstore

import (
	"context"
	"database/sql"
	"sort"
	"strings"

	"github.com/attestd/attestd/store"
)

var _ store.Resealer = (*DB)(nil)

// Reseal implements store.Resealer. Every value is read and, where reseal
// replaces it, updated in one transaction; audit entries and key
// notifications are part of it. The values are held in memory for the
// transaction: a few per instance (signing keys, one sealed secret).
func (d *DB) Reseal(ctx context.Context, reseal func(store.SealedValue) ([]byte, error), audit func(instance string, changed []store.SealedValue) store.AuditEntry) (int, error) {
	const what = "reseal"
	n := 0
	err := d.withTx(ctx, what, func(tx *sql.Tx) error {
		n = 0
		if d.dialect.LockSealed != "" {
			if _, err := tx.ExecContext(ctx, d.dialect.LockSealed); err != nil {
				return d.errf("%s: lock: %w", what, err)
			}
		}
		vals, err := d.sealedValues(ctx, tx)
		if err != nil {
			return err
		}
		changed := map[string][]store.SealedValue{}
		keysChanged := map[string]bool{}
		for _, v := range vals {
			nv, err := reseal(v)
			if err != nil {
				return err
			}
			if nv == nil {
				continue
			}
			if len(nv) == 0 {
				return d.errf("%s: %s: the new value is empty", what, v)
			}
			var res sql.Result
			if v.KID != "" {
				res, err = tx.ExecContext(ctx, d.q(`UPDATE signing_keys SET private = ? WHERE instance = ? AND kid = ?`), nv, v.Instance, v.KID)
				keysChanged[v.Instance] = true
			} else {
				res, err = tx.ExecContext(ctx, d.q(`UPDATE instance_secrets SET value = ? WHERE instance = ? AND name = ?`), nv, v.Instance, store.SealedSecretPrefix+v.Secret)
			}
			if err != nil {
				return d.errf("%s: %s: %w", what, v, err)
			}
			if c, err := res.RowsAffected(); err != nil || c != 1 {
				return d.errf("%s: %s: updated %d rows (%v), want 1", what, v, c, err)
			}
			v.Value = nil
			changed[v.Instance] = append(changed[v.Instance], v)
			n++
		}
		insts := make([]string, 0, len(changed))
		for inst := range changed {
			insts = append(insts, inst)
		}
		sort.Strings(insts)
		for _, inst := range insts {
			a := audit(inst, changed[inst])
			if err := checkAudit(inst, a); err != nil {
				return d.errf("%s: %w", what, err)
			}
			at := a.At
			if at.IsZero() {
				at = d.now()
			}
			id, err := d.bump(ctx, tx, inst, "audit_seq")
			if err != nil {
				return d.errf("%s: %w", what, err)
			}
			if err := d.insertAudit(ctx, tx, what, inst, id, at, a); err != nil {
				return err
			}
			if keysChanged[inst] && d.dialect.NotifyKeys != "" {
				if _, err := tx.ExecContext(ctx, d.q(d.dialect.NotifyKeys), inst); err != nil {
					return d.errf("%s: notify %s: %w", what, inst, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// sealedValues reads every signing key's private part and every sealed
// instance secret (names starting with store.SealedSecretPrefix; secrets
// earlier versions stored in plaintext are not sealed and are left out),
// in (instance, name) order.
func (d *DB) sealedValues(ctx context.Context, tx *sql.Tx) ([]store.SealedValue, error) {
	var out []store.SealedValue
	rows, err := tx.QueryContext(ctx, `SELECT instance, kid, private FROM signing_keys ORDER BY instance, kid`)
	if err != nil {
		return nil, d.errf("reseal: read signing keys: %w", err)
	}
	for rows.Next() {
		var v store.SealedValue
		if err := rows.Scan(&v.Instance, &v.KID, &v.Value); err != nil {
			rows.Close()
			return nil, d.errf("reseal: read signing keys: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Close(); err != nil {
		return nil, d.errf("reseal: read signing keys: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, d.errf("reseal: read signing keys: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT instance, name, value FROM instance_secrets ORDER BY instance, name`)
	if err != nil {
		return nil, d.errf("reseal: read instance secrets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v store.SealedValue
		var name string
		if err := rows.Scan(&v.Instance, &name, &v.Value); err != nil {
			return nil, d.errf("reseal: read instance secrets: %w", err)
		}
		var ok bool
		if v.Secret, ok = strings.CutPrefix(name, store.SealedSecretPrefix); ok && v.Secret != "" {
			out = append(out, v)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, d.errf("reseal: read instance secrets: %w", err)
	}
	return out, nil
}
