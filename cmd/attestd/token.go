package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/attestd/attestd/auth"
)

// tokenCmd prints a bearer token of the development identity kept in the
// data directory; a server using the same directory (and an instance whose
// auth is {"dev": true}, the default without a configuration file) trusts it.
// The token is the last line of the output.
func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of the server (env ATTESTD_DATA; default "+DefaultData+")")
	role := fs.String("role", "contributor", "role: reader or contributor")
	inst := fs.String("instance", "", "scope the token to this instance name (default: valid for every instance trusting the development identity)")
	ttl := fs.Duration("ttl", 8*time.Hour, "token lifetime")
	create := fs.Bool("create", false, "create the development identity if DATA holds none (otherwise that is an error: a server on another directory would refuse the token)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: attestd token --data DIR [--role reader|contributor] [--instance NAME] [--ttl DURATION] [--create]\n\nPrints a development bearer token (on the last line).\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nExample:\n  TOKEN=$(attestd token --data ./data --role contributor | tail -n1)\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	dir := firstNonEmpty(*data, os.Getenv("ATTESTD_DATA"), DefaultData)
	if !*create && !auth.HasDevIdentity(dir) {
		return fmt.Errorf("%s holds no development identity (%s): is --data the server's data directory? A server creates it on first start; --create makes one here", dir, filepath.Join(dir, "dev-identity"))
	}
	tok, err := auth.MintDevToken(dir, *role, *inst, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
