package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/attestd/attestd/store"
	jose "github.com/go-jose/go-jose/v4"
)

// TestRewrapKEK: every signing key (RS256 and ES256 sets) and the sealed
// instance secret move from KEK 1 to KEK 2 in one go; PKCS#11 references
// are left; the key sets then open under KEK 2 only, with the same kids,
// verifying tokens signed before; one keys.rewrap audit entry per changed
// instance names kids and KEK IDs but no key bytes; a value under a third
// KEK refuses the whole rewrap, naming it, with nothing changed; reruns
// (KEK 1 → 2 again, or 2 → 2) change nothing.
func TestRewrapKEK(t *testing.T) {
	ctx := context.Background()
	db := sqliteT(t)
	c := &clock{t: t0}
	k1, k2, k3 := kekT(t, 1), kekT(t, 2), kekT(t, 3)
	open := func(inst string, alg Algorithm, k *KEK) (*KeySet, error) {
		return OpenStoreKeySet(ctx, StoreOptions{Store: db, Instance: inst, Subject: subject, Keys: KEKKeys{KEK: k}, Now: c.Now, Algorithm: alg})
	}
	sets := map[string]Algorithm{"inst": RS256, "inst/es256": ES256}
	kids := map[string][]string{}
	toks := map[string]string{}
	for inst, alg := range sets {
		ks, err := open(inst, alg, k1)
		if err != nil {
			t.Fatal(err)
		}
		kids[inst] = kidsOf(t, ks.JWKS())
		toks[inst] = signT(t, ks)
	}
	secret, err := store.SealSecrets(db, k1).InstanceSecret(ctx, "inst", "svc", func() ([]byte, error) { return []byte("0123456789abcdef0123456789abcdef"), nil })
	if err != nil {
		t.Fatal(err)
	}
	hsmKey := store.SigningKey{KID: "hsmkid", Certificate: []byte("cert"), Private: []byte("pkcs11:id=00ff"), ActivateAt: t0}
	if err := db.ChangeSigningKeys(ctx, "hsm", store.KeyChange{Add: []store.SigningKey{hsmKey}}, store.AuditEntry{Action: "keys.create"}); err != nil {
		t.Fatal(err)
	}
	rewrapAudits := func() int {
		n := 0
		for _, inst := range []string{"inst", "inst/es256", "hsm", "stray"} {
			es, err := db.Audit(ctx, inst, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if e.Action == "keys.rewrap" {
					n++
				}
			}
		}
		return n
	}
	snapshot := func() [][]byte {
		var out [][]byte
		for _, inst := range []string{"inst", "inst/es256", "hsm"} {
			rows, err := db.SigningKeys(ctx, inst)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				out = append(out, r.Private)
			}
		}
		return out
	}

	// A key set under a third KEK: refused, by name, nothing written.
	stray, err := open("stray", RS256, k3)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot()
	_, err = RewrapKEK(ctx, RewrapOptions{Store: db, Old: k1, New: k2})
	if !errors.Is(err, ErrRewrapRefused) || !strings.Contains(err.Error(), "of stray") || !strings.Contains(err.Error(), k3.ID()) {
		t.Fatalf("rewrap with a value under a third KEK: %v", err)
	}
	if after := snapshot(); !slices.EqualFunc(before, after, bytes.Equal) || rewrapAudits() != 0 {
		t.Fatal("a refused rewrap changed values or wrote audit entries")
	}
	var purge []string
	for _, k := range stray.Keys() {
		purge = append(purge, k.KID)
	}
	if err := db.ChangeSigningKeys(ctx, "stray", store.KeyChange{Unconditional: true, Purge: purge}, store.AuditEntry{Action: "keys.purge"}); err != nil {
		t.Fatal(err)
	}

	started := 0
	rep, err := RewrapKEK(ctx, RewrapOptions{Store: db, Old: k1, New: k2, Started: func() { started++ }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Keys != 4 || rep.Secrets != 1 || rep.Already != 0 || len(rep.References) != 1 || rep.References[0] != "hsm hsmkid" || started != 1 || rep.Old != k1.ID() || rep.New != k2.ID() {
		t.Fatalf("report %+v, started %d", rep, started)
	}
	for inst, alg := range sets {
		if _, err := open(inst, alg, k1); !errors.Is(err, ErrWrongKEK) {
			t.Fatalf("%s opened under the old KEK after the rewrap: %v", inst, err)
		}
		ks, err := open(inst, alg, k2)
		if err != nil {
			t.Fatalf("%s under the new KEK: %v", inst, err)
		}
		if got := kidsOf(t, ks.JWKS()); !slices.Equal(got, kids[inst]) {
			t.Fatalf("%s publishes %v after the rewrap, %v before", inst, got, kids[inst])
		}
		verifyJWKS(t, ks.JWKS(), toks[inst], jose.SignatureAlgorithm(alg))
		verifyJWKS(t, ks.JWKS(), signT(t, ks), jose.SignatureAlgorithm(alg))
	}
	got, err := store.SealSecrets(db, k2).InstanceSecret(ctx, "inst", "svc", func() ([]byte, error) { return nil, errors.New("regenerated") })
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("secret under the new KEK: %q %v", got, err)
	}
	if rows, _ := db.SigningKeys(ctx, "hsm"); string(rows[0].Private) != "pkcs11:id=00ff" {
		t.Fatalf("PKCS#11 reference changed: %q", rows[0].Private)
	}
	es, err := db.Audit(ctx, "inst", 1)
	if err != nil || len(es) != 1 || es[0].Action != "keys.rewrap" || es[0].Target != "kek "+k2.ID() ||
		!strings.Contains(es[0].Detail, kids["inst"][0]) || !strings.Contains(es[0].Detail, "1 instance secret(s) svc") || !strings.Contains(es[0].Detail, "was "+k1.ID()) {
		t.Fatalf("audit %+v %v", es, err)
	}
	for _, k := range []byte{1, 2} {
		raw := bytes.Repeat([]byte{k}, KEKSize)
		if strings.Contains(es[0].Detail, base64.StdEncoding.EncodeToString(raw)) || strings.Contains(es[0].Detail, string(raw)) {
			t.Fatal("the audit entry holds KEK bytes")
		}
	}
	if n := rewrapAudits(); n != 2 {
		t.Fatalf("%d keys.rewrap entries, want 2 (inst, inst/es256)", n)
	}

	// Reruns: the same command again, and the new KEK as the old one.
	for _, old := range []*KEK{k1, k2} {
		rep, err := RewrapKEK(ctx, RewrapOptions{Store: db, Old: old, New: k2})
		if err != nil || rep.Keys+rep.Secrets != 0 || rep.Already != 5 {
			t.Fatalf("rerun with old %s: %+v %v", old.ID(), rep, err)
		}
	}
	if n := rewrapAudits(); n != 2 {
		t.Fatalf("reruns wrote audit entries: %d", n)
	}
}

// TestKEKWithPrevious: a KEK with a previous one opens envelopes of both
// and seals under itself only, so a replica moved to KEK 3 ahead of the
// rewrap keeps serving keys under KEK 2 and writes its new keys under 3;
// the rewrap 2 → 3 then moves the rest. EnvelopeKEK reads the header.
func TestKEKWithPrevious(t *testing.T) {
	ctx := context.Background()
	db := sqliteT(t)
	c := &clock{t: t0}
	k2, k3, k4 := kekT(t, 2), kekT(t, 3), kekT(t, 4)
	ks := openStoreSet(t, db, c, k2, Rotation{})
	both := k3.WithPrevious(k2)
	if both.Previous() == nil || both.ID() != k3.ID() || k3.WithPrevious(k3).Previous() != nil {
		t.Fatal("WithPrevious")
	}
	moved := openStoreSet(t, db, c, both, Rotation{})
	if moved.ActiveKID() != ks.ActiveKID() {
		t.Fatal("the replica with the previous KEK signs with another key")
	}
	if err := moved.RotateContext(ctx, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.SigningKeys(ctx, "inst")
	if err != nil {
		t.Fatal(err)
	}
	under := map[string]int{}
	for _, r := range rows {
		id, ok := EnvelopeKEK(r.Private)
		if !ok {
			t.Fatalf("%s: not an envelope", r.KID)
		}
		under[id]++
	}
	if under[k2.ID()] != 2 || under[k3.ID()] != 1 {
		t.Fatalf("envelopes by KEK %v: want 2 under the old, the new standby under the new", under)
	}
	if _, err := both.Open(rows[0].Private, []byte("wrong aad")); err == nil {
		t.Fatal("fallback opened with the wrong aad")
	}
	if _, err := k4.WithPrevious(k2).Open(mustSeal(t, k3), nil); !errors.Is(err, ErrWrongKEK) || !strings.Contains(err.Error(), "previous KEK") {
		t.Fatalf("a third KEK's envelope: %v", err)
	}
	// The rewrap must not take the fallback for the old key.
	if _, err := RewrapKEK(ctx, RewrapOptions{Store: db, Old: k4.WithPrevious(k2), New: k3}); !errors.Is(err, ErrRewrapRefused) {
		t.Fatalf("rewrap from KEK 4 opened KEK 2's values through its fallback: %v", err)
	}
	rep, err := RewrapKEK(ctx, RewrapOptions{Store: db, Old: k2, New: both})
	if err != nil || rep.Keys != 2 || rep.Already != 1 {
		t.Fatalf("rewrap 2 → 3: %+v %v", rep, err)
	}
	openStoreSet(t, db, c, k3, Rotation{})
	for _, b := range [][]byte{nil, {1}, []byte("pkcs11:id=00"), make([]byte, 64)} {
		if _, ok := EnvelopeKEK(b); ok {
			t.Fatalf("EnvelopeKEK(%q) is an envelope", b)
		}
	}
}

func mustSeal(t *testing.T, k *KEK) []byte {
	t.Helper()
	b, err := k.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRewrapRefusesUnknownKeyValue: a signing key whose stored value is
// neither an envelope nor a PKCS#11 reference (an envelope whose version
// byte was altered, a plaintext key of another tool) is not a reference
// to leave alone: the rewrap must refuse by name, change nothing, and not
// say afterwards that every value is under the new KEK.
func TestRewrapRefusesUnknownKeyValue(t *testing.T) {
	ctx := context.Background()
	db := sqliteT(t)
	c := &clock{t: t0}
	k1, k2 := kekT(t, 1), kekT(t, 2)
	openStoreSet(t, db, c, k1, Rotation{})
	rows, err := db.SigningKeys(ctx, "inst")
	if err != nil || len(rows) == 0 {
		t.Fatal(rows, err)
	}
	for name, v := range map[string][]byte{
		"altered version byte": append([]byte{0x02}, mustSeal(t, k1)[1:]...),
		"not sealed":           bytes.Repeat([]byte{0x30}, 64),
		// A real envelope under the old KEK, copied from another row: its
		// additional data names inst and that kid, so it opens nowhere else.
		"moved from another row": rows[0].Private,
	} {
		t.Run(name, func(t *testing.T) {
			row := store.SigningKey{KID: "oddkid", Certificate: []byte("cert"), Private: v, ActivateAt: t0}
			if err := db.ChangeSigningKeys(ctx, "odd", store.KeyChange{Add: []store.SigningKey{row}}, store.AuditEntry{Action: "keys.create"}); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := db.ChangeSigningKeys(ctx, "odd", store.KeyChange{Unconditional: true, Purge: []string{"oddkid"}}, store.AuditEntry{Action: "keys.purge"}); err != nil {
					t.Fatal(err)
				}
			}()
			rep, err := RewrapKEK(ctx, RewrapOptions{Store: db, Old: k1, New: k2})
			if !errors.Is(err, ErrRewrapRefused) || !strings.Contains(err.Error(), "oddkid") {
				t.Fatalf("rewrap with key oddkid = %q: %+v, %v; want a refusal naming it", v[:4], rep, err)
			}
			rows, err := db.SigningKeys(ctx, "inst")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if id, _ := EnvelopeKEK(r.Private); id != k1.ID() {
					t.Fatalf("a refused rewrap changed %s (now under %s)", r.KID, id)
				}
			}
		})
	}
}
