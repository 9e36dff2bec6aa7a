// Command tpmhelper is the TPM side of the interop tests (interop/js
// tpm.test.mjs, interop/python/tpm_attest.py): the official SDKs only carry
// the TPM protocol's messages, so something must quote. It starts a real
// swtpm, measures a synthetic but well-formed TCG boot log (secure boot on)
// into its PCRs, creates an RSA AK, writes the AK's public key as PEM
// (-ak-out, for the server's "tpm.trusted_aks"), and serves on loopback:
//
//	POST /request {"challenge": b64url, "service_context": "…"[, "protocol": 1]}
//	  → the {"payload":{"request":"<JWS>"}} message (tpmclient.Attester):
//	    v2 (attReqV2) by default, v1 (attReq, a PCP platform claim) with
//	    "protocol": 1
//
// It prints "listening http://127.0.0.1:PORT" once ready and exits (stopping
// swtpm) when its standard input closes, so it never outlives the test
// runner that spawned it. Test tooling only: never part of attestd.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/tpmclient"
)

func main() {
	akOut := flag.String("ak-out", "", "write the AK public key (PEM) here")
	flag.Parse()
	if *akOut == "" {
		log.Fatal("tpmhelper: -ak-out is required")
	}
	if err := run(*akOut); err != nil {
		log.Fatalf("tpmhelper: %v", err)
	}
}

func run(akOut string) error {
	ctx := context.Background()
	tp, err := swtpm.Run()
	if err != nil {
		return err
	}
	defer tp.Stop()
	tr := tp.Transport()
	db, err := dbCert()
	if err != nil {
		return err
	}
	events := tpmclient.SyntheticBootEvents(true, db)
	if err := tpmclient.Measure(ctx, tr, events); err != nil {
		return err
	}
	ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.RSA)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(ak.Pub)
	if err != nil {
		return err
	}
	if err := os.WriteFile(akOut, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	reqKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	a := &tpmclient.Attester{TPM: tr, AK: ak, Log: tpmclient.EncodeLog(events), RequestKey: reqKey,
		RPID: "https://interop.example", RPData: []byte("interop rp_data"),
		CustomClaims: []tpmclient.CustomClaim{{Name: "tenant", Value: "interop", ValueType: "string"}}}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /request", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Challenge      string `json:"challenge"`
			ServiceContext string `json:"service_context"`
			Protocol       int    `json:"protocol"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ch, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(in.Challenge, "="))
		if err != nil {
			http.Error(w, "challenge: "+err.Error(), http.StatusBadRequest)
			return
		}
		if in.Protocol != 0 && in.Protocol != 1 && in.Protocol != 2 {
			http.Error(w, "protocol: want 1 or 2", http.StatusBadRequest)
			return
		}
		att := *a
		att.Protocol = in.Protocol
		msg, err := att.TpmRequest(r.Context(), ch, in.ServiceContext)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(msg)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	fmt.Printf("listening http://%s\n", l.Addr())
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin or exits
	return srv.Close()
}

// dbCert is a throw-away certificate standing for the UEFI db entry.
func dbCert() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "TEST db (tpmhelper)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
}
