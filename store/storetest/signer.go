package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/attestd/attestd/store"
)

// signerOp is one conditional write of the RequireSigner tests: it changes
// instance inst (whose certificates include victim, the certificate the
// write's own effect touches when it is a certificate change) under audit
// entry a.
type signerOp struct {
	name   string
	action string // the audit action the op records
	run    func(ctx context.Context, s store.Store, inst, victim string, fresh []byte, a store.AuditEntry) error
}

var signerOps = []signerOp{
	{"PutPolicy", "policy.set", func(ctx context.Context, s store.Store, inst, _ string, _ []byte, a store.AuditEntry) error {
		return s.PutPolicy(ctx, &store.Policy{Instance: inst, Type: "T", JWS: "new", Text: "new", UpdatedAt: Base}, a)
	}},
	{"DeletePolicy", "policy.reset", func(ctx context.Context, s store.Store, inst, _ string, _ []byte, a store.AuditEntry) error {
		return s.DeletePolicy(ctx, inst, "T", a)
	}},
	{"AddCertificate", "certificate.add", func(ctx context.Context, s store.Store, inst, _ string, fresh []byte, a store.AuditEntry) error {
		_, err := s.AddCertificate(ctx, store.Certificate{Instance: inst, DER: fresh, AddedAt: Base}, a)
		return err
	}},
	{"RemoveCertificate", "certificate.remove", func(ctx context.Context, s store.Store, inst, victim string, _ []byte, a store.AuditEntry) error {
		_, err := s.RemoveCertificate(ctx, inst, victim, a)
		return err
	}},
}

// snapshot is everything a write can change: the policy "T", the
// certificates and the audit trail of one instance.
type snapshot struct {
	Policy string
	Certs  []string
	Audit  []string
}

func snap(t *testing.T, s store.Store, inst string) snapshot {
	t.Helper()
	ctx := context.Background()
	var sn snapshot
	switch p, err := s.GetPolicy(ctx, inst, "T"); {
	case err == nil:
		sn.Policy = p.JWS
	case errors.Is(err, store.ErrNotFound):
		sn.Policy = "<none>"
	default:
		t.Fatalf("GetPolicy(%q): %v", inst, err)
	}
	sn.Certs = thumbprints(t, s, inst)
	entries, err := s.Audit(ctx, inst, 0)
	if err != nil {
		t.Fatalf("Audit(%q): %v", inst, err)
	}
	for _, e := range entries {
		if e.RequireSigner != "" {
			t.Errorf("Audit(%q) returned RequireSigner %q: it is an input, never stored", inst, e.RequireSigner)
		}
		sn.Audit = append(sn.Audit, fmt.Sprint(e.ID, " ", e.Action, ":", e.Target))
	}
	return sn
}

// signerFixture makes instance inst with certificates [X, Y, Z] and policy
// "T" set, and returns the thumbprints.
func signerFixture(t *testing.T, s store.Store, inst string) []string {
	t.Helper()
	tps := addN(t, s, inst, 3)
	if err := s.PutPolicy(context.Background(), &store.Policy{Instance: inst, Type: "T", JWS: "old", Text: "old", UpdatedAt: Base},
		audit("policy.set", "old")); err != nil {
		t.Fatal(err)
	}
	return tps
}

func requiring(action, target, signer string) store.AuditEntry {
	a := audit(action, target)
	a.RequireSigner = signer
	return a
}

// testRequireSigner checks every conditional write: a present signer
// (either case) lets it through; an absent one, or one that belongs to
// another instance, refuses it with ErrSignerNotCurrent and changes
// nothing, audit trail included.
func testRequireSigner(t *testing.T, s store.Store) {
	ctx := context.Background()
	other := addN(t, s, "other", 1)[0]
	absent := store.Thumbprint(NewCertDER(t, "never added"))
	for i, op := range signerOps {
		t.Run(op.name, func(t *testing.T) {
			inst := fmt.Sprint("inst", i)
			tps := signerFixture(t, s, inst)
			x, victim := tps[0], tps[2]
			for _, signer := range []string{absent, other} {
				before := snap(t, s, inst)
				err := op.run(ctx, s, inst, victim, NewCertDER(t, "fresh"), requiring(op.action, "refused", signer))
				if !errors.Is(err, store.ErrSignerNotCurrent) {
					t.Fatalf("%s requiring signer %s that %s lacks: err = %v, want ErrSignerNotCurrent", op.name, signer, inst, err)
				}
				if after := snap(t, s, inst); !reflect.DeepEqual(after, before) {
					t.Fatalf("refused %s changed the instance:\nbefore %+v\nafter  %+v", op.name, before, after)
				}
			}
			before := snap(t, s, inst)
			if err := op.run(ctx, s, inst, victim, NewCertDER(t, "fresh"), requiring(op.action, "ok", lower(x))); err != nil {
				t.Fatalf("%s requiring present signer %s (lower case): %v", op.name, x, err)
			}
			after := snap(t, s, inst)
			if len(after.Audit) != len(before.Audit)+1 || !reflect.DeepEqual(after.Audit[1:], before.Audit) {
				t.Fatalf("%s with a present signer: audit %q, want one entry on top of %q", op.name, after.Audit, before.Audit)
			}
			if reflect.DeepEqual(after.Policy, before.Policy) && reflect.DeepEqual(after.Certs, before.Certs) {
				t.Fatalf("%s with a present signer changed nothing: %+v", op.name, after)
			}
		})
	}
}

// testRequireSignerRemoveSelf pins the RemoveCertificate rule: a signer may
// remove its own certificate (it is checked before the removal), except
// the last one; once gone it can sign nothing more.
func testRequireSignerRemoveSelf(t *testing.T, s store.Store) {
	ctx := context.Background()
	tps := addN(t, s, "inst", 2)
	x, y := tps[0], tps[1]
	if removed, err := s.RemoveCertificate(ctx, "inst", x, requiring("certificate.remove", x, x)); err != nil || !removed {
		t.Fatalf("X removing itself = %v, %v; want true, nil", removed, err)
	}
	if removed, err := s.RemoveCertificate(ctx, "inst", y, requiring("certificate.remove", y, x)); !errors.Is(err, store.ErrSignerNotCurrent) || removed {
		t.Fatalf("removed X removing Y = %v, %v; want false, ErrSignerNotCurrent", removed, err)
	}
	if removed, err := s.RemoveCertificate(ctx, "inst", y, requiring("certificate.remove", y, y)); !errors.Is(err, store.ErrLastCertificate) || removed {
		t.Fatalf("Y removing itself, the last = %v, %v; want false, ErrLastCertificate", removed, err)
	}
	if got := thumbprints(t, s, "inst"); !reflect.DeepEqual(got, []string{y}) {
		t.Fatalf("certificates = %q, want [Y]", got)
	}
	mustAudit(t, s, "inst", "certificate.remove:"+x, "certificate.add:"+y, "certificate.add:"+x)
}

func testRequireSignerRace(t *testing.T, s store.Store) {
	RaceRequireSigner(t, s, s, 12)
}

// RaceRequireSigner races, for rounds rounds, a removal of certificate X
// (through remover, signed by Y) against a write signed by X (through
// writer; the four write methods in turn). remover and writer may be one
// store or two handles on one database (two replicas). The write must
// either fail with ErrSignerNotCurrent, leaving no trace, or commit before
// the removal: its audit entry precedes the removal's. With the write
// being the removal of Y signed by X, exactly one of the two removals
// succeeds (two signers cannot remove each other).
func RaceRequireSigner(t *testing.T, remover, writer store.Store, rounds int) {
	ctx := context.Background()
	var before, refused int
	for round := range rounds {
		op := signerOps[round%len(signerOps)]
		inst := fmt.Sprint("race", round)
		tps := signerFixture(t, remover, inst)
		x, y := tps[0], tps[1]
		victim := y // the write's own removal, when it is one
		fresh := NewCertDER(t, "fresh")
		var wg sync.WaitGroup
		var rmErr, wErr error
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, rmErr = remover.RemoveCertificate(ctx, inst, x, requiring("certificate.remove", "X", y))
		}()
		go func() {
			defer wg.Done()
			<-start
			wErr = op.run(ctx, writer, inst, victim, fresh, requiring(op.action, "W", x))
		}()
		close(start)
		wg.Wait()

		entries, err := remover.Audit(ctx, inst, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]int64{}
		for _, e := range entries {
			ids[e.Target] = e.ID
		}
		rmID, rmOK := ids["X"]
		wID, wOK := ids["W"]
		if wOK != (wErr == nil) {
			t.Fatalf("round %d (%s): write err = %v but its audit entry present = %v", round, op.name, wErr, wOK)
		}
		if rmOK != (rmErr == nil) {
			t.Fatalf("round %d: removal err = %v but its audit entry present = %v", round, rmErr, rmOK)
		}
		if wErr != nil && !errors.Is(wErr, store.ErrSignerNotCurrent) {
			t.Fatalf("round %d (%s): write failed with %v, want nil or ErrSignerNotCurrent", round, op.name, wErr)
		}
		if op.name == "RemoveCertificate" {
			// Y removed by X vs X removed by Y: exactly one wins.
			if (rmErr == nil) == (wErr == nil) {
				t.Fatalf("round %d: removal of X signed by Y = %v and removal of Y signed by X = %v; want exactly one to succeed", round, rmErr, wErr)
			}
			if rmErr != nil && !errors.Is(rmErr, store.ErrSignerNotCurrent) {
				t.Fatalf("round %d: removal of X failed with %v, want ErrSignerNotCurrent", round, rmErr)
			}
		} else if rmErr != nil {
			t.Fatalf("round %d (%s): removal of X signed by Y failed: %v", round, op.name, rmErr)
		}
		switch {
		case wErr == nil:
			if rmOK && wID > rmID {
				t.Fatalf("round %d (%s): the write signed by X (audit %d) committed after X was removed (audit %d)", round, op.name, wID, rmID)
			}
			before++
		default:
			refused++
		}
		// The write's effect is present exactly when it succeeded.
		sn := snap(t, remover, inst)
		switch op.name {
		case "PutPolicy":
			if (sn.Policy == "new") != (wErr == nil) {
				t.Fatalf("round %d: policy %q after write err %v", round, sn.Policy, wErr)
			}
		case "DeletePolicy":
			if (sn.Policy == "<none>") != (wErr == nil) {
				t.Fatalf("round %d: policy %q after reset err %v", round, sn.Policy, wErr)
			}
		case "AddCertificate":
			has := false
			for _, c := range sn.Certs {
				has = has || c == store.Thumbprint(fresh)
			}
			if has != (wErr == nil) {
				t.Fatalf("round %d: new certificate present = %v after add err %v", round, has, wErr)
			}
		}
	}
	t.Logf("%d rounds: the write signed by X won %d times, was refused %d times", rounds, before, refused)
}
