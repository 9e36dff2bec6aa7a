//go:build pkcs11

package main

import (
	"github.com/attestd/attestd/token"
	"github.com/attestd/attestd/token/pkcs11keys"
)

// openPKCS11 opens the PKCS#11 token holding the signing keys.
func openPKCS11(module, tokenLabel, pin string) (token.PrivateKeys, func() error, error) {
	k, err := pkcs11keys.Open(module, tokenLabel, pin)
	if err != nil {
		return nil, nil, err
	}
	return k, k.Close, nil
}
