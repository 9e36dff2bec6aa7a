// Command attestd is a self-hostable remote attestation service that speaks
// the Microsoft Azure Attestation (MAA) data-plane API.
//
//	attestd [serve] [--listen ADDR] [--data DIR] [--config FILE]
//	attestd token --data DIR [--role reader|contributor] [--instance NAME] [--ttl DURATION]
//	attestd keys list|rotate --data DIR [--instance NAME] [--retire-after DURATION]
//	attestd verify --type SgxEnclave|OpenEnclave --evidence FILE --collateral FILE|DIR [--at TIME]
//	attestd policy check FILE | explain --type TYPE [--policy FILE] (--claims FILE | --evidence FILE --collateral PATH)
//	attestd audit list [--data DIR | --config FILE] [--instance NAME] [--since TIME] [--json]
//	attestd version | --version
//
// This package is the composition root: flags, environment and
// configuration in, wired server out. No other package reads the
// environment; the others take their clock as an option (defaulting to
// time.Now).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `attestd — a self-hosted, MAA-compatible remote attestation service

Usage:
  attestd [serve] [flags]     run the HTTPS server (the default command)
  attestd token [flags]       print a development bearer token (last line)
  attestd keys list|rotate|retire|import|rewrap
                              show, rotate, retire or import token-signing keys; re-seal them under a new key-encryption key
  attestd verify [flags]      verify SGX, OpenEnclave, SEV-SNP or TDX evidence offline, print its claims
  attestd policy check|explain  parse a policy; dry-run it over claims or evidence with a trace
  attestd audit list [flags]  print the audit trail of admin changes
  attestd store migrate       copy a SQLite database into PostgreSQL, verified
  attestd version             print the build (also --version)
  attestd help                show this help

Run "attestd COMMAND --help" for each command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 {
		switch args[0] {
		case "--version", "-version":
			cmd, args = "version", args[1:]
		case "--help", "-help", "-h":
			// The overview, then the default command's flags.
			fmt.Fprint(stdout, usage+"\n")
			cmd = "serve"
		}
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, args, stdout, stderr, nil)
	case "token":
		err = tokenCmd(args, stdout, stderr)
	case "keys":
		err = keysCmd(ctx, args, stdout, stderr)
	case "verify":
		return verifyCmd(ctx, args, stdout, stderr)
	case "policy":
		return policyCmd(ctx, args, stdout, stderr)
	case "audit":
		err = auditCmd(ctx, args, stdout, stderr)
	case "store":
		err = storeCmd(ctx, args, stdout, stderr)
	case "version":
		err = versionCmd(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "attestd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "attestd %s: %v\n", cmd, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("usage error")
