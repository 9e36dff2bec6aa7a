package auth_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/attestd/attestd/auth"
)

// A server started with data directory DIR trusts the development identity
// kept there; "attestd token --data DIR --role contributor" mints a token
// it accepts.
func ExampleMintDevToken() {
	dir, _ := os.MkdirTemp("", "attestd-example")
	defer os.RemoveAll(dir)

	id, err := auth.OpenDevIdentity(dir) // server side
	if err != nil {
		panic(err)
	}
	a, err := auth.New(auth.Config{Issuers: []auth.Issuer{id.Issuer()}, Now: time.Now})
	if err != nil {
		panic(err)
	}

	tok, err := auth.MintDevToken(dir, "contributor", "inst1", time.Hour) // CLI side
	if err != nil {
		panic(err)
	}
	p, err := a.Authenticate(context.Background(), "Bearer "+tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Issuer, p.Role, p.Instance)
	fmt.Println(p.Authorize("inst1", auth.RoleContributor))
	fmt.Println(auth.ReasonOf(p.Authorize("inst2", auth.RoleReader)))
	// Output:
	// https://attestd.local/dev contributor inst1
	// <nil>
	// wrong_instance
}
