package pemfile

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseChain parses a PEM certificate chain as it travels inside evidence
// and collateral (a quote's PCK chain, PCS issuer-chain headers, collateral
// files): the one chain parser of attestd, strict on purpose, because these
// bytes are untrusted and are also hashed into claims and cache keys.
//
// Accepted: one or more CERTIFICATE blocks without PEM headers, separated and
// surrounded only by whitespace and NUL bytes (quotes NUL-terminate their
// chain). One leniency, because Intel's own parser allows it and real
// collateral needs it: a block's END line may run straight into the next
// BEGIN line ("-----END CERTIFICATE----------BEGIN CERTIFICATE-----", as PCS
// issuer-chain headers and some stored chains have it). Refused: any other
// text, other block types, PEM headers, DER that does not parse as a
// certificate, and input without a certificate.
//
// Errors start with "chain", so callers can name the chain: "issuer " + err.
//
// Operator-written files (which openssl surrounds with "subject=" text and may
// mix with keys) are read by Certificates instead.
func ParseChain(b []byte) ([]*x509.Certificate, error) {
	const begin, end = "-----BEGIN", "-----END CERTIFICATE-----"
	var certs []*x509.Certificate
	rest := bytes.Trim(b, " \t\r\n\x00")
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, []byte(begin)) {
			return nil, fmt.Errorf("chain: data that is not PEM after certificate %d", len(certs))
		}
		// Cut one block at its END line so that a BEGIN glued to it is the
		// start of the next block; encoding/pem needs the line break.
		i := bytes.Index(rest, []byte(end))
		if i < 0 {
			return nil, fmt.Errorf("chain certificate %d has no END line", len(certs))
		}
		one, next := rest[:i+len(end)], rest[i+len(end):]
		blk, tail := pem.Decode(one)
		if blk == nil || len(tail) != 0 {
			return nil, fmt.Errorf("chain certificate %d is not a well-formed PEM block", len(certs))
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("chain: PEM block %q, want CERTIFICATE", blk.Type)
		}
		if len(blk.Headers) != 0 {
			return nil, fmt.Errorf("chain certificate %d has PEM headers", len(certs))
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("chain certificate %d: %v", len(certs), err)
		}
		certs = append(certs, c)
		rest = bytes.TrimLeft(next, " \t\r\n\x00")
	}
	if len(certs) == 0 {
		return nil, errors.New("chain has no PEM certificate")
	}
	return certs, nil
}
