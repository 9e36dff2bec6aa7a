package client_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"net/http"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// Attest an SGX enclave's quote and read the validated claims. Here the
// service is an in-process attestd trusting a test SGX platform; against
// real MAA the endpoint is the instance URL, e.g.
// https://myinst.weu.attest.azure.net, and the HTTP client the default.
func Example() {
	endpoint, httpClient, quote, runtime := exampleSetup()

	c, err := client.New(endpoint, &client.Options{
		HTTPClient: httpClient,
		// Require tokens from this instance; everything else (signature
		// by a /certs key, exp, nbf) is always checked.
		Validation: client.Validation{Issuer: endpoint},
	})
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.AttestSgxEnclave(context.Background(), quote, &client.AttestOptions{RuntimeData: runtime})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed:", !r.Unsigned, "verified:", r.Token.Verified)
	fmt.Println("mrsigner:", r.MRSigner[:16]+"…", "product:", r.ProductID, "svn:", r.SVN, "debuggable:", r.IsDebuggable)
	fmt.Println("runtime data bound:", string(r.EnclaveHeldData))
	// Output:
	// signed: true verified: true
	// mrsigner: b2b2b2b2b2b2b2b2… product: 7 svn: 3 debuggable: true
	// runtime data bound: enclave public key
}

// exampleSetup starts (once) the package's test attestd and mints a quote
// binding the runtime data.
func exampleSetup() (endpoint string, hc *http.Client, quote, runtime []byte) {
	envOnce.Do(startShared)
	if envErr != nil {
		log.Fatal(envErr)
	}
	runtime = []byte("enclave public key")
	o := sgxplatform.QuoteOptions{Debug: true, ProductID: 7, SVN: 3}
	for i := range o.MRSigner {
		o.MRSigner[i] = 0xb2
	}
	h := sha256.Sum256(runtime)
	copy(o.ReportData[:], h[:])
	quote, err := shared.platform.Quote(o)
	if err != nil {
		log.Fatal(err)
	}
	return shared.base, shared.srv.Client(), quote, runtime
}
