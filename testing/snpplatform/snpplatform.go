// Package snpplatform is a fake AMD SEV-SNP platform for tests: an ARK →
// ASK/ASVK → VCEK/VLEK chain under a TEST root (go-sev-guest's published
// test keys, so it can never be mistaken for AMD's) and reports signed by
// it with chosen fields. Never part of the attestd binary; attestd trusts
// it only when its roots are configured explicitly.
package snpplatform

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"
)

// Options shape the platform.
type Options struct {
	// ProductName is the VCEK's product name, e.g. "Milan-B0" (default) or
	// "Genoa-B1".
	ProductName string
	// Created is the chain's creation time (default 2024-01-01): the ARK and
	// ASK are valid from then; the VCEK for 7 years after it.
	Created time.Time
	// TCB is the TCB the VCEK certifies (REPORTED_TCB of its reports).
	TCB kds.TCBParts
	// ChipID is the VCEK's hardware ID.
	ChipID [64]byte
}

// Platform is one fake chip with its chain.
type Platform struct {
	Signer      *sevtest.AmdSigner
	ProductName string
	ProductLine string
	TCB         kds.TCBParts
	ChipID      [64]byte
}

// New builds a platform.
func New(o Options) (*Platform, error) {
	if o.ProductName == "" {
		o.ProductName = "Milan-B0"
	}
	if o.Created.IsZero() {
		o.Created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.TCB == (kds.TCBParts{}) {
		o.TCB = kds.TCBParts{BlSpl: 3, TeeSpl: 0, SnpSpl: 8, UcodeSpl: 115}
	}
	if o.ChipID == ([64]byte{}) {
		for i := range o.ChipID {
			o.ChipID[i] = byte(i + 1)
		}
	}
	b := &sevtest.AmdSignerBuilder{
		Keys:             sevtest.DefaultAmdKeys(),
		ProductName:      o.ProductName,
		CSPID:            "attestd-test",
		ArkCreationTime:  o.Created,
		AskCreationTime:  o.Created,
		AsvkCreationTime: o.Created,
		VcekCreationTime: o.Created,
		VlekCreationTime: o.Created,
		VcekCustom:       sevtest.CertOverride{Extensions: vcekExtensions(o.TCB, o.ChipID[:], o.ProductName)},
		VlekCustom:       sevtest.CertOverride{Extensions: sevtest.CustomExtensions(o.TCB, nil, "attestd-test", kds.ProductLineOfProductName(o.ProductName))},
	}
	s, err := b.TestOnlyCertChain()
	if err != nil {
		return nil, err
	}
	return &Platform{Signer: s, ProductName: o.ProductName, ProductLine: kds.ProductLineOfProductName(o.ProductName), TCB: o.TCB, ChipID: o.ChipID}, nil
}

// vcekExtensions are the KDS extensions of a VCEK as AMD issues them:
// go-sev-guest's test builder wraps the hardware ID in a DER OCTET STRING,
// real VCEKs carry the 64 raw bytes (and strict parsers refuse the former).
func vcekExtensions(tcb kds.TCBParts, hwid []byte, productName string) []pkix.Extension {
	exts := sevtest.CustomExtensions(tcb, hwid, "", productName)
	for i := range exts {
		if exts[i].Id.Equal(kds.OidHwid) {
			exts[i].Value = bytes.Clone(hwid)
		}
	}
	return exts
}

// Report are the fields of a report to sign.
type Report struct {
	Version     uint32 // 2 (default), 3 or 5
	VLEK        bool   // signed by the VLEK instead of the VCEK
	ReportData  [64]byte
	HostData    [32]byte
	Measurement [48]byte
	IDKeyDigest [48]byte
	GuestSVN    uint32
	VMPL        uint32
	Debug       bool
	MigrateMA   bool
	// TCB overrides REPORTED_TCB (default: the platform's TCB).
	TCB *kds.TCBParts
	// ChipID overrides CHIP_ID (default: the platform's).
	ChipID *[64]byte
	// FMS overrides CPUID_1_EAX for v3+ (default: the platform's product).
	FMS uint32
}

// Sign returns a signed raw report.
func (p *Platform) Sign(r Report) ([]byte, error) {
	if r.Version == 0 {
		r.Version = 2
	}
	tcbParts := p.TCB
	if r.TCB != nil {
		tcbParts = *r.TCB
	}
	tcb, err := kds.ComposeTCBParts(tcbParts)
	if err != nil {
		return nil, err
	}
	chip := p.ChipID
	if r.ChipID != nil {
		chip = *r.ChipID
	}
	key := sevabi.VcekReportSigner
	if r.VLEK {
		key = sevabi.VlekReportSigner
	}
	rep := &spb.Report{
		Version:         r.Version,
		GuestSvn:        r.GuestSVN,
		Policy:          sevabi.SnpPolicyToBytes(sevabi.SnpPolicy{ABIMajor: 1, ABIMinor: 55, SMT: true, Debug: r.Debug, MigrateMA: r.MigrateMA}),
		FamilyId:        make([]byte, 16),
		ImageId:         make([]byte, 16),
		Vmpl:            r.VMPL,
		SignatureAlgo:   sevabi.SignEcdsaP384Sha384,
		CurrentTcb:      uint64(tcb),
		PlatformInfo:    1,
		SignerInfo:      sevabi.ComposeSignerInfo(sevabi.SignerInfo{SigningKey: key}),
		ReportData:      r.ReportData[:],
		Measurement:     r.Measurement[:],
		HostData:        r.HostData[:],
		IdKeyDigest:     r.IDKeyDigest[:],
		AuthorKeyDigest: make([]byte, 48),
		ReportId:        bytes.Repeat([]byte{0xa9}, 32),
		ReportIdMa:      bytes.Repeat([]byte{0xff}, 32),
		ReportedTcb:     uint64(tcb),
		ChipId:          chip[:],
		CommittedTcb:    uint64(tcb),
		CurrentBuild:    1,
		CurrentMinor:    55,
		CurrentMajor:    1,
		CommittedBuild:  1,
		CommittedMinor:  55,
		CommittedMajor:  1,
		LaunchTcb:       uint64(tcb),
		Signature:       make([]byte, sevabi.SignatureSize),
	}
	if r.Version >= 3 {
		fms := r.FMS
		if fms == 0 {
			prod, err := kds.ParseProductName(p.ProductName, sevabi.VcekReportSigner)
			if err != nil {
				return nil, err
			}
			fms = sevabi.MaskedCpuid1EaxFromSevProduct(prod)
		}
		rep.Cpuid1EaxFms = fms
	}
	raw, err := sevabi.ReportToAbiBytes(rep)
	if err != nil {
		return nil, err
	}
	rr, ss, err := p.Signer.Sign(sevabi.SignedComponent(raw))
	if err != nil {
		return nil, err
	}
	if err := sevabi.SetSignature(rr, ss, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

func pemOf(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		if c != nil {
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
	}
	return b.Bytes()
}

// RootsPEM is the ARK with the ASK and ASVK: what an operator configures to
// trust this platform.
func (p *Platform) RootsPEM() []byte { return pemOf(p.Signer.Ask, p.Signer.Asvk, p.Signer.Ark) }

// ChainPEM is the VCEK (or VLEK) followed by its issuer and the ARK, as
// MAA's VcekCertChain carries it.
func (p *Platform) ChainPEM(vlek bool) []byte {
	if vlek {
		return pemOf(p.Signer.Vlek, p.Signer.Asvk, p.Signer.Ark)
	}
	return pemOf(p.Signer.Vcek, p.Signer.Ask, p.Signer.Ark)
}

// VCEK is the VCEK's DER.
func (p *Platform) VCEK() []byte { return p.Signer.Vcek.Raw }

// MAAReport returns the JSON text of MAA's SevSnpVm "report" (before its
// own base64url): {"SnpReport", "VcekCertChain"[, "Endorsements"]}.
// chain may be nil (then the verifier must fetch the VCEK).
func MAAReport(raw, chain []byte, uvm [][]byte) []byte {
	enc := base64.RawURLEncoding
	m := map[string]string{"SnpReport": enc.EncodeToString(raw)}
	if chain != nil {
		m["VcekCertChain"] = enc.EncodeToString(chain)
	}
	if len(uvm) > 0 {
		var list []string
		for _, u := range uvm {
			list = append(list, enc.EncodeToString(u))
		}
		e, _ := json.Marshal(map[string][]string{"Uvm": list})
		m["Endorsements"] = enc.EncodeToString(e)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprint("snpplatform: ", err))
	}
	return b
}
