// Command sgxgen writes the material of a fake SGX platform (package
// testing/sgxplatform) to a directory, so that tests outside Go — the npm
// client interop test, curl walk-throughs — can attest against a real
// attestd:
//
//	go run ./testing/sgxplatform/cmd/sgxgen -out DIR
//
// DIR then holds
//
//	root.pem              the TEST SGX root CA (trust it with "sgx": {"roots": ["root.pem"]})
//	collateral.json       the platform's DCAP collateral, dcap-qvl JSON (a "bundle" collateral source)
//	attestd.json          an attestd configuration using both
//	runtime.bin           binary runtime data; runtime.json: JSON runtime data
//	sgx-quote-v3.bin      SGX ECDSA quote v3, REPORTDATA[0:32] = SHA-256(runtime.bin)
//	sgx-quote-v4.bin      SGX ECDSA quote v4, REPORTDATA[0:32] = SHA-256(runtime.json)
//	oe-report.bin         OpenEnclave remote report, REPORTDATA[0:32] = SHA-256(runtime.bin)
//	oe-report-json.bin    OpenEnclave remote report, REPORTDATA[0:32] = SHA-256(runtime.json)
//	oe-evidence.bin       OE SGX_ECDSA evidence with custom claims (bound by the OE format)
//	inittime.bin          binary init-time data; inittime.json: JSON init-time data
//	sgx-quote-v3-kss.bin, sgx-quote-v4-kss.bin
//	                      KSS enclave quotes: REPORTDATA binds runtime.bin,
//	                      CONFIGID[0:32] = SHA-256(inittime.bin)
//	sgx-quote-v3-kss-json.bin, sgx-quote-v4-kss-json.bin
//	                      KSS enclave quotes: REPORTDATA binds runtime.json,
//	                      CONFIGID[0:32] = SHA-256(inittime.json)
//	oe-report-kss.bin, oe-report-kss-json.bin
//	                      the same as OpenEnclave reports (v3 quote inside)
//	manifest.json         what the files contain: enclave identity, report data,
//	                      KSS fields, validity window
//
// Certificates are valid from now-24h for a year, TCB info, QE identity and
// CRLs from now-1h for 30 days (-now moves the window). The root's private
// key is never written: nothing but these files can ever chain to root.pem.
// It lives under testing/ so the attestd binary never contains it.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/testing/sgxplatform"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sgxgen:", err)
		os.Exit(1)
	}
}

// Enclave identity written into every quote (fixed, so tests can assert it).
var (
	MREnclave = sha256.Sum256([]byte("attestd sgxgen test enclave"))
	MRSigner  = sha256.Sum256([]byte("attestd sgxgen test enclave signer"))
)

const (
	ProductID = 7
	SVN       = 3
)

// KSS identity of the KSS enclave files (ATTRIBUTES.KSS set): CONFIGSVN,
// ISVEXTPRODID, ISVFAMILYID, and the upper half of CONFIGID, which MAA does
// not bind to init-time data (only the lower 32 bytes are SHA-256 of it).
var (
	ConfigSVN            = uint16(0x0102)
	ISVExtendedProductID = [16]byte{0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef}
	ISVFamilyID          = [16]byte{0xfa, 0x31, 0x1e, 0x5a, 0x77, 0xe5, 0x7d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}
	ConfigIDUpper        = sha256.Sum256([]byte("attestd sgxgen config id, upper half (not bound)"))
)

// InitTimeBinary and InitTimeJSON are the init-time data the KSS enclaves'
// CONFIGID binds.
var (
	InitTimeBinary = []byte{0xc0, 0xf1, 0x00, 'k', 's', 's', 0xff}
	InitTimeJSON   = []byte(`{"config":{"mode":"production","replicas":3,"features":["kss","inittime"]},"owner":"attestd sgxgen"}`)
)

// RuntimeBinary and RuntimeJSON are the runtime data bound into the report data.
var (
	RuntimeBinary = []byte{0x00, 0x01, 0x02, 0xfe, 0xff, 'a', 't', 't', 'e', 's', 't', 'd'}
	RuntimeJSON   = []byte(`{"jwk":{"kty":"EC","crv":"P-256","x":"attestd-test","y":"sgxgen"},"nonce":"12345"}`)
)

// Manifest describes the generated files (manifest.json).
type Manifest struct {
	Generated       time.Time         `json:"generated"`
	CollateralValid [2]time.Time      `json:"collateral_valid"` // TCB info, QE identity, CRLs: from, until
	CertsValid      [2]time.Time      `json:"certificates_valid"`
	FMSPC           string            `json:"fmspc"`
	MREnclave       string            `json:"mrenclave"`
	MRSigner        string            `json:"mrsigner"`
	ProductID       int               `json:"product_id"`
	SVN             int               `json:"svn"`
	Debug           bool              `json:"debug"`
	Files           map[string]string `json:"files"`
	ReportData      map[string]string `json:"report_data"` // file → hex REPORTDATA
	OECustomClaims  map[string]string `json:"oe_custom_claims"`
	// KSS maps each KSS enclave file to its KSS fields.
	KSS map[string]KSS `json:"kss"`
}

// KSS describes one KSS enclave file of the manifest.
type KSS struct {
	InitTime             string `json:"init_time"` // the file whose SHA-256 is config_id[0:32]
	InitTimeDataType     string `json:"init_time_data_type"`
	ConfigID             string `json:"config_id"` // hex, 64 bytes
	ConfigSVN            int    `json:"config_svn"`
	ISVExtendedProductID string `json:"isv_extended_product_id"` // hex, 16 bytes
	ISVFamilyID          string `json:"isv_family_id"`           // hex, 16 bytes
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sgxgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write into (created if missing)")
	nowFlag := fs.String("now", "", "RFC 3339 instant the validity windows are built around (default: now)")
	debug := fs.Bool("debug", false, "mark the enclave as debuggable (ATTRIBUTES.DEBUG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-out DIR is required")
	}
	now := time.Now().UTC().Truncate(time.Second)
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("-now: %w", err)
		}
		now = t.UTC()
	}
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		return err
	}
	coll, err := bundle.MarshalQVLJSON(p.Collateral())
	if err != nil {
		return err
	}
	var rootPEM []byte
	for _, r := range p.Roots() {
		rootPEM = append(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}

	base := sgxplatform.QuoteOptions{Debug: *debug, MREnclave: MREnclave, MRSigner: MRSigner, ProductID: ProductID, SVN: SVN}
	bound := func(data []byte, version int) sgxplatform.QuoteOptions {
		o := base
		o.Version = version
		h := sha256.Sum256(data)
		copy(o.ReportData[:], h[:])
		return o
	}
	m := &Manifest{
		Generated: now, FMSPC: p.FMSPC(),
		CollateralValid: [2]time.Time{now.Add(-time.Hour), now.Add(30 * 24 * time.Hour)},
		CertsValid:      [2]time.Time{now.Add(-24 * time.Hour), now.Add(365 * 24 * time.Hour)},
		MREnclave:       hex.EncodeToString(MREnclave[:]), MRSigner: hex.EncodeToString(MRSigner[:]),
		ProductID: ProductID, SVN: SVN, Debug: *debug,
		Files:      map[string]string{},
		ReportData: map[string]string{},
		OECustomClaims: map[string]string{
			"attestd.purpose": "sgxgen test claim",
		},
		KSS: map[string]KSS{},
	}
	files := map[string][]byte{
		"root.pem":        rootPEM,
		"collateral.json": coll,
		"runtime.bin":     RuntimeBinary,
		"runtime.json":    RuntimeJSON,
		"inittime.bin":    InitTimeBinary,
		"inittime.json":   InitTimeJSON,
		"attestd.json": []byte(`{
  "collateral": {"type": "bundle", "path": "collateral.json"},
  "sgx": {"roots": ["root.pem"]}
}
`),
	}
	describe := func(name, what string) { m.Files[name] = what }
	describe("root.pem", "TEST SGX root CA certificate (PEM); trusted only when configured in sgx.roots")
	describe("collateral.json", "DCAP collateral of the test platform (dcap-qvl JSON)")
	describe("attestd.json", "attestd configuration trusting root.pem with collateral.json as bundle")
	describe("runtime.bin", "binary runtime data")
	describe("runtime.json", "JSON runtime data")
	describe("inittime.bin", "binary init-time data (bound by the CONFIGID of the *-kss.bin files)")
	describe("inittime.json", "JSON init-time data (bound by the CONFIGID of the *-kss-json.bin files)")

	quotes := []struct {
		name, what string
		data       []byte
		version    int
		oe         bool
		initTime   string // KSS enclave whose CONFIGID binds this file
	}{
		{"sgx-quote-v3.bin", "SGX quote v3 binding runtime.bin", RuntimeBinary, abi.QuoteVersion3, false, ""},
		{"sgx-quote-v4.bin", "SGX quote v4 binding runtime.json", RuntimeJSON, abi.QuoteVersion4, false, ""},
		{"oe-report.bin", "OpenEnclave report binding runtime.bin", RuntimeBinary, abi.QuoteVersion3, true, ""},
		{"oe-report-json.bin", "OpenEnclave report binding runtime.json", RuntimeJSON, abi.QuoteVersion3, true, ""},
		{"sgx-quote-v3-kss.bin", "SGX quote v3 of a KSS enclave binding runtime.bin (REPORTDATA) and inittime.bin (CONFIGID)", RuntimeBinary, abi.QuoteVersion3, false, "inittime.bin"},
		{"sgx-quote-v4-kss.bin", "SGX quote v4 of a KSS enclave binding runtime.bin (REPORTDATA) and inittime.bin (CONFIGID)", RuntimeBinary, abi.QuoteVersion4, false, "inittime.bin"},
		{"sgx-quote-v3-kss-json.bin", "SGX quote v3 of a KSS enclave binding runtime.json (REPORTDATA) and inittime.json (CONFIGID)", RuntimeJSON, abi.QuoteVersion3, false, "inittime.json"},
		{"sgx-quote-v4-kss-json.bin", "SGX quote v4 of a KSS enclave binding runtime.json (REPORTDATA) and inittime.json (CONFIGID)", RuntimeJSON, abi.QuoteVersion4, false, "inittime.json"},
		{"oe-report-kss.bin", "OpenEnclave report of a KSS enclave binding runtime.bin (REPORTDATA) and inittime.bin (CONFIGID)", RuntimeBinary, abi.QuoteVersion3, true, "inittime.bin"},
		{"oe-report-kss-json.bin", "OpenEnclave report of a KSS enclave binding runtime.json (REPORTDATA) and inittime.json (CONFIGID)", RuntimeJSON, abi.QuoteVersion3, true, "inittime.json"},
	}
	for _, q := range quotes {
		o := bound(q.data, q.version)
		if q.initTime != "" {
			o.ConfigSVN, o.ISVExtendedProductID, o.ISVFamilyID = ConfigSVN, ISVExtendedProductID, ISVFamilyID
			copy(o.ConfigID[32:], ConfigIDUpper[:])
			o.BindInitTime(files[q.initTime])
			dataType := "Binary"
			if strings.HasSuffix(q.initTime, ".json") {
				dataType = "JSON"
			}
			m.KSS[q.name] = KSS{
				InitTime: q.initTime, InitTimeDataType: dataType,
				ConfigID: hex.EncodeToString(o.ConfigID[:]), ConfigSVN: int(ConfigSVN),
				ISVExtendedProductID: hex.EncodeToString(ISVExtendedProductID[:]), ISVFamilyID: hex.EncodeToString(ISVFamilyID[:]),
			}
		}
		var b []byte
		if q.oe {
			b, err = p.OEReport(o)
		} else {
			b, err = p.Quote(o)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		files[q.name] = b
		describe(q.name, q.what)
		m.ReportData[q.name] = hex.EncodeToString(o.ReportData[:])
	}
	var claims []abi.CustomClaim
	for k, v := range m.OECustomClaims {
		claims = append(claims, abi.CustomClaim{Name: k, Value: []byte(v)})
	}
	ev, err := p.OEEvidence(base, claims)
	if err != nil {
		return fmt.Errorf("oe-evidence.bin: %w", err)
	}
	files["oe-evidence.bin"] = ev
	describe("oe-evidence.bin", "OE SGX_ECDSA evidence with the custom claims in oe_custom_claims")
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	files["manifest.json"] = append(mj, '\n')

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "sgxgen: wrote %d files to %s (test root %s, collateral valid until %s)\n", len(files), *out, p.Roots()[0].Subject.CommonName, m.CollateralValid[1].Format(time.RFC3339))
	return nil
}
