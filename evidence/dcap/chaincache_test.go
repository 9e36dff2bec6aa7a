package dcap_test

import (
	"bytes"
	"testing"

	"github.com/attestd/attestd/evidence/dcap"
	"github.com/attestd/attestd/testing/dcapfake"
)

// TestChainCacheOneByte: two PCK chains (or signing chains) that differ in
// one byte never share a cache entry. With the chain verified and cached,
// every one-byte change of its PEM, at every position, is verified on its
// own: it is refused, or (a change the PEM parser ignores, such as other
// whitespace) verified again into an entry of its own, never answered with
// the cached chain.
func TestChainCacheOneByte(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.SGX)
	chain := append(f.pki.PCKChainPEM(), 0) // as quotes carry it: NUL-terminated
	signing := dcapfake.PEM(f.pki.Signer, f.pki.Root)
	for _, c := range []struct {
		name   string
		pem    []byte
		verify func([]byte) (any, error)
	}{
		{"pck", chain, func(b []byte) (any, error) { return f.v.PCKChain(b) }},
		{"signing", signing, func(b []byte) (any, error) { return f.v.SigningChain(b, dcap.CheckTCBInfoIssuerChain) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cached, err := c.verify(c.pem)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := c.verify(bytes.Clone(c.pem)); err != nil || again != cached {
				t.Fatalf("the same bytes again: %p, %v; want the cached %p", again, err, cached)
			}
			accepted := 0
			for i := range c.pem {
				m := bytes.Clone(c.pem)
				m[i] ^= 0x01
				got, err := c.verify(m)
				if err != nil {
					continue
				}
				accepted++
				if got == cached {
					t.Fatalf("byte %d changed (%q -> %q): answered with the cached chain of the original bytes", i, c.pem[i], m[i])
				}
			}
			// Whitespace the parser skips: other bytes, another entry.
			m := append(bytes.Clone(c.pem), '\n')
			got, err := c.verify(m)
			if err != nil {
				t.Fatalf("chain with a trailing newline: %v", err)
			}
			if got == cached {
				t.Fatal("a chain with a trailing newline shares the entry of the chain without it")
			}
			if again, err := c.verify(c.pem); err != nil || again != cached {
				t.Fatalf("the original bytes after the variants: %p, %v; want the cached %p", again, err, cached)
			}
			t.Logf("%d one-byte changes of %d bytes verified (each into its own entry)", accepted, len(c.pem))
		})
	}
	pck, signingN := dcap.ChainCacheEntries(f.v)
	if pck < 2 || signingN < 2 {
		t.Fatalf("cache entries: %d PCK chains, %d signing chains; want at least 2 each (original and newline variant)", pck, signingN)
	}
}

// TestPCKCRLIssuerSameNameOtherKey: a PCK CRL issuer chain whose CA has the
// PCK CA's subject but another key (signed by the same root) is refused at
// pck_crl.issuer: the key comparison, not only the name, decides.
func TestPCKCRLIssuerSameNameOtherKey(t *testing.T) {
	f := newFixture(t, dcapfake.Options{}, dcap.SGX)
	tmpl := *f.pki.PCKCA
	tmpl.SerialNumber, tmpl.PublicKey = nil, nil
	impostor, _, err := dcapfake.Mint(&tmpl, f.pki.Root, f.pki.RootKey, dcapfake.CertOverride{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(impostor.RawSubject, f.pki.PCKCA.RawSubject) {
		t.Fatal("fixture: the impostor CA has another subject")
	}
	coll := f.coll(t, dcapfake.Docs{})
	coll.PCKCRLIssuerChain = dcapfake.PEM(impostor, f.pki.Root)
	_, err = f.v.Verify(testNow, &dcap.Evidence{Quote: f.q, TEE: dcap.SGX}, coll)
	t.Log(err)
	if got := checkOf(t, err); got != dcap.CheckPCKCRLIssuer {
		t.Fatalf("PCK CRL issuer chain of another key: check %q (%v), want %q", got, err, dcap.CheckPCKCRLIssuer)
	}
}
