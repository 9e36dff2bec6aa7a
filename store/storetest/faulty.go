package storetest

import (
	"context"
	"sync"
	"time"

	"github.com/attestd/attestd/store"
)

// Method names accepted by Faulty.Fail.
const (
	MethodGetPolicy         = "GetPolicy"
	MethodPutPolicy         = "PutPolicy"
	MethodDeletePolicy      = "DeletePolicy"
	MethodCertificates      = "Certificates"
	MethodAddCertificate    = "AddCertificate"
	MethodRemoveCertificate = "RemoveCertificate"
	MethodSeedCertificates  = "SeedCertificates"
	MethodAudit             = "Audit"
)

// Faulty wraps a store.Store and makes chosen methods fail without calling
// the wrapped store, so callers' error paths (a write that is not
// acknowledged must not be reported as done) can be tested with any
// backend. It is safe for concurrent use.
type Faulty struct {
	store.Store
	mu   sync.Mutex
	fail map[string]error
}

var _ store.Store = (*Faulty)(nil)

// NewFaulty wraps s; initially nothing fails.
func NewFaulty(s store.Store) *Faulty { return &Faulty{Store: s, fail: map[string]error{}} }

// Fail makes method return err from now on; a nil err heals it.
func (f *Faulty) Fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, method)
		return
	}
	f.fail[method] = err
}

func (f *Faulty) err(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[method]
}

// GetPolicy implements store.Store.
func (f *Faulty) GetPolicy(ctx context.Context, instance, typ string) (*store.Policy, error) {
	if err := f.err(MethodGetPolicy); err != nil {
		return nil, err
	}
	return f.Store.GetPolicy(ctx, instance, typ)
}

// PutPolicy implements store.Store.
func (f *Faulty) PutPolicy(ctx context.Context, p *store.Policy, a store.AuditEntry) error {
	if err := f.err(MethodPutPolicy); err != nil {
		return err
	}
	return f.Store.PutPolicy(ctx, p, a)
}

// DeletePolicy implements store.Store.
func (f *Faulty) DeletePolicy(ctx context.Context, instance, typ string, a store.AuditEntry) error {
	if err := f.err(MethodDeletePolicy); err != nil {
		return err
	}
	return f.Store.DeletePolicy(ctx, instance, typ, a)
}

// Certificates implements store.Store.
func (f *Faulty) Certificates(ctx context.Context, instance string) ([]store.Certificate, error) {
	if err := f.err(MethodCertificates); err != nil {
		return nil, err
	}
	return f.Store.Certificates(ctx, instance)
}

// AddCertificate implements store.Store.
func (f *Faulty) AddCertificate(ctx context.Context, c store.Certificate, a store.AuditEntry) (bool, error) {
	if err := f.err(MethodAddCertificate); err != nil {
		return false, err
	}
	return f.Store.AddCertificate(ctx, c, a)
}

// RemoveCertificate implements store.Store.
func (f *Faulty) RemoveCertificate(ctx context.Context, instance, thumbprint string, a store.AuditEntry) (bool, error) {
	if err := f.err(MethodRemoveCertificate); err != nil {
		return false, err
	}
	return f.Store.RemoveCertificate(ctx, instance, thumbprint, a)
}

// SeedCertificates implements store.Store.
func (f *Faulty) SeedCertificates(ctx context.Context, instance string, certs []store.Certificate, a store.AuditEntry) error {
	if err := f.err(MethodSeedCertificates); err != nil {
		return err
	}
	return f.Store.SeedCertificates(ctx, instance, certs, a)
}

// Audit implements store.Store.
func (f *Faulty) Audit(ctx context.Context, instance string, limit int) ([]store.AuditEntry, error) {
	if err := f.err(MethodAudit); err != nil {
		return nil, err
	}
	return f.Store.Audit(ctx, instance, limit)
}

// MethodAuditPage names Faulty's AuditPage.
const MethodAuditPage = "AuditPage"

// AuditPage implements store.Store.
func (f *Faulty) AuditPage(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	if err := f.err(MethodAuditPage); err != nil {
		return nil, err
	}
	return f.Store.AuditPage(ctx, q)
}

// Method names of the instance-secret and nonce calls.
const (
	MethodInstanceSecret = "InstanceSecret"
	MethodUseNonce       = "UseNonce"
)

// InstanceSecret implements store.Store.
func (f *Faulty) InstanceSecret(ctx context.Context, instance, name string, generate func() ([]byte, error)) ([]byte, error) {
	if err := f.err(MethodInstanceSecret); err != nil {
		return nil, err
	}
	return f.Store.InstanceSecret(ctx, instance, name, generate)
}

// UseNonce implements store.Store.
func (f *Faulty) UseNonce(ctx context.Context, instance, nonce string, now, expires time.Time) (bool, error) {
	if err := f.err(MethodUseNonce); err != nil {
		return false, err
	}
	return f.Store.UseNonce(ctx, instance, nonce, now, expires)
}
