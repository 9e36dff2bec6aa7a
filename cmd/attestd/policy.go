package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/policy"
)

// Exit codes of "attestd policy".
const (
	policyExitOK      = 0 // check: the policy parses; explain: permitted
	policyExitRefused = 1 // check: parse error; explain: attest would refuse (denied, bad policy, evidence rejected)
	policyExitUsage   = 2 // bad flags or unreadable files
)

const policyUsage = `Usage:
  attestd policy check FILE
      parse an MAA policy; print its x-ms-policy-hash, or MAA's PolicyParsingError with line and column
  attestd policy explain --type TYPE [--policy FILE] (--claims FILE | --evidence FILE [--collateral PATH] [--at TIME] [--runtime-data FILE]) [--json]
      dry-run a policy offline and print the decision with a rule-by-rule trace; no token is issued
  attestd policy explain --server URL --token TOKEN [--cacert PEM] --type TYPE [--policy FILE] (--claims FILE | --evidence FILE [--runtime-data FILE])
      the same on a running attestd (POST URL/attestd/policies/TYPE:explain): default policy = the instance's policy in force

Exit codes: 0 parses / permitted, 1 parse error / attest would refuse, 2 usage or I/O error.
`

// policyCmd is "attestd policy check|explain": offline policy tools that
// need no server. The server's counterpart of explain is
// POST {instance}/attestd/policies/{type}:explain.
func policyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return policyExitUsage
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "explain":
		return policyExplain(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, policyUsage)
		fmt.Fprint(stdout, "\nRun \"attestd policy COMMAND --help\" for one command's flags and an example.\n")
		return policyExitOK
	}
	fmt.Fprintf(stderr, "attestd policy: unknown subcommand %q\n\n%s", args[0], policyUsage)
	return policyExitUsage
}

// policyCheck parses FILE ("-" = stdin) exactly as PUT /policies would.
func policyCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(stdout, "Usage: attestd policy check FILE|-\n\n"+
			"Parses an MAA policy exactly as PUT /policies would and prints its x-ms-policy-hash, or MAA's\n"+
			"PolicyParsingError with line and column. Exit codes: 0 parses, 1 parse error, 2 usage or I/O error.\n\n"+
			"Flags:\n  (none)\n\nExample:\n  attestd policy check examples/policies/sgx-product7.txt\n")
		return policyExitOK
	}
	if len(args) != 1 {
		fmt.Fprintf(stderr, "attestd policy check: want exactly one FILE\n")
		return policyExitUsage
	}
	text, err := readInput(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "attestd policy check: %v\n", err)
		return policyExitUsage
	}
	p, err := policy.Parse(string(text))
	if err != nil {
		var pe *policy.ParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "%s:%d:%d: %s (rule %s)\n", args[0], pe.Line, pe.Column, pe.Message, pe.Rule)
			if pe.Hint != "" {
				fmt.Fprintf(stderr, "  hint: %s\n", pe.Hint)
			}
			fmt.Fprintf(stderr, "PUT /policies would answer 400 PolicyParsingError:\n%s\n", pe.MAADetail())
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", args[0], err)
		}
		return policyExitRefused
	}
	fmt.Fprintf(stdout, "ok: version %s, x-ms-policy-hash %s\n", p.Version(), policy.Hash(string(text)))
	return policyExitOK
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, api.MaxAttestBody+1))
	}
	return os.ReadFile(path)
}

// policyExplain dry-runs a policy offline through the same engine as the
// server's explain endpoint (instance.ExplainWith): over a JSON claim set,
// or over evidence verified by the real SGX verifier against the given
// collateral. Without --policy it uses the type's default policy, the one a
// fresh instance has.
func policyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("policy explain", stderr, "attestd policy explain --type TYPE [--policy FILE] (--claims FILE | --evidence FILE [--collateral PATH]) [--server URL --token T] [--json]",
		"Dry-runs a policy (default: the type's default policy, or with --server the instance's policy in force)\n"+
			"over a claim set or verified evidence and prints the decision with a rule-by-rule trace; no token is issued.\n"+
			"Exit codes: 0 permitted, 1 attest would refuse, 2 usage or I/O error.",
		"attestd policy explain --type SgxEnclave --policy examples/policies/sgx-product7.txt --claims examples/claims/sgx.json",
		"attestd policy explain --server https://127.0.0.1:8443 --token \"$TOKEN\" --cacert data/tls/cert.pem --type SgxEnclave --claims claims.json")
	typ := fs.String("type", "SgxEnclave", "attestation type: SgxEnclave, OpenEnclave, Tpm, SevSnpVm, TdxVm (evidence: SgxEnclave, OpenEnclave or TdxVm)")
	policyPath := fs.String("policy", "", "policy text file (default: the type's default policy)")
	claimsPath := fs.String("claims", "", "JSON claim set {\"type\": value | [values]}")
	evPath := fs.String("evidence", "", "evidence: an attest request body (JSON, as POST /attest takes) or the raw quote/report (binary, base64(url) or hex)")
	var of offlineFlags // --collateral, --at, --grace, --roots, --runtime-data, --diagnostic-skip-collateral
	of.register(fs)
	rtPath := &of.runtime
	asJSON := fs.Bool("json", false, "print the explanation as JSON instead of text")
	server := fs.String("server", "", "ask a running attestd instead (instance URL, e.g. https://127.0.0.1:8443 or …/tenants/t1): its policy in force, verifiers and clock")
	tokenFlag := fs.String("token", "", "--server: bearer token with the reader role (env ATTESTD_TOKEN)")
	cacert := fs.String("cacert", "", "--server: PEM file of the CA that issued the server's TLS certificate (e.g. DATA/tls/cert.pem)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return policyExitOK
		}
		return policyExitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "attestd policy explain: "+format+"\n", a...)
		return policyExitUsage
	}
	if fs.NArg() != 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	t, ok := evidence.ParseType(*typ)
	if !ok {
		return usage("unknown --type %q", *typ)
	}
	if (*claimsPath == "") == (*evPath == "") {
		return usage("give exactly one of --claims and --evidence")
	}
	if *server != "" {
		if of.set() {
			return usage("--collateral, --at, --grace, --roots and --diagnostic-skip-collateral are the server's business with --server")
		}
		return policyExplainRemote(ctx, remoteExplain{server: *server, token: firstNonEmpty(*tokenFlag, os.Getenv("ATTESTD_TOKEN")), cacert: *cacert,
			typ: t, policyPath: *policyPath, claimsPath: *claimsPath, evPath: *evPath, rtPath: *rtPath, json: *asJSON}, stdout, stderr)
	}
	req := &instance.ExplainRequest{Type: t}
	if *policyPath != "" {
		b, err := readInput(*policyPath)
		if err != nil {
			return usage("%v", err)
		}
		s := string(b)
		req.Policy = &s
	}
	var v evidence.Verifier
	if *claimsPath != "" {
		b, err := readInput(*claimsPath)
		if err != nil {
			return usage("%v", err)
		}
		req.Claims = b
	} else {
		if t != evidence.SgxEnclave && t != evidence.OpenEnclave && t != evidence.TdxVm {
			return usage("--evidence needs --type SgxEnclave, OpenEnclave or TdxVm (the verifiers in this build)")
		}
		if of.collateral == "" && !of.diagnostic {
			return usage("--evidence needs --collateral (or --diagnostic-skip-collateral)")
		}
		b, err := readInput(*evPath)
		if err != nil {
			return usage("%v", err)
		}
		if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '{' {
			if req.Evidence, err = api.DecodeAttestRequest(t, trimmed); err != nil {
				return usage("%s: %v", *evPath, err)
			}
		} else {
			req.Evidence = &instance.AttestRequest{Type: t, Evidence: sgx.DecodeEvidence(b)}
		}
		if *rtPath != "" {
			rt, err := os.ReadFile(*rtPath)
			if err != nil {
				return usage("%v", err)
			}
			// The file's bytes as they are, as "attestd verify" and /attest
			// bind them (a text file is not decoded as hex or base64).
			req.Evidence.Runtime = &evidence.Data{Bytes: rt}
		}
		if v, req.Now, err = of.offlineVerifier(t); err != nil {
			return usage("%v", err)
		}
	}
	source := instance.PolicySourceGiven
	switch {
	case req.Policy != nil:
	case req.Evidence != nil && req.Evidence.DraftPolicy != nil:
		req.Policy, source = req.Evidence.DraftPolicy, instance.PolicySourceDraft
	default:
		def, ok := policy.Default(string(t))
		if !ok {
			return usage("%s has no default policy: give --policy", t)
		}
		req.Policy, source = &def, "default"
	}
	ex, err := instance.ExplainWith(ctx, v, req)
	if ex != nil {
		ex.PolicySource = source
	}
	if err != nil {
		var pe *policy.ParseError
		var ie *instance.Error
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "policy:%d:%d: %s (rule %s)\nattest would answer: 400 PolicyParsingError\n", pe.Line, pe.Column, pe.Message, pe.Rule)
			return policyExitRefused
		}
		if errors.As(err, &ie) && ie.Code != instance.CodeInternal {
			fmt.Fprintf(stderr, "attest would answer: %s: %s\n", ie.Code, ie.Message)
			return policyExitRefused
		}
		fmt.Fprintf(stderr, "attestd policy explain: %v\n", err)
		return policyExitUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // keep "&&" and "=>" of rule texts readable
		if err := enc.Encode(ex); err != nil {
			fmt.Fprintf(stderr, "attestd policy explain: %v\n", err)
			return policyExitUsage
		}
	} else {
		fmt.Fprint(stdout, api.ExplanationText(ex))
	}
	if !ex.Permitted {
		return policyExitRefused
	}
	return policyExitOK
}

// remoteExplain is one "policy explain --server" call.
type remoteExplain struct {
	server, token, cacert                  string
	typ                                    evidence.Type
	policyPath, claimsPath, evPath, rtPath string
	json                                   bool
}

// policyExplainRemote posts the explain request to a running attestd and
// prints its answer like the offline command does.
func policyExplainRemote(ctx context.Context, o remoteExplain, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "attestd policy explain: "+format+"\n", a...)
		return code
	}
	body := map[string]any{}
	if o.policyPath != "" {
		b, err := readInput(o.policyPath)
		if err != nil {
			return fail(policyExitUsage, "%v", err)
		}
		body["policy"] = string(b)
	}
	if o.claimsPath != "" {
		b, err := readInput(o.claimsPath)
		if err != nil {
			return fail(policyExitUsage, "%v", err)
		}
		if !json.Valid(b) {
			return fail(policyExitUsage, "%s is not JSON", o.claimsPath)
		}
		body["claims"] = json.RawMessage(b)
	} else {
		b, err := readInput(o.evPath)
		if err != nil {
			return fail(policyExitUsage, "%v", err)
		}
		req := map[string]any{}
		if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '{' {
			if err := json.Unmarshal(trimmed, &req); err != nil {
				return fail(policyExitUsage, "%s: %v", o.evPath, err)
			}
		} else {
			field := "quote"
			if o.typ == evidence.OpenEnclave || o.typ == evidence.SevSnpVm {
				field = "report"
			}
			req[field] = base64.RawURLEncoding.EncodeToString(sgx.DecodeEvidence(b))
		}
		if o.rtPath != "" {
			rt, err := os.ReadFile(o.rtPath)
			if err != nil {
				return fail(policyExitUsage, "%v", err)
			}
			req["runtimeData"] = map[string]string{"data": base64.RawURLEncoding.EncodeToString(rt), "dataType": "Binary"}
		}
		body["evidence"] = req
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return fail(policyExitUsage, "%v", err)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.cacert != "" {
		pemb, err := os.ReadFile(o.cacert)
		if err != nil {
			return fail(policyExitUsage, "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemb) {
			return fail(policyExitUsage, "--cacert %s holds no PEM certificate", o.cacert)
		}
		tlsCfg.RootCAs = pool
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}}
	url := strings.TrimRight(o.server, "/") + api.ExplainPathPrefix + string(o.typ) + ":explain"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fail(policyExitUsage, "%v", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if o.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.token)
	}
	res, err := client.Do(hreq)
	if err != nil {
		return fail(policyExitUsage, "%v", err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return fail(policyExitUsage, "reading the answer: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(rb, &e)
		code := policyExitUsage // auth, server or transport trouble
		if res.StatusCode == http.StatusBadRequest {
			code = policyExitRefused // the policy or the evidence: attest would refuse too
		}
		return fail(code, "%s answered %d %s: %s", url, res.StatusCode, e.Error.Code, e.Error.Message)
	}
	var ex instance.Explanation
	if err := json.Unmarshal(rb, &ex); err != nil {
		return fail(policyExitUsage, "%s: not an explanation: %v", url, err)
	}
	if o.json {
		var buf bytes.Buffer
		if err := json.Indent(&buf, rb, "", "  "); err != nil {
			return fail(policyExitUsage, "%v", err)
		}
		buf.WriteByte('\n')
		_, _ = buf.WriteTo(stdout)
	} else {
		fmt.Fprint(stdout, api.ExplanationText(&ex))
	}
	if !ex.Permitted {
		return policyExitRefused
	}
	return policyExitOK
}
