package snp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-sev-guest/kds"

	"github.com/attestd/attestd/collateral/source"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp/abi"
	"github.com/attestd/attestd/evidence/snp/verify"
	"github.com/attestd/attestd/internal/pemfile"
)

// Config is the "snp" block of the attestd configuration file (README.md,
// "Attest an SEV-SNP VM or confidential container").
type Config struct {
	// Disabled leaves SevSnpVm without a verifier (501 NotSupported).
	Disabled bool `json:"disabled"`
	// Roots are PEM files, each holding one product line's ARK with its ASK
	// and/or ASVK (as AMD KDS serves cert_chain); they REPLACE AMD's roots
	// (Milan, Genoa, Turin, shipped in the binary). The product line is read
	// from the ARK's name ("ARK-Milan").
	Roots []string `json:"roots"`
	// ExtraRoots are trusted IN ADDITION to AMD's roots (or to Roots).
	ExtraRoots []string `json:"extra_roots"`
	// KDS is where VCEKs (for reports sent without one) and CRLs come from
	// (collateral/source.KDSConfig). Absent: AMD KDS, cached under
	// DATA/kds. {"disabled": true} inside the block: never fetch.
	KDS *kdsBlock `json:"kds"`
	// VLEKs are PEM files of VLEK certificates (a cloud provider's; KDS
	// does not serve them without credentials): a VLEK-signed report sent
	// without its VLEK is verified with the one here issued for its TCB.
	VLEKs []string `json:"vleks"`
	// CheckCRL consults AMD's CRL of the product on every report.
	CheckCRL bool `json:"check_crl"`
	// UVM configures ACI utility-VM endorsements.
	UVM UVMConfig `json:"uvm"`
	// Compliance rules set x-ms-compliance-status (first match).
	Compliance []ComplianceConfig `json:"compliance"`
}

type kdsBlock struct {
	Disabled bool `json:"disabled"`
	source.KDSConfig
}

// UVMConfig is the "uvm" member of the "snp" block.
type UVMConfig struct {
	// Roots are PEM files of the roots endorsement signers must chain to
	// (for ACI: Microsoft Supply Chain RSA Root CA 2022).
	Roots []string `json:"roots"`
	// Feeds, when set, are the accepted feeds (e.g. "ContainerPlat-AMD-UVM").
	Feeds []string `json:"feeds"`
	// Required refuses reports without a verified endorsement.
	Required bool `json:"required"`
}

// ComplianceConfig is one compliance rule (see ComplianceRule).
type ComplianceConfig struct {
	Status           string   `json:"status"`
	IDKeyDigests     []string `json:"id_key_digests"`
	AuthorKeyDigests []string `json:"author_key_digests"`
	Measurements     []string `json:"measurements"`
	UVMEndorsed      bool     `json:"uvm_endorsed"`
	AllowDebug       bool     `json:"allow_debug"`
	MinTCB           *struct {
		Bootloader uint8 `json:"bootloader"`
		TEE        uint8 `json:"tee"`
		SNP        uint8 `json:"snp"`
		Microcode  uint8 `json:"microcode"`
	} `json:"min_tcb"`
}

// Plugin is the SevSnpVm verifier for the server binary (block "snp").
func Plugin() evidence.Plugin {
	return evidence.Plugin{
		Name:   "snp",
		Blocks: []string{"snp"},
		Types:  []evidence.Type{evidence.SevSnpVm},
		Open:   openPlugin,
	}
}

func readRoots(path func(string) string, files []string, field string) ([]verify.ProductRoots, error) {
	var out []verify.ProductRoots
	for _, f := range files {
		certs, err := pemfile.Certificates(path(f))
		if err != nil {
			return nil, fmt.Errorf("snp.%s: %w", field, err)
		}
		var buf bytes.Buffer
		line := ""
		for _, c := range certs {
			buf.Write(pemCert(c))
			if l, ok := strings.CutPrefix(c.Subject.CommonName, "ARK-"); ok {
				line = l
			}
		}
		if line == "" {
			return nil, fmt.Errorf("snp.%s: %s holds no ARK (a certificate named ARK-<product>)", field, path(f))
		}
		r, err := verify.RootsFromPEM(line, buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("snp.%s: %s: %w", field, path(f), err)
		}
		out = append(out, r)
	}
	return out, nil
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// OptionsFromConfig resolves a "snp" block (except KDS, which needs the
// server's data directory and clock) into verifier options.
func OptionsFromConfig(c Config, path func(string) string) (Options, error) {
	var o Options
	roots, err := readRoots(path, c.Roots, "roots")
	if err != nil {
		return o, err
	}
	extra, err := readRoots(path, c.ExtraRoots, "extra_roots")
	if err != nil {
		return o, err
	}
	if len(roots) > 0 || len(extra) > 0 {
		if len(roots) == 0 {
			roots = verify.DefaultRoots()
		}
		o.Verify.Roots = append(roots, extra...)
	}
	for _, f := range c.UVM.Roots {
		certs, err := pemfile.Certificates(path(f))
		if err != nil {
			return o, fmt.Errorf("snp.uvm.roots: %w", err)
		}
		o.UVM.Roots = append(o.UVM.Roots, certs...)
	}
	for _, f := range c.VLEKs {
		certs, err := pemfile.Certificates(path(f))
		if err != nil {
			return o, fmt.Errorf("snp.vleks: %w", err)
		}
		for _, crt := range certs {
			if crt.Subject.CommonName != "SEV-VLEK" {
				return o, fmt.Errorf("snp.vleks: %s: %q is not a VLEK certificate", path(f), crt.Subject.CommonName)
			}
			o.Verify.VLEKs = append(o.Verify.VLEKs, crt.Raw)
		}
	}
	o.UVM.Feeds = c.UVM.Feeds
	o.RequireUVM = c.UVM.Required
	for _, r := range c.Compliance {
		rule := ComplianceRule{Status: r.Status, IDKeyDigests: r.IDKeyDigests, AuthorKeyDigests: r.AuthorKeyDigests,
			Measurements: r.Measurements, UVMEndorsed: r.UVMEndorsed, AllowDebug: r.AllowDebug}
		if r.MinTCB != nil {
			rule.MinTCB = &kds.TCBParts{BlSpl: r.MinTCB.Bootloader, TeeSpl: r.MinTCB.TEE, SnpSpl: r.MinTCB.SNP, UcodeSpl: r.MinTCB.Microcode}
		}
		o.Compliance = append(o.Compliance, rule)
	}
	return o, nil
}

func openPlugin(ctx context.Context, env evidence.PluginEnv) (evidence.Verifier, func() error, error) {
	v, closeFn, err := Open(ctx, env)
	if v == nil {
		// A nil *Verifier must not become a non-nil evidence.Verifier.
		return nil, closeFn, err
	}
	return v, closeFn, err
}

// Open builds the SEV-SNP verifier of the "snp" block of env (nil when the
// block disables it). Other plugins whose evidence embeds an SNP report
// (AzureGuest) open theirs with it, so one block configures AMD trust for
// every type.
func Open(ctx context.Context, env evidence.PluginEnv) (*Verifier, func() error, error) {
	noop := func() error { return nil }
	var c Config
	if err := evidence.DecodeBlock(env.Block("snp"), &c); err != nil {
		return nil, nil, fmt.Errorf("%w: snp: %v", evidence.ErrConfig, err)
	}
	if c.Disabled {
		return nil, noop, nil
	}
	opts, err := OptionsFromConfig(c, env.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", evidence.ErrConfig, err)
	}
	closeFn := noop
	kc := source.KDSConfig{Type: source.TypeKDS, CacheDir: filepath.Join(env.DataDir, "kds")}
	fetch := true
	if c.KDS != nil {
		fetch = !c.KDS.Disabled
		kc = c.KDS.KDSConfig
		kc.Path, kc.CacheDir = env.Path(kc.Path), env.Path(kc.CacheDir)
	}
	if fetch {
		src, err := source.OpenKDS(kc, time.Now, nil, env.Logger)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: snp.kds: %v", evidence.ErrConfig, err)
		}
		closeFn = src.Close
		if env.Collateral != nil && src.Stats != nil {
			env.Collateral(src.Stats)
		}
		opts.Verify.Endorsements = KDS{src}
		if c.CheckCRL {
			opts.Verify.CRLs = KDS{src}
		}
	} else if c.CheckCRL {
		return nil, nil, fmt.Errorf("%w: snp.check_crl needs a KDS source (snp.kds must not be disabled)", evidence.ErrConfig)
	}
	v, err := New(opts)
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	roots := "AMD (Milan, Genoa, Turin)"
	if opts.Verify.Roots != nil {
		var s []string
		for _, r := range opts.Verify.Roots {
			s = append(s, r.ARK.Subject.CommonName)
		}
		roots = strings.Join(s, "; ")
		for _, r := range opts.Verify.Roots {
			env.Logger.Warn("SEV-SNP trusted root configured (snp.roots/extra_roots): reports chaining to it are accepted", "subject", r.ARK.Subject.String(), "sha256", hexSum(r.ARK.Raw))
		}
	}
	env.Logger.Info("SEV-SNP verifier", "roots", roots, "kds", fetch, "kds_type", kc.Type, "kds_url", kc.URL, "kds_cache", kc.CacheDir, "crl", c.CheckCRL, "uvm_roots", len(opts.UVM.Roots), "compliance_rules", len(opts.Compliance))
	return v, closeFn, nil
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Parse implements evidence.Verifier: structure only.
func (v *Verifier) Parse(ctx context.Context, req *evidence.Request) (evidence.Parsed, error) {
	if req.Type != evidence.SevSnpVm {
		return nil, evidence.Errorf(evidence.CheckEvidenceType, "the SEV-SNP verifier does not verify %s evidence", req.Type)
	}
	ev, err := Parse(req.Evidence)
	if err != nil {
		return nil, err
	}
	return &parsed{v: v, ev: ev, req: req}, nil
}

type parsed struct {
	v   *Verifier
	ev  *abi.Evidence
	req *evidence.Request
}

// Verify implements evidence.Parsed at the request's instant.
func (p *parsed) Verify(ctx context.Context, _ map[string]any) (*evidence.Result, error) {
	vd, err := p.v.Verify(ctx, p.ev, p.req.Now)
	if err != nil {
		return nil, err
	}
	return &evidence.Result{ReportData: ReportData(vd), InitTimeBinding: InitTimeBinding(vd), Claims: Claims(vd)}, nil
}

// ClaimsSupported implements evidence.ClaimsAdvertiser.
func (v *Verifier) ClaimsSupported() []string { return ClaimsSupported() }

var (
	_ evidence.Verifier         = (*Verifier)(nil)
	_ evidence.ClaimsAdvertiser = (*Verifier)(nil)
)
