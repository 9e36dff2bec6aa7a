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
	return d.session(ctx, KeysChannel, 0, func() { changed("") }, changed)
}

// session holds one LISTEN session on channel, outside the pool: it
// connects (within watchBackoff), listens, calls listening once LISTEN is in
// force, then notified for each notification's payload. silence, when
// positive, bounds the wait for the next notification (a heartbeat's
// absence means the session is gone even if its socket has not said so).
// It returns the error that ended the session.
func (d *DB) session(ctx context.Context, channel string, silence time.Duration, listening func(), notified func(string)) error {
	cctx, cancel := context.WithTimeout(ctx, watchBackoff)
	conn, err := pgx.ConnectConfig(cctx, d.cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx) //nolint:errcheck // closing a session we are leaving
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if silence > 0 {
			wctx, cancel = context.WithTimeout(ctx, silence)
		}
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			return err
		}
		notified(n.Payload)
	}
}
