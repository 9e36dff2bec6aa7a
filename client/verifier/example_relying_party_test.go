package verifier_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/verifier"
	"github.com/attestd/attestd/internal/attestdtest"
)

// A relying party (the passport model): an SGX enclave got a token from
// attestd and hands it over; the relying party verifies it against the
// issuer's /certs, applies its own policy to the typed claims (the
// enclave's measurement, not debuggable) and takes the enclave's key from
// x-ms-runtime. A token altered on the way, from another issuer or of
// another TEE is refused, naming the check. The issuer here is an
// in-process attestd trusting a test SGX platform (internal/attestdtest).
func ExampleVerifier_Verify() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "verifier-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := attestdtest.Start(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// The attester: its quote binds SHA-256 of its public key (JSON
	// runtime data); attestd answers a signed token.
	runtime := []byte(`{"keys":[{"kid":"enclave-key","kty":"EC","crv":"P-256"}]}`)
	quote, err := srv.Quote(false, runtime, false)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(srv.URL, &client.Options{HTTPClient: srv.HTTPClient()})
	if err != nil {
		log.Fatal(err)
	}
	att, err := c.AttestSgxEnclave(ctx, quote, &client.AttestOptions{RuntimeJSON: runtime})
	if err != nil {
		log.Fatal(err)
	}
	token := att.Token.Raw

	// The relying party.
	rp, err := verifier.New(verifier.Options{Issuer: srv.URL, HTTPClient: srv.HTTPClient(), Now: time.Now,
		Leeway: 5 * time.Second, AttestationTypes: []string{verifier.TypeSGX}})
	if err != nil {
		log.Fatal(err)
	}
	r, err := rp.Verify(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	trusted := strings.Repeat("a1", 32) // the enclave build the relying party trusts
	if r.MREnclave == trusted && !r.IsDebuggable {
		key := r.RuntimeClaims["keys"].([]any)[0].(map[string]any)
		fmt.Println("release the secret, wrapped to", key["kid"])
	}

	reason := func(v *verifier.Verifier, tok string) string {
		_, err := v.Verify(ctx, tok)
		var ve *verifier.ValidationError
		if errors.As(err, &ve) {
			return ve.Reason
		}
		return fmt.Sprint("accepted ", err)
	}
	// A claim changed on the way (another enclave's measurement): the
	// signature no longer matches.
	parts := strings.Split(token, ".")
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		log.Fatal(err)
	}
	body = bytes.ReplaceAll(body, []byte(trusted), []byte(strings.Repeat("a2", 32)))
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
	fmt.Println("forged:", reason(rp, forged))
	// The same keys, but the relying party expects another issuer.
	other, err := verifier.New(verifier.Options{Issuer: srv.URL + attestdtest.IsolatedPrefix, CertsURL: srv.URL + "/certs",
		HTTPClient: srv.HTTPClient(), Now: time.Now})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrong issuer:", reason(other, token))
	// A relying party for SEV-SNP VMs only.
	snpOnly, err := verifier.New(verifier.Options{Issuer: srv.URL, HTTPClient: srv.HTTPClient(), Now: time.Now,
		AttestationTypes: []string{verifier.TypeSevSnpVM}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrong TEE:", reason(snpOnly, token))
	// A day later the token (valid for 8 hours, as MAA's) has expired.
	later, err := verifier.New(verifier.Options{Issuer: srv.URL, HTTPClient: srv.HTTPClient(),
		Now: func() time.Time { return time.Now().Add(24 * time.Hour) }})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("later:", reason(later, token))
	// Output:
	// release the secret, wrapped to enclave-key
	// forged: signature
	// wrong issuer: issuer
	// wrong TEE: attestation-type
	// later: expired
}
