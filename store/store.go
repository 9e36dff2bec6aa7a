// Package store persists attestd's state: policies (with the exact JWS that
// set them and its signer), policy-management certificates, instance state and
// an audit trail of every admin change. Two backends share one portable SQL
// implementation (store/sqlstore, store/migrations): store/sqlite, embedded,
// the default; and store/postgres, one database shared by stateless replicas.
//
// Every write method returns only after the change is durable, and applies the
// change and its audit entry in one transaction: a crash never leaves a
// half-applied change or a change without its audit entry.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a requested record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrLastCertificate is returned when removing an instance's only remaining
// policy-management certificate.
var ErrLastCertificate = errors.New("store: cannot remove the last policy-management certificate")

// ErrSignerNotCurrent is returned by a write whose AuditEntry.RequireSigner
// names a certificate the instance does not have (any more) when the write's
// transaction checks it; nothing was written, not even the audit entry.
var ErrSignerNotCurrent = errors.New("store: the change's signer is not a current policy-management certificate")

// ErrInvalidText is returned by writes whose string fields (names, JWS,
// policy text, audit fields) are not valid UTF-8 or contain a NUL byte:
// PostgreSQL TEXT cannot hold such strings, so no backend accepts them and
// all backends behave alike. Callers should reject such input before it
// gets here (a policy whose text is not UTF-8 is not a valid policy).
var ErrInvalidText = errors.New("store: string is not valid UTF-8 or contains a NUL byte")

// Policy is the stored policy of one attestation type of one instance.
type Policy struct {
	Instance string
	Type     string // attestation type, e.g. "SgxEnclave"
	JWS      string // the exact JWS (or raw text) body that set the policy
	Text     string // the policy text, byte for byte
	// Signer is the DER certificate that signed JWS, nil for unsigned sets.
	Signer    []byte
	UpdatedAt time.Time
}

// Certificate is a policy-management certificate of an Isolated instance.
type Certificate struct {
	Instance   string
	Thumbprint string // upper-case hex SHA-1 of DER
	DER        []byte
	AddedAt    time.Time
}

// AuditEntry records one admin change.
type AuditEntry struct {
	ID       int64
	Instance string
	At       time.Time
	Actor    string // who: bearer subject/oid, or signer thumbprint, or "config"
	Action   string // e.g. "policy.set", "policy.reset", "certificate.add"
	Target   string // e.g. attestation type or certificate thumbprint
	Hash     string // e.g. x-ms-policy-token-hash of the request body
	Detail   string // free text, never secrets

	// RequireSigner, when non-empty, makes the write conditional: the
	// change is applied only if the instance has a policy-management
	// certificate with this thumbprint (upper-case hex SHA-1; compared
	// case-insensitively), checked inside the write's transaction after
	// the instance's write lock is taken, so no concurrent removal of that
	// certificate (by this or another process on the same database) can
	// commit between the check and the write. Otherwise nothing is written
	// and the method returns ErrSignerNotCurrent. Isolated instances set it
	// to the thumbprint of the change's signer. It is an input only: it is
	// not stored, and Audit returns entries with it empty.
	//
	// For RemoveCertificate the signer may be the certificate being
	// removed (as in MAA, a certificate can retire itself): the signer is
	// checked before the removal, and the last-certificate rule still
	// applies (ErrLastCertificate).
	RequireSigner string
}

// AuditQuery selects one page of an instance's audit trail (newest first).
// Entry ids grow with every entry of an instance, so a page cut by Before
// stays the same while new entries are written.
type AuditQuery struct {
	Instance string
	// Before, when > 0, keeps only entries with ID < Before: pass the last
	// ID of the previous page to read the next (older) one.
	Before int64
	// Since, when not zero, keeps only entries at or after Since.
	Since time.Time
	// Limit is the most entries returned; <= 0: no limit.
	Limit int
}

// Store is the persistence interface used by the service.
type Store interface {
	// GetPolicy returns ErrNotFound when no policy was set (the default applies).
	GetPolicy(ctx context.Context, instance, typ string) (*Policy, error)
	// PutPolicy stores p (replacing any previous policy) and appends a.
	PutPolicy(ctx context.Context, p *Policy, a AuditEntry) error
	// DeletePolicy removes the stored policy (reset to default) and appends a.
	// Deleting a policy that does not exist still appends a and is not an error.
	DeletePolicy(ctx context.Context, instance, typ string, a AuditEntry) error

	// Certificates lists an instance's policy-management certificates in the
	// order they were added.
	Certificates(ctx context.Context, instance string) ([]Certificate, error)
	// AddCertificate adds c unless a certificate with the same thumbprint is
	// present (then added is false; idempotent), and appends a either way.
	AddCertificate(ctx context.Context, c Certificate, a AuditEntry) (added bool, err error)
	// RemoveCertificate removes the certificate with thumbprint (removed is
	// false when it was absent; idempotent). It returns ErrLastCertificate,
	// changing nothing, when it would remove the instance's last certificate.
	RemoveCertificate(ctx context.Context, instance, thumbprint string, a AuditEntry) (removed bool, err error)
	// SeedCertificates adds certs to an instance that has none yet (first start
	// of an Isolated instance); it does nothing if the instance has any.
	SeedCertificates(ctx context.Context, instance string, certs []Certificate, a AuditEntry) error

	// Audit returns up to limit newest audit entries of instance, newest first.
	Audit(ctx context.Context, instance string, limit int) ([]AuditEntry, error)
	// AuditPage returns the audit entries q selects, newest first.
	AuditPage(ctx context.Context, q AuditQuery) ([]AuditEntry, error)

	// InstanceSecret returns the secret called name of instance (e.g. the
	// key sealing multi-round client state), creating it with generate on
	// first use. Replicas racing to create it all get the one value stored.
	InstanceSecret(ctx context.Context, instance, name string, generate func() ([]byte, error)) ([]byte, error)
	// UseNonce records nonce as used by instance until expires. fresh is
	// false (and err nil) when it is already recorded and not expired at
	// now: a replay. Records expired at now (the caller's clock, the one
	// that set expires) are forgotten.
	UseNonce(ctx context.Context, instance, nonce string, now, expires time.Time) (fresh bool, err error)

	Close() error
}

// MaxPolicyStaleness bounds how old a store's last confirmation that it has
// seen every policy change (PolicyChanges) may be before PolicyEpoch stops
// vouching for cached policies. It is the worst case a replica may serve a
// policy after another replica acknowledged a change, reached only when
// change notifications stall without the store noticing the failure;
// normally the bound is the notification latency (milliseconds).
const MaxPolicyStaleness = 2 * time.Second

// PolicyChanges is implemented by stores that tell their users when a
// stored policy may have changed, so that the policy in force can be kept
// in memory instead of read on every attestation (issue 9). A user that
// caches a policy records the epoch it read before GetPolicy and serves the
// cached policy only while PolicyEpoch returns that same epoch with ok true.
//
// The contract: the epoch changes (after the commit) on every PutPolicy and
// DeletePolicy of this handle, whether or not it reported an error, and —
// within the notification latency — on every policy change committed by
// any other handle or process sharing the database. ok is false while the
// store cannot vouch for that (the change watch is down, or has not
// confirmed itself within MaxPolicyStaleness); callers then read the store
// every time, as without a cache.
type PolicyChanges interface {
	PolicyEpoch() (epoch uint64, ok bool)
	// SyncPolicies returns once every policy change committed anywhere
	// before the call is reflected in PolicyEpoch (tests, and callers that
	// need a read-your-writes guarantee across replicas).
	SyncPolicies(ctx context.Context) error
}
