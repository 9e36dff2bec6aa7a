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
// open and idle). After each connection, the first one included, it calls
// changed for "" once LISTEN is in force: notifications sent before that
// are lost — while the session was broken, and at startup between the
// caller's first read of the keys and LISTEN — so the caller rereads
// everything. When the session breaks it reconnects with backoff. It
// returns nil when ctx ends.
func (d *DB) WatchSigningKeys(ctx context.Context, changed func(instance string)) error {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := d.listen(ctx, changed)
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

func (d *DB) listen(ctx context.Context, changed func(string)) error {
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
	changed("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		changed(n.Payload)
	}
}
