package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/token"
)

// rewrapFixture is a store's sealed values as the rewrap tests build them:
// the default RSA set, sets ES256 sets (default/es256, i1/es256, …) and
// secrets sealed instance secrets of "default", all under kek.
type rewrapFixture struct {
	sets    []string          // store instances with keys
	secrets map[string][]byte // secret name → plaintext
}

func newRewrapFixture(t *testing.T, db keyTestStore, kek *token.KEK, sets, secrets int) *rewrapFixture {
	t.Helper()
	ctx := context.Background()
	f := &rewrapFixture{sets: []string{DefaultName}, secrets: map[string][]byte{}}
	for i := range sets {
		name := es256Name(DefaultName)
		if i > 0 {
			name = es256Name(fmt.Sprintf("i%d", i))
		}
		f.sets = append(f.sets, name)
	}
	for _, inst := range f.sets {
		if _, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: inst, Subject: "https://rewrap.test", Keys: token.KEKKeys{KEK: kek},
			Now: time.Now, Algorithm: keySetAlgorithm(inst)}); err != nil {
			t.Fatal(err)
		}
	}
	sealed := store.SealSecrets(db, kek)
	for i := range secrets {
		name := fmt.Sprintf("secret-%03d", i)
		v := make([]byte, 32)
		rand.Read(v) //nolint:errcheck // crypto/rand never fails
		if _, err := sealed.InstanceSecret(ctx, DefaultName, name, func() ([]byte, error) { return v, nil }); err != nil {
			t.Fatal(err)
		}
		f.secrets[name] = v
	}
	return f
}

// under counts the fixture's stored values by the KEK their envelope names.
func (f *rewrapFixture) under(t *testing.T, db keyTestStore) map[string]int {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	count := func(b []byte) {
		id, ok := token.EnvelopeKEK(b)
		if !ok {
			id = "not an envelope"
		}
		out[id]++
	}
	for _, inst := range f.sets {
		rows, err := db.SigningKeys(ctx, inst)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			count(r.Private)
		}
	}
	for name := range f.secrets {
		v, err := db.InstanceSecret(ctx, DefaultName, store.SealedSecretPrefix+name, func() ([]byte, error) { return nil, fmt.Errorf("secret %s vanished", name) })
		if err != nil {
			t.Fatal(err)
		}
		count(v)
	}
	return out
}

// check opens every set and secret under kek.
func (f *rewrapFixture) check(t *testing.T, db keyTestStore, kek *token.KEK) {
	t.Helper()
	ctx := context.Background()
	for _, inst := range f.sets {
		ks, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: inst, Subject: "https://rewrap.test", Keys: token.KEKKeys{KEK: kek},
			Now: time.Now, Algorithm: keySetAlgorithm(inst)})
		if err != nil {
			t.Fatalf("key set %s under KEK %s: %v", inst, kek.ID(), err)
		}
		tok, err := ks.Sign("https://rewrap.test/certs", map[string]any{"set": inst})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	sealed := store.SealSecrets(db, kek)
	for name, want := range f.secrets {
		got, err := sealed.InstanceSecret(ctx, DefaultName, name, func() ([]byte, error) { return nil, fmt.Errorf("secret %s vanished", name) })
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("secret %s under KEK %s: %v", name, kek.ID(), err)
		}
	}
}

// rewrapAudits counts keys.rewrap entries of the fixture's instances.
func (f *rewrapFixture) rewrapAudits(t *testing.T, db keyTestStore) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, inst := range f.sets {
		es, err := db.Audit(context.Background(), inst, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Action == "keys.rewrap" {
				out[inst]++
			}
		}
	}
	return out
}

// TestKeysRewrap runs "attestd keys rewrap" on SQLite: without
// --previous-key-encryption-key, or with a missing new KEK file, it is a
// usage error; a value under a third KEK refuses it by name with nothing
// changed; then every key (RSA and ES256 sets) and secret moves to the new
// KEK, "keys list" works with the new KEK only, reruns (same command, or
// the new KEK as the previous one) change nothing, the audit trail has one
// keys.rewrap entry per key set, and no output holds KEK bytes.
func TestKeysRewrap(t *testing.T) {
	t.Setenv("ATTESTD_STORE_DSN", "")
	ctx := context.Background()
	data := t.TempDir()
	oldFile := filepath.Join(data, DefaultKEKFile)
	oldKEK, _, err := token.EnsureKEKFile(oldFile)
	if err != nil {
		t.Fatal(err)
	}
	newFile := filepath.Join(t.TempDir(), "new.kek")
	newKEK, _, err := token.EnsureKEKFile(newFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(data, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := newRewrapFixture(t, db, oldKEK, 2, 3)
	total := len(f.sets)*2 + len(f.secrets)

	var out, errb bytes.Buffer
	// keys list names the KEK each private key is sealed under.
	sealedUnder := func(kekFile string, k *token.KEK) {
		t.Helper()
		var lo, le bytes.Buffer
		if code := run(ctx, []string{"keys", "list", "--data", data, "--instance", es256Name(DefaultName), "--key-encryption-key", kekFile}, &lo, &le); code != 0 {
			t.Fatalf("keys list: %d %s", code, le.String())
		}
		if n := regexp.MustCompile(`(?m)^\S{44}\s.*\skek `+k.ID()+`$`).FindAllString(lo.String(), -1); len(n) != 2 {
			t.Fatalf("keys list does not show both keys under KEK %s:\n%s", k.ID(), lo.String())
		}
	}
	sealedUnder(oldFile, oldKEK)
	rewrap := func(args ...string) int {
		out.Reset()
		errb.Reset()
		return run(ctx, append([]string{"keys", "rewrap", "--data", data}, args...), &out, &errb)
	}
	if code := rewrap("--key-encryption-key", newFile); code != 2 || !strings.Contains(errb.String(), "--previous-key-encryption-key") {
		t.Fatalf("rewrap without the previous KEK: %d %s", code, errb.String())
	}
	if code := rewrap("--previous-key-encryption-key", oldFile, "--key-encryption-key", newFile+".missing"); code == 0 || !strings.Contains(errb.String(), "urandom") {
		t.Fatalf("rewrap to a missing KEK file: %d %s", code, errb.String())
	}
	// A key set sealed under a third KEK: refused, by name.
	strayFile := filepath.Join(t.TempDir(), "stray.kek")
	stray, _, err := token.EnsureKEKFile(strayFile)
	if err != nil {
		t.Fatal(err)
	}
	strays, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: db, Instance: "stray", Subject: "https://rewrap.test", Keys: token.KEKKeys{KEK: stray}, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if code := rewrap("--previous-key-encryption-key", oldFile, "--key-encryption-key", newFile); code != 1 ||
		!strings.Contains(errb.String(), "of stray is sealed under key-encryption key "+stray.ID()) || !strings.Contains(errb.String(), "nothing was changed") {
		t.Fatalf("rewrap with a stray key: %d %s", code, errb.String())
	}
	if got := f.under(t, db); got[oldKEK.ID()] != total {
		t.Fatalf("after the refusal: %v", got)
	}
	var purge []string
	for _, k := range strays.Keys() {
		purge = append(purge, k.KID)
	}
	if err := db.ChangeSigningKeys(ctx, "stray", store.KeyChange{Unconditional: true, Purge: purge}, store.AuditEntry{Action: "keys.purge"}); err != nil {
		t.Fatal(err)
	}

	if code := rewrap("--previous-key-encryption-key", oldFile, "--key-encryption-key", newFile); code != 0 {
		t.Fatalf("rewrap: %d %s", code, errb.String())
	}
	printed := out.String() + errb.String()
	if want := fmt.Sprintf("re-sealed %d signing key(s) and %d instance secret(s); 0 value(s)", len(f.sets)*2, len(f.secrets)); !strings.Contains(out.String(), want) {
		t.Fatalf("rewrap output lacks %q:\n%s", want, out.String())
	}
	if got := f.under(t, db); got[newKEK.ID()] != total || len(got) != 1 {
		t.Fatalf("after the rewrap: %v, want all %d under %s", got, total, newKEK.ID())
	}
	f.check(t, db, newKEK)
	sealedUnder(newFile, newKEK)
	for _, args := range [][]string{{"--previous-key-encryption-key", oldFile, "--key-encryption-key", newFile}, {"--previous-key-encryption-key", newFile, "--key-encryption-key", newFile}} {
		if code := rewrap(args...); code != 0 || !strings.Contains(out.String(), fmt.Sprintf("re-sealed 0 signing key(s) and 0 instance secret(s); %d value(s) were under it already", total)) {
			t.Fatalf("rerun %v: %d\n%s%s", args, code, out.String(), errb.String())
		}
		printed += out.String() + errb.String()
	}
	audits := f.rewrapAudits(t, db)
	for _, inst := range f.sets {
		if audits[inst] != 1 {
			t.Fatalf("keys.rewrap entries %v: want one per key set", audits)
		}
	}
	if code := run(ctx, []string{"keys", "list", "--data", data, "--instance", es256Name(DefaultName), "--key-encryption-key", newFile}, &out, &errb); code != 0 {
		t.Fatalf("keys list with the new KEK: %d %s", code, errb.String())
	}
	if code := run(ctx, []string{"keys", "list", "--data", data}, io.Discard, &errb); code == 0 || !strings.Contains(errb.String(), "different key-encryption key") {
		t.Fatalf("keys list with the old KEK after the rewrap: %d %s", code, errb.String())
	}
	var aud bytes.Buffer
	if code := run(ctx, []string{"audit", "list", "--data", data, "--json", "--instance", DefaultName}, &aud, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	printed += aud.String()
	if !strings.Contains(aud.String(), `"action":"keys.rewrap"`) || !strings.Contains(aud.String(), "kek "+newKEK.ID()) {
		t.Fatalf("audit list:\n%s", aud.String())
	}
	for _, file := range []string{oldFile, newFile} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(printed, strings.TrimSpace(string(b))) {
			t.Fatalf("output or audit trail holds the KEK of %s", file)
		}
	}
}

// TestKillMidRewrap SIGKILLs "attestd keys rewrap" processes inside their
// transaction (after they report it started, at a random delay) over
// hundreds of values, then checks the store after each: every value is
// under the old KEK or every value is under the new one, never a mix; an
// uninterrupted run finishes the job, and exactly one keys.rewrap entry per
// key set was committed, however many processes died.
func TestKillMidRewrap(t *testing.T) {
	data, open := sqliteKeyStore(t)
	killMidRewrap(t, data, open)
}

// TestKillMidRewrapPostgres is TestKillMidRewrap on PostgreSQL.
func TestKillMidRewrapPostgres(t *testing.T) {
	data, open := postgresKeyStore(t)
	killMidRewrap(t, data, open)
}

func killMidRewrap(t *testing.T, data string, open func() keyTestStore) {
	oldFile := filepath.Join(data, DefaultKEKFile)
	oldKEK, _, err := token.EnsureKEKFile(oldFile)
	if err != nil {
		t.Fatal(err)
	}
	newFile := filepath.Join(t.TempDir(), "new.kek")
	newKEK, _, err := token.EnsureKEKFile(newFile)
	if err != nil {
		t.Fatal(err)
	}
	db := open()
	f := newRewrapFixture(t, db, oldKEK, 20, 200)
	db.Close()
	total := len(f.sets)*2 + len(f.secrets)

	// SQLite re-seals these values in a few milliseconds, PostgreSQL
	// (one round trip per value) in tens.
	maxDelay := 3 * time.Millisecond
	if os.Getenv("ATTESTD_STORE_DSN") != "" {
		maxDelay = 30 * time.Millisecond
	}
	killedBefore, killedAfter, acked := 0, 0, 0
	for round := range 10 {
		kill := round < 8
		cmd := exec.Command(os.Args[0], "keys", "rewrap", "--data", data, "--previous-key-encryption-key", oldFile, "--key-encryption-key", newFile)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		var out bytes.Buffer
		cmd.Stdout = &out
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var errLines []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errLines = append(errLines, sc.Text())
			if kill && strings.HasPrefix(sc.Text(), "re-sealing") {
				// Inside the transaction: the values are being re-sealed
				// (a few ms on SQLite, more on PostgreSQL): kill at once,
				// or somewhere in it.
				if round%3 != 0 {
					time.Sleep(time.Duration(mrand.IntN(int(maxDelay))))
				}
				cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it may have finished already
			}
		}
		err = cmd.Wait()
		db := open()
		under := f.under(t, db)
		db.Close()
		allOld, allNew := under[oldKEK.ID()] == total, under[newKEK.ID()] == total
		switch {
		case !allOld && !allNew:
			t.Fatalf("round %d: values by KEK %v: a mix of old (%s) and new (%s)", round, under, oldKEK.ID(), newKEK.ID())
		case err == nil && !allNew:
			t.Fatalf("round %d: rewrap reported success but values by KEK are %v", round, under)
		case err == nil:
			acked++
		case !kill:
			t.Fatalf("round %d: rewrap failed: %v\n%s", round, err, strings.Join(errLines, "\n"))
		case allOld:
			killedBefore++
		default:
			killedAfter++
		}
	}
	t.Logf("%d processes killed before their commit, %d after it (or during a rerun); %d runs acknowledged", killedBefore, killedAfter, acked)
	if acked == 0 {
		t.Fatal("no rewrap succeeded")
	}
	db = open()
	defer db.Close()
	f.check(t, db, newKEK)
	audits := f.rewrapAudits(t, db)
	var sets []string
	for inst, n := range audits {
		if n != 1 {
			t.Fatalf("%s has %d keys.rewrap entries, want 1", inst, n)
		}
		sets = append(sets, inst)
	}
	slices.Sort(sets)
	want := slices.Clone(f.sets)
	slices.Sort(want)
	if !slices.Equal(sets, want) {
		t.Fatalf("keys.rewrap entries for %v, want %v", sets, want)
	}
}

// TestReplicasAfterRewrap is the KEK rotation of a PostgreSQL deployment
// without downtime: replica A runs with the old KEK; B is restarted with
// the new KEK and the old one as --previous-key-encryption-key and loads
// the keys; "attestd keys rewrap" re-seals everything; C, started with the
// new KEK alone, loads the same keys (A's token verifies at C's /certs and
// C's at A's); a rotation after it reaches B and C through NOTIFY and both
// sign with the new key; a replica given only the old KEK now refuses to
// start, naming the KEK.
func TestReplicasAfterRewrap(t *testing.T) {
	oldFile := replicaStore(t)
	newFile := filepath.Join(t.TempDir(), "new.kek")
	newKEK, _, err := token.EnsureKEKFile(newFile)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"A": t.TempDir(), "B": t.TempDir(), "C": t.TempDir(), "D": t.TempDir()}
	a := startServer(t, "--data", dirs["A"], "--key-encryption-key", oldFile, "--key-reload-interval", "0")
	defer a.stop(t)
	before := certKIDs(t, a)
	tokA := signedPolicyToken(t, a, devToken(t, dirs["A"], "reader"))
	b := startServer(t, "--data", dirs["B"], "--key-encryption-key", newFile, "--previous-key-encryption-key", oldFile, "--key-reload-interval", "0")
	defer b.stop(t)
	if got := certKIDs(t, b); !slices.Equal(got, before) {
		t.Fatalf("B (new KEK, old as previous) publishes %v, A %v", got, before)
	}
	oldKEK, err := token.LoadKEK(oldFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.out.String(), "previous_kek="+oldKEK.ID()) {
		t.Fatalf("B does not warn that it reads the previous KEK:\n%s", b.out.String())
	}

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rewrap", "--data", dirs["A"], "--previous-key-encryption-key", oldFile, "--key-encryption-key", newFile}, &out, &errb); code != 0 {
		t.Fatalf("keys rewrap: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "re-sealed 2 signing key(s)") {
		t.Fatalf("keys rewrap:\n%s", out.String())
	}
	c := startServer(t, "--data", dirs["C"], "--key-encryption-key", newFile, "--key-reload-interval", "0")
	defer c.stop(t)
	if got := certKIDs(t, c); !slices.Equal(got, before) {
		t.Fatalf("C (new KEK only) publishes %v, before the rewrap %v", got, before)
	}
	_, certsC := c.do(t, "GET", "/certs", "", "")
	verifyAgainst(t, certsC, tokA, "A's token (old KEK) against C's /certs")
	_, certsA := a.do(t, "GET", "/certs", "", "")
	verifyAgainst(t, certsA, signedPolicyToken(t, c, devToken(t, dirs["C"], "reader")), "C's token against A's /certs")

	// A rotation now: the new standby is sealed under the new KEK; B and
	// C hear of it through NOTIFY and sign with the promoted key.
	out.Reset()
	if code := run(context.Background(), []string{"keys", "rotate", "--now", "--data", dirs["C"], "--key-encryption-key", newFile}, &out, &errb); code != 0 {
		t.Fatalf("keys rotate: %d %s", code, errb.String())
	}
	for n, s := range map[string]*server{"B": b, "C": c} {
		deadline := time.Now().Add(10 * time.Second)
		for len(certKIDs(t, s)) != 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		tok := signedPolicyToken(t, s, devToken(t, dirs[n], "reader"))
		if tok.Header.Kid != before[1] {
			t.Fatalf("replica %s signs with %s after the rotation, want the promoted standby %s", n, tok.Header.Kid, before[1])
		}
		_, certs := s.do(t, "GET", "/certs", "", "")
		verifyAgainst(t, certs, tok, n+"'s token after the rotation")
	}

	// The old KEK alone no longer opens anything.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = serveCmd(ctx, []string{"--listen", "127.0.0.1:0", "--data", dirs["D"], "--key-encryption-key", oldFile, "--log-level", "warn"}, io.Discard, io.Discard, func(readyInfo) { cancel() })
	if err == nil || !strings.Contains(err.Error(), "different key-encryption key") || !strings.Contains(err.Error(), "envelope KEK "+newKEK.ID()) {
		t.Fatalf("a replica with the old KEK only: %v", err)
	}
}
