package dcap

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/internal/pemfile"
)

// ParseClock parses the verify_at (RFC 3339) and grace (a non-negative Go
// duration) members the "sgx" and "tdx" blocks both have; empty members
// give zero values. block ("sgx", "tdx") names the block in errors, which
// wrap evidence.ErrConfig. Shared so that both DCAP plugins accept and
// reject the same spellings with the same messages.
func ParseClock(block, verifyAt, grace string) (at time.Time, g time.Duration, err error) {
	if grace != "" {
		if g, err = time.ParseDuration(grace); err != nil || g < 0 {
			return time.Time{}, 0, fmt.Errorf("%w: %s.grace %q: want a non-negative Go duration such as \"24h\"", evidence.ErrConfig, block, grace)
		}
	}
	if verifyAt != "" {
		if at, err = time.Parse(time.RFC3339, verifyAt); err != nil {
			return time.Time{}, 0, fmt.Errorf("%w: %s.verify_at: %v", evidence.ErrConfig, block, err)
		}
	}
	return at, g, nil
}

// ReadRoots reads the CA certificates of the PEM files that field
// ("roots", "extra_roots") of block ("sgx", "tdx") names, path resolving
// each name relative to the configuration file. They are operator files:
// openssl's text dumps and other blocks around the certificates are fine
// (pemfile.Certificates), unlike the strict chains inside evidence; a
// certificate that is not a CA is an error. Errors name block.field and
// the file; they do not wrap evidence.ErrConfig (callers decide).
func ReadRoots(block, field string, path func(string) string, files []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, f := range files {
		certs, err := pemfile.Certificates(path(f))
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %s: %w", block, field, path(f), err)
		}
		for _, crt := range certs {
			if !crt.IsCA {
				return nil, fmt.Errorf("%s.%s: %s: %q is not a CA certificate", block, field, path(f), crt.Subject.CommonName)
			}
		}
		out = append(out, certs...)
	}
	return out, nil
}
