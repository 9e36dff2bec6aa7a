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
		return groupHelp(stderr, "keys", args, keysVerbs)
	}
	verb := args[0]
	var flags *flag.FlagSet
	retire := new(time.Duration)
	if verb == "list" {
		flags = newFlagSet("keys list", stderr, "attestd keys list --data DIR [--instance NAME]",
			"Lists an instance's token-signing keys: kid, signing or verifying, created, retirement time.",
			"attestd keys list --data ./data --instance default")
	} else {
		flags = newFlagSet("keys rotate", stderr, "attestd keys rotate --data DIR [--instance NAME] [--retire-after DURATION]",
			"Makes a new signing key; the old one keeps verifying (stays in /certs) until --retire-after.\n"+
				"A running server picks the change up on SIGHUP or within --key-reload-interval.",
			"attestd keys rotate --data ./data --instance default --retire-after 24h && kill -HUP $(pidof attestd)")
		flags.DurationVar(retire, "retire-after", 24*time.Hour, "keep the old keys in /certs this long (at least the 8 h token lifetime plus client cache time)")
	}
	data := flags.String("data", "", "data directory of the server (env ATTESTD_DATA; default "+DefaultData+")")
	inst := flags.String("instance", DefaultName, "instance name")
	if err := parseFlags(flags, args[1:]); err != nil {
		return err
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
