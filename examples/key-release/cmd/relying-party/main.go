// Command relying-party serves the key-release relying party of package
// keyrelease: it releases the secret in --secret-file, wrapped to the
// attested key, to an SGX enclave with the given measurement whose token
// (POST /passport) or evidence (POST /background-check) its attestd or MAA
// instance vouches for. See ../../README.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/verifier"
	keyrelease "github.com/attestd/attestd/examples/key-release"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "relying-party:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:9443", "address to serve on")
	issuer := flag.String("issuer", "", "attestd or MAA instance URL whose tokens are trusted (required)")
	cacert := flag.String("cacert", "", "PEM CA certificates trusted for the instance's TLS, besides the system's")
	tlsCert := flag.String("tls-cert", "", "PEM certificate to serve HTTPS with (else plain HTTP: the secret is JWE-wrapped either way)")
	tlsKey := flag.String("tls-key", "", "PEM key of --tls-cert")
	secretFile := flag.String("secret-file", "", "file holding the secret to release (required)")
	mrenclave := flag.String("mrenclave", "", "required MRENCLAVE, hex")
	mrsigner := flag.String("mrsigner", "", "required MRSIGNER, hex")
	productID := flag.Int64("product-id", 0, "required ISV product id (0: any)")
	minSVN := flag.Int64("min-svn", 0, "least ISV SVN")
	tcb := flag.String("tcb-status", "UpToDate", "accepted x-ms-sgx-tcb-status values, comma-separated")
	flag.Parse()
	if *issuer == "" || *secretFile == "" {
		return errors.New("--issuer and --secret-file are required")
	}
	secret, err := os.ReadFile(*secretFile)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if *cacert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		b, err := os.ReadFile(*cacert)
		if err != nil {
			return err
		}
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("--cacert %s: no PEM certificate", *cacert)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	v, err := verifier.New(verifier.Options{Issuer: *issuer, HTTPClient: hc, Now: time.Now, Leeway: 5 * time.Second,
		AttestationTypes: []string{verifier.TypeSGX}})
	if err != nil {
		return err
	}
	attestd, err := client.New(*issuer, &client.Options{HTTPClient: hc, Validation: client.Validation{Issuer: *issuer, Leeway: 5 * time.Second}})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rp, err := keyrelease.NewRelyingParty(keyrelease.RelyingPartyOptions{Verifier: v, Attestd: attestd, Secret: secret, Logger: log,
		Policy: keyrelease.Policy{MREnclave: *mrenclave, MRSigner: *mrsigner, ProductID: *productID, MinSVN: *minSVN,
			TCBStatuses: strings.Split(*tcb, ",")}})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("relying party serving", "listen", *listen, "issuer", *issuer)
	if *tlsCert != "" {
		err = srv.ListenAndServeTLS(*tlsCert, *tlsKey)
	} else {
		err = srv.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
