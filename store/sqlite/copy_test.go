package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/attestd/attestd/store/sqlstore"
	"github.com/attestd/attestd/store/storetest"
)

// TestTablesCoverSchema keeps sqlstore's copy list (store migrate) in step
// with the migrations: every table and column of the migrated schema is
// copied and hashed.
func TestTablesCoverSchema(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	ctx := context.Background()
	rows, err := db.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	cols := sqlstore.Columns()
	if len(names) != len(cols) {
		t.Fatalf("schema tables %v, copied %v", names, cols)
	}
	for _, n := range names {
		r, err := db.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, n)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for r.Next() {
			var c string
			r.Scan(&c)
			have = append(have, c)
		}
		r.Close()
		if !slices.Equal(have, cols[n]) {
			t.Errorf("table %s: columns %v, copied %v", n, have, cols[n])
		}
	}
}

// TestCopySQLiteToSQLite: equal sums after a copy, and the copy keeps the
// data usable (policy read back).
func TestCopySQLiteToSQLite(t *testing.T) {
	ctx := context.Background()
	src, dst := openTemp(t), openTemp(t)
	defer src.Close()
	defer dst.Close()
	storetest.Fill(t, src)
	sums, err := src.DB.CopyTo(ctx, dst.DB)
	if err != nil {
		t.Fatal(err)
	}
	if sums["instance_secrets"].Rows != 1 || sums["used_nonces"].Rows != 1 {
		t.Fatalf("copied %+v", sums)
	}
	if p, err := dst.GetPolicy(ctx, "inst", "Tpm"); err != nil || p.Text != "y" {
		t.Fatalf("policy after copy: %+v %v", p, err)
	}
}
