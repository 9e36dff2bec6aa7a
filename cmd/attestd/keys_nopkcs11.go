//go:build !pkcs11

package main

import (
	"fmt"

	"github.com/attestd/attestd/token"
)

// openPKCS11 without the pkcs11 build tag: PKCS#11 needs cgo, so the
// default (static) binary leaves it out and says so.
func openPKCS11(module, tokenLabel, pin string) (token.PrivateKeys, func() error, error) {
	return nil, nil, fmt.Errorf("%w: PKCS#11 signing keys need a binary built with -tags pkcs11 (cgo)", errUsage)
}
