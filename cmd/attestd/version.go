package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/attestd/attestd/internal/buildinfo"
)

// versionCmd prints the build of this binary (debug.ReadBuildInfo): one
// line, or with --json the object GET /version answers.
func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr, "attestd version [--json]",
		"Prints the attestd version, VCS revision, Go version and platform of this binary.",
		"attestd version --json")
	asJSON := fs.Bool("json", false, "print JSON (as GET /version answers)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in := buildinfo.Read()
	if *asJSON {
		b, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(stdout, in)
	return err
}

// newFlagSet returns a flag set whose --help shows the same three parts for
// every command: usage line and purpose, every flag, an example.
func newFlagSet(name string, stderr io.Writer, usageLine, purpose string, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\n%s\n\nFlags:\n", usageLine, purpose)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			fmt.Fprintln(stderr, "  (none)")
		}
		fs.PrintDefaults()
		if len(examples) > 0 {
			fmt.Fprint(stderr, "\nExample:\n")
			for _, e := range examples {
				fmt.Fprintf(stderr, "  %s\n", e)
			}
		}
	}
	return fs
}

// parseFlags parses args and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
