package collateral

import (
	"crypto/sha256"
	"encoding/hex"
)

// MAAHashes are the values of MAA's "x-ms-sgx-collateral" claim: lowercase
// hex SHA-256 digests identifying the collateral a quote was verified with.
//
// Which bytes are hashed. MAA does not document it; these are the bytes a
// Collateral holds, so equal collateral gives equal hashes whatever source
// it came from:
//
//	qeidcertshash    QEIdentityIssuerChain — PEM text of the QE identity issuer chain as served (no trailing NUL)
//	qeidcrlhash      RootCACRL             — DER of the Intel SGX Root CA CRL
//	qeidhash         QEIdentity            — the exact signed "enclaveIdentity" JSON bytes
//	tcbinfocertshash TCBInfoIssuerChain    — PEM text of the TCB info issuer chain as served
//	tcbinfocrlhash   RootCACRL             — DER of the Intel SGX Root CA CRL (see below)
//	tcbinfohash      TCBInfo               — the exact signed "tcbInfo" JSON bytes
//	quotehash        the quote bytes (filled in by the verifier)
//
// tcbinfocrlhash is the Root CA CRL, not the PCK CRL: it is the CRL that
// covers the TCB info's issuer chain (TCB Signing certificate ← Root CA), and
// every real MAA token seen (samples/sdk-js/sgx_token_payload.decoded.json,
// the azure-samples OE token) has tcbinfocrlhash == qeidcrlhash and
// tcbinfocertshash == qeidcertshash, which only holds if both CRL hashes are
// of the same CRL. The PCK CRL does not appear in the claim.
type MAAHashes struct {
	QEIDCertsHash    string `json:"qeidcertshash"`
	QEIDCRLHash      string `json:"qeidcrlhash"`
	QEIDHash         string `json:"qeidhash"`
	QuoteHash        string `json:"quotehash"`
	TCBInfoCertsHash string `json:"tcbinfocertshash"`
	TCBInfoCRLHash   string `json:"tcbinfocrlhash"`
	TCBInfoHash      string `json:"tcbinfohash"`
}

// MAAHashes computes the collateral hashes. quote may be nil, leaving
// QuoteHash empty for the caller to fill.
func (c *Collateral) MAAHashes(quote []byte) MAAHashes {
	h := MAAHashes{
		QEIDCertsHash:    sha256Hex(c.QEIdentityIssuerChain),
		QEIDCRLHash:      sha256Hex(c.RootCACRL),
		QEIDHash:         sha256Hex(c.QEIdentity),
		TCBInfoCertsHash: sha256Hex(c.TCBInfoIssuerChain),
		TCBInfoCRLHash:   sha256Hex(c.RootCACRL),
		TCBInfoHash:      sha256Hex(c.TCBInfo),
	}
	if quote != nil {
		h.QuoteHash = sha256Hex(quote)
	}
	return h
}

// Claim returns the hashes as the JSON object MAA puts in the token, with the
// member names in MAA's order (alphabetical).
func (h MAAHashes) Claim() map[string]any {
	return map[string]any{
		"qeidcertshash":    h.QEIDCertsHash,
		"qeidcrlhash":      h.QEIDCRLHash,
		"qeidhash":         h.QEIDHash,
		"quotehash":        h.QuoteHash,
		"tcbinfocertshash": h.TCBInfoCertsHash,
		"tcbinfocrlhash":   h.TCBInfoCRLHash,
		"tcbinfohash":      h.TCBInfoHash,
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
