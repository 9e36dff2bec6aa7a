package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// command documents one verb for "attest VERB --help": its synopsis, what
// it prints, the flags it takes beyond the global ones, and an example.
// The flags listed here are the ones dispatch allows for the verb
// (TestCommandHelp keeps the two in step).
type command struct {
	name     string // "policy set"
	synopsis string // after "attest [global flags] "
	about    string
	flags    []string
	example  string
}

// globalFlags apply to every verb.
var globalFlags = []string{"endpoint", "cacert", "token", "token-file", "issuer", "leeway", "timeout", "api-version", "output", "retries"}

var commands = []command{
	{name: "policy get", synopsis: "policy get TYPE",
		about: "Prints the instance's policy for TYPE (its signer, if any, on stderr; with --output json one object\n" +
			"with the policy and its signer). Needs a bearer token.",
		example: "attest --endpoint https://myinst.weu.attest.azure.net --token-file tok policy get SgxEnclave"},
	{name: "policy set", synopsis: "policy set TYPE FILE [--sign-key KEY.pem --sign-cert CERT.pem]",
		about: "Sets the policy for TYPE to the text in FILE, unsigned (AAD instances) or signed with --sign-key by\n" +
			"--sign-cert (Isolated instances), and checks the answer's policy token hash. Prints the result as JSON.",
		flags:   []string{"sign-key", "sign-cert"},
		example: "attest --endpoint $EP --token-file tok policy set SgxEnclave examples/policies/sgx-permit.txt"},
	{name: "policy reset", synopsis: "policy reset TYPE [--sign-key KEY.pem --sign-cert CERT.pem]",
		about:   "Resets the policy for TYPE to the default. Prints the result as JSON.",
		flags:   []string{"sign-key", "sign-cert"},
		example: "attest --endpoint $EP --token-file tok policy reset SgxEnclave --sign-key k.pem --sign-cert c.pem"},
	{name: "policy-certs list", synopsis: "policy-certs list",
		about:   "Lists the policy management certificates of an Isolated instance as JSON. Needs a bearer token.",
		example: "attest --endpoint $EP --token-file tok policy-certs list"},
	{name: "policy-certs add", synopsis: "policy-certs add CERT.pem --sign-key KEY.pem --sign-cert CERT.pem",
		about:   "Adds CERT.pem (its first certificate) to the policy management certificates, signed by an existing one.",
		flags:   []string{"sign-key", "sign-cert"},
		example: "attest --endpoint $EP --token-file tok policy-certs add new.pem --sign-key k.pem --sign-cert c.pem"},
	{name: "policy-certs remove", synopsis: "policy-certs remove CERT.pem --sign-key KEY.pem --sign-cert CERT.pem",
		about:   "Removes CERT.pem from the policy management certificates, signed by one of them.",
		flags:   []string{"sign-key", "sign-cert"},
		example: "attest --endpoint $EP --token-file tok policy-certs remove old.pem --sign-key k.pem --sign-cert c.pem"},
	{name: "certs", synopsis: "certs",
		about:   "Prints the instance's token signing keys (/certs) as JSON: kid, subject, validity, thumbprint.",
		example: "attest --endpoint $EP certs"},
	{name: "metadata", synopsis: "metadata",
		about:   "Prints the instance's OpenID metadata (/.well-known/openid-configuration).",
		example: "attest --endpoint $EP metadata"},
	{name: "tcb-baselines", synopsis: "tcb-baselines TYPE",
		about: "Lists the TCB baselines (GET /tcbbaselines/TYPE, api-version 2025-06-01 unless --api-version says\n" +
			"otherwise) a policy can select with x-ms-sgx-tcbidentifier, the selected one marked *; --output json\n" +
			"prints MAA's body {\"tcbBaselines\":[…]}. Needs a bearer token (reader role).",
		example: "attest --endpoint $EP --token-file tok tcb-baselines SgxEnclave"},
	{name: "sgx", synopsis: "sgx --quote FILE [--runtime-data FILE | --runtime-json FILE] [--draft-policy FILE] [--nonce N]",
		about: "Attests an SGX ECDSA quote (POST /attest/SgxEnclave) and prints the validated token's claims (with\n" +
			"--output json: the token, whether it is unsigned, and the claims). A draft-policy result is UNSIGNED.",
		flags:   []string{"quote", "runtime-data", "runtime-json", "draft-policy", "nonce"},
		example: "attest --endpoint $EP --cacert ca.pem sgx --quote quote.bin --runtime-data key.jwk"},
	{name: "oe", synopsis: "oe --report FILE [--runtime-data FILE | --runtime-json FILE] [--draft-policy FILE] [--nonce N]",
		about:   "Attests an OpenEnclave report or evidence (POST /attest/OpenEnclave); output as for sgx.",
		flags:   []string{"report", "runtime-data", "runtime-json", "draft-policy", "nonce"},
		example: "attest --endpoint $EP --cacert ca.pem oe --report report.bin --runtime-json claims.json"},
	{name: "snp", synopsis: "snp --report FILE [--vcek-chain CHAIN.pem] [--runtime-json FILE] [--init-time-data FILE] [--nonce N]",
		about: "Attests SEV-SNP evidence (POST /attest/SevSnpVm): --report is MAA's report JSON, a raw or hex report,\n" +
			"or configfs-tsm JSON; with --vcek-chain a raw report and its chain are wrapped into the report JSON.",
		flags:   []string{"report", "vcek-chain", "runtime-data", "runtime-json", "init-time-data", "init-time-json", "draft-policy", "nonce"},
		example: "attest --endpoint $EP snp --report report.bin --vcek-chain vcek-chain.pem --runtime-json key.json"},
	{name: "tdx", synopsis: "tdx --quote FILE [--runtime-json FILE | --runtime-data FILE] [--init-time-data FILE] [--event-log CCEL] [--draft-policy FILE] [--nonce N]",
		about: "Attests an Intel TDX quote (POST /attest/TdxVm): --quote is a v4 or v5 TD quote, raw or hex;\n" +
			"SHA-256 of the runtime data must be the first half of its REPORTDATA. --event-log sends the TD's\n" +
			"CCEL, replayed against the RTMRs and offered to the policy as events (attestd, beyond MAA).",
		flags:   []string{"quote", "runtime-data", "runtime-json", "init-time-data", "init-time-json", "event-log", "draft-policy", "nonce"},
		example: "attest --endpoint $EP tdx --quote td-quote.bin --runtime-json key.json"},
	{name: "azure-guest", synopsis: "azure-guest [--tpm /dev/tpmrm0|HOST:PORT] [--hcl-report FILE] [--tcg-log FILE] [--vcek-chain CHAIN.pem | --td-quote FILE] [--client-payload FILE] [--nonce N]",
		about: "Attests an Azure confidential VM from inside it (POST /attest/AzureGuest): collects the HCL report,\n" +
			"TCG log and a TPM quote from the vTPM (or reads them from files), sends them, and opens the token\n" +
			"the service encrypts to the vTPM's ephemeral key.",
		flags:   []string{"tpm", "hcl-report", "tcg-log", "vcek-chain", "td-quote", "client-payload", "ak-handle", "nonce"},
		example: "attest --endpoint $EP azure-guest --tpm /dev/tpmrm0"},
	{name: "tpm", synopsis: "tpm [--tpm /dev/tpmrm0|HOST:PORT] [--tcg-log FILE|none] [--ak owner|gce|gce-ecc] [--aik-cert CERT] [--request-key KEY.pem] [--rp-id ID] [--rp-data FILE] [--ak-out AK.pem] [--protocol v2|v1]",
		about: "Runs MAA's TPM protocol (POST /attest/Tpm) from a TPM 2.0: creates the attestation key (a primary key,\n" +
			"the same on every run; --ak-out writes it for the server's tpm.trusted_aks; --ak gce loads GCE's\n" +
			"pre-provisioned AK and its certificate), sends the TCG log, quotes\n" +
			"the PCRs with the service's challenge bound to the request key, and prints the report's claims.\n" +
			"--protocol v1 sends a v1 (attReq) request instead: a PCP platform claim (Windows' NCryptCreateClaim\n" +
			"layout, built from TPM2_Quote) answering the challenge; its attest_key is not bound to the TPM (no cnf).",
		flags:   []string{"tpm", "tcg-log", "ak", "aik-cert", "request-key", "rp-id", "rp-data", "ak-out", "protocol"},
		example: "attest --endpoint $EP tpm --tpm /dev/tpmrm0 --ak-out ak.pem"},
	{name: "token verify", synopsis: "token verify TOKEN|- --issuer URL [--type sgx,sevsnpvm,…] [--certs JWKS.json] [--at TIME]",
		about: "Checks a token as a relying party does: signature by a key of the issuer's /certs (fetched from\n" +
			"--issuer URL/certs or --endpoint URL/certs, or read from --certs), RS256/ES256 only, iss, exp/nbf with\n" +
			"--leeway, --type. Prints VALID or INVALID (reason), then the claims (--output json: one object);\n" +
			"exits 1 naming the failed check.",
		flags:   []string{"type", "certs", "at"},
		example: "attest --issuer https://myinst.weu.attest.azure.net token verify \"$(cat token.jwt)\""},
}

// lookupCommand finds the command named by the leading positional words
// (a group name alone, like "policy", gives the group's commands).
func lookupCommand(pos []string) (cmd *command, group []command) {
	if len(pos) == 0 {
		return nil, nil
	}
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(pos) >= len(words) && strings.Join(pos[:len(words)], " ") == commands[i].name {
			return &commands[i], nil
		}
		if words[0] == pos[0] && len(words) > 1 {
			group = append(group, commands[i])
		}
	}
	return nil, group
}

// printHelp writes the help of the command pos names, or the general
// usage when it names none.
func printHelp(w io.Writer, fs *flag.FlagSet, pos []string) {
	cmd, group := lookupCommand(pos)
	switch {
	case cmd != nil:
		fmt.Fprintf(w, "Usage: attest [global flags] %s\n\n%s\n", cmd.synopsis, cmd.about)
		if len(cmd.flags) > 0 {
			fmt.Fprintf(w, "\nFlags of %s:\n", cmd.name)
			printFlags(w, fs, cmd.flags)
		}
		fmt.Fprintln(w, "\nGlobal flags:")
		printFlags(w, fs, globalFlags)
		fmt.Fprintf(w, "\nExample:\n  %s\n", cmd.example)
	case len(group) > 0:
		fmt.Fprintf(w, "Usage of attest %s:\n", pos[0])
		for _, c := range group {
			fmt.Fprintf(w, "  attest [global flags] %s\n", c.synopsis)
		}
		fmt.Fprintf(w, "\nRun 'attest %s COMMAND --help' for one command's flags and an example.\n", pos[0])
	default:
		fmt.Fprint(w, usage)
		fs.PrintDefaults()
	}
}

// printFlags prints the named flags as flag.PrintDefaults does, with the
// declared defaults (not values already parsed from this command line).
func printFlags(w io.Writer, fs *flag.FlagSet, names []string) {
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			continue
		}
		typ, use := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		line += "\n    \t" + strings.ReplaceAll(use, "\n", "\n    \t")
		switch {
		case f.DefValue == "" || f.DefValue == "0" || f.DefValue == "0s" || f.DefValue == "false":
		case typ == "string":
			line += fmt.Sprintf(" (default %q)", f.DefValue)
		default:
			line += " (default " + f.DefValue + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// helpPrefix is the command words to put before --help in a hint.
func helpPrefix(pos []string) string {
	cmd, group := lookupCommand(pos)
	switch {
	case cmd != nil:
		return cmd.name + " "
	case len(group) > 0:
		return pos[0] + " "
	}
	return ""
}
