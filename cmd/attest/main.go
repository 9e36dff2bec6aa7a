// Command attest is a thin command-line client of the MAA data-plane API
// (real Microsoft Azure Attestation or attestd), built on package client:
// every token it prints has been validated (signature by a /certs key,
// exp/nbf, optional issuer).
//
//	attest --endpoint URL [--cacert PEM] [--token T | --token-file F] COMMAND …
//
// Exit status: 0 success, 1 the service refused or a token failed
// validation, 2 usage or local I/O error.
package main

import (
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attestd/attestd/client"
	guest "github.com/attestd/attestd/client/azureguest"
	"github.com/attestd/attestd/internal/pemfile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `attest — a client of the Microsoft Azure Attestation (MAA) data-plane API (MAA or attestd).

Usage:
  attest --endpoint URL [flags] policy get TYPE
  attest --endpoint URL [flags] policy set TYPE FILE [--sign-key KEY.pem --sign-cert CERT.pem]
  attest --endpoint URL [flags] policy reset TYPE [--sign-key KEY.pem --sign-cert CERT.pem]
  attest --endpoint URL [flags] policy-certs list
  attest --endpoint URL [flags] policy-certs add|remove CERT.pem --sign-key KEY.pem --sign-cert CERT.pem
  attest --endpoint URL [flags] certs
  attest --endpoint URL [flags] metadata
  attest --endpoint URL [flags] tcb-baselines TYPE
  attest --endpoint URL [flags] sgx --quote FILE [--runtime-data FILE | --runtime-json FILE] [--draft-policy FILE] [--nonce N]
  attest --endpoint URL [flags] oe --report FILE [same options as sgx]
  attest --endpoint URL [flags] snp --report FILE [--vcek-chain CHAIN.pem] [--runtime-json FILE] [--init-time-data FILE] [--nonce N]
  attest --endpoint URL [flags] tdx --quote FILE [--runtime-json FILE | --runtime-data FILE] [--init-time-data FILE] [--event-log CCEL] [--draft-policy FILE] [--nonce N]
  attest --endpoint URL [flags] azure-guest [--tpm /dev/tpmrm0|HOST:PORT] [--hcl-report FILE] [--tcg-log FILE] [--vcek-chain CHAIN.pem | --td-quote FILE] [--client-payload FILE] [--nonce N]
  attest --endpoint URL [flags] tpm [--tpm /dev/tpmrm0|HOST:PORT] [--tcg-log FILE|none] [--ak owner|gce|gce-ecc] [--aik-cert CERT] [--request-key KEY.pem] [--rp-id ID] [--rp-data FILE] [--ak-out AK.pem] [--protocol v2|v1]
  attest --issuer URL [flags] token verify TOKEN|- [--type sgx,sevsnpvm,…] [--certs JWKS.json] [--at TIME]

TYPE is SgxEnclave, OpenEnclave, Tpm, SevSnpVm, TdxVm or AzureGuest. The endpoint may carry a base path
(https://host/tenants/t1). Admin commands (policy, policy-certs) need a bearer token.
"policy get" prints the policy text (its signer, if any, on stderr); the other commands print
JSON: sgx/oe/snp/tdx/tpm the validated token's (tpm: report's) claims, certs the signing keys, set/reset/add/remove the result.
A draft-policy result is UNSIGNED: it is printed with a warning on stderr.
"token verify" checks a token as a relying party does (signature by a key of the issuer's /certs,
fetched from --issuer URL/certs, or --endpoint URL/certs, or read from --certs; RS256 or ES256 only,
never alg none or a header certificate; iss; exp/nbf with --leeway; --type): it prints VALID or
INVALID (reason) on the first line, then the claims, and exits 1 naming the failed check.
With --output json every command prints one JSON document on stdout, errors included.
Run 'attest COMMAND --help' (or 'attest help COMMAND') for one command's flags and an example.

Flags (anywhere on the line):
`

type options struct {
	endpoint, cacert, token, tokenFile, issuer, apiVersion string
	leeway, timeout                                        time.Duration
	signKey, signCert                                      string
	quote, report, runtimeData, runtimeJSON, draftPolicy   string
	nonce                                                  string
	initTimeData, initTimeJSON, vcekChain                  string
	eventLog                                               string
	types, certs, at                                       string
	tpm, hclReport, tcgLog, clientPayload, akHandle        string
	tdQuote                                                string
	aikCert, requestKey, rpID, rpData, akOut, akSource     string
	protocol                                               string // tpm: v1 or v2
	output                                                 string
	retries                                                int
	// openTPM opens --tpm (nil: the device or a simulator's TCP port);
	// tests hand in a software TPM.
	openTPM func(string) (transport.TPMCloser, error)
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func newFlags(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("attest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.endpoint, "endpoint", os.Getenv("ATTEST_ENDPOINT"), "instance URL (default $ATTEST_ENDPOINT)")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of CA certificates to trust for TLS (in addition to the system's)")
	fs.StringVar(&o.token, "token", "", "bearer token for admin calls")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token")
	fs.StringVar(&o.issuer, "issuer", "", "require this exact token issuer (iss), e.g. the instance URL")
	fs.DurationVar(&o.leeway, "leeway", 0, "clock skew allowed on token exp/nbf")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "time limit of the whole command")
	fs.StringVar(&o.apiVersion, "api-version", client.DefaultAPIVersion, "api-version query parameter")
	fs.StringVar(&o.signKey, "sign-key", "", "PEM private key (RSA or ECDSA; PKCS#8, PKCS#1 or SEC 1) signing a policy or certificate change")
	fs.StringVar(&o.signCert, "sign-cert", "", "PEM certificate (then its chain) of --sign-key")
	fs.StringVar(&o.quote, "quote", "", "sgx: file with the raw SGX quote; tdx: the TD quote (v4/v5), raw or hex")
	fs.StringVar(&o.report, "report", "", "oe: file with the raw OpenEnclave report or evidence; snp: MAA report JSON, a raw or hex SEV-SNP report or configfs-tsm JSON")
	fs.StringVar(&o.vcekChain, "vcek-chain", "", "snp, azure-guest (default: ask Azure IMDS): PEM file of the VCEK/VLEK chain; with it --report is a raw report and the MAA report JSON is built")
	fs.StringVar(&o.initTimeData, "init-time-data", "", "snp: init-time data file (e.g. an ACI security policy), sent as Binary; bound to HOST_DATA")
	fs.StringVar(&o.initTimeJSON, "init-time-json", "", "snp: init-time data file, sent as JSON")
	fs.StringVar(&o.eventLog, "event-log", "", "tdx: the TD's CCEL event log file (e.g. /sys/firmware/acpi/tables/data/CCEL), replayed against the RTMRs")
	fs.StringVar(&o.runtimeData, "runtime-data", "", "sgx/oe: runtime data file, sent as Binary")
	fs.StringVar(&o.runtimeJSON, "runtime-json", "", "sgx/oe: runtime data file, sent as JSON")
	fs.StringVar(&o.draftPolicy, "draft-policy", "", "sgx/oe: policy text file evaluated instead of the instance's (unsigned result)")
	fs.StringVar(&o.nonce, "nonce", "", "sgx/oe: nonce echoed in the token")
	fs.StringVar(&o.tpm, "tpm", "/dev/tpmrm0", "azure-guest, tpm: the (v)TPM device, or HOST:PORT of a TPM simulator speaking raw TPM commands (swtpm)")
	fs.StringVar(&o.hclReport, "hcl-report", "", "azure-guest: HCL report file (default: read from the vTPM's NV index 0x01400001)")
	fs.StringVar(&o.tcgLog, "tcg-log", "", "azure-guest, tpm: TCG event log file (default: "+guest.TCGLogPath+"; tpm: \"none\" sends none)")
	fs.StringVar(&o.tdQuote, "td-quote", "", "azure-guest: TD quote file of a TDX CVM (default: ask Azure IMDS)")
	fs.StringVar(&o.clientPayload, "client-payload", "", "azure-guest: JSON object file echoed in x-ms-runtime.client-payload")
	fs.StringVar(&o.akHandle, "ak-handle", "0x81000003", "azure-guest: persistent handle of the vTPM's attestation key")
	fs.StringVar(&o.akSource, "ak", "owner", "tpm: the attestation key: owner (created in the owner hierarchy), gce or gce-ecc (GCE's pre-provisioned AK and its certificate from NV)")
	fs.StringVar(&o.aikCert, "aik-cert", "", "tpm: the AK's certificate (PEM or DER), sent as aik_cert")
	fs.StringVar(&o.requestKey, "request-key", "", "tpm: PEM RSA private key bound by the quote and named by the report's cnf (default: a fresh key)")
	fs.StringVar(&o.rpID, "rp-id", "", "tpm: relying party identifier (rp_id)")
	fs.StringVar(&o.rpData, "rp-data", "", "tpm: file of relying party data (rp_data, echoed in the report)")
	fs.StringVar(&o.akOut, "ak-out", "", "tpm: write the AK public key (PEM) here, e.g. to enroll it in tpm.trusted_aks")
	fs.StringVar(&o.protocol, "protocol", "v2", "tpm: the request protocol: v2 (attReqV2, a quote) or v1 (attReq, a PCP platform claim; RSA AK)")
	fs.StringVar(&o.types, "type", "", "token verify: accepted x-ms-attestation-type values, comma-separated (sgx, sevsnpvm, tdxvm, tpm, …)")
	fs.StringVar(&o.certs, "certs", "", "token verify: JWKS file of the issuer's signing keys (offline; default: fetch the issuer's /certs)")
	fs.StringVar(&o.at, "at", "", "token verify: check exp/nbf as of this RFC 3339 time instead of now")
	fs.StringVar(&o.output, "output", "text", "output format: text, or json (one JSON document on stdout, errors too)")
	fs.IntVar(&o.retries, "retries", 3, "times a call refused with 429 or 503 is repeated (honouring Retry-After); 0 turns retries off")
	// Help is printed by run, for the command named before --help.
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses flags that may stand before, between or after
// the positional words (flag.Parse stops at the first positional one). On
// an error it returns the words read so far (the command --help is for).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return pos, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, &options{}, args, stdout, stderr)
}

// runWith is run with o preset (tests set o.openTPM).
func runWith(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(o, stderr)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(stderr, fs, pos)
		return 0
	}
	if err == nil && len(pos) > 0 && pos[0] == "help" {
		printHelp(stderr, fs, pos[1:])
		return 0
	}
	if err == nil && o.output != "text" && o.output != "json" {
		err = usagef("--output %q: want text or json", o.output)
	}
	if err == nil {
		err = dispatch(ctx, o, fs, pos, stdout, stderr)
	}
	if err == nil {
		return 0
	}
	if o.output == "json" {
		printJSONError(stdout, err)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "attest: %v\nRun 'attest %s--help' for usage.\n", err, helpPrefix(pos))
		return 2
	}
	if strings.HasPrefix(err.Error(), "flag provided but not defined") {
		// The flag package printed the error; say where help is.
		fmt.Fprintf(stderr, "Run 'attest %s--help' for usage.\n", helpPrefix(pos))
	} else {
		fmt.Fprintf(stderr, "attest: %v\n", err)
	}
	var ce *client.Error
	var ve *client.ValidationError
	if errors.As(err, &ce) || errors.As(err, &ve) {
		return 1
	}
	return 2
}

// dispatch runs the command named by pos.
func dispatch(ctx context.Context, o *options, fs *flag.FlagSet, pos []string, stdout, stderr io.Writer) error {
	if len(pos) == 0 {
		fs.Usage()
		return usagef("no command")
	}
	// Flags only some commands take.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	allow := func(cmd string, names ...string) error {
		ok := map[string]bool{}
		for _, n := range names {
			ok[n] = true
		}
		for _, n := range []string{"sign-key", "sign-cert", "quote", "report", "runtime-data", "runtime-json", "draft-policy", "nonce", "type", "certs", "at", "vcek-chain", "init-time-data", "init-time-json", "tpm", "hcl-report", "tcg-log", "client-payload", "ak-handle", "td-quote", "ak", "aik-cert", "request-key", "rp-id", "rp-data", "ak-out", "protocol", "event-log"} {
			if set[n] && !ok[n] {
				return usagef("--%s does not apply to %q", n, cmd)
			}
		}
		return nil
	}
	nargs := func(want int) error {
		if len(pos) != want {
			return usagef("%q takes %d arguments, got %d", strings.Join(pos[:min(len(pos), 2)], " "), want-1, len(pos)-1)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	switch pos[0] {
	case "policy":
		if len(pos) < 2 {
			return usagef("policy needs get, set or reset")
		}
		switch pos[1] {
		case "get":
			if err := errors.Join(allow("policy get"), nargs(3)); err != nil {
				return err
			}
			c, err := o.client(true)
			if err != nil {
				return err
			}
			text, signer, err := c.GetPolicy(ctx, client.AttestationType(pos[2]))
			if err != nil {
				return err
			}
			if o.output == "json" {
				out := map[string]any{"type": pos[2], "policy": text}
				if signer != nil {
					out["signer"] = certInfo(signer)
				}
				return printJSON(stdout, out)
			}
			if signer != nil {
				fmt.Fprintf(stderr, "signed by %s (thumbprint %s)\n", signer.Subject, thumbprint(signer))
			} else {
				fmt.Fprintln(stderr, "unsigned")
			}
			_, err = io.WriteString(stdout, text)
			if err == nil && text != "" && !strings.HasSuffix(text, "\n") {
				_, err = io.WriteString(stdout, "\n")
			}
			return err
		case "set", "reset":
			want := 4
			if pos[1] == "reset" {
				want = 3
			}
			if err := errors.Join(allow("policy "+pos[1], "sign-key", "sign-cert"), nargs(want)); err != nil {
				return err
			}
			signer, err := o.signer(false)
			if err != nil {
				return err
			}
			c, err := o.client(true)
			if err != nil {
				return err
			}
			var r *client.PolicyResult
			if pos[1] == "set" {
				text, err := os.ReadFile(pos[3])
				if err != nil {
					return err
				}
				r, err = c.SetPolicy(ctx, client.AttestationType(pos[2]), string(text), signer)
				if err != nil {
					return err
				}
			} else if r, err = c.ResetPolicy(ctx, client.AttestationType(pos[2]), signer); err != nil {
				return err
			}
			out := map[string]any{"result": r.Resolution, "tokenHash": b64(r.TokenHash)}
			if r.Signer != nil {
				out["signer"] = r.Signer.Subject.String()
				out["signerThumbprint"] = thumbprint(r.Signer)
			}
			return printJSON(stdout, out)
		}
		return usagef("unknown policy command %q (want get, set or reset)", pos[1])

	case "policy-certs":
		if len(pos) < 2 {
			return usagef("policy-certs needs list, add or remove")
		}
		switch pos[1] {
		case "list":
			if err := errors.Join(allow("policy-certs list"), nargs(2)); err != nil {
				return err
			}
			c, err := o.client(true)
			if err != nil {
				return err
			}
			certs, err := c.GetPolicyCertificates(ctx)
			if err != nil {
				return err
			}
			out := []map[string]any{}
			for _, cert := range certs {
				out = append(out, certInfo(cert))
			}
			return printJSON(stdout, out)
		case "add", "remove":
			if err := errors.Join(allow("policy-certs "+pos[1], "sign-key", "sign-cert"), nargs(3)); err != nil {
				return err
			}
			signer, err := o.signer(true)
			if err != nil {
				return err
			}
			certs, err := pemfile.Certificates(pos[2])
			if err != nil {
				return err
			}
			c, err := o.client(true)
			if err != nil {
				return err
			}
			var r *client.CertificateResult
			if pos[1] == "add" {
				r, err = c.AddPolicyCertificate(ctx, certs[0], signer)
			} else {
				r, err = c.RemovePolicyCertificate(ctx, certs[0], signer)
			}
			if err != nil {
				return err
			}
			return printJSON(stdout, map[string]any{"result": r.Result, "thumbprint": r.Thumbprint})
		}
		return usagef("unknown policy-certs command %q (want list, add or remove)", pos[1])

	case "certs":
		if err := errors.Join(allow("certs"), nargs(1)); err != nil {
			return err
		}
		c, err := o.client(false)
		if err != nil {
			return err
		}
		jwks, err := c.GetSigningCertificates(ctx)
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for _, k := range jwks.Keys {
			info := certInfo(k.Certificates[0])
			info["kid"] = k.KID
			info["chainLength"] = len(k.Certificates)
			out = append(out, info)
		}
		return printJSON(stdout, out)

	case "metadata":
		if err := errors.Join(allow("metadata"), nargs(1)); err != nil {
			return err
		}
		c, err := o.client(false)
		if err != nil {
			return err
		}
		md, err := c.GetOpenIDMetadata(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, md.Raw)

	case "tcb-baselines":
		if err := errors.Join(allow("tcb-baselines"), nargs(2)); err != nil {
			return err
		}
		return tcbBaselines(ctx, o, pos[1], stdout)

	case "token":
		if len(pos) < 2 || pos[1] != "verify" {
			return usagef("token needs verify")
		}
		if err := allow("token verify", "type", "certs", "at"); err != nil {
			return err
		}
		return tokenVerify(ctx, o, pos, stdout, stderr)

	case "azure-guest":
		if err := errors.Join(allow("azure-guest", "tpm", "hcl-report", "tcg-log", "vcek-chain", "td-quote", "client-payload", "ak-handle", "nonce"), nargs(1)); err != nil {
			return err
		}
		return azureGuest(ctx, o, stdout)

	case "tpm":
		if err := errors.Join(allow("tpm", "tpm", "tcg-log", "ak", "aik-cert", "request-key", "rp-id", "rp-data", "ak-out", "protocol"), nargs(1)); err != nil {
			return err
		}
		return tpmAttest(ctx, o, stdout)

	case "sgx", "oe", "snp", "tdx":
		evFlag := map[string]string{"sgx": "quote", "oe": "report", "snp": "report", "tdx": "quote"}[pos[0]]
		extra := []string{}
		switch pos[0] {
		case "snp":
			extra = []string{"vcek-chain", "init-time-data", "init-time-json"}
		case "tdx":
			extra = []string{"init-time-data", "init-time-json", "event-log"}
		}
		if err := errors.Join(allow(pos[0], append([]string{evFlag, "runtime-data", "runtime-json", "draft-policy", "nonce"}, extra...)...), nargs(1)); err != nil {
			return err
		}
		evFile := map[string]string{"sgx": o.quote, "oe": o.report, "snp": o.report, "tdx": o.quote}[pos[0]]
		if evFile == "" {
			return usagef("%s needs --%s FILE", pos[0], evFlag)
		}
		if o.runtimeData != "" && o.runtimeJSON != "" {
			return usagef("give --runtime-data or --runtime-json, not both")
		}
		ev, err := os.ReadFile(evFile)
		if err != nil {
			return err
		}
		if pos[0] == "tdx" {
			// Quote generation tools write raw bytes or hex text.
			if d, err := hex.DecodeString(strings.TrimSpace(string(ev))); err == nil && len(d) > 0 {
				ev = d
			}
		}
		ao := &client.AttestOptions{Nonce: o.nonce}
		if o.runtimeData != "" {
			if ao.RuntimeData, err = os.ReadFile(o.runtimeData); err != nil {
				return err
			}
		}
		if o.runtimeJSON != "" {
			if ao.RuntimeJSON, err = os.ReadFile(o.runtimeJSON); err != nil {
				return err
			}
		}
		for _, d := range []struct {
			file string
			dst  *[]byte
		}{{o.initTimeData, &ao.InitTimeData}, {o.initTimeJSON, &ao.InitTimeJSON}, {o.eventLog, &ao.EventLog}} {
			if d.file != "" {
				if *d.dst, err = os.ReadFile(d.file); err != nil {
					return err
				}
			}
		}
		if o.vcekChain != "" {
			chain, err := os.ReadFile(o.vcekChain)
			if err != nil {
				return err
			}
			ev, err = client.SevSnpReportJSON(ev, chain, nil)
			if err != nil {
				return err
			}
		}
		if o.draftPolicy != "" {
			p, err := os.ReadFile(o.draftPolicy)
			if err != nil {
				return err
			}
			ao.DraftPolicy = string(p)
		}
		c, err := o.client(false)
		if err != nil {
			return err
		}
		var r *client.AttestationResult
		switch pos[0] {
		case "sgx":
			r, err = c.AttestSgxEnclave(ctx, ev, ao)
		case "oe":
			r, err = c.AttestOpenEnclave(ctx, ev, ao)
		case "tdx":
			r, err = c.AttestTdxVm(ctx, ev, ao)
		default:
			r, err = c.AttestSevSnpVm(ctx, ev, ao)
		}
		if err != nil {
			return err
		}
		if r.Unsigned {
			fmt.Fprintln(stderr, "WARNING: draft-policy result: the token is UNSIGNED (alg none); its claims prove nothing")
		}
		if o.output == "json" {
			return printJSON(stdout, map[string]any{"token": r.Token.Raw, "unsigned": r.Unsigned, "claims": r.Claims})
		}
		return printJSON(stdout, r.Claims)
	}
	return usagef("unknown command %q", pos[0])
}

// client builds the SDK client from the global flags; admin calls need a
// bearer token.
func (o *options) client(admin bool) (*client.Client, error) {
	if o.endpoint == "" {
		return nil, usagef("--endpoint is required")
	}
	tok := o.token
	if o.tokenFile != "" {
		if tok != "" {
			return nil, usagef("give --token or --token-file, not both")
		}
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, err
		}
		tok = strings.TrimSpace(string(b))
	}
	if admin && tok == "" {
		return nil, usagef("this command needs a bearer token (--token or --token-file)")
	}
	hc, err := o.httpClient()
	if err != nil {
		return nil, err
	}
	retries := o.retries
	if retries <= 0 {
		retries = -1 // client.Retry: negative is off, 0 the default
	}
	opts := &client.Options{HTTPClient: hc, APIVersion: o.apiVersion,
		Validation: client.Validation{Issuer: o.issuer, Leeway: o.leeway}, Retry: client.Retry{MaxRetries: retries}}
	if tok != "" {
		opts.Credential = func(context.Context) (string, error) { return tok, nil }
	}
	return client.New(o.endpoint, opts)
}

// newHTTPClient trusts the system roots plus the PEM certificates in
// cacert (if set).
func newHTTPClient(cacert string) (*http.Client, error) {
	hc := &http.Client{}
	if cacert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		b, err := os.ReadFile(cacert)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate", cacert)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: http.ProxyFromEnvironment}
	}
	return hc, nil
}

// signer loads --sign-key/--sign-cert; both or neither (unless required).
func (o *options) signer(required bool) (*client.Signer, error) {
	if o.signKey == "" && o.signCert == "" {
		if required {
			return nil, usagef("this command needs --sign-key and --sign-cert")
		}
		return nil, nil
	}
	if o.signKey == "" || o.signCert == "" {
		return nil, usagef("give both --sign-key and --sign-cert")
	}
	key, err := readKey(o.signKey)
	if err != nil {
		return nil, err
	}
	certs, err := pemfile.Certificates(o.signCert)
	if err != nil {
		return nil, err
	}
	return client.NewSigner(key, certs...)
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM private key", path)
		}
		var k any
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: a %T key cannot sign", path, k)
		}
		return s, nil
	}
}

func certInfo(c *x509.Certificate) map[string]any {
	return map[string]any{"subject": c.Subject.String(), "issuer": c.Issuer.String(), "thumbprint": thumbprint(c),
		"notBefore": c.NotBefore.UTC().Format(time.RFC3339), "notAfter": c.NotAfter.UTC().Format(time.RFC3339)}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// thumbprint is MAA's certificate thumbprint: upper-case hex SHA-1 of DER.
func thumbprint(c *x509.Certificate) string {
	s := sha1.Sum(c.Raw)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
