package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// column kinds of the portable schema.
const (
	kText  = 't'
	kInt   = 'i'
	kBytes = 'b' // BYTEA; NULL allowed
)

type column struct {
	name string
	kind byte
}

type table struct {
	name  string
	cols  []column
	order string
}

// tables is every table of the schema (store/migrations) with its columns,
// in an order that copies parents before what refers to them. A new
// migration that adds a table or column must add it here:
// TestTablesCoverSchema checks.
var tables = []table{
	{"instances", []column{{"name", kText}, {"audit_seq", kInt}, {"cert_seq", kInt}}, "name"},
	{"policies", []column{{"instance", kText}, {"att_type", kText}, {"jws", kText}, {"body", kText}, {"signer", kBytes}, {"updated_at", kInt}}, "instance, att_type"},
	{"certificates", []column{{"instance", kText}, {"thumbprint", kText}, {"der", kBytes}, {"added_at", kInt}, {"seq", kInt}}, "instance, thumbprint"},
	{"audit", []column{{"instance", kText}, {"id", kInt}, {"at", kInt}, {"actor", kText}, {"action", kText}, {"target", kText}, {"hash", kText}, {"detail", kText}}, "instance, id"},
	{"instance_secrets", []column{{"instance", kText}, {"name", kText}, {"value", kBytes}, {"created_at", kInt}}, "instance, name"},
	{"used_nonces", []column{{"instance", kText}, {"nonce", kText}, {"expires_at", kInt}}, "instance, nonce"},
	{"signing_keys", []column{{"instance", kText}, {"kid", kText}, {"certificate", kBytes}, {"private", kBytes}, {"created_at", kInt}, {"activate_at", kInt}, {"retire_at", kInt}}, "instance, kid"},
}

// TableSum is a table's row count and SHA-256 over its rows in key order,
// each value typed and length-prefixed, so equal sums mean equal contents
// whichever engine holds them.
type TableSum struct {
	Rows   int64
	SHA256 string
}

func (t table) selectAll() string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	return "SELECT " + strings.Join(names, ", ") + " FROM " + t.name + " ORDER BY " + t.order
}

// scanRow reads one row into typed values.
func (t table) scanRow(rows *sql.Rows) ([]any, error) {
	vals := make([]any, len(t.cols))
	ptrs := make([]any, len(t.cols))
	for i, c := range t.cols {
		switch c.kind {
		case kText:
			ptrs[i] = new(string)
		case kInt:
			ptrs[i] = new(int64)
		case kBytes:
			ptrs[i] = new([]byte)
		}
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, c := range t.cols {
		switch c.kind {
		case kText:
			vals[i] = *ptrs[i].(*string)
		case kInt:
			vals[i] = *ptrs[i].(*int64)
		case kBytes:
			if b := *ptrs[i].(*[]byte); b != nil {
				vals[i] = append([]byte{}, b...)
			} else {
				vals[i] = nil
			}
		}
	}
	return vals, nil
}

func hashRow(h hash.Hash, vals []any) {
	var n [8]byte
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			h.Write([]byte{'N'})
		case string:
			binary.BigEndian.PutUint64(n[:], uint64(len(x)))
			h.Write([]byte{'t'})
			h.Write(n[:])
			h.Write([]byte(x))
		case int64:
			binary.BigEndian.PutUint64(n[:], uint64(x))
			h.Write([]byte{'i'})
			h.Write(n[:])
		case []byte:
			binary.BigEndian.PutUint64(n[:], uint64(len(x)))
			h.Write([]byte{'b'})
			h.Write(n[:])
			h.Write(x)
		}
	}
}

// Summary returns every table's TableSum.
func (d *DB) Summary(ctx context.Context) (map[string]TableSum, error) {
	out := map[string]TableSum{}
	for _, t := range tables {
		rows, err := d.db.QueryContext(ctx, t.selectAll())
		if err != nil {
			return nil, d.errf("summary of %s: %w", t.name, err)
		}
		h := sha256.New()
		var n int64
		for rows.Next() {
			vals, err := t.scanRow(rows)
			if err != nil {
				rows.Close()
				return nil, d.errf("summary of %s: %w", t.name, err)
			}
			hashRow(h, vals)
			n++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, d.errf("summary of %s: %w", t.name, err)
		}
		out[t.name] = TableSum{Rows: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	return out, nil
}

// CopyTo copies every row of every table of d into dst, which must be
// empty, in one transaction on dst (all or nothing), then compares the
// Summary of both and fails naming the first table that differs. Both
// must be migrated to the same schema version. d should not be written
// meanwhile (stop the servers using it).
func (d *DB) CopyTo(ctx context.Context, dst *DB) (map[string]TableSum, error) {
	for _, t := range tables {
		var n int64
		if err := dst.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.name).Scan(&n); err != nil {
			return nil, dst.errf("copy: count %s: %w", t.name, err)
		}
		if n > 0 {
			return nil, dst.errf("copy: the target's table %s has %d rows; copying needs an empty database", t.name, n)
		}
	}
	defer dst.PolicyChanged() // the copy writes policies
	err := dst.withTx(ctx, "copy", func(tx *sql.Tx) error {
		for _, t := range tables {
			marks := strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ")
			names := make([]string, len(t.cols))
			for i, c := range t.cols {
				names[i] = c.name
			}
			ins, err := tx.PrepareContext(ctx, dst.q("INSERT INTO "+t.name+" ("+strings.Join(names, ", ")+") VALUES ("+marks+")"))
			if err != nil {
				return dst.errf("copy %s: prepare: %w", t.name, err)
			}
			rows, err := d.db.QueryContext(ctx, t.selectAll())
			if err != nil {
				ins.Close()
				return d.errf("copy %s: read: %w", t.name, err)
			}
			for rows.Next() {
				vals, err := t.scanRow(rows)
				if err == nil {
					_, err = ins.ExecContext(ctx, vals...)
				}
				if err != nil {
					rows.Close()
					ins.Close()
					return dst.errf("copy %s: %w", t.name, err)
				}
			}
			err = rows.Err()
			rows.Close()
			ins.Close()
			if err != nil {
				return d.errf("copy %s: read: %w", t.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	from, err := d.Summary(ctx)
	if err != nil {
		return nil, err
	}
	to, err := dst.Summary(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if from[t.name] != to[t.name] {
			return nil, fmt.Errorf("copy: table %s differs after the copy: source %d rows sha256 %s, target %d rows sha256 %s (was the source written during the copy?)",
				t.name, from[t.name].Rows, from[t.name].SHA256, to[t.name].Rows, to[t.name].SHA256)
		}
	}
	return to, nil
}

// Columns lists the columns CopyTo and Summary cover, per table (for the
// test that keeps them in step with the migrations).
func Columns() map[string][]string {
	out := map[string][]string{}
	for _, t := range tables {
		for _, c := range t.cols {
			out[t.name] = append(out[t.name], c.name)
		}
	}
	return out
}
