package azureguest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/internal/pemfile"
)

// Config is the "azureguest" block of the attestd configuration file. The
// SEV-SNP trust (AMD roots, KDS, VLEKs, compliance rules) is the "snp"
// block's, shared with SevSnpVm; the TDX trust (Intel roots, collateral)
// the "tdx" and "collateral" blocks', shared with TdxVm.
type Config struct {
	// Disabled leaves AzureGuest without a verifier (501 NotSupported).
	Disabled bool `json:"disabled"`
	// AKRoots are PEM files of the roots AK certificates must chain to
	// (Azure's vTPM AK CA for real VMs). None: AK certificates are checked
	// only for their key, and Trusted Launch VMs are refused.
	AKRoots []string `json:"ak_roots"`
	// AKIntermediates are PEM files of intermediate CAs for those chains.
	AKIntermediates []string `json:"ak_intermediates"`
}

// Plugin is the AzureGuest verifier for the server binary (blocks
// "azureguest", "snp", "tdx" and "collateral").
func Plugin() evidence.Plugin {
	return evidence.Plugin{
		Name:   "azureguest",
		Blocks: []string{"azureguest", "snp", "tdx", "collateral"},
		Types:  []evidence.Type{evidence.AzureGuest},
		Open:   openPlugin,
	}
}

func pool(path func(string) string, files []string, field string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	p := x509.NewCertPool()
	for _, f := range files {
		certs, err := pemfile.Certificates(path(f))
		if err != nil {
			return nil, fmt.Errorf("azureguest.%s: %w", field, err)
		}
		for _, c := range certs {
			p.AddCert(c)
		}
	}
	return p, nil
}

func openPlugin(ctx context.Context, env evidence.PluginEnv) (evidence.Verifier, func() error, error) {
	noop := func() error { return nil }
	var c Config
	if err := evidence.DecodeBlock(env.Block("azureguest"), &c); err != nil {
		return nil, nil, fmt.Errorf("%w: azureguest: %v", evidence.ErrConfig, err)
	}
	if c.Disabled {
		return nil, noop, nil
	}
	var o Options
	var err error
	if o.AKRoots, err = pool(env.Path, c.AKRoots, "ak_roots"); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", evidence.ErrConfig, err)
	}
	if o.AKIntermediates, err = pool(env.Path, c.AKIntermediates, "ak_intermediates"); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", evidence.ErrConfig, err)
	}
	sv, snpClose, err := snp.Open(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	// The TDX verifier has its own collateral source (a second cache of
	// the same documents as TdxVm's, under the same directory).
	tv, tdxClose, err := tdx.Open(ctx, env)
	if err != nil {
		snpClose()
		return nil, nil, err
	}
	closeFn := func() error { return errors.Join(snpClose(), tdxClose()) }
	o.SNP, o.TDX = sv, tv
	if sv == nil && tv == nil && o.AKRoots == nil {
		// Nothing could verify: no hardware trust and no AK roots.
		env.Logger.Info("AzureGuest verifier disabled: the snp and tdx blocks are disabled and no azureguest.ak_roots are configured")
		return nil, closeFn, nil
	}
	env.Logger.Info("AzureGuest verifier", "snp", sv != nil, "tdx", tv != nil, "ak_roots", len(c.AKRoots))
	if sv == nil {
		env.Logger.Warn("AzureGuest: the snp block is disabled, so SEV-SNP confidential VMs are refused")
	}
	if tv == nil {
		env.Logger.Warn("AzureGuest: the tdx block is disabled, so TDX confidential VMs are refused")
	}
	return New(o), closeFn, nil
}
