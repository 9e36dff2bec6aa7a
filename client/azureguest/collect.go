// Package azureguest collects AzureGuest evidence from the vTPM of an Azure
// confidential VM (SEV-SNP or TDX; or, in tests, any TPM 2.0 with a
// supplied HCL report):
// the HCL report (NV index 0x01400001), the AK certificate (NV index
// 0x01C101D0) and the AK (persistent handle 0x81000003) that Azure
// provisions, a TPM2_Quote of the SHA-256 PCRs, the TCG log, and an
// ephemeral TPM decryption key certified by the AK, to which the service
// seals the token. It builds the AttestationInfo the way the Azure guest
// attestation client does (maa-api.md §8).
//
// The ephemeral key differs from the Azure client's in one way: that
// client binds it to the PCR values with a PolicyPCR authorization; this
// one uses an empty password (the key never leaves the TPM either way,
// fixedTPM, and is flushed by Close).
package azureguest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attestd/attestd/evidence/azureguest/envelope"
	"github.com/attestd/attestd/evidence/azureguest/hcl"
)

// Azure vTPM locations.
const (
	HCLReportIndex = tpm2.TPMHandle(0x01400001)
	AKCertIndex    = tpm2.TPMHandle(0x01C101D0)
	AKHandle       = tpm2.TPMHandle(0x81000003)
	// TCGLogPath is where Linux exposes the firmware's event log.
	TCGLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"
	// IMDSCertificationURL serves the VCEK and its chain to SEV-SNP CVMs.
	IMDSCertificationURL = "http://169.254.169.254/metadata/THIM/amd/certification"
	// IMDSTDQuoteURL turns a TDX CVM's TDREPORT into a TD quote.
	IMDSTDQuoteURL = "http://169.254.169.254/acc/tdquote"
	maxLog         = 4 << 20
)

// Options say where each piece comes from; zero values mean "as on an
// Azure CVM".
type Options struct {
	// HCLReport is the HCL report; nil: read from HCLReportIndex.
	HCLReport []byte
	// TrustedLaunch: the VM has no hardware isolation (no HCL report); the
	// service trusts the AK only through its certificate.
	TrustedLaunch bool
	// AK is the handle of the attestation key; zero: AKHandle.
	AK tpm2.TPMHandle
	// AKCert is the AK certificate (DER); nil: read from AKCertIndex
	// (absent there: none is sent). NoAKCert sends none.
	AKCert   []byte
	NoAKCert bool
	// TCGLog is the event log; nil: read TCGLogPath.
	TCGLog []byte
	// PCRs are the quoted PCRs; nil: 0–7 (what the Azure client quotes on Linux).
	PCRs []int
	// VCEKChain is the SEV-SNP VCEK with its chain (PEM); nil: ask IMDS
	// (IMDSCertificationURL) through HTTPClient.
	VCEKChain []byte
	// TDQuote is the TD quote of a TDX CVM's TDREPORT; nil: ask IMDS
	// (IMDSTDQuoteURL) through HTTPClient.
	TDQuote    []byte
	HTTPClient *http.Client
	// OSType, OSDistro, OSBuild, OSVersionMajor/Minor describe the guest;
	// empty OSType: read /etc/os-release ("Linux").
	OSType, OSDistro, OSBuild      string
	OSVersionMajor, OSVersionMinor int
	// ClientPayload is a JSON object the token echoes in
	// x-ms-runtime.client-payload (e.g. {"nonce":"…"}).
	ClientPayload []byte
}

// Evidence is collected AzureGuest evidence with the key that opens the
// answer. Close flushes the key.
type Evidence struct {
	Info *envelope.AttestationInfo
	t    transport.TPM
	key  tpm2.NamedHandle
}

// JSON is the AttestationInfo document (the client base64url-encodes it).
func (e *Evidence) JSON() ([]byte, error) { return envelope.Marshal(e.Info) }

// Unwrap decrypts the token key the service wrapped to the ephemeral key
// (TPM2_RSA_Decrypt with RSAES-PKCS1-v1_5).
func (e *Evidence) Unwrap(wrapped []byte) ([]byte, error) {
	rsp, err := tpm2.RSADecrypt{
		KeyHandle:  tpm2.AuthHandle{Handle: e.key.Handle, Name: e.key.Name, Auth: tpm2.PasswordAuth(nil)},
		CipherText: tpm2.TPM2BPublicKeyRSA{Buffer: wrapped},
		InScheme:   tpm2.TPMTRSADecrypt{Scheme: tpm2.TPMAlgRSAES},
	}.Execute(e.t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_RSA_Decrypt: %w", err)
	}
	return rsp.Message.Buffer, nil
}

// Open decrypts the sealed token of the answer.
func (e *Evidence) Open(sealed string) (string, error) { return envelope.Open(sealed, e.Unwrap) }

// Close flushes the ephemeral key.
func (e *Evidence) Close() error {
	if e.key.Handle == 0 {
		return nil
	}
	_, err := tpm2.FlushContext{FlushHandle: e.key.Handle}.Execute(e.t)
	e.key.Handle = 0
	return err
}

// ReadNV reads a whole NV index.
func ReadNV(t transport.TPM, index tpm2.TPMHandle) ([]byte, error) {
	pub, err := tpm2.NVReadPublic{NVIndex: index}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_NV_ReadPublic(%#x): %w", uint32(index), err)
	}
	nv, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	var out []byte
	for off := 0; off < int(nv.DataSize); {
		n := min(int(nv.DataSize)-off, 1024) // TPMs cap one read near 1 KB
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: index, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: index, Name: pub.NVName},
			Size:       uint16(n), Offset: uint16(off),
		}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("TPM2_NV_Read(%#x): %w", uint32(index), err)
		}
		out = append(out, rsp.Data.Buffer...)
		off += n
	}
	return out, nil
}

// EncryptionKeyTemplate is the ephemeral key: RSA 2048, decrypt only,
// fixedTPM/fixedParent, TPM-generated, no scheme (RSAES chosen at decrypt).
func EncryptionKeyTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, NoDA: true, Decrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Scheme: tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull}, KeyBits: 2048,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
	}
}

// rawSignature returns the signature octets of an RSA TPMT_SIGNATURE, as
// the Azure client sends them.
func rawSignature(s tpm2.TPMTSignature) ([]byte, error) {
	switch s.SigAlg {
	case tpm2.TPMAlgRSASSA:
		r, err := s.Signature.RSASSA()
		if err != nil {
			return nil, err
		}
		return r.Sig.Buffer, nil
	}
	return tpm2.Marshal(s), nil
}

// Collect gathers the evidence. The caller must Close it.
func Collect(ctx context.Context, t transport.TPM, o Options) (*Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ai := &envelope.AttestationInfo{ProtocolVersion: envelope.ProtocolVersion, ClientPayload: o.ClientPayload}
	if err := osInfo(ai, o); err != nil {
		return nil, err
	}
	if o.TrustedLaunch {
		ai.Isolation = envelope.Isolation{Type: envelope.IsolationNone}
	} else if err := isolation(ctx, t, o, ai); err != nil {
		return nil, err
	}
	return collectTPM(t, o, ai)
}

// isolation reads the HCL report and fills IsolationInfo.
func isolation(ctx context.Context, t transport.TPM, o Options, ai *envelope.AttestationInfo) error {
	rep := o.HCLReport
	var err error
	if rep == nil {
		if rep, err = ReadNV(t, HCLReportIndex); err != nil {
			return fmt.Errorf("reading the HCL report: %w", err)
		}
	}
	hr, err := hcl.ParseReport(rep)
	if err != nil {
		return err
	}
	switch hr.Type {
	case hcl.TypeSNP:
		chain := o.VCEKChain
		if chain == nil {
			if chain, err = imdsChain(ctx, o.HTTPClient); err != nil {
				return err
			}
		}
		proof, err := json.Marshal(map[string]string{
			"SnpReport":     base64.RawURLEncoding.EncodeToString(hr.HWReport),
			"VcekCertChain": base64.RawURLEncoding.EncodeToString(chain),
		})
		if err != nil {
			return err
		}
		ai.Isolation = envelope.Isolation{Type: envelope.IsolationSevSnp, Proof: proof, RuntimeData: hr.RuntimeData}
	case hcl.TypeTDX:
		q := o.TDQuote
		if q == nil {
			if q, err = imdsTDQuote(ctx, o.HTTPClient, hr.HWReport); err != nil {
				return err
			}
		}
		ai.Isolation = envelope.Isolation{Type: envelope.IsolationTdx, Proof: q, RuntimeData: hr.RuntimeData}
	default:
		return fmt.Errorf("HCL report of %s: want SEV-SNP or TDX", hr.Type)
	}
	return nil
}

// imdsTDQuote asks the Azure IMDS for the TD quote of a TDREPORT.
func imdsTDQuote(ctx context.Context, c *http.Client, report []byte) ([]byte, error) {
	if c == nil {
		return nil, errors.New("no TD quote given and no HTTP client for IMDS (Options.HTTPClient)")
	}
	body, _ := json.Marshal(map[string]string{"report": base64.RawURLEncoding.EncodeToString(report)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, IMDSTDQuoteURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IMDS: %w", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("IMDS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("IMDS: %s", resp.Status)
	}
	var m struct {
		Quote string `json:"quote"`
	}
	if err := json.Unmarshal(rb, &m); err != nil || m.Quote == "" {
		return nil, errors.New("IMDS: no TD quote in the answer")
	}
	return envelope.Decode(m.Quote)
}

// collectTPM is the vTPM part of Collect.
func collectTPM(t transport.TPM, o Options, ai *envelope.AttestationInfo) (*Evidence, error) {
	var err error
	akh := o.AK
	if akh == 0 {
		akh = AKHandle
	}
	akPub, err := tpm2.ReadPublic{ObjectHandle: akh}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_ReadPublic(AK %#x): %w", uint32(akh), err)
	}
	ak := tpm2.AuthHandle{Handle: akh, Name: akPub.Name, Auth: tpm2.PasswordAuth(nil)}
	ai.TPM.AikPub = tpm2.Marshal(akPub.OutPublic)
	switch {
	case o.NoAKCert:
	case o.AKCert != nil:
		ai.TPM.AikCert = o.AKCert
	default:
		if c, err := ReadNV(t, AKCertIndex); err == nil {
			ai.TPM.AikCert = c
		}
	}
	if ai.TcgLogs = o.TCGLog; ai.TcgLogs == nil {
		if ai.TcgLogs, err = readCapped(TCGLogPath); err != nil {
			return nil, fmt.Errorf("reading the TCG log: %w", err)
		}
	}
	pcrs := o.PCRs
	if pcrs == nil {
		pcrs = []int{0, 1, 2, 3, 4, 5, 6, 7}
	}
	if err := quote(t, ak, pcrs, ai); err != nil {
		return nil, err
	}
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(EncryptionKeyTemplate())}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_CreatePrimary(encryption key): %w", err)
	}
	ev := &Evidence{Info: ai, t: t, key: tpm2.NamedHandle{Handle: ek.ObjectHandle, Name: ek.Name}}
	cert, err := tpm2.Certify{
		ObjectHandle: tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:   ak,
		InScheme:     tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(t)
	if err != nil {
		ev.Close()
		return nil, fmt.Errorf("TPM2_Certify(encryption key): %w", err)
	}
	ai.TPM.EncKeyPub = tpm2.Marshal(ek.OutPublic)
	ai.TPM.EncKeyCertifyInfo = cert.CertifyInfo.Bytes()
	if ai.TPM.EncKeyCertifyInfoSignature, err = rawSignature(cert.Signature); err != nil {
		ev.Close()
		return nil, err
	}
	return ev, nil
}

// quote reads and quotes pcrs (SHA-256 bank) with the AK.
func quote(t transport.TPM, ak tpm2.AuthHandle, pcrs []int, ai *envelope.AttestationInfo) error {
	sel := make([]byte, 3)
	for _, p := range pcrs {
		if p < 0 || p > 23 {
			return fmt.Errorf("PCR %d out of range", p)
		}
		sel[p/8] |= 1 << (p % 8)
	}
	ai.TPM.PCRs, ai.TPM.PcrSet = nil, nil
	for group := 0; group < 3; group++ { // TPM2_PCR_Read returns at most 8 digests
		if sel[group] == 0 {
			continue
		}
		s := []byte{0, 0, 0}
		s[group] = sel[group]
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: s}}}}.Execute(t)
		if err != nil {
			return fmt.Errorf("TPM2_PCR_Read: %w", err)
		}
		i := 0
		for bit := 0; bit < 8; bit++ {
			if s[group]&(1<<bit) == 0 {
				continue
			}
			if i >= len(rsp.PCRValues.Digests) {
				return errors.New("TPM2_PCR_Read returned fewer digests than selected")
			}
			idx := group*8 + bit
			ai.TPM.PCRs = append(ai.TPM.PCRs, envelope.PCR{Index: idx, Digest: rsp.PCRValues.Digests[i].Buffer})
			ai.TPM.PcrSet = append(ai.TPM.PcrSet, idx)
			i++
		}
	}
	rsp, err := tpm2.Quote{
		SignHandle: ak,
		InScheme:   tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:  tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: sel}}},
	}.Execute(t)
	if err != nil {
		return fmt.Errorf("TPM2_Quote: %w", err)
	}
	ai.TPM.PcrQuote = rsp.Quoted.Bytes()
	ai.TPM.PcrSignature, err = rawSignature(rsp.Signature)
	return err
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLog+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLog {
		return nil, fmt.Errorf("%s exceeds %d bytes", path, maxLog)
	}
	return b, nil
}

// imdsChain asks the Azure IMDS for the VCEK and its chain (PEM).
func imdsChain(ctx context.Context, c *http.Client) ([]byte, error) {
	if c == nil {
		return nil, errors.New("no VCEK chain given and no HTTP client for IMDS (Options.HTTPClient)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, IMDSCertificationURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata", "true")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IMDS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("IMDS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("IMDS: %s", resp.Status)
	}
	var m struct {
		VcekCert         string `json:"vcekCert"`
		CertificateChain string `json:"certificateChain"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.VcekCert == "" {
		return nil, fmt.Errorf("IMDS: not a THIM certification document")
	}
	return []byte(m.VcekCert + "\n" + m.CertificateChain), nil
}

// osInfo fills the OS fields from o or /etc/os-release.
func osInfo(ai *envelope.AttestationInfo, o Options) error {
	if o.OSType != "" {
		ai.OSType, ai.OSDistro, ai.OSBuild, ai.OSVersionMajor, ai.OSVersionMinor = o.OSType, o.OSDistro, o.OSBuild, o.OSVersionMajor, o.OSVersionMinor
		return nil
	}
	ai.OSType, ai.OSBuild = "Linux", "NotApplication"
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return nil // distro unknown: the fields stay empty
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch k {
		case "NAME":
			ai.OSDistro = v
		case "VERSION_ID":
			maj, minor, _ := strings.Cut(v, ".")
			ai.OSVersionMajor, _ = strconv.Atoi(maj)
			ai.OSVersionMinor, _ = strconv.Atoi(minor)
		}
	}
	return nil
}
