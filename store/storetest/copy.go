package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
)

// Fill writes one of every kind of record into s (instance "inst"): a
// policy with its JWS and signer, two certificates, audit entries, a
// secret, a used nonce and signing keys; for copy tests.
func Fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	cert := NewCertDER(t, "fill")
	if err := s.PutPolicy(ctx, &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "eyJhbGciOiJub25lIn0.e30.", Text: "version=1.0; authorizationrules{=> permit();};", Signer: cert, UpdatedAt: Base},
		store.AuditEntry{Actor: "sub:a", Action: "policy.set", Target: "SgxEnclave", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPolicy(ctx, &store.Policy{Instance: "inst", Type: "Tpm", JWS: "x", Text: "y", UpdatedAt: Base}, store.AuditEntry{Action: "policy.set", Target: "Tpm"}); err != nil {
		t.Fatal(err)
	}
	addN(t, s, "inst", 2)
	if _, err := s.InstanceSecret(ctx, "inst", "k", func() ([]byte, error) { return []byte("\x00secret\xff"), nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseNonce(ctx, "inst", "n1", Base, Base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ks := keyStore(t, s)
	b := sk("b", Base.Add(time.Hour))
	b.RetireAt = Base.Add(48 * time.Hour)
	if err := ks.ChangeSigningKeys(ctx, "inst", store.KeyChange{Add: []store.SigningKey{sk("a", Base), b}}, store.AuditEntry{Action: "keys.create"}); err != nil {
		t.Fatal(err)
	}
}
