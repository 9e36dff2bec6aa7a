package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/google/go-tpm/tpm2"

	guest "github.com/attestd/attestd/client/azureguest"
	"github.com/attestd/attestd/tpmclient"
)

// tpmAttest runs MAA's TPM protocol (POST /attest/Tpm) from a TPM 2.0: an
// attestation key is created in the owner hierarchy (a primary key: the
// same key on every run of one TPM, so it can be enrolled with --ak-out and
// the server's tpm.trusted_aks) or, with --ak gce, GCE's pre-provisioned AK
// is loaded with its certificate; the firmware's TCG log is sent and the
// PCRs are quoted with the service's challenge bound to the request key.
// It prints the validated report's claims.
func tpmAttest(ctx context.Context, o *options, stdout io.Writer) error {
	var log []byte
	var err error
	switch path := o.tcgLog; path {
	case "none":
	case "":
		path = tpmclient.DefaultEventLogPath
		fallthrough
	default:
		if log, err = tpmclient.ReadEventLog(path); err != nil {
			return fmt.Errorf("TCG event log (--tcg-log none sends none): %w", err)
		}
	}
	a := &tpmclient.Attester{Log: log, RPID: o.rpID}
	switch o.protocol {
	case "", "v2":
		a.Protocol = 2
	case "v1":
		a.Protocol = 1
	default:
		return usagef("--protocol %q: v2 or v1", o.protocol)
	}
	if o.aikCert != "" {
		if a.AIKCert, err = readCertDER(o.aikCert); err != nil {
			return err
		}
	}
	if o.rpData != "" {
		if a.RPData, err = os.ReadFile(o.rpData); err != nil {
			return err
		}
	}
	if o.requestKey != "" {
		k, err := readKey(o.requestKey)
		if err != nil {
			return err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return usagef("--request-key must be an RSA key (the request JWS is PS256), got %T", k)
		}
		a.RequestKey = rk
	} else if a.RequestKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return err
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
	a.TPM = t
	switch o.akSource {
	case "", "owner":
		if a.AK, err = tpmclient.CreateAK(ctx, t, tpmclient.RSA); err != nil {
			return err
		}
	case "gce", "gce-ecc":
		// GCE's pre-provisioned AK: a primary key of the endorsement
		// hierarchy from the template in NV, certified by Google's EK/AK CA.
		tmplIdx, certIdx := tpmclient.GCEAKTemplateNVIndexRSA, tpmclient.GCEAKCertNVIndexRSA
		if o.akSource == "gce-ecc" {
			tmplIdx, certIdx = tpmclient.GCEAKTemplateNVIndexECC, tpmclient.GCEAKCertNVIndexECC
		}
		b, err := guest.ReadNV(t, tmplIdx)
		if err != nil {
			return fmt.Errorf("GCE AK template: %w", err)
		}
		tmpl, err := tpmclient.ParseTemplate(b)
		if err != nil {
			return err
		}
		if a.AK, err = tpmclient.CreatePrimaryIn(ctx, t, tpm2.TPMRHEndorsement, tmpl); err != nil {
			return err
		}
		if a.AIKCert == nil {
			if a.AIKCert, err = guest.ReadNV(t, certIdx); err != nil {
				a.AK.Flush(t) //nolint:errcheck // already failing
				return fmt.Errorf("GCE AK certificate: %w", err)
			}
		}
	default:
		return usagef("--ak %q: owner, gce or gce-ecc", o.akSource)
	}
	defer a.AK.Flush(t) //nolint:errcheck // a transient key; the TPM drops it on reset anyway
	if o.akOut != "" {
		der, err := x509.MarshalPKIXPublicKey(a.AK.Pub)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.akOut, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			return err
		}
	}
	c, err := o.client(false)
	if err != nil {
		return err
	}
	r, err := c.AttestTpm(ctx, a)
	if err != nil {
		return err
	}
	return printJSON(stdout, r.Token.Claims)
}

// readCertDER reads a certificate file, PEM or DER.
func readCertDER(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil && blk.Type == "CERTIFICATE" {
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
