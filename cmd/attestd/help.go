package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
)

// verb is one command of a group ("keys list") for the group's help.
type verb struct{ name, about string }

var (
	keysVerbs = []verb{
		{"list", "list an instance's token-signing keys: state (standby, pending, active, retiring, retired) and dates"},
		{"rotate", "promote the standby key (signs after --key-prepublish, --now: at once), publish a new standby"},
		{"retire", "take a key out of /certs (a compromised or superseded key)"},
		{"import", "copy the key files of DATA/keys/NAME into the database"},
		{"rewrap", "re-seal every stored private key and secret under a new key-encryption key, in one transaction"},
	}
	storeVerbs = []verb{
		{"migrate", "copy every table of one database into another, empty one (SQLite to PostgreSQL), verifying counts and hashes"},
	}
	auditVerbs = []verb{
		{"list", "print the audit trail of admin changes (who, when, what, request hash)"},
	}
)

// groupHelp answers a group command ("attestd keys") given no known verb:
// the group's verbs, exit 0 for --help and a usage error otherwise, the
// same way for every group.
func groupHelp(stderr io.Writer, group string, args []string, verbs []verb) error {
	fmt.Fprintf(stderr, "Usage: attestd %s COMMAND [flags]\n\nCommands:\n", group)
	for _, v := range verbs {
		fmt.Fprintf(stderr, "  %-8s %s\n", v.name, v.about)
	}
	fmt.Fprintf(stderr, "\nRun \"attestd %s COMMAND --help\" for one command's flags and an example.\n", group)
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		return flag.ErrHelp
	}
	if len(args) == 0 {
		return fmt.Errorf("%w: want a command", errUsage)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
