// Package storetest is the backend-agnostic conformance suite for
// store.Store. Every backend runs the same suite, so behaviour databases
// disagree on by default (not-found, idempotency, ordering, the
// last-certificate rule under concurrency) is fixed once, here:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
//	}
//
// newStore must return an empty store private to the calling test; Run
// closes it at the end of each subtest.
package storetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
)

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"PolicyNotFound", testPolicyNotFound},
		{"PolicyRoundTrip", testPolicyRoundTrip},
		{"PolicyReplace", testPolicyReplace},
		{"PolicyDelete", testPolicyDelete},
		{"PolicyInstancesIsolated", testPolicyInstancesIsolated},
		{"PolicyRejectsBadInput", testPolicyRejectsBadInput},
		{"CertificatesEmpty", testCertificatesEmpty},
		{"AddCertificateIdempotent", testAddCertificateIdempotent},
		{"CertificatesOrder", testCertificatesOrder},
		{"CertificateThumbprintChecked", testCertificateThumbprintChecked},
		{"RemoveCertificateIdempotent", testRemoveCertificateIdempotent},
		{"RemoveLastCertificateRefused", testRemoveLastCertificateRefused},
		{"SeedCertificates", testSeedCertificates},
		{"AuditOrderAndLimit", testAuditOrderAndLimit},
		{"AuditRequiresAction", testAuditRequiresAction},
		{"AuditPage", testAuditPage},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentRemoveKeepsOne", testConcurrentRemoveKeepsOne},
		{"RequireSigner", testRequireSigner},
		{"RequireSignerRemoveSelf", testRequireSignerRemoveSelf},
		{"RequireSignerRace", testRequireSignerRace},
		{"InstanceSecret", testInstanceSecret},
		{"InstanceSecretRace", testInstanceSecretRace},
		{"UseNonce", testUseNonce},
		{"SigningKeys", testSigningKeys},
		{"SigningKeysRace", testSigningKeysRace},
		{"Reseal", testReseal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// Base is the fixed time the suite's records carry.
var Base = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)

// NewCertDER returns the DER of a fresh self-signed certificate named cn.
func NewCertDER(t testing.TB, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    Base.Add(-time.Hour),
		NotAfter:     Base.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func audit(action, target string) store.AuditEntry {
	return store.AuditEntry{At: Base, Actor: "tester", Action: action, Target: target, Hash: "h-" + target, Detail: "d"}
}

func mustAudit(t *testing.T, s store.Store, instance string, want ...string) []store.AuditEntry {
	t.Helper()
	got, err := s.Audit(context.Background(), instance, 0)
	if err != nil {
		t.Fatalf("Audit(%q): %v", instance, err)
	}
	var actions []string
	for _, e := range got {
		actions = append(actions, e.Action+":"+e.Target)
	}
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(actions, want) {
		t.Fatalf("Audit(%q) actions (newest first) = %q, want %q", instance, actions, want)
	}
	return got
}

func thumbprints(t *testing.T, s store.Store, instance string) []string {
	t.Helper()
	cs, err := s.Certificates(context.Background(), instance)
	if err != nil {
		t.Fatalf("Certificates(%q): %v", instance, err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Thumbprint)
	}
	return out
}

func testPolicyNotFound(t *testing.T, s store.Store) {
	_, err := s.GetPolicy(context.Background(), "inst", "SgxEnclave")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPolicy on empty store: err = %v, want ErrNotFound", err)
	}
}

func testPolicyRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	signer := NewCertDER(t, "signer")
	cases := []struct {
		name string
		p    store.Policy
	}{
		{"signed", store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "eyJhbGciOiJSUzI1NiJ9.eyJ9.c2ln",
			Text: "version= 1.0;\nauthorizationrules { => permit(); };\n\u00e9\u4e2d\U0001F600\t'\"\\end", Signer: signer, UpdatedAt: Base}},
		{"unsigned", store.Policy{Instance: "inst", Type: "OpenEnclave", JWS: "eyJhbGciOiJub25lIn0.e30.",
			Text: "version=1.0; authorizationrules{=> permit();};", UpdatedAt: Base.Add(time.Second)}},
		{"empty text", store.Policy{Instance: "inst", Type: "Tpm", JWS: "", Text: "", UpdatedAt: Base}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if err := s.PutPolicy(ctx, &p, audit("policy.set", p.Type)); err != nil {
				t.Fatalf("PutPolicy: %v", err)
			}
			got, err := s.GetPolicy(ctx, p.Instance, p.Type)
			if err != nil {
				t.Fatalf("GetPolicy: %v", err)
			}
			if !got.UpdatedAt.Equal(p.UpdatedAt) {
				t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, p.UpdatedAt)
			}
			got.UpdatedAt = p.UpdatedAt
			if !reflect.DeepEqual(*got, p) {
				t.Errorf("GetPolicy = %+v\nwant %+v", *got, p)
			}
		})
	}
	mustAudit(t, s, "inst", "policy.set:Tpm", "policy.set:OpenEnclave", "policy.set:SgxEnclave")
}

func testPolicyReplace(t *testing.T, s store.Store) {
	ctx := context.Background()
	p1 := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "j1", Text: "t1", Signer: NewCertDER(t, "a"), UpdatedAt: Base}
	p2 := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "j2", Text: "t2", UpdatedAt: Base.Add(time.Minute)}
	for _, p := range []*store.Policy{p1, p2} {
		if err := s.PutPolicy(ctx, p, audit("policy.set", p.JWS)); err != nil {
			t.Fatalf("PutPolicy(%s): %v", p.JWS, err)
		}
	}
	got, err := s.GetPolicy(ctx, "inst", "SgxEnclave")
	if err != nil {
		t.Fatal(err)
	}
	if got.JWS != "j2" || got.Text != "t2" || got.Signer != nil || !got.UpdatedAt.Equal(p2.UpdatedAt) {
		t.Fatalf("after replace: %+v, want p2 with nil signer", got)
	}
	mustAudit(t, s, "inst", "policy.set:j2", "policy.set:j1")
}

func testPolicyDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.DeletePolicy(ctx, "inst", "SgxEnclave", audit("policy.reset", "SgxEnclave")); err != nil {
		t.Fatalf("DeletePolicy of absent policy: %v", err)
	}
	p := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "j", Text: "t", UpdatedAt: Base}
	if err := s.PutPolicy(ctx, p, audit("policy.set", "SgxEnclave")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicy(ctx, "inst", "SgxEnclave", audit("policy.reset", "SgxEnclave")); err != nil {
		t.Fatalf("DeletePolicy: %v", err)
	}
	if _, err := s.GetPolicy(ctx, "inst", "SgxEnclave"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPolicy after delete: %v, want ErrNotFound", err)
	}
	mustAudit(t, s, "inst", "policy.reset:SgxEnclave", "policy.set:SgxEnclave", "policy.reset:SgxEnclave")
}

func testPolicyInstancesIsolated(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, inst := range []string{"a", "b"} {
		p := &store.Policy{Instance: inst, Type: "SgxEnclave", JWS: "jws-" + inst, Text: "text-" + inst, UpdatedAt: Base}
		if err := s.PutPolicy(ctx, p, audit("policy.set", inst)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeletePolicy(ctx, "a", "SgxEnclave", audit("policy.reset", "a")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPolicy(ctx, "b", "SgxEnclave")
	if err != nil || got.Text != "text-b" {
		t.Fatalf("instance b after deleting a's policy: %+v, %v", got, err)
	}
	if _, err := s.GetPolicy(ctx, "a", "OpenEnclave"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other type: %v, want ErrNotFound", err)
	}
	a := mustAudit(t, s, "a", "policy.reset:a", "policy.set:a")
	b := mustAudit(t, s, "b", "policy.set:b")
	if a[0].Instance != "a" || b[0].Instance != "b" {
		t.Fatalf("audit entries carry instances %q, %q", a[0].Instance, b[0].Instance)
	}
}

func testPolicyRejectsBadInput(t *testing.T, s store.Store) {
	ctx := context.Background()
	cases := []struct {
		name string
		p    *store.Policy
		a    store.AuditEntry
	}{
		{"nil policy", nil, audit("policy.set", "x")},
		{"no instance", &store.Policy{Type: "SgxEnclave"}, audit("policy.set", "x")},
		{"no type", &store.Policy{Instance: "inst"}, audit("policy.set", "x")},
		{"audit without action", &store.Policy{Instance: "inst", Type: "SgxEnclave"}, store.AuditEntry{Actor: "x"}},
		{"audit of other instance", &store.Policy{Instance: "inst", Type: "SgxEnclave"}, store.AuditEntry{Instance: "other", Action: "policy.set"}},
		{"NUL in text", &store.Policy{Instance: "inst", Type: "SgxEnclave", Text: "a\x00b"}, audit("policy.set", "x")},
		{"invalid UTF-8 in JWS", &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "\xff"}, audit("policy.set", "x")},
		{"invalid UTF-8 in audit", &store.Policy{Instance: "inst", Type: "SgxEnclave"}, store.AuditEntry{Action: "policy.set", Detail: "\xc3"}},
	}
	for _, tc := range cases {
		err := s.PutPolicy(ctx, tc.p, tc.a)
		if err == nil {
			t.Errorf("%s: PutPolicy succeeded, want error", tc.name)
		}
		if strings.HasPrefix(tc.name, "NUL") || strings.HasPrefix(tc.name, "invalid UTF-8") {
			if !errors.Is(err, store.ErrInvalidText) {
				t.Errorf("%s: err = %v, want ErrInvalidText", tc.name, err)
			}
		}
	}
	if _, err := s.GetPolicy(ctx, "inst", "SgxEnclave"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a rejected write left a policy behind: %v", err)
	}
	mustAudit(t, s, "inst")
}

func testCertificatesEmpty(t *testing.T, s store.Store) {
	cs, err := s.Certificates(context.Background(), "inst")
	if err != nil || len(cs) != 0 {
		t.Fatalf("Certificates of unknown instance = %v, %v; want empty, nil", cs, err)
	}
}

func testAddCertificateIdempotent(t *testing.T, s store.Store) {
	ctx := context.Background()
	der := NewCertDER(t, "c1")
	tp := store.Thumbprint(der)
	c := store.Certificate{Instance: "inst", Thumbprint: tp, DER: der, AddedAt: Base}
	added, err := s.AddCertificate(ctx, c, audit("certificate.add", tp))
	if err != nil || !added {
		t.Fatalf("first add = %v, %v; want true, nil", added, err)
	}
	c2 := c
	c2.AddedAt = Base.Add(time.Hour)
	added, err = s.AddCertificate(ctx, c2, audit("certificate.add", tp))
	if err != nil || added {
		t.Fatalf("second add = %v, %v; want false, nil", added, err)
	}
	cs, err := s.Certificates(ctx, "inst")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Thumbprint != tp || !reflect.DeepEqual(cs[0].DER, der) || !cs[0].AddedAt.Equal(Base) || cs[0].Instance != "inst" {
		t.Fatalf("Certificates = %+v; want the one first added at %v", cs, Base)
	}
	mustAudit(t, s, "inst", "certificate.add:"+tp, "certificate.add:"+tp)
}

func testCertificatesOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []string
	for i := range 5 {
		der := NewCertDER(t, fmt.Sprint("c", i))
		// Thumbprint left empty: the store derives it.
		if _, err := s.AddCertificate(ctx, store.Certificate{Instance: "inst", DER: der, AddedAt: Base}, audit("certificate.add", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		want = append(want, store.Thumbprint(der))
	}
	if got := thumbprints(t, s, "inst"); !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %q, want insertion order %q", got, want)
	}
	if got := thumbprints(t, s, "other"); len(got) != 0 {
		t.Fatalf("other instance sees %q", got)
	}
}

func testCertificateThumbprintChecked(t *testing.T, s store.Store) {
	ctx := context.Background()
	der := NewCertDER(t, "c")
	for _, c := range []store.Certificate{
		{Instance: "inst", Thumbprint: "00112233445566778899AABBCCDDEEFF00112233", DER: der},
		{Instance: "inst", Thumbprint: "X"},
		{Instance: "", DER: der},
	} {
		if _, err := s.AddCertificate(ctx, c, audit("certificate.add", "x")); err == nil {
			t.Errorf("AddCertificate(%+v) succeeded, want error", c.Thumbprint)
		}
	}
	// A lower-case thumbprint is the same certificate.
	added, err := s.AddCertificate(ctx, store.Certificate{Instance: "inst", Thumbprint: lower(store.Thumbprint(der)), DER: der}, audit("certificate.add", "ok"))
	if err != nil || !added {
		t.Fatalf("lower-case thumbprint: %v, %v", added, err)
	}
	if got := thumbprints(t, s, "inst"); len(got) != 1 || got[0] != store.Thumbprint(der) {
		t.Fatalf("stored thumbprint %q, want upper-case %q", got, store.Thumbprint(der))
	}
	mustAudit(t, s, "inst", "certificate.add:ok")
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func addN(t *testing.T, s store.Store, instance string, n int) []string {
	t.Helper()
	var tps []string
	for i := range n {
		der := NewCertDER(t, fmt.Sprint(instance, i))
		if _, err := s.AddCertificate(context.Background(), store.Certificate{Instance: instance, DER: der, AddedAt: Base},
			audit("certificate.add", store.Thumbprint(der))); err != nil {
			t.Fatal(err)
		}
		tps = append(tps, store.Thumbprint(der))
	}
	return tps
}

func testRemoveCertificateIdempotent(t *testing.T, s store.Store) {
	ctx := context.Background()
	tps := addN(t, s, "inst", 3)
	removed, err := s.RemoveCertificate(ctx, "inst", lower(tps[1]), audit("certificate.remove", tps[1]))
	if err != nil || !removed {
		t.Fatalf("remove = %v, %v; want true, nil", removed, err)
	}
	removed, err = s.RemoveCertificate(ctx, "inst", tps[1], audit("certificate.remove", tps[1]))
	if err != nil || removed {
		t.Fatalf("second remove = %v, %v; want false, nil", removed, err)
	}
	if got := thumbprints(t, s, "inst"); !reflect.DeepEqual(got, []string{tps[0], tps[2]}) {
		t.Fatalf("after remove: %q", got)
	}
	removed, err = s.RemoveCertificate(ctx, "empty", tps[0], audit("certificate.remove", "none"))
	if err != nil || removed {
		t.Fatalf("remove from instance without certificates = %v, %v; want false, nil", removed, err)
	}
	mustAudit(t, s, "inst", "certificate.remove:"+tps[1], "certificate.remove:"+tps[1],
		"certificate.add:"+tps[2], "certificate.add:"+tps[1], "certificate.add:"+tps[0])
	mustAudit(t, s, "empty", "certificate.remove:none")
}

func testRemoveLastCertificateRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	tps := addN(t, s, "inst", 2)
	if removed, err := s.RemoveCertificate(ctx, "inst", tps[0], audit("certificate.remove", tps[0])); err != nil || !removed {
		t.Fatalf("remove first of two = %v, %v", removed, err)
	}
	removed, err := s.RemoveCertificate(ctx, "inst", tps[1], audit("certificate.remove", tps[1]))
	if !errors.Is(err, store.ErrLastCertificate) || removed {
		t.Fatalf("remove last = %v, %v; want false, ErrLastCertificate", removed, err)
	}
	if got := thumbprints(t, s, "inst"); !reflect.DeepEqual(got, []string{tps[1]}) {
		t.Fatalf("refused removal changed the certificates: %q", got)
	}
	// Removing an absent certificate while one remains is fine.
	if removed, err := s.RemoveCertificate(ctx, "inst", tps[0], audit("certificate.remove", "absent")); err != nil || removed {
		t.Fatalf("remove absent with one left = %v, %v; want false, nil", removed, err)
	}
	// The refused attempt changed nothing, not even the audit trail.
	mustAudit(t, s, "inst", "certificate.remove:absent", "certificate.remove:"+tps[0],
		"certificate.add:"+tps[1], "certificate.add:"+tps[0])
}

func testSeedCertificates(t *testing.T, s store.Store) {
	ctx := context.Background()
	d1, d2, d3 := NewCertDER(t, "s1"), NewCertDER(t, "s2"), NewCertDER(t, "s3")
	if err := s.SeedCertificates(ctx, "inst", []store.Certificate{{DER: d1, AddedAt: Base}, {DER: d2, AddedAt: Base}}, audit("certificate.seed", "2")); err != nil {
		t.Fatalf("seed: %v", err)
	}
	want := []string{store.Thumbprint(d1), store.Thumbprint(d2)}
	if got := thumbprints(t, s, "inst"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after seed: %q, want %q", got, want)
	}
	if err := s.SeedCertificates(ctx, "inst", []store.Certificate{{DER: d3}}, audit("certificate.seed", "again")); err != nil {
		t.Fatalf("second seed: %v", err)
	}
	if got := thumbprints(t, s, "inst"); !reflect.DeepEqual(got, want) {
		t.Fatalf("second seed changed certificates: %q", got)
	}
	if err := s.SeedCertificates(ctx, "bad", []store.Certificate{{DER: d1}, {Thumbprint: "AA", DER: d2}}, audit("certificate.seed", "bad")); err == nil {
		t.Fatal("seed with a wrong thumbprint succeeded")
	}
	if got := thumbprints(t, s, "bad"); len(got) != 0 {
		t.Fatalf("failed seed left certificates: %q", got)
	}
	mustAudit(t, s, "inst", "certificate.seed:2")
	mustAudit(t, s, "bad")
}

func testAuditOrderAndLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 5 {
		p := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: fmt.Sprint(i), Text: fmt.Sprint(i), UpdatedAt: Base}
		a := store.AuditEntry{At: Base.Add(time.Duration(i) * time.Second), Actor: "actor", Action: "policy.set", Target: fmt.Sprint(i), Hash: "hash", Detail: "detail"}
		if err := s.PutPolicy(ctx, p, a); err != nil {
			t.Fatal(err)
		}
	}
	all := mustAudit(t, s, "inst", "policy.set:4", "policy.set:3", "policy.set:2", "policy.set:1", "policy.set:0")
	for i, e := range all {
		want := store.AuditEntry{ID: e.ID, Instance: "inst", At: Base.Add(time.Duration(4-i) * time.Second), Actor: "actor",
			Action: "policy.set", Target: fmt.Sprint(4 - i), Hash: "hash", Detail: "detail"}
		if !e.At.Equal(want.At) {
			t.Errorf("entry %d At = %v, want %v", i, e.At, want.At)
		}
		e.At = want.At
		if e != want {
			t.Errorf("entry %d = %+v, want %+v", i, e, want)
		}
		if i > 0 && e.ID >= all[i-1].ID {
			t.Errorf("IDs not strictly decreasing newest first: %d then %d", all[i-1].ID, e.ID)
		}
	}
	got, err := s.Audit(ctx, "inst", 2)
	if err != nil || len(got) != 2 || got[0].Target != "4" || got[1].Target != "3" {
		t.Fatalf("Audit limit 2 = %+v, %v", got, err)
	}
	if got, err := s.Audit(ctx, "nobody", 10); err != nil || len(got) != 0 {
		t.Fatalf("Audit of unknown instance = %v, %v", got, err)
	}
	// A zero At is filled in by the store.
	if err := s.DeletePolicy(ctx, "inst", "SgxEnclave", store.AuditEntry{Action: "policy.reset"}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Audit(ctx, "inst", 1)
	if err != nil || len(got) != 1 || got[0].At.IsZero() {
		t.Fatalf("entry with zero At stored as %+v, %v", got, err)
	}
}

// testAuditPage pages through 7 entries of one instance (another
// instance's entries interleaved) by the Before cursor, with and without
// Since, and checks that an entry written between pages does not shift the
// pages still to be read.
func testAuditPage(t *testing.T, s store.Store) {
	ctx := context.Background()
	put := func(inst string, i int) {
		t.Helper()
		p := &store.Policy{Instance: inst, Type: "SgxEnclave", JWS: fmt.Sprint(i), Text: fmt.Sprint(i), UpdatedAt: Base}
		a := store.AuditEntry{At: Base.Add(time.Duration(i) * time.Minute), Actor: "actor", Action: "policy.set", Target: fmt.Sprint(i), Hash: "hash"}
		if err := s.PutPolicy(ctx, p, a); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		put("inst", i)
		put("other", 100+i)
	}
	targets := func(es []store.AuditEntry) []string {
		out := []string{}
		for _, e := range es {
			if e.Instance != "inst" {
				t.Errorf("entry %d of instance %q in a page of inst", e.ID, e.Instance)
			}
			out = append(out, e.Target)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		since time.Time
		pages [][]string
	}{
		{"all", time.Time{}, [][]string{{"6", "5", "4"}, {"3", "2", "1"}, {"0"}, {}}},
		{"since", Base.Add(2 * time.Minute), [][]string{{"6", "5", "4"}, {"3", "2"}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := store.AuditQuery{Instance: "inst", Since: tc.since, Limit: 3}
			for i, want := range tc.pages {
				got, err := s.AuditPage(ctx, q)
				if err != nil {
					t.Fatalf("page %d: %v", i, err)
				}
				if g := targets(got); !reflect.DeepEqual(g, want) {
					t.Fatalf("page %d (before %d) = %q, want %q", i, q.Before, g, want)
				}
				if len(got) > 0 {
					q.Before = got[len(got)-1].ID
				}
			}
		})
	}
	q := store.AuditQuery{Instance: "inst", Limit: 2}
	first, err := s.AuditPage(ctx, q)
	if err != nil || len(first) != 2 {
		t.Fatalf("first page = %v, %v", first, err)
	}
	put("inst", 7) // newer than every page: must not appear in the next ones
	q.Before = first[1].ID
	next, err := s.AuditPage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if g := targets(next); !reflect.DeepEqual(g, []string{"4", "3"}) {
		t.Fatalf("page after a concurrent write = %q, want [4 3]", g)
	}
	if got, err := s.AuditPage(ctx, store.AuditQuery{Instance: "inst"}); err != nil || len(got) != 8 {
		t.Fatalf("unlimited page = %d entries, %v; want 8", len(got), err)
	}
}

func testAuditRequiresAction(t *testing.T, s store.Store) {
	ctx := context.Background()
	der := NewCertDER(t, "c")
	if _, err := s.AddCertificate(ctx, store.Certificate{Instance: "inst", DER: der}, store.AuditEntry{}); err == nil {
		t.Fatal("AddCertificate with an empty audit entry succeeded")
	}
	if got := thumbprints(t, s, "inst"); len(got) != 0 {
		t.Fatalf("certificate added without its audit entry: %q", got)
	}
	if err := s.DeletePolicy(ctx, "inst", "SgxEnclave", store.AuditEntry{}); err == nil {
		t.Fatal("DeletePolicy with an empty audit entry succeeded")
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &store.Policy{Instance: "inst", Type: "SgxEnclave", JWS: "j", Text: "t", UpdatedAt: Base}
	if err := s.PutPolicy(ctx, p, audit("policy.set", "x")); err == nil {
		t.Fatal("PutPolicy with a canceled context succeeded")
	}
	if _, err := s.GetPolicy(context.Background(), "inst", "SgxEnclave"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("canceled write left a policy: %v", err)
	}
}

func testConcurrentWriters(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				typ := fmt.Sprintf("T%d", w)
				p := &store.Policy{Instance: "inst", Type: typ, JWS: fmt.Sprint(i), Text: fmt.Sprint(i), UpdatedAt: Base}
				if err := s.PutPolicy(ctx, p, audit("policy.set", typ)); err != nil {
					errs <- err
				}
				if i%3 == 0 {
					der := NewCertDER(t, fmt.Sprint(w, i))
					if _, err := s.AddCertificate(ctx, store.Certificate{Instance: "inst", DER: der}, audit("certificate.add", typ)); err != nil {
						errs <- err
					}
				}
				if _, err := s.GetPolicy(ctx, "inst", typ); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	for w := range writers {
		p, err := s.GetPolicy(ctx, "inst", fmt.Sprintf("T%d", w))
		if err != nil || p.Text != fmt.Sprint(each-1) {
			t.Errorf("writer %d's last policy = %+v, %v", w, p, err)
		}
	}
	certsPerWriter := (each + 2) / 3
	if got := thumbprints(t, s, "inst"); len(got) != writers*certsPerWriter {
		t.Errorf("%d certificates, want %d", len(got), writers*certsPerWriter)
	}
	entries, err := s.Audit(ctx, "inst", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := writers * (each + certsPerWriter); len(entries) != want {
		t.Errorf("%d audit entries, want %d", len(entries), want)
	}
	seen := map[int64]bool{}
	for _, e := range entries {
		if seen[e.ID] {
			t.Errorf("duplicate audit ID %d", e.ID)
		}
		seen[e.ID] = true
	}
}

// testConcurrentRemoveKeepsOne races two removals of the two remaining
// certificates: exactly one must win, or an instance ends up with none.
func testConcurrentRemoveKeepsOne(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := range 5 {
		inst := fmt.Sprint("inst", round)
		tps := addN(t, s, inst, 2)
		var wg sync.WaitGroup
		results := make([]error, 2)
		start := make(chan struct{})
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, results[i] = s.RemoveCertificate(ctx, inst, tps[i], audit("certificate.remove", tps[i]))
			}()
		}
		close(start)
		wg.Wait()
		ok, last := 0, 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrLastCertificate):
				last++
			default:
				t.Errorf("round %d: unexpected error %v", round, err)
			}
		}
		if ok != 1 || last != 1 {
			t.Errorf("round %d: %d removals succeeded and %d were refused; want 1 and 1", round, ok, last)
		}
		if got := thumbprints(t, s, inst); len(got) != 1 {
			t.Errorf("round %d: %d certificates left, want 1", round, len(got))
		}
	}
}
