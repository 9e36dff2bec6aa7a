package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attestd/attestd/store"
)

var _ store.KeyWatcher = (*DB)(nil)

// watchBackoff bounds the wait between reconnections of the LISTEN session.
const watchBackoff = 5 * time.Second

// WatchSigningKeys implements store.KeyWatcher with LISTEN on KeysChannel
// over a session of its own (outside the pool: a LISTEN session must stay
// open and idle). When the session breaks it reconnects with backoff and,
// after each (re)connection, calls changed for "" once: notifications sent
// while it was away are lost, so the caller rereads everything. It returns
// nil when ctx ends.
func (d *DB) WatchSigningKeys(ctx context.Context, changed func(instance string)) error {
	wait := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		err := d.listen(ctx, changed, !first)
		first = false
		if ctx.Err() != nil {
			return nil
		}
		d.logger.WarnContext(ctx, "store: signing-key notifications interrupted; reconnecting (replicas poll meanwhile)", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, watchBackoff)
	}
	return nil
}

func (d *DB) listen(ctx context.Context, changed func(string), resync bool) error {
	conn, err := pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx) //nolint:errcheck // closing a session we are leaving
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+KeysChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if resync {
		changed("")
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		changed(n.Payload)
	}
}
