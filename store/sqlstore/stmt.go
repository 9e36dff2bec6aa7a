package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmts are statements of the hot path (every attestation reads the policy
// in force), prepared once per DB instead of parsed by the database for
// every query: with SQLite in process, parsing the SELECT was about 3 % of
// an attestation's CPU with ES256 tokens (issue 9). database/sql prepares
// them again on each connection it uses, transparently.
type stmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns the prepared statement of query (already rebound),
// preparing it on first use. A failed preparation is not cached.
func (d *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	d.stmts.mu.Lock()
	defer d.stmts.mu.Unlock()
	if s, ok := d.stmts.m[query]; ok {
		return s, nil
	}
	s, err := d.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if d.stmts.m == nil {
		d.stmts.m = map[string]*sql.Stmt{}
	}
	d.stmts.m[query] = s
	return s, nil
}
