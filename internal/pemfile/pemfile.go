// Package pemfile reads operator-supplied PEM certificate files (trusted
// roots, policy-management certificates, signing certificates) for the
// attestd and attest commands.
package pemfile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// Certificates returns every CERTIFICATE block of the PEM file at path, in
// file order. Other blocks and text around the blocks (as openssl writes it)
// are skipped; a file without any certificate is an error.
func Certificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return out, nil
}
