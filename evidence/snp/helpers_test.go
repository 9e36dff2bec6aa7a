package snp

import (
	"crypto/x509"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/attestd/attestd/evidence/snp/uvm"
)

// msRootFromEndorsement returns the root at the end of an endorsement's
// x5chain; tests configure it explicitly as an operator configures
// Microsoft's supply-chain root.
func msRootFromEndorsement(t *testing.T, msg []byte) *x509.Certificate {
	t.Helper()
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(msg); err != nil {
		t.Fatal(err)
	}
	arr, _ := m.Headers.Protected[cose.HeaderLabelX5Chain].([]any)
	c, err := x509.ParseCertificate(arr[len(arr)-1].([]byte))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func uvmOptions(root *x509.Certificate) uvm.Options {
	return uvm.Options{Roots: []*x509.Certificate{root}}
}
