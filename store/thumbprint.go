package store

import (
	"crypto/sha1" //nolint:gosec // MAA names certificates by SHA-1 thumbprint; an identifier, not a security decision
	"encoding/hex"
	"strings"
)

// Thumbprint returns the MAA thumbprint of a DER certificate: upper-case hex
// SHA-1 of the DER bytes (the x-ms-certificate-thumbprint claim). Backends
// derive Certificate.Thumbprint with it rather than trusting the caller's.
func Thumbprint(der []byte) string {
	s := sha1.Sum(der) //nolint:gosec // see import comment
	return strings.ToUpper(hex.EncodeToString(s[:]))
}
