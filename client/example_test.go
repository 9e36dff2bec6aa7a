package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/attestd/attestd/client"
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
	quote, err := shared.Quote(false, runtime, true)
	if err != nil {
		log.Fatal(err)
	}
	return shared.URL, shared.HTTPClient(), quote, runtime
}
