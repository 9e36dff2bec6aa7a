package sqlstore

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestd/attestd/store"
)

// policyEpoch is the backend-independent half of store.PolicyChanges: the
// epoch, bumped by this handle's policy writes (PutPolicy, DeletePolicy,
// CopyTo) and by the backend's change watch (PolicyChanged), and the time
// of the watch's last confirmation (PolicyConfirmed). Until a backend
// confirms for the first time, PolicyEpoch vouches for nothing, so a DB
// without a watch (sqlstore alone) behaves as a store without a cache.
type policyEpoch struct {
	epoch atomic.Uint64
	// confirmed is the time (nanoseconds since base, monotonic) up to
	// which every change committed by others is known to be reflected in
	// epoch; 0: not confirmed (watch down or not started).
	confirmed atomic.Int64
	base      time.Time

	mu      sync.Mutex
	waiters chan struct{} // closed and replaced on every confirmation
}

// init sets base well before any time a watch may confirm (a confirmation
// is of a time before the call), keeping the monotonic clock reading.
func (p *policyEpoch) init() { p.base = time.Now().Add(-24 * time.Hour) }

// since is t as nanoseconds after base, at least 1 (0 means "never").
func (p *policyEpoch) since(t time.Time) int64 { return max(int64(t.Sub(p.base)), 1) }

// PolicyEpoch implements store.PolicyChanges for the backends (sqlite,
// postgres) that run a change watch; see there.
func (d *DB) PolicyEpoch() (uint64, bool) {
	p := &d.policy
	// The epoch is read before the confirmation: a confirmation that
	// races with a bump can only make this answer more conservative.
	e := p.epoch.Load()
	c := p.confirmed.Load()
	if c == 0 {
		return e, false
	}
	return e, p.since(time.Now())-c < int64(store.MaxPolicyStaleness)
}

// PolicyChanged records that a policy may have changed (a notification
// from another process, or a resynchronisation after the watch reconnected):
// every cached policy is stale.
func (d *DB) PolicyChanged() { d.policy.epoch.Add(1) }

// PolicyConfirmed records that every policy change committed by others
// before asOf has been passed to PolicyChanged. A backend calls it only
// from its watch, after it has processed everything up to asOf.
func (d *DB) PolicyConfirmed(asOf time.Time) {
	p := &d.policy
	n := p.since(asOf)
	for {
		c := p.confirmed.Load()
		if n <= c || p.confirmed.CompareAndSwap(c, n) {
			break
		}
	}
	p.mu.Lock()
	if p.waiters != nil {
		close(p.waiters)
		p.waiters = nil
	}
	p.mu.Unlock()
}

// PolicyWatchLost records that the watch broke: notifications may be lost
// from now on, so PolicyEpoch stops vouching at once (instead of after
// MaxPolicyStaleness) and every cached policy is stale. The backend's next
// PolicyConfirmed, after it has resynchronised, re-enables caching.
func (d *DB) PolicyWatchLost() {
	d.policy.confirmed.Store(0)
	d.policy.epoch.Add(1)
}

// ConfirmedSince reports whether the watch has confirmed a time at or
// after t, and otherwise returns a channel closed at the next confirmation
// (for SyncPolicies implementations).
func (d *DB) ConfirmedSince(t time.Time) (bool, <-chan struct{}) {
	p := &d.policy
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.confirmed.Load() >= p.since(t) {
		return true, nil
	}
	if p.waiters == nil {
		p.waiters = make(chan struct{})
	}
	return false, p.waiters
}
