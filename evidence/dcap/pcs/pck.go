// Package pcs holds the Intel Provisioning Certification Service formats the
// SGX verifier needs: the SGX extensions of PCK certificates and the TCB info
// (v2, v3) and QE identity (v2) JSON documents. No cryptography or clock.
//
// Why not go-tdx-guest's pcs package: its PckCertificateExtensions requires
// exactly 6 SGX extensions, so it rejects PCK certificates issued by the PCK
// Platform CA (7 extensions: PlatformInstanceID and Configuration), and its
// TcbInfo type only knows the v3 layout ("sgxtcbcomponents"), not TCB info v2
// ("sgxtcbcomp01svn" … "pcesvn") that older PCS APIs and real collateral still
// carry. Both are needed here, so these parsers are written by hand against
// Intel's "SGX PCK Certificate and CRL Profile" and PCS API v3/v4 specs.
package pcs

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
)

// OIDSGXExtensions returns the OID of the SGX extensions extension of PCK
// certificates, 1.2.840.113741.1.13.1 (a fresh copy).
func OIDSGXExtensions() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier{}, oidSGXExtensions...)
}

// OIDs of the SGX PCK certificate extensions (Intel PCK Certificate Profile).
var (
	oidSGXExtensions      = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidPPID               = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	oidTCB                = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidPCEID              = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	oidFMSPC              = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
	oidSGXType            = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
	oidPlatformInstanceID = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 6}
	oidConfiguration      = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7}
)

// SGX types (the SGX Type extension).
const (
	SGXTypeStandard              = 0
	SGXTypeScalable              = 1
	SGXTypeScalableWithIntegrity = 2
)

// PCKExtensions are the SGX extensions of a PCK certificate.
type PCKExtensions struct {
	PPID    []byte  // 16
	TCB     PCKTCB  // the platform TCB the PCK certificate was issued for
	PCEID   [2]byte // big-endian as shown in hex ("0000")
	FMSPC   [6]byte
	SGXType int
	// PlatformInstanceID and Configuration are present only in certificates
	// issued by the PCK Platform CA.
	PlatformInstanceID []byte
	Configuration      *PlatformConfiguration
}

// PCKTCB is the TCB extension: 16 SGX TCB component SVNs, PCESVN, CPUSVN.
type PCKTCB struct {
	CompSVN [16]int
	PCESVN  int
	CPUSVN  [16]byte
}

// PlatformConfiguration is the Configuration extension (Platform CA only).
type PlatformConfiguration struct {
	DynamicPlatform, CachedKeys, SMTEnabled *bool
}

// FMSPCHex returns the FMSPC as 12 lower-case hex characters.
func (e *PCKExtensions) FMSPCHex() string { return hex.EncodeToString(e.FMSPC[:]) }

// PCEIDHex returns the PCE ID as 4 lower-case hex characters.
func (e *PCKExtensions) PCEIDHex() string { return hex.EncodeToString(e.PCEID[:]) }

type oidValue struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// ParsePCKExtensions extracts the SGX extensions from a PCK certificate.
func ParsePCKExtensions(cert *x509.Certificate) (*PCKExtensions, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSGXExtensions) {
			return ParseSGXExtensionValue(ext.Value)
		}
	}
	return nil, errors.New("PCK certificate has no SGX extensions (OID 1.2.840.113741.1.13.1)")
}

func parseSeq(b []byte, what string) ([]oidValue, error) {
	var seq []oidValue
	rest, err := asn1.Unmarshal(b, &seq)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%s: %d trailing bytes", what, len(rest))
	}
	return seq, nil
}

func octets(v asn1.RawValue, n int, what string) ([]byte, error) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString || v.IsCompound {
		return nil, fmt.Errorf("%s: not an OCTET STRING", what)
	}
	if n >= 0 && len(v.Bytes) != n {
		return nil, fmt.Errorf("%s: %d bytes, want %d", what, len(v.Bytes), n)
	}
	return append([]byte(nil), v.Bytes...), nil
}

func integer(v asn1.RawValue, what string) (int, error) {
	if v.Class != asn1.ClassUniversal || (v.Tag != asn1.TagInteger && v.Tag != asn1.TagEnum) {
		return 0, fmt.Errorf("%s: not an INTEGER/ENUMERATED", what)
	}
	var i int
	if _, err := asn1.Unmarshal(v.FullBytes, &i); err != nil {
		// asn1 refuses ENUMERATED into int; decode the content by hand.
		if v.Tag == asn1.TagEnum && len(v.Bytes) > 0 && len(v.Bytes) <= 4 {
			n := 0
			for _, c := range v.Bytes {
				n = n<<8 | int(c)
			}
			return n, nil
		}
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if i < 0 || i > 0xffff {
		return 0, fmt.Errorf("%s: value %d out of range", what, i)
	}
	return i, nil
}

// ParseSGXExtensionValue parses the DER value of the SGX extensions extension.
// Each of PPID, TCB, PCE-ID, FMSPC and SGX Type must appear exactly once;
// PlatformInstanceID and Configuration are optional; unknown entries are
// rejected so a format change is noticed rather than silently ignored.
func ParseSGXExtensionValue(der []byte) (*PCKExtensions, error) {
	seq, err := parseSeq(der, "SGX extensions")
	if err != nil {
		return nil, err
	}
	e := &PCKExtensions{}
	seen := map[string]bool{}
	for _, kv := range seq {
		key := kv.ID.String()
		if seen[key] {
			return nil, fmt.Errorf("SGX extensions: %s appears twice", key)
		}
		seen[key] = true
		switch {
		case kv.ID.Equal(oidPPID):
			if e.PPID, err = octets(kv.Value, 16, "PPID"); err != nil {
				return nil, err
			}
		case kv.ID.Equal(oidTCB):
			if err := parseTCB(kv.Value, &e.TCB); err != nil {
				return nil, err
			}
		case kv.ID.Equal(oidPCEID):
			b, err := octets(kv.Value, 2, "PCE-ID")
			if err != nil {
				return nil, err
			}
			copy(e.PCEID[:], b)
		case kv.ID.Equal(oidFMSPC):
			b, err := octets(kv.Value, 6, "FMSPC")
			if err != nil {
				return nil, err
			}
			copy(e.FMSPC[:], b)
		case kv.ID.Equal(oidSGXType):
			if e.SGXType, err = integer(kv.Value, "SGX Type"); err != nil {
				return nil, err
			}
		case kv.ID.Equal(oidPlatformInstanceID):
			if e.PlatformInstanceID, err = octets(kv.Value, 16, "PlatformInstanceID"); err != nil {
				return nil, err
			}
		case kv.ID.Equal(oidConfiguration):
			if e.Configuration, err = parseConfiguration(kv.Value); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("SGX extensions: unknown entry %s", key)
		}
	}
	for _, req := range []asn1.ObjectIdentifier{oidPPID, oidTCB, oidPCEID, oidFMSPC, oidSGXType} {
		if !seen[req.String()] {
			return nil, fmt.Errorf("SGX extensions: required entry %s missing", req)
		}
	}
	return e, nil
}

func parseTCB(v asn1.RawValue, t *PCKTCB) error {
	if !v.IsCompound || v.Tag != asn1.TagSequence {
		return errors.New("TCB: not a SEQUENCE")
	}
	seq, err := parseSeq(v.FullBytes, "TCB")
	if err != nil {
		return err
	}
	seen := map[int]bool{}
	for _, kv := range seq {
		id := kv.ID
		if len(id) != len(oidTCB)+1 || !id[:len(oidTCB)].Equal(oidTCB) {
			return fmt.Errorf("TCB: unexpected entry %s", id)
		}
		n := id[len(id)-1]
		if seen[n] {
			return fmt.Errorf("TCB: entry %s appears twice", id)
		}
		seen[n] = true
		switch {
		case n >= 1 && n <= 16:
			svn, err := integer(kv.Value, fmt.Sprintf("TCB comp%02d SVN", n))
			if err != nil {
				return err
			}
			if svn > 255 {
				return fmt.Errorf("TCB comp%02d SVN %d exceeds 255", n, svn)
			}
			t.CompSVN[n-1] = svn
		case n == 17:
			if t.PCESVN, err = integer(kv.Value, "PCESVN"); err != nil {
				return err
			}
		case n == 18:
			b, err := octets(kv.Value, 16, "CPUSVN")
			if err != nil {
				return err
			}
			copy(t.CPUSVN[:], b)
		default:
			return fmt.Errorf("TCB: unknown entry %s", id)
		}
	}
	if len(seen) != 18 {
		return fmt.Errorf("TCB: %d of 18 entries present (16 component SVNs, PCESVN, CPUSVN)", len(seen))
	}
	return nil
}

func parseConfiguration(v asn1.RawValue) (*PlatformConfiguration, error) {
	if !v.IsCompound || v.Tag != asn1.TagSequence {
		return nil, errors.New("configuration: not a SEQUENCE")
	}
	seq, err := parseSeq(v.FullBytes, "Configuration")
	if err != nil {
		return nil, err
	}
	c := &PlatformConfiguration{}
	for _, kv := range seq {
		var b bool
		if _, err := asn1.Unmarshal(kv.Value.FullBytes, &b); err != nil {
			return nil, fmt.Errorf("configuration %s: %w", kv.ID, err)
		}
		switch kv.ID.String() {
		case oidConfiguration.String() + ".1":
			c.DynamicPlatform = &b
		case oidConfiguration.String() + ".2":
			c.CachedKeys = &b
		case oidConfiguration.String() + ".3":
			c.SMTEnabled = &b
		default:
			return nil, fmt.Errorf("configuration: unknown entry %s", kv.ID)
		}
	}
	return c, nil
}

// MarshalSGXExtensionValue encodes e as the SGX extensions extension value
// (used by the test platform to mint PCK certificates; inverse of
// ParseSGXExtensionValue for the fields it carries).
func MarshalSGXExtensionValue(e *PCKExtensions) ([]byte, error) {
	raw := func(v any) asn1.RawValue {
		b, err := asn1.Marshal(v)
		if err != nil {
			panic(err) // only called with encodable basic types
		}
		return asn1.RawValue{FullBytes: b}
	}
	var tcb []oidValue
	for i, svn := range e.TCB.CompSVN {
		tcb = append(tcb, oidValue{append(append(asn1.ObjectIdentifier{}, oidTCB...), i+1), raw(svn)})
	}
	tcb = append(tcb, oidValue{append(append(asn1.ObjectIdentifier{}, oidTCB...), 17), raw(e.TCB.PCESVN)})
	tcb = append(tcb, oidValue{append(append(asn1.ObjectIdentifier{}, oidTCB...), 18), raw(e.TCB.CPUSVN[:])})
	tcbDER, err := asn1.Marshal(tcb)
	if err != nil {
		return nil, err
	}
	enum := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagEnum, Bytes: []byte{byte(e.SGXType)}}
	enumDER, err := asn1.Marshal(enum)
	if err != nil {
		return nil, err
	}
	seq := []oidValue{
		{oidPPID, raw(e.PPID)},
		{oidTCB, asn1.RawValue{FullBytes: tcbDER}},
		{oidPCEID, raw(e.PCEID[:])},
		{oidFMSPC, raw(e.FMSPC[:])},
		{oidSGXType, asn1.RawValue{FullBytes: enumDER}},
	}
	if e.PlatformInstanceID != nil {
		seq = append(seq, oidValue{oidPlatformInstanceID, raw(e.PlatformInstanceID)})
	}
	return asn1.Marshal(seq)
}
