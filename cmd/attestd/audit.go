package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/attestd/attestd/store"
	"github.com/attestd/attestd/token"
)

// auditCmd runs "attestd audit list": it reads the audit trail from the
// server's database (SQLite under the data directory, or the configured
// PostgreSQL) directly, so it works while the server is down too. The
// server's GET {instance}/audit route serves the same entries to the
// reader role.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return groupHelp(stderr, "audit", args, auditVerbs)
	}
	fs := newFlagSet("audit list", stderr, "attestd audit list [--data DIR] [--config FILE] [--instance NAME] [--since TIME] [--limit N] [--json]",
		"Prints the audit trail of admin changes (who, when, what, request hash), newest first.",
		"attestd audit list --data ./data --since 24h",
		"attestd audit list --config examples/local/attestd.json --instance t1 --json")
	data := fs.String("data", "", "data directory of the server (env ATTESTD_DATA; default "+DefaultData+")")
	cfgPath := fs.String("config", "", "configuration file of the server: its data directory, store and instances (env ATTESTD_CONFIG)")
	storeType := fs.String("store", "", "database: sqlite or postgres (env ATTESTD_STORE; as for serve)")
	dsn := fs.String("store-dsn", "", "PostgreSQL DSN, or the SQLite file (env ATTESTD_STORE_DSN; as for serve)")
	inst := fs.String("instance", "", "only this instance, its ES256 key set included (default: every configured instance); NAME/es256: that key set alone")
	since := fs.String("since", "", "only entries at or after this RFC 3339 time, or this long ago (e.g. 24h)")
	limit := fs.Int("limit", 100, "at most this many entries per instance (0: all)")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	q := store.AuditQuery{Limit: *limit}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return fmt.Errorf("%w: --since: %v", errUsage, err)
		}
		q.Since = t
	}
	o, cfg, err := storeOptions(*cfgPath, *data, *storeType, *dsn)
	if err != nil {
		return err
	}
	names := []string{DefaultName}
	if len(cfg.Instances) > 0 {
		names = names[:0]
		for _, ic := range cfg.Instances {
			names = append(names, ic.Name)
		}
	}
	if *inst != "" {
		names = []string{*inst}
	}
	st, _, err := openStore(ctx, o, o.Data, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	var all []store.AuditEntry
	for _, n := range names {
		es, err := auditOf(ctx, st, q, n)
		if err != nil {
			return err
		}
		all = append(all, es...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At.After(all[j].At) })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, e := range all {
			inst, alg := auditKeySet(e)
			if err := enc.Encode(auditJSON{Instance: inst, Alg: alg, ID: e.ID, At: e.At.UTC(), Actor: e.Actor, Action: e.Action, Target: e.Target, Hash: e.Hash, Detail: e.Detail}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	// ALG comes last: scripts reading the columns before it keep working.
	fmt.Fprintln(tw, "AT\tINSTANCE\tID\tACTOR\tACTION\tTARGET\tHASH\tALG")
	for _, e := range all {
		inst, alg := auditKeySet(e)
		if alg == "" {
			alg = "-"
		}
		hash := e.Hash
		if hash == "" {
			hash = "-" // keeps ALG in its column for whitespace-splitting readers
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), inst, e.ID, e.Actor, e.Action, e.Target, hash, alg)
	}
	return tw.Flush()
}

type auditJSON struct {
	Instance string `json:"instance"`
	// Alg is the algorithm of the key set a keys.* entry is about
	// (RS256, or ES256 for the set stored as NAME/es256).
	Alg    string    `json:"alg,omitempty"`
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Hash   string    `json:"hash"`
	Detail string    `json:"detail,omitempty"`
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now.Add(-d), nil
}

// auditOf reads the entries of instance name: those of its RSA key set
// and policies, and those of its ES256 key set (stored under NAME/es256),
// merged newest first, at most q.Limit. A name with the /es256 suffix
// reads that set alone.
func auditOf(ctx context.Context, st store.Store, q store.AuditQuery, name string) ([]store.AuditEntry, error) {
	names := []string{name}
	if set := parseKeySet(name); set.Alg == token.RS256 {
		names = append(names, es256Name(name))
	}
	var out []store.AuditEntry
	for _, n := range names {
		q.Instance = n
		es, err := st.AuditPage(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("audit trail of %s: %w", n, err)
		}
		out = append(out, es...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// auditKeySet is how audit list names an entry: its instance, and for
// signing-key events (keys.*) the algorithm of the key set, so an ES256
// event reads "default ES256" as "attestd keys list" heads that set, not
// by the storage name default/es256.
func auditKeySet(e store.AuditEntry) (instance, alg string) {
	set := parseKeySet(e.Instance)
	if !strings.HasPrefix(e.Action, "keys.") {
		return e.Instance, ""
	}
	return set.Name, string(set.Alg)
}
