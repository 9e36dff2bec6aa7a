package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/attestd/attestd/client"
	guest "github.com/attestd/attestd/client/azureguest"
)

// openTPM opens the vTPM device, or a TCP connection to a simulator that
// speaks raw TPM commands (swtpm --server type=tcp) when path is HOST:PORT.
func openTPM(path string) (transport.TPMCloser, error) {
	if !strings.HasPrefix(path, "/") && strings.Contains(path, ":") {
		c, err := net.DialTimeout("tcp", path, 10*time.Second)
		if err != nil {
			return nil, err
		}
		return transport.FromReadWriteCloser(c), nil
	}
	return linuxtpm.Open(path)
}

// azureGuest collects AzureGuest evidence from the vTPM, attests it and
// prints the claims of the token the vTPM's ephemeral key opened.
func azureGuest(ctx context.Context, o *options, stdout io.Writer) error {
	h, err := strconv.ParseUint(strings.TrimPrefix(o.akHandle, "0x"), 16, 32)
	if err != nil {
		return usagef("--ak-handle %q is not a hexadecimal TPM handle", o.akHandle)
	}
	gopts := guest.Options{AK: tpm2.TPMHandle(h), HTTPClient: &http.Client{Timeout: 30 * time.Second}}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{o.hclReport, &gopts.HCLReport}, {o.tcgLog, &gopts.TCGLog}, {o.vcekChain, &gopts.VCEKChain}, {o.tdQuote, &gopts.TDQuote}, {o.clientPayload, &gopts.ClientPayload}} {
		if f.name != "" {
			if *f.dst, err = os.ReadFile(f.name); err != nil {
				return err
			}
		}
	}
	if len(gopts.ClientPayload) > 0 && !json.Valid(gopts.ClientPayload) {
		return usagef("--client-payload %s is not JSON", o.clientPayload)
	}
	open := o.openTPM
	if open == nil {
		open = openTPM
	}
	t, err := open(o.tpm)
	if err != nil {
		return fmt.Errorf("opening the TPM %s: %w", o.tpm, err)
	}
	defer t.Close()
	ev, err := guest.Collect(ctx, t, gopts)
	if err != nil {
		return err
	}
	defer ev.Close()
	body, err := ev.JSON()
	if err != nil {
		return err
	}
	c, err := o.client(false)
	if err != nil {
		return err
	}
	r, err := c.AttestAzureGuest(ctx, body, ev.Open, &client.AttestOptions{Nonce: o.nonce})
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(stdout, map[string]any{"token": r.Token.Raw, "unsigned": r.Unsigned, "claims": r.Claims})
	}
	return printJSON(stdout, r.Claims)
}
