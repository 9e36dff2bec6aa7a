package bundle

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/internal/atomicfile"
)

// WriteDir stores sets in dir in the attestd layout (see the package doc), so
// collateral fetched on a connected machine can be carried to an air-gapped
// one and served by Load. Documents are written as PCS response bodies
// around the exact signed bytes; CRLs as DER. Files are replaced atomically;
// where two sets share a file (the Root CA CRL, a QE identity) the later set
// wins.
func WriteDir(dir string, sets ...*collateral.Collateral) error {
	for _, c := range sets {
		info, err := c.Inspect()
		if err != nil {
			return fmt.Errorf("write collateral bundle: %w", err)
		}
		tee := strings.ToLower(string(info.Request.TEE))
		files := []struct {
			rel  string
			data []byte
		}{
			{"rootcacrl.der", c.RootCACRL},
			{"pckcrl-" + info.Request.CA + ".der", c.PCKCRL},
			{"pckcrl-" + info.Request.CA + "-issuer-chain.pem", c.PCKCRLIssuerChain},
			{filepath.Join(tee, "qeidentity.json"), responseBody("enclaveIdentity", c.QEIdentity, c.QEIdentitySignature)},
			{filepath.Join(tee, "qeidentity-issuer-chain.pem"), c.QEIdentityIssuerChain},
			{filepath.Join(tee, info.Request.FMSPC, "tcbinfo.json"), responseBody("tcbInfo", c.TCBInfo, c.TCBInfoSignature)},
			{filepath.Join(tee, info.Request.FMSPC, "tcbinfo-issuer-chain.pem"), c.TCBInfoIssuerChain},
		}
		for _, f := range files {
			p := filepath.Join(dir, f.rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("write collateral bundle: %w", err)
			}
			if err := atomicfile.Write(p, f.data, 0o644); err != nil {
				return fmt.Errorf("write collateral bundle: %w", err)
			}
		}
	}
	return nil
}

// responseBody rebuilds a PCS response body around the signed bytes, which
// are inserted verbatim.
func responseBody(member string, signed, sig []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"` + member + `":`)
	b.Write(signed)
	b.WriteString(`,"signature":"` + hex.EncodeToString(sig) + `"}`)
	return b.Bytes()
}
