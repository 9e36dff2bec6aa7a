package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/attestd/attestd/token"
)

// keysCmd is "attestd keys list|rotate": inspect or rotate an instance's
// token-signing keys in the data directory. It may run while the server
// runs: the key directory is locked during the change, and the server
// rereads it on SIGHUP and every --key-reload-interval.
func keysCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		fmt.Fprintf(stderr, "Usage: attestd keys list|rotate [flags]\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: want \"keys list\" or \"keys rotate\"", errUsage)
	}
	verb := args[0]
	flags := flag.NewFlagSet("keys "+verb, flag.ContinueOnError)
	flags.SetOutput(stderr)
	data := flags.String("data", "", "data directory of the server (env ATTESTD_DATA; default "+DefaultData+")")
	inst := flags.String("instance", DefaultName, "instance name")
	retire := flags.Duration("retire-after", 24*time.Hour, "rotate: keep the old keys in /certs this long (at least the 8 h token lifetime plus client cache time)")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: attestd keys %s --data DIR [--instance NAME]", verb)
		if verb == "rotate" {
			fmt.Fprint(stderr, " [--retire-after DURATION]")
		}
		fmt.Fprint(stderr, "\n\nFlags:\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, flags.Arg(0))
	}
	dir := filepath.Join(firstNonEmpty(*data, os.Getenv("ATTESTD_DATA"), DefaultData), "keys", *inst)
	if _, err := os.Stat(filepath.Join(dir, "keyset.json")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no signing keys for instance %q in %s (has the server run with this data directory?)", *inst, dir)
	}
	// The subject only names keys created here; reuse the existing one.
	ks, err := token.OpenKeySet(dir, "attestd", time.Now)
	if err != nil {
		return err
	}
	if verb == "rotate" {
		cert, _ := ks.Signer()
		if ks, err = token.OpenKeySet(dir, cert.Subject.CommonName, time.Now); err != nil {
			return err
		}
		if err := ks.Rotate(*retire); err != nil {
			return err
		}
	}
	for _, k := range ks.Keys() {
		state := "verifying"
		if k.Active {
			state = "signing"
		}
		retire := "-"
		if !k.RetireAt.IsZero() {
			retire = k.RetireAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s\t%s\tcreated %s\tretires %s\n", k.KID, state, k.Created.UTC().Format(time.RFC3339), retire)
	}
	return nil
}
