package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attestd/attestd/store"
)

var _ store.PolicyChanges = (*DB)(nil)

// PoliciesChannel is the LISTEN/NOTIFY channel on which every committed
// PutPolicy and DeletePolicy names its instance, so that every replica
// drops its cached policies (store.PolicyChanges). The same channel
// carries each replica's heartbeats ("hb ID SEQ").
const PoliciesChannel = "attestd_policies"

// policyHeartbeat is how often a replica sends itself a heartbeat on
// PoliciesChannel. NOTIFY delivers in commit order, so receiving a
// heartbeat sent at t proves that the notification of every change
// committed before t has been received: the watch confirms t
// (PolicyConfirmed). Four heartbeats fit in store.MaxPolicyStaleness, so one
// lost or slow heartbeat does not turn the cache off.
const policyHeartbeat = store.MaxPolicyStaleness / 4

// policyWatch is the change watch behind store.PolicyChanges: a LISTEN
// session of its own (outside the pool, like WatchSigningKeys) and a
// heartbeat sender. It runs from Open to Close.
type policyWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	id     string // names this handle's heartbeats among all replicas'

	mu   sync.Mutex
	seq  uint64
	sent map[uint64]time.Time // heartbeat → when it was sent
}

// startPolicyWatch starts the watch; Close stops it.
func (d *DB) startPolicyWatch() error {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("policy watch id: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &policyWatch{cancel: cancel, id: hex.EncodeToString(id[:]), sent: map[uint64]time.Time{}}
	d.watch = w
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		d.watchPolicies(ctx)
	}()
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(policyHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			hctx, hcancel := context.WithTimeout(ctx, policyHeartbeat)
			if err := d.heartbeat(hctx); err != nil && ctx.Err() == nil {
				d.logger.DebugContext(ctx, "store: policy-change heartbeat failed", "error", err)
			}
			hcancel()
		}
	}()
	return nil
}

// stopPolicyWatch ends the watch and waits for it.
func (d *DB) stopPolicyWatch() {
	if d.watch != nil {
		d.watch.cancel()
		d.watch.wg.Wait()
	}
}

// heartbeat sends one heartbeat through the pool.
func (d *DB) heartbeat(ctx context.Context) error {
	w := d.watch
	now := time.Now()
	w.mu.Lock()
	w.seq++
	seq := w.seq
	w.sent[seq] = now
	for s, at := range w.sent { // heartbeats that never came back
		if now.Sub(at) > 2*store.MaxPolicyStaleness {
			delete(w.sent, s)
		}
	}
	w.mu.Unlock()
	_, err := d.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, PoliciesChannel, "hb "+w.id+" "+strconv.FormatUint(seq, 10))
	return err
}

// received handles one notification of PoliciesChannel.
func (d *DB) received(payload string) {
	rest, ok := strings.CutPrefix(payload, "hb ")
	if !ok {
		d.PolicyChanged() // an instance name: some replica changed a policy
		return
	}
	id, seqText, _ := strings.Cut(rest, " ")
	if id != d.watch.id {
		return // another replica's heartbeat
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return
	}
	w := d.watch
	w.mu.Lock()
	at, ok := w.sent[seq]
	delete(w.sent, seq)
	w.mu.Unlock()
	if ok {
		d.PolicyConfirmed(at)
	}
}

// watchPolicies keeps a LISTEN session on PoliciesChannel until ctx ends,
// reconnecting with backoff. While it is away, PolicyEpoch vouches for
// nothing (PolicyWatchLost), so replicas read every policy from the
// database, as they do without a cache.
func (d *DB) watchPolicies(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := d.listenPolicies(ctx)
		d.PolicyWatchLost()
		if ctx.Err() != nil {
			return
		}
		d.logger.WarnContext(ctx, "store: policy-change notifications interrupted; reading policies from the database until they resume", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, watchBackoff)
	}
}

func (d *DB) listenPolicies(ctx context.Context) error {
	// Once LISTEN is in force: changes committed while no session listened
	// were announced to nobody, so everything cached before now is stale.
	// Confirmation (and with it caching) resumes with the first heartbeat
	// this session sees. Heartbeats arrive every policyHeartbeat, so
	// MaxPolicyStaleness of silence means the session is gone.
	return d.session(ctx, PoliciesChannel, store.MaxPolicyStaleness, d.PolicyChanged, d.received)
}

// SyncPolicies implements store.PolicyChanges: it sends a heartbeat and
// waits until the watch has received it, and with it every notification
// committed before. It waits for the watch to (re)connect if it is down.
func (d *DB) SyncPolicies(ctx context.Context) error {
	start := time.Now()
	for {
		if err := d.heartbeat(ctx); err != nil {
			return fmt.Errorf("postgres: sync policies: %w", err)
		}
		// The heartbeat may go to a session that breaks before it arrives:
		// send another after a while.
		resend := time.NewTimer(policyHeartbeat)
	wait:
		for {
			ok, ch := d.ConfirmedSince(start)
			if ok {
				resend.Stop()
				return nil
			}
			select {
			case <-ctx.Done():
				resend.Stop()
				return fmt.Errorf("postgres: sync policies: %w", ctx.Err())
			case <-ch:
			case <-resend.C:
				break wait
			}
		}
	}
}
