package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/token"
)

// keysRewrapCmd is "attestd keys rewrap": the key-encryption-key rotation.
// The KEK configured as today (--key-encryption-key, its environment
// variable, configuration or DATA default) is the new one; the one the
// values are sealed under now is --previous-key-encryption-key (env,
// configuration likewise). Every private signing key of every instance
// (the NAME/es256 sets included) and every sealed instance secret is
// re-sealed in one database transaction (token.RewrapKEK): all or nothing,
// whatever kills the process. A value that opens under neither KEK refuses
// the whole rewrap, by name. Rerunning it changes nothing. PKCS#11 key
// references are left as they are: their keys never leave the HSM.
func keysRewrapCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys rewrap", stderr, "attestd keys rewrap --previous-key-encryption-key OLD [--key-encryption-key NEW] [--data DIR] [--config FILE] [--store-dsn DSN]",
		"Re-seals every private signing key and instance secret in the database from the previous key-encryption key\n"+
			"(--previous-key-encryption-key) to the key-encryption key (--key-encryption-key, as for serve), in one\n"+
			"transaction, and audits it (keys.rewrap). Replicas given both keys (the new one and the previous) read either\n"+
			"while it runs; afterwards they need only the new one. Safe to rerun.",
		"(umask 077; head -c 32 /dev/urandom | base64 > new.kek)",
		"attestd keys rewrap --config attestd.json --previous-key-encryption-key old.kek --key-encryption-key new.kek")
	data := fs.String("data", "", "data directory of the server (env ATTESTD_DATA; default "+DefaultData+")")
	cfgPath := fs.String("config", "", "configuration file of the server (env ATTESTD_CONFIG)")
	storeType := fs.String("store", "", "database: sqlite or postgres (env ATTESTD_STORE; as for serve)")
	dsn := fs.String("store-dsn", "", "PostgreSQL DSN, or the SQLite file (env ATTESTD_STORE_DSN; as for serve)")
	var kf keyFlags
	fs.StringVar(&kf.kek, "key-encryption-key", "", "file of the NEW 32-byte key-encryption key (raw or base64, mode 0600) every value ends sealed under (env ATTESTD_KEY_ENCRYPTION_KEY, config \"key_encryption_key\"; default DATA/"+DefaultKEKFile+"; never created here)")
	fs.StringVar(&kf.prevKEK, "previous-key-encryption-key", "", "file of the OLD key-encryption key the values are sealed under now (env ATTESTD_PREVIOUS_KEY_ENCRYPTION_KEY, config \"previous_key_encryption_key\"); required")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o, cfg, err := storeOptions(*cfgPath, *data, *storeType, *dsn)
	if err != nil {
		return err
	}
	var ks keySettings
	if err := resolveKEK(&kf, cfg, o.Data, false, &ks); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w (make the new key first: (umask 077; head -c 32 /dev/urandom | base64 > FILE))", err)
		}
		return err
	}
	if ks.prevKEK == nil {
		return fmt.Errorf("%w: keys rewrap needs --previous-key-encryption-key: the key-encryption key the stored values are sealed under now (--key-encryption-key %s is the new one)", errUsage, ks.kekPath)
	}
	st, _, err := openStore(ctx, o, o.Data, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	rs, ok := st.(store.Resealer)
	if !ok {
		return fmt.Errorf("store %T cannot re-seal its values", st)
	}
	rep, err := token.RewrapKEK(ctx, token.RewrapOptions{Store: rs, Old: ks.prevKEK, New: ks.kek, Actor: "attestd keys rewrap",
		Started: func() {
			fmt.Fprintf(stderr, "re-sealing every private key and instance secret from key-encryption key %s to %s in one transaction\n", ks.prevKEK.ID(), ks.kek.ID())
		}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key-encryption key %s (was %s): re-sealed %d signing key(s) and %d instance secret(s); %d value(s) were under it already\n",
		rep.New, rep.Old, rep.Keys, rep.Secrets, rep.Already)
	if len(rep.References) > 0 {
		fmt.Fprintf(stdout, "left %d PKCS#11 key reference(s) as they are (the keys stay in the HSM)\n", len(rep.References))
	}
	fmt.Fprintf(stdout, "every stored value is now sealed under %s (%s); run the servers with --key-encryption-key %s and without --previous-key-encryption-key\n",
		rep.New, ks.kekPath, ks.kekPath)
	return nil
}
