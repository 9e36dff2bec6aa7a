package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/attestd/attestd/client/verifier"
)

// A relying party verifies an attestation token from its attestd (or MAA)
// instance, then applies its own policy to the typed claims.
func Example() {
	ctx := context.Background()
	v, err := verifier.New(verifier.Options{
		Issuer:           "https://attestd.example:8443", // /certs is fetched from https://attestd.example:8443/certs
		Now:              time.Now,
		Leeway:           5 * time.Second,
		AttestationTypes: []string{verifier.TypeSGX},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A draft-policy result (alg none) is refused before any network call.
	draft := "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2F0dGVzdGQuZXhhbXBsZTo4NDQzIn0."
	_, err = v.Verify(ctx, draft)
	var ve *verifier.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("refused:", ve.Reason)
	}
	if len(os.Args) > 1 && os.Args[1] == "--with-token" { // not run: needs a live issuer
		r, err := v.Verify(ctx, os.Args[2])
		if err == nil && !r.IsDebuggable && r.MREnclave == "…" {
			fmt.Println("release the key to", r.RuntimeClaims)
		}
	}
	// Output: refused: unsigned
}
