package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/attestd/attestd/store/postgres"
	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/store/sqlstore"
)

// storeCmd is "attestd store migrate": move a deployment from SQLite to
// PostgreSQL (or between any two attestd databases). Every table is copied
// (policies with their JWS and signer, certificates, the audit trail with
// its ids, instance secrets, used nonces, signing keys still sealed under
// the same key-encryption key) in one transaction on the target, then
// both sides are compared table by table (row count and SHA-256).
func storeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "migrate" {
		return groupHelp(stderr, "store", args, storeVerbs)
	}
	fs := newFlagSet("store migrate", stderr, "attestd store migrate --from sqlite:FILE --to postgres://USER@HOST/DB",
		"Copies every table of an attestd database into an empty one and verifies counts and hashes. Stop the servers\n"+
			"using the source first. The signing keys stay sealed: give the new servers the same --key-encryption-key\n"+
			"(a single node's default is DATA/"+DefaultKEKFile+").",
		"attestd store migrate --from sqlite:./data/attestd.db --to 'postgres://attestd@db:5432/attestd?sslmode=verify-full'")
	from := fs.String("from", "", "source: sqlite:FILE (must exist) or a PostgreSQL DSN")
	to := fs.String("to", "", "target, empty: a PostgreSQL DSN (password from PGPASSWORD or ~/.pgpass) or sqlite:FILE")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return fmt.Errorf("%w: --from and --to are both required", errUsage)
	}
	log := slog.New(slog.DiscardHandler)
	src, srcDesc, closeSrc, err := openAny(ctx, *from, true, log)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer closeSrc()
	dst, dstDesc, closeDst, err := openAny(ctx, *to, false, log)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer closeDst()
	sums, err := src.CopyTo(ctx, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %s to %s; every table verified\n", srcDesc, dstDesc)
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tSHA-256")
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", n, sums[n].Rows, sums[n].SHA256)
	}
	return tw.Flush()
}

// openAny opens "sqlite:FILE" or a PostgreSQL DSN; the description never
// holds a password.
func openAny(ctx context.Context, spec string, mustExist bool, log *slog.Logger) (*sqlstore.DB, string, func(), error) {
	if path, ok := strings.CutPrefix(spec, "sqlite:"); ok {
		if mustExist {
			if _, err := os.Stat(path); err != nil {
				return nil, "", nil, err
			}
		}
		db, err := sqlite.Open(ctx, path, log)
		if err != nil {
			return nil, "", nil, err
		}
		return db.DB, "sqlite:" + path, func() { db.Close() }, nil
	}
	if !looksLikePostgresDSN(spec) {
		return nil, "", nil, errors.New("want sqlite:FILE or a PostgreSQL DSN (postgres://…)")
	}
	db, err := postgres.Open(ctx, spec, log)
	if err != nil {
		return nil, "", nil, err
	}
	return db.DB, "postgres://" + postgres.Describe(spec), func() { db.Close() }, nil
}
