package instance

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/store"
)

// beforeWrite wraps the store of one replica and runs hook (once) right
// before its first admin write reaches the store: after the instance's
// signer pre-check, before the store transaction — the window in which
// another replica can change the certificate set.
type beforeWrite struct {
	store.Store
	once sync.Once
	hook func()
}

func (b *beforeWrite) fire() { b.once.Do(b.hook) }

func (b *beforeWrite) PutPolicy(ctx context.Context, p *store.Policy, a store.AuditEntry) error {
	b.fire()
	return b.Store.PutPolicy(ctx, p, a)
}

func (b *beforeWrite) DeletePolicy(ctx context.Context, instance, typ string, a store.AuditEntry) error {
	b.fire()
	return b.Store.DeletePolicy(ctx, instance, typ, a)
}

func (b *beforeWrite) AddCertificate(ctx context.Context, c store.Certificate, a store.AuditEntry) (bool, error) {
	b.fire()
	return b.Store.AddCertificate(ctx, c, a)
}

func (b *beforeWrite) RemoveCertificate(ctx context.Context, instance, thumbprint string, a store.AuditEntry) (bool, error) {
	b.fire()
	return b.Store.RemoveCertificate(ctx, instance, thumbprint, a)
}

// TestReplicaRemovesSignerMidChange simulates two replicas of one Isolated
// instance on one database: replica A pre-checks a change signed by pm2,
// then replica B (its own Instance, so its own lockAdmin) removes pm2, then
// A's write reaches the store. The store's in-transaction signer check must
// refuse A's write with the same InvalidOperation the pre-check gives, and
// nothing of it may be kept. Without it A's change would be applied on the
// authority of a certificate that was already gone (and, for the removal
// case, two signers could remove each other).
func TestReplicaRemovesSignerMidChange(t *testing.T) {
	ctx := context.Background()
	pm1 := newSigner(t, "pm1", false)
	pm2 := newSigner(t, "pm2", true)
	pm3 := newSigner(t, "pm3", false)
	pm4 := newSigner(t, "pm4", false)
	cases := []struct {
		name string
		what string // as in the pre-check's message
		run  func(a *Instance) (string, error)
	}{
		{"SetPolicy", "a policy", func(a *Instance) (string, error) {
			return a.SetPolicy(ctx, "SgxEnclave", pm2.joseSign(t, policyPayloadFor(permitAll)), Actor{})
		}},
		{"ResetPolicy", "a policy reset", func(a *Instance) (string, error) {
			return a.ResetPolicy(ctx, "SgxEnclave", pm2.joseSign(t, nil), Actor{})
		}},
		{"AddCertificate", "adding a policy-management certificate", func(a *Instance) (string, error) {
			return a.AddCertificate(ctx, jsonString(pm2.joseSign(t, certPayloadFor(pm4.cert))), Actor{})
		}},
		{"RemoveCertificate", "removing a policy-management certificate", func(a *Instance) (string, error) {
			return a.RemoveCertificate(ctx, jsonString(pm2.joseSign(t, certPayloadFor(pm3.cert))), Actor{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newEnv(t, ModeIsolated, pm1.cert) // replica B
			for _, c := range []*testSigner{pm2, pm3} {
				must(b.in.AddCertificate(ctx, jsonString(pm1.joseSign(t, certPayloadFor(c.cert))), Actor{}))
			}
			must(b.in.SetPolicy(ctx, "SgxEnclave", pm1.joseSign(t, policyPayloadFor("version=1.0; authorizationrules{=> deny();};")), Actor{}))

			var hookErr error
			shared := &beforeWrite{Store: b.db, hook: func() {
				_, hookErr = b.in.RemoveCertificate(ctx, jsonString(pm1.joseSign(t, certPayloadFor(pm2.cert))), Actor{Subject: "replica-b"})
			}}
			a, err := New(ctx, Config{Name: "t", Mode: ModeIsolated, Issuer: "https://attestd.test/tenants/t", PolicyCertificates: []*x509.Certificate{pm1.cert}},
				Options{Store: shared, Keys: b.keys, Verifiers: map[evidence.Type]evidence.Verifier{evidence.SgxEnclave: b.fake},
					Now: time.Now, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			before := replicaState(t, b)

			_, err = tc.run(a)
			if hookErr != nil {
				t.Fatalf("replica B removing pm2: %v", hookErr)
			}
			wantCode(t, err, CodeInvalidOperation)
			if !errors.Is(err, store.ErrSignerNotCurrent) {
				t.Fatalf("A's refusal does not come from the store's check: %v", err)
			}
			// The same answer the pre-check gives now that pm2 is gone.
			_, again := tc.run(a)
			var got, want *Error
			if !errors.As(err, &got) || !errors.As(again, &want) || got.Message != want.Message {
				t.Fatalf("store refusal %q differs from the pre-check's %q", err, again)
			}
			if errors.Is(again, store.ErrSignerNotCurrent) {
				t.Fatal("second attempt should be refused by the pre-check, before the store")
			}

			after := replicaState(t, b)
			wantAfter := before
			wantAfter.certs = without(before.certs, Thumbprint(pm2.cert))
			wantAfter.audit = append([]string{"certificate.remove:" + Thumbprint(pm2.cert)}, before.audit...)
			if !reflect.DeepEqual(after, wantAfter) {
				t.Fatalf("state after the refused change:\n got  %+v\n want %+v", after, wantAfter)
			}
		})
	}
}

type state struct {
	policy string
	certs  []string
	audit  []string
}

func replicaState(t *testing.T, e *env) state {
	t.Helper()
	ctx := context.Background()
	var s state
	if p, err := e.db.GetPolicy(ctx, "t", "SgxEnclave"); err == nil {
		s.policy = p.Text
	} else if !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	cs, err := e.db.Certificates(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		s.certs = append(s.certs, c.Thumbprint)
	}
	entries, err := e.db.Audit(ctx, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range entries {
		s.audit = append(s.audit, a.Action+":"+a.Target)
	}
	return s
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
