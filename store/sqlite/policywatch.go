package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/attestd/attestd/store"
)

var _ store.PolicyChanges = (*DB)(nil)

// PolicyPoll is how often a DB checks whether another connection (another
// process on the same file, or another DB of this one) has committed to the
// database: SQLite has no notifications, so the cached policies of a
// process are dropped within PolicyPoll of a change made elsewhere. Changes
// made through the DB itself drop them at once.
const PolicyPoll = 100 * time.Millisecond

// policyWatch polls PRAGMA data_version, which changes on a connection
// whenever any other connection has committed to the file since it was
// last read, on a connection of its own (a pooled one could change between
// polls). Any commit counts, not only policy changes: it drops the cached
// policies more often than needed, never less.
type policyWatch struct {
	db     *sql.DB // one connection, for the data_version poll
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // one poll at a time (the ticker's and SyncPolicies')
	conn    *sql.Conn
	version int64
}

func (d *DB) startPolicyWatch(dsn string) error {
	wdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	wdb.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	w := &policyWatch{db: wdb, cancel: cancel, done: make(chan struct{})}
	d.watch = w
	go func() {
		defer close(w.done)
		t := time.NewTicker(PolicyPoll)
		defer t.Stop()
		for {
			if err := d.pollPolicies(ctx); err != nil && ctx.Err() == nil {
				d.logger.WarnContext(ctx, "store: policy-change poll failed; reading policies from the database until it works", "path", d.path, "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (d *DB) stopPolicyWatch() {
	w := d.watch
	if w == nil {
		return
	}
	w.cancel()
	<-w.done
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	w.mu.Unlock()
	w.db.Close()
}

// pollPolicies reads data_version once: a change since the last poll bumps
// the policy epoch; either way every commit made before the poll began is
// now reflected, which confirms the poll's start time.
func (d *DB) pollPolicies(ctx context.Context) error {
	w := d.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	start := time.Now()
	if w.conn == nil {
		c, err := w.db.Conn(ctx)
		if err != nil {
			d.PolicyWatchLost()
			return err
		}
		w.conn = c
		// A new connection has no earlier version to compare with:
		// whatever happened before it is covered by this bump.
		var v int64
		if err := c.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			d.dropWatchConn()
			return err
		}
		w.version = v
		d.PolicyChanged()
		d.PolicyConfirmed(start)
		return nil
	}
	var v int64
	if err := w.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		d.dropWatchConn()
		return err
	}
	if v != w.version {
		w.version = v
		d.PolicyChanged()
	}
	d.PolicyConfirmed(start)
	return nil
}

// dropWatchConn gives up the poll connection after an error (w.mu held).
func (d *DB) dropWatchConn() {
	d.PolicyWatchLost()
	d.watch.conn.Close()
	d.watch.conn = nil
}

// SyncPolicies implements store.PolicyChanges: one poll, now.
func (d *DB) SyncPolicies(ctx context.Context) error {
	if err := d.pollPolicies(ctx); err != nil {
		return fmt.Errorf("sqlite: %s: sync policies: %w", d.path, err)
	}
	return nil
}
