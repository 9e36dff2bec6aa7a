package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/client/verifier"
)

// tokenVerify runs "attest token verify TOKEN": the relying party's check
// of an attestation token (package client/verifier), offline but for the
// issuer's /certs (or none with --certs FILE). It prints the verdict on the
// first line of stdout, then the claims as JSON; a refusal names the check
// on stderr and exits 1.
func tokenVerify(ctx context.Context, o *options, pos []string, stdout, stderr io.Writer) error {
	if len(pos) != 3 {
		return usagef("token verify takes 1 argument (the token, or - for stdin), got %d", len(pos)-2)
	}
	if o.issuer == "" {
		return usagef("token verify needs --issuer URL (the instance that must have signed the token)")
	}
	raw := pos[2]
	if raw == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		if err != nil {
			return err
		}
		raw = string(b)
	}
	now := time.Now
	if o.at != "" {
		at, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return usagef("--at %q: want an RFC 3339 time (2026-01-02T15:04:05Z)", o.at)
		}
		now = func() time.Time { return at }
	}
	vo := verifier.Options{Issuer: o.issuer, Now: now, Leeway: o.leeway}
	if o.types != "" {
		vo.AttestationTypes = strings.Split(o.types, ",")
	}
	if o.certs != "" {
		b, err := os.ReadFile(o.certs)
		if err != nil {
			return err
		}
		jwks, err := verifier.ParseJWKS(b)
		if err != nil {
			return fmt.Errorf("--certs %s: %w", o.certs, err)
		}
		vo.Keys = func(context.Context) (*verifier.JWKS, error) { return jwks, nil }
	} else {
		hc, err := o.httpClient()
		if err != nil {
			return err
		}
		vo.HTTPClient = hc
		if o.endpoint != "" {
			vo.CertsURL = strings.TrimRight(o.endpoint, "/") + "/certs"
		}
	}
	v, err := verifier.New(vo)
	if err != nil {
		return usagef("%v", err)
	}
	r, err := v.Verify(ctx, raw)
	if err != nil {
		var ve *verifier.ValidationError
		if errors.As(err, &ve) && o.output != "json" { // json: run prints the error object
			fmt.Fprintf(stdout, "INVALID (%s)\n", ve.Reason)
		}
		return err
	}
	if o.output == "json" {
		return printJSON(stdout, map[string]any{"valid": true, "attestationType": r.AttestationType, "issuer": r.Issuer,
			"kid": r.Token.Header.Kid, "expires": r.Expires.UTC().Format(time.RFC3339), "claims": r.Claims})
	}
	fmt.Fprintf(stdout, "VALID %s token of %s, signed by kid %q, expires %s\n", orNone(r.AttestationType), r.Issuer,
		r.Token.Header.Kid, r.Expires.UTC().Format(time.RFC3339))
	return printJSON(stdout, r.Claims)
}

func orNone(s string) string {
	if s == "" {
		return "(untyped)"
	}
	return s
}

// httpClient is the HTTP client of every command: the system roots plus
// --cacert.
func (o *options) httpClient() (*http.Client, error) {
	return newHTTPClient(o.cacert)
}
