package token_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/token"
)

// Signing an MAA-shaped result token and serving the key set at /certs.
func ExampleKeySet_Sign() {
	dir, _ := os.MkdirTemp("", "attestd-keys")
	defer os.RemoveAll(dir)
	now := func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }

	ks, err := token.OpenKeySet(dir, "https://inst1.example", now)
	if err != nil {
		panic(err)
	}
	claims := token.NewTimes(now(), token.ResultLifetime).Claims("https://inst1.example")
	tok, err := ks.Sign("https://inst1.example/certs", claims)
	if err != nil {
		panic(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	fmt.Println(string(payload))
	_, err = ks.Verify(tok) // what a client does with ks.JWKS()
	fmt.Println(err)
	// Output:
	// {"exp":1795438800,"iat":1795435200,"iss":"https://inst1.example","nbf":1795435200}
	// <nil>
}
