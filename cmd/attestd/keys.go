package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/token"
)

// SigningKeysConfig is the configuration file's "signing_keys" block:
// the rotation schedule and, optionally, an HSM holding the private keys.
// Durations are Go durations ("1h", "720h").
type SigningKeysConfig struct {
	// Prepublish: a new key is in /certs this long before it signs
	// (default 1h; longer than --key-reload-interval).
	Prepublish string `json:"prepublish"`
	// RetireAfter: a superseded key stays in /certs this long after its
	// successor signs (default 25h: the 1 day TPM report lifetime plus
	// margin; at least every token lifetime).
	RetireAfter string `json:"retire_after"`
	// RotateEvery, when set, rotates on this schedule (e.g. "720h").
	RotateEvery string        `json:"rotate_every"`
	PKCS11      *PKCS11Config `json:"pkcs11"`
}

// PKCS11Config keeps the private signing keys inside a PKCS#11 token
// (binaries built with -tags pkcs11). The PIN is read from PINFile or the
// environment variable ATTESTD_PKCS11_PIN, never from this file.
type PKCS11Config struct {
	Module     string `json:"module"`      // path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string `json:"token_label"` // label of the token (slot) holding the keys
	PINFile    string `json:"pin_file"`
}

// DefaultKEKFile is the key-encryption key a node creates in its data
// directory when none is given: fine for one node; replicas must all be
// given one shared --key-encryption-key.
const DefaultKEKFile = "key-encryption-key"

// keyFlags are the flags of every command that touches signing keys.
type keyFlags struct {
	kek, prevKEK                       string
	prepublish, retireAfter, every     time.Duration
	pkcs11Module, pkcs11Token, pinFile string
}

func (kf *keyFlags) register(fs *flag.FlagSet) {
	kf.registerSource(fs)
	kf.registerRotation(fs)
	fs.DurationVar(&kf.every, "key-rotate-every", 0, "rotate the signing keys on this schedule, e.g. 720h (config signing_keys.rotate_every; default: only on demand)")
}

// registerRotation adds the flags of one rotation.
func (kf *keyFlags) registerRotation(fs *flag.FlagSet) {
	fs.DurationVar(&kf.prepublish, "key-prepublish", 0, "a rotation's new signing key signs this long after the rotation; until then it is published in /certs only (config signing_keys.prepublish; default 1h)")
	fs.DurationVar(&kf.retireAfter, "key-retire-after", 0, "a superseded signing key stays in /certs this long after its successor signs (config signing_keys.retire_after; default 25h)")
}

// registerSource adds the flags naming where keys live.
func (kf *keyFlags) registerSource(fs *flag.FlagSet) {
	fs.StringVar(&kf.kek, "key-encryption-key", "", "file of the 32-byte key-encryption key (raw or base64) sealing signing keys and instance secrets in the database; every replica needs the same one (env ATTESTD_KEY_ENCRYPTION_KEY, config \"key_encryption_key\"; default DATA/"+DefaultKEKFile+", created)")
	fs.StringVar(&kf.prevKEK, "previous-key-encryption-key", "", "file of the key-encryption key being rotated out: values sealed under it are still read, every value written is sealed under --key-encryption-key; \"attestd keys rewrap\" moves the rest (env ATTESTD_PREVIOUS_KEY_ENCRYPTION_KEY, config \"previous_key_encryption_key\")")
	fs.StringVar(&kf.pkcs11Module, "pkcs11-module", "", "keep private signing keys in a PKCS#11 token: path of its library (config signing_keys.pkcs11.module; needs a binary built with -tags pkcs11)")
	fs.StringVar(&kf.pkcs11Token, "pkcs11-token", "", "label of the PKCS#11 token (config signing_keys.pkcs11.token_label)")
	fs.StringVar(&kf.pinFile, "pkcs11-pin-file", "", "file holding the PKCS#11 user PIN (env ATTESTD_PKCS11_PIN holds it instead; config signing_keys.pkcs11.pin_file)")
}

// keySettings are the resolved key settings.
type keySettings struct {
	kek        *token.KEK // with the previous KEK, if any, to open (WithPrevious)
	kekPath    string
	kekCreated bool
	// prevKEK is the KEK being rotated out (--previous-key-encryption-key).
	prevKEK     *token.KEK
	prevKEKPath string
	private     token.PrivateKeys
	rot         token.Rotation
	close       func() error
}

func parseDur(what, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s: %q is not a positive duration such as 1h", errUsage, what, s)
	}
	return d, nil
}

// resolveKEK fills ks's KEK (flag > environment > configuration >
// DATA/key-encryption-key, which create allows to make) and previous KEK
// (flag > environment > configuration; none by default), unmerged.
func resolveKEK(kf *keyFlags, cfg *Config, data string, create bool, ks *keySettings) error {
	ks.kekPath = firstNonEmpty(kf.kek, os.Getenv("ATTESTD_KEY_ENCRYPTION_KEY"), cfg.path(cfg.KeyEncryptionKey))
	var err error
	switch {
	case ks.kekPath != "":
		ks.kek, err = token.LoadKEK(ks.kekPath)
	case create:
		ks.kekPath = filepath.Join(data, DefaultKEKFile)
		ks.kek, ks.kekCreated, err = token.EnsureKEKFile(ks.kekPath)
	default:
		ks.kekPath = filepath.Join(data, DefaultKEKFile)
		ks.kek, err = token.LoadKEK(ks.kekPath)
	}
	if err != nil {
		return err
	}
	ks.prevKEKPath = firstNonEmpty(kf.prevKEK, os.Getenv("ATTESTD_PREVIOUS_KEY_ENCRYPTION_KEY"), cfg.path(cfg.PreviousKeyEncryptionKey))
	if ks.prevKEKPath != "" {
		if ks.prevKEK, err = token.LoadKEK(ks.prevKEKPath); err != nil {
			return fmt.Errorf("previous key-encryption key: %w", err)
		}
	}
	return nil
}

// resolveKeys combines flags, environment and configuration (in that
// order) and loads the KEK; create allows making the default KEK file.
func resolveKeys(kf *keyFlags, cfg *Config, data string, create bool) (*keySettings, error) {
	ks := &keySettings{close: func() error { return nil }}
	var err error
	if err = resolveKEK(kf, cfg, data, create, ks); err != nil {
		return nil, err
	}
	if ks.prevKEKPath != "" {
		ks.kek = ks.kek.WithPrevious(ks.prevKEK)
	}
	sk := cfg.SigningKeys
	for _, d := range []struct {
		flag time.Duration
		cfg  string
		name string
		dst  *time.Duration
	}{{kf.prepublish, sk.Prepublish, "signing_keys.prepublish", &ks.rot.Prepublish},
		{kf.retireAfter, sk.RetireAfter, "signing_keys.retire_after", &ks.rot.RetireAfter},
		{kf.every, sk.RotateEvery, "signing_keys.rotate_every", &ks.rot.Every}} {
		*d.dst = d.flag
		if *d.dst == 0 {
			if *d.dst, err = parseDur(d.name, d.cfg); err != nil {
				return nil, err
			}
		}
	}
	pc := PKCS11Config{}
	if sk.PKCS11 != nil {
		pc = *sk.PKCS11
		pc.PINFile = cfg.path(pc.PINFile)
	}
	pc.Module = firstNonEmpty(kf.pkcs11Module, pc.Module)
	pc.TokenLabel = firstNonEmpty(kf.pkcs11Token, pc.TokenLabel)
	pc.PINFile = firstNonEmpty(kf.pinFile, pc.PINFile)
	if pc.Module == "" {
		ks.private = token.KEKKeys{KEK: ks.kek}
		return ks, nil
	}
	pin := os.Getenv("ATTESTD_PKCS11_PIN")
	if pc.PINFile != "" {
		b, err := os.ReadFile(pc.PINFile)
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 PIN: %w", err)
		}
		pin = string(trimNewline(b))
	}
	if pc.TokenLabel == "" || pin == "" {
		return nil, fmt.Errorf("%w: PKCS#11 needs a token label (--pkcs11-token) and a PIN (--pkcs11-pin-file or ATTESTD_PKCS11_PIN)", errUsage)
	}
	p, closeFn, err := openPKCS11(pc.Module, pc.TokenLabel, pin)
	if err != nil {
		return nil, err
	}
	ks.private, ks.close = p, closeFn
	return ks, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// openInstanceKeys opens an instance's signing keys in the database. An
// instance whose keys are still files under DATA/keys/NAME (the layout
// before keys moved to the database) has them imported on first open, so
// tokens signed before the upgrade keep verifying.
func openInstanceKeys(ctx context.Context, st store.Store, name, subject, data string, ks *keySettings, log *slog.Logger) (*token.KeySet, error) {
	kst, ok := st.(store.KeyStore)
	if !ok {
		return nil, fmt.Errorf("store %T cannot hold signing keys", st)
	}
	// ImportDir: DATA/keys/NAME, or DATA/keys/NAME/es256 for NAME/es256,
	// where the file key sets of earlier versions live.
	return token.OpenStoreKeySet(ctx, token.StoreOptions{Store: kst, Instance: name, Subject: subject, Keys: ks.private,
		Rotation: ks.rot, Now: time.Now, Logger: log, ImportDir: filepath.Join(data, "keys", name), Algorithm: keySetAlgorithm(name)})
}

// es256Suffix names the ES256 attestation key set of an instance in the
// store: instance NAME with token_algorithm ES256 keeps its P-256 keys
// under store instance NAME/es256 ("/" cannot occur in a configured
// name, so the two never collide).
const es256Suffix = "/es256"

// es256Name is the store instance name of NAME's ES256 key set.
func es256Name(name string) string { return name + es256Suffix }

// keySetAlgorithm is the algorithm of the store key set named name: ES256
// for NAME/es256, RS256 otherwise. The name alone decides, so "attestd
// keys … --instance NAME/es256" makes the same keys serve does.
func keySetAlgorithm(name string) token.Algorithm { return parseKeySet(name).Alg }

// keySet is how an operator reads a store key set: the instance it belongs
// to and the algorithm it signs with. The ES256 set of instance NAME is
// stored as NAME/es256 (kept: renaming stored rows would need a migration)
// but shown as "name: NAME, alg: ES256", the same in "attestd keys list"
// and "attestd audit list".
type keySet struct {
	Name string
	Alg  token.Algorithm
}

// parseKeySet reads a store instance name.
func parseKeySet(storeName string) keySet {
	if n, ok := strings.CutSuffix(storeName, es256Suffix); ok && n != "" {
		return keySet{Name: n, Alg: token.ES256}
	}
	return keySet{Name: storeName, Alg: token.RS256}
}

// storeName is the store instance name of the set.
func (k keySet) storeName() string {
	if k.Alg == token.ES256 {
		return es256Name(k.Name)
	}
	return k.Name
}

func (k keySet) String() string { return "name: " + k.Name + ", alg: " + string(k.Alg) }

// keySetFlags resolves --instance and --alg: "--instance NAME --alg
// ES256" and "--instance NAME/es256" name the same set.
func keySetFlags(instance, alg string) (keySet, error) {
	ks := parseKeySet(instance)
	if alg == "" {
		return ks, nil
	}
	a, err := token.ParseAlgorithm(strings.ToUpper(alg))
	if err != nil {
		return keySet{}, fmt.Errorf("%w: --alg: %v", errUsage, err)
	}
	if ks.Alg == token.ES256 && a != token.ES256 {
		return keySet{}, fmt.Errorf("%w: --instance %s is the ES256 key set of %s; --alg %s contradicts it", errUsage, instance, ks.Name, a)
	}
	ks.Alg = a
	return ks, nil
}

// keysCmd is "attestd keys list|rotate|retire|import|rewrap": inspect and change
// an instance's token-signing keys in the database. It may run while
// servers run: every change is one transaction, servers hear of it through
// PostgreSQL notifications (or their next --key-reload-interval, or SIGHUP).
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verbs := map[string]string{
		"list":   "attestd keys list [--data DIR] [--config FILE] [--instance NAME] [--alg ES256]",
		"rotate": "attestd keys rotate [--now] [--key-prepublish D] [--key-retire-after D] [--data DIR] [--config FILE] [--instance NAME] [--alg ES256]",
		"retire": "attestd keys retire KID [--at TIME] [--data DIR] [--config FILE] [--instance NAME] [--alg ES256]",
		"import": "attestd keys import [--from DIR] [--data DIR] [--config FILE] [--instance NAME] [--alg ES256]",
	}
	if len(args) > 0 && args[0] == "rewrap" {
		return keysRewrapCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || verbs[args[0]] == "" {
		return groupHelp(stderr, "keys", args, keysVerbs)
	}
	verb := args[0]
	fs := newFlagSet("keys "+verb, stderr, verbs[verb], "Signing keys live in the database, sealed under the key-encryption key (or in a PKCS#11 token).",
		"attestd keys rotate --data ./data", "attestd keys list --config attestd.json --key-encryption-key /run/secrets/attestd-kek")
	data := fs.String("data", "", "data directory of the server (env ATTESTD_DATA; default "+DefaultData+")")
	cfgPath := fs.String("config", "", "configuration file of the server (env ATTESTD_CONFIG)")
	storeType := fs.String("store", "", "database: sqlite or postgres (env ATTESTD_STORE; as for serve)")
	dsn := fs.String("store-dsn", "", "PostgreSQL DSN, or the SQLite file (env ATTESTD_STORE_DSN; as for serve)")
	instFlag := fs.String("instance", DefaultName, "instance name; NAME/es256 is the ES256 attestation key set of an instance with token_algorithm ES256 (same as --alg ES256)")
	algFlag := fs.String("alg", "", "key set of the instance: RS256 (its RSA keys, the default) or ES256 (its ES256 attestation keys, stored as NAME/es256)")
	var kf keyFlags
	kf.registerSource(fs)
	now, at, from := new(bool), new(string), new(string)
	switch verb {
	case "rotate":
		fs.BoolVar(now, "now", false, "the standby key signs at once (after a compromise of the active key)")
		kf.registerRotation(fs)
		fs.DurationVar(&kf.retireAfter, "retire-after", 0, "same as --key-retire-after (the flag of earlier versions)")
	case "retire":
		fs.StringVar(at, "at", "", "RFC 3339 time or a duration from now (default: now)")
	case "import":
		fs.StringVar(from, "from", "", "key directory (default DATA/keys/NAME, DATA/keys/NAME/es256 for NAME/es256)")
	}
	rest := args[1:]
	var kid string
	if verb == "retire" {
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "-help") {
				fs.Usage()
				return flag.ErrHelp
			}
			return fmt.Errorf("%w: keys retire needs the KID to retire (see attestd keys list)", errUsage)
		}
		kid, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	set, err := keySetFlags(*instFlag, *algFlag)
	if err != nil {
		return err
	}
	inst := set.storeName()
	o, cfg, err := storeOptions(*cfgPath, *data, *storeType, *dsn)
	if err != nil {
		return err
	}
	settings, err := resolveKeys(&kf, cfg, o.Data, false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w (has the server run with this data directory? else give --key-encryption-key)", err)
		}
		return err
	}
	defer settings.close()
	log := slog.New(slog.DiscardHandler)
	st, _, err := openStore(ctx, o, o.Data, log)
	if err != nil {
		return err
	}
	defer st.Close()
	kst, ok := st.(store.KeyStore)
	if !ok {
		return fmt.Errorf("store %T cannot hold signing keys", st)
	}
	rows, err := kst.SigningKeys(ctx, inst)
	if err != nil {
		return err
	}
	importDir := firstNonEmpty(*from, filepath.Join(o.Data, "keys", inst))
	if len(rows) == 0 && verb != "import" {
		return fmt.Errorf("no signing keys for %s in the database (has the server run with this store? a key directory is moved in with \"attestd keys import\")", set)
	}
	// New keys' certificates name the instance URL; reuse the subject of
	// the existing keys.
	subject := "attestd"
	if len(rows) > 0 {
		if c, err := parseCert(rows[len(rows)-1].Certificate); err == nil && c.Subject.CommonName != "" {
			subject = c.Subject.CommonName
		}
	}
	ks, err := token.OpenStoreKeySet(ctx, token.StoreOptions{Store: kst, Instance: inst, Subject: subject, Keys: settings.private,
		Rotation: settings.rot, Now: time.Now, Logger: log, ImportDir: importDir, Algorithm: keySetAlgorithm(inst)})
	if err != nil {
		return err
	}
	actor := "attestd keys " + verb
	switch verb {
	case "rotate":
		pre := settings.rot.Prepublish
		if pre == 0 {
			pre = token.DefaultPrepublish
		}
		if *now {
			pre = 0
		}
		if err := ks.RotateContext(ctx, token.RotateOptions{Prepublish: pre, RetireAfter: settings.rot.RetireAfter, Actor: actor}); err != nil {
			return err
		}
	case "retire":
		when := time.Time{}
		if *at != "" {
			if when, err = parseWhen(*at, time.Now()); err != nil {
				return fmt.Errorf("%w: --at: %v", errUsage, err)
			}
		}
		if err := ks.Retire(ctx, kid, when, actor); err != nil {
			return err
		}
	case "import":
		kids, err := ks.ImportKeyDir(ctx, importDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "imported %d key(s) from %s\n", len(kids), importDir)
	}
	after, err := kst.SigningKeys(ctx, inst)
	if err != nil {
		return err
	}
	return printKeys(stdout, set, ks.Keys(), sealedBy(after))
}

// sealedBy says where each stored key's private part is: "kek ID" for an
// envelope under that key-encryption key (so an operator sees which keys
// a KEK rotation has moved), "pkcs11" for an HSM reference.
func sealedBy(rows []store.SigningKey) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		if id, ok := token.EnvelopeKEK(r.Private); ok {
			out[r.KID] = "kek " + id
		} else if strings.HasPrefix(string(r.Private), "pkcs11:") {
			out[r.KID] = "pkcs11"
		} else {
			out[r.KID] = "unknown"
		}
	}
	return out
}

// printKeys is the output of "attestd keys list": the key set as the
// audit trail names it, then its keys and where each private key is
// (sealed: sealedBy).
func printKeys(w io.Writer, set keySet, keys []token.KeyInfo, sealed map[string]string) error {
	fmt.Fprintln(w, set)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tSTATE\tCREATED\tSIGNS FROM\tRETIRES\tPRIVATE KEY")
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		from := ts(k.ActivateAt)
		if k.ActivateAt.IsZero() {
			from = ts(k.Created)
		}
		where := sealed[k.KID]
		if where == "" {
			where = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.State, ts(k.Created), from, ts(k.RetireAt), where)
	}
	return tw.Flush()
}

// parseWhen reads an RFC 3339 time or a duration after now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration from now", s)
	}
	return now.Add(d), nil
}

// reloadKeys rereads every instance's signing keys on SIGHUP, every
// interval, and at once when the store announces a change (PostgreSQL
// LISTEN/NOTIFY; the interval remains the fallback), so a rotation by any
// replica or "attestd keys" is published by every replica well within the
// pre-publication period. It returns a function that stops it.
func reloadKeys(ctx context.Context, st store.Store, keysets []*token.KeySet, names []string, interval time.Duration, log *slog.Logger) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	poke := make(chan string, 64)
	var watchDone chan struct{}
	if w, ok := st.(store.KeyWatcher); ok {
		watchDone = make(chan struct{})
		go func() {
			defer close(watchDone)
			if err := w.WatchSigningKeys(ctx, func(inst string) {
				select {
				case poke <- inst:
				default: // a reload is pending anyway
				}
			}); err != nil {
				log.Warn("signing-key notifications stopped; polling only", "error", err, "interval", interval)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var tick <-chan time.Time
		if interval > 0 {
			t := time.NewTicker(interval)
			defer t.Stop()
			tick = t.C
		}
		for {
			only := ""
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: rereading signing keys")
			case <-tick:
			case only = <-poke:
				log.Debug("signing keys changed in the database", "instance", only)
			}
			for i, ks := range keysets {
				if only != "" && names[i] != only {
					continue
				}
				before := ks.ActiveKID()
				rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
				err := ks.ReloadContext(rctx)
				rcancel()
				if err != nil {
					log.Error("rereading signing keys", "instance", names[i], "error", err)
					continue
				}
				if after := ks.ActiveKID(); after != before {
					log.Info("signing key changed", "instance", names[i], "kid", after, "previous", before)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
		if watchDone != nil {
			<-watchDone
		}
	}
}

func parseCert(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }

// storeOptions resolves the data directory and database of the commands
// that open the server's store beside it (flag > environment > file).
func storeOptions(cfgPath, data, storeType, dsn string) (*serveOptions, *Config, error) {
	if cfgPath == "" {
		cfgPath = os.Getenv("ATTESTD_CONFIG")
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	o := &serveOptions{
		Data:      firstNonEmpty(data, os.Getenv("ATTESTD_DATA"), cfg.path(cfg.Data), DefaultData),
		StoreType: firstNonEmpty(storeType, os.Getenv("ATTESTD_STORE"), cfg.Store.Type),
	}
	cfgDSN := cfg.Store.DSN
	if o.StoreType == StoreSQLite {
		cfgDSN = cfg.path(cfgDSN)
	}
	o.StoreDSN = firstNonEmpty(dsn, os.Getenv("ATTESTD_STORE_DSN"), cfgDSN)
	if o.StoreType == "" {
		o.StoreType = StoreSQLite
		if o.StoreDSN != "" {
			o.StoreType = StorePostgres
		}
	}
	if o.StoreType == StoreSQLite {
		db := o.StoreDSN
		if db == "" {
			db = filepath.Join(o.Data, "attestd.db")
		}
		// Opening must not create an empty database where the server's is
		// missing (a mistyped --data).
		if _, err := os.Stat(db); err != nil {
			return nil, nil, fmt.Errorf("no attestd database at %s (is --data or --config right?): %w", db, err)
		}
	}
	return o, cfg, nil
}
