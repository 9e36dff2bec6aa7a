// Package uvm verifies the utility-VM endorsement that Azure Container
// Instances' confidential containers send with their SEV-SNP report (the
// "Endorsements" member of MAA's report JSON, maa-api.md §8): a COSE_Sign1
// (RFC 9052) whose payload states the launch measurement and SVN of the UVM
// that Microsoft built, signed by a key whose X.509 chain (x5chain, header
// 33) ends at a configured root, and whose issuer is a DID:x509
// (did:x509:0:sha256:<b64url SHA-256 of a CA certificate of the chain>::eku:<OID>)
// naming that CA and an extended key usage the leaf must carry.
//
// COSE parsing and the signature are github.com/veraison/go-cose; the
// DID:x509 resolution, the chain and the payload are checked here (no Go
// library implements DID:x509 resolution).
//
// Time: the chain is checked at the endorsement's protected signing time
// (header "signingtime"), because UVM signing certificates live about a
// year while a UVM stays in use much longer; the RFC 3161 timestamp in the
// unprotected header is not verified. A signing time in the future of the
// verification instant is refused.
package uvm

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/veraison/go-cose"

	"github.com/attestd/attestd/internal/strictjson"
)

// MaxEndorsement bounds one endorsement's size (a real one is about 8 KB).
const MaxEndorsement = 64 << 10

// The checks of this package.
const (
	CheckParse       = "snp.uvm.parse"
	CheckSignature   = "snp.uvm.signature"
	CheckChain       = "snp.uvm.chain"
	CheckIssuer      = "snp.uvm.issuer"
	CheckMeasurement = "snp.uvm.measurement"
)

// Error names the failed check.
type Error struct {
	Check string
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Check, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func fail(check, format string, args ...any) error {
	return &Error{Check: check, Err: fmt.Errorf(format, args...)}
}

// Endorsement is a verified UVM endorsement.
type Endorsement struct {
	Issuer            string // the DID:x509 issuer
	Feed              string // e.g. "ContainerPlat-AMD-UVM"
	SVN               string // x-ms-sevsnpvm-guestsvn of the payload
	LaunchMeasurement string // lowercase hex, 96 characters
	SigningTime       time.Time
	Signer            *x509.Certificate
}

// Options say whom to trust.
type Options struct {
	// Roots are the trusted roots of endorsement chains (e.g. Microsoft
	// Supply Chain RSA Root CA 2022). Never a certificate from the message.
	Roots []*x509.Certificate
	// Feeds, when non-empty, are the accepted feeds.
	Feeds []string
}

// Verify checks msg at instant now against the report's launch
// measurement (48 bytes).
func Verify(msg []byte, measurement []byte, opts Options, now time.Time) (*Endorsement, error) {
	if len(msg) > MaxEndorsement {
		return nil, fail(CheckParse, "endorsement of %d bytes exceeds %d", len(msg), MaxEndorsement)
	}
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(msg); err != nil {
		return nil, fail(CheckParse, "COSE_Sign1: %v", err)
	}
	p := m.Headers.Protected
	alg, err := p.Algorithm()
	if err != nil {
		return nil, fail(CheckParse, "protected algorithm: %v", err)
	}
	chain, err := x5chain(p[cose.HeaderLabelX5Chain])
	if err != nil {
		return nil, err
	}
	iss, _ := p["iss"].(string)
	feed, _ := p["feed"].(string)
	var signingTime time.Time
	switch t := p["signingtime"].(type) {
	case time.Time:
		signingTime = t
	case int64:
		signingTime = time.Unix(t, 0)
	case uint64:
		signingTime = time.Unix(int64(t), 0)
	default:
		return nil, fail(CheckParse, "no protected signingtime")
	}
	if signingTime.After(now) {
		return nil, fail(CheckChain, "signing time %s is after the verification instant %s", signingTime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}

	leaf := chain[0]
	verifier, err := cose.NewVerifier(alg, leaf.PublicKey)
	if err != nil {
		return nil, fail(CheckSignature, "algorithm %v with the signer's key: %v", alg, err)
	}
	if err := m.Verify(nil, verifier); err != nil {
		return nil, fail(CheckSignature, "%v", err)
	}

	if len(opts.Roots) == 0 {
		return nil, fail(CheckChain, "no UVM endorsement roots are configured")
	}
	roots := x509.NewCertPool()
	for _, r := range opts.Roots {
		roots.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: signingTime, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fail(CheckChain, "signer %q at its signing time %s: %v", leaf.Subject.CommonName, signingTime.UTC().Format(time.RFC3339), err)
	}
	if err := didX509(iss, chain); err != nil {
		return nil, err
	}
	if len(opts.Feeds) > 0 && !contains(opts.Feeds, feed) {
		return nil, fail(CheckIssuer, "feed %q is not one of the configured feeds %v", feed, opts.Feeds)
	}

	pl, err := strictjson.Object(m.Payload)
	if err != nil {
		return nil, fail(CheckParse, "payload: %v", err)
	}
	var lm, svn string
	if _, err := strictjson.Member(pl, "x-ms-sevsnpvm-launchmeasurement", &lm); err != nil || lm == "" {
		return nil, fail(CheckParse, "payload has no x-ms-sevsnpvm-launchmeasurement (%v)", err)
	}
	if _, err := strictjson.Member(pl, "x-ms-sevsnpvm-guestsvn", &svn); err != nil {
		var n json.Number
		if _, err2 := strictjson.Member(pl, "x-ms-sevsnpvm-guestsvn", &n); err2 != nil {
			return nil, fail(CheckParse, "payload x-ms-sevsnpvm-guestsvn: %v", err)
		}
		svn = n.String()
	}
	want, err := hex.DecodeString(lm)
	if err != nil || len(want) != 48 {
		return nil, fail(CheckParse, "payload launch measurement %q is not 48 bytes of hex", lm)
	}
	if !bytes.Equal(want, measurement) {
		return nil, fail(CheckMeasurement, "the endorsed UVM launch measurement %s is not the report's MEASUREMENT %x", strings.ToLower(lm), measurement)
	}
	return &Endorsement{Issuer: iss, Feed: feed, SVN: svn, LaunchMeasurement: strings.ToLower(lm), SigningTime: signingTime.UTC(), Signer: leaf}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func x5chain(v any) ([]*x509.Certificate, error) {
	var ders [][]byte
	switch x := v.(type) {
	case []byte:
		ders = [][]byte{x}
	case []any:
		for _, e := range x {
			d, ok := e.([]byte)
			if !ok {
				return nil, fail(CheckParse, "x5chain entry is not a byte string")
			}
			ders = append(ders, d)
		}
	default:
		return nil, fail(CheckParse, "no protected x5chain")
	}
	if len(ders) == 0 || len(ders) > 8 {
		return nil, fail(CheckParse, "x5chain of %d certificates", len(ders))
	}
	var out []*x509.Certificate
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fail(CheckParse, "x5chain[%d]: %v", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// didX509 resolves a did:x509:0:sha256:<fp>::eku:<oid> issuer against the
// chain: a CA certificate of the chain (not the leaf) has the fingerprint,
// and the leaf has the EKU.
func didX509(did string, chain []*x509.Certificate) error {
	const prefix = "did:x509:0:"
	if !strings.HasPrefix(did, prefix) {
		return fail(CheckIssuer, "issuer %q is not a did:x509", did)
	}
	parts := strings.Split(strings.TrimPrefix(did, prefix), "::")
	if len(parts) < 2 {
		return fail(CheckIssuer, "issuer %q names no policy", did)
	}
	alg, fp, ok := strings.Cut(parts[0], ":")
	if !ok || alg != "sha256" {
		return fail(CheckIssuer, "issuer %q: fingerprint algorithm %q, want sha256", did, alg)
	}
	want, err := base64.RawURLEncoding.DecodeString(fp)
	if err != nil || len(want) != sha256.Size {
		return fail(CheckIssuer, "issuer %q: fingerprint is not base64url SHA-256", did)
	}
	found := false
	for _, c := range chain[1:] {
		h := sha256.Sum256(c.Raw)
		if bytes.Equal(h[:], want) {
			found = true
		}
	}
	if !found {
		return fail(CheckIssuer, "no CA certificate of the chain has the issuer's fingerprint %s", fp)
	}
	for _, pol := range parts[1:] {
		name, val, ok := strings.Cut(pol, ":")
		if !ok {
			return fail(CheckIssuer, "issuer policy %q", pol)
		}
		switch name {
		case "eku":
			oid, err := parseOID(val)
			if err != nil {
				return fail(CheckIssuer, "issuer EKU %q: %v", val, err)
			}
			has := false
			for _, u := range chain[0].UnknownExtKeyUsage {
				if u.Equal(oid) {
					has = true
				}
			}
			if !has {
				return fail(CheckIssuer, "the signer %q lacks the issuer's extended key usage %s", chain[0].Subject.CommonName, val)
			}
		default:
			// subject/san/fulcio-issuer policies are not used by UVM
			// endorsements; refusing them is safer than ignoring them.
			return fail(CheckIssuer, "unsupported did:x509 policy %q", name)
		}
	}
	return nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || fmt.Sprint(n) != p || n < 0 {
			return nil, errors.New("not a dotted OID")
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, errors.New("not a dotted OID")
	}
	return oid, nil
}
