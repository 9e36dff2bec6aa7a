package dcap

import (
	"bytes"
	"crypto/x509"
	_ "embed"

	"github.com/attestd/attestd/internal/pemfile"
)

// The two certificates Intel has issued for its SGX Root CA key. Both files
// start with a description of the certificate, then the PEM block.
var (
	//go:embed intel_sgx_root_ca.pem
	intelRootPEM []byte
	//go:embed intel_sgx_root_ca_2018.pem
	intelRoot2018PEM []byte
)

// DefaultRoots returns Intel's SGX Root CA certificates: the current one
// (2018..2049, what Intel publishes) and the earlier certificate of the same
// key (2018..2033) that older PCK chains embed. A fresh copy on every call,
// so callers cannot modify a shared value.
func DefaultRoots() []*x509.Certificate {
	var out []*x509.Certificate
	for _, f := range [][]byte{intelRootPEM, intelRoot2018PEM} {
		i := bytes.Index(f, []byte("-----BEGIN"))
		if i < 0 {
			panic("dcap: embedded Intel SGX Root CA file has no PEM block") // the embedded files are part of the build
		}
		certs, err := pemfile.ParseChain(f[i:])
		if err != nil || len(certs) != 1 {
			panic("dcap: embedded Intel SGX Root CA does not parse")
		}
		out = append(out, certs[0])
	}
	return out
}
