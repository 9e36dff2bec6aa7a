package azureguest

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/snp"
	"github.com/attestd/attestd/internal/pemfile"
)

// Config is the "azureguest" block of the attestd configuration file. The
// SEV-SNP trust (AMD roots, KDS, VLEKs, compliance rules) is the "snp"
// block's, shared with SevSnpVm.
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
// "azureguest" and "snp").
func Plugin() evidence.Plugin {
	return evidence.Plugin{
		Name:   "azureguest",
		Blocks: []string{"azureguest", "snp"},
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
	sv, closeFn, err := snp.Open(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	o.SNP = sv
	if sv == nil && o.AKRoots == nil {
		// Nothing could verify: no hardware trust and no AK roots.
		env.Logger.Info("AzureGuest verifier disabled: the snp block is disabled and no azureguest.ak_roots are configured")
		return nil, closeFn, nil
	}
	env.Logger.Info("AzureGuest verifier", "snp", sv != nil, "ak_roots", len(c.AKRoots), "tdx", false)
	if sv == nil {
		env.Logger.Warn("AzureGuest: the snp block is disabled, so SEV-SNP confidential VMs are refused")
	}
	return New(o), closeFn, nil
}
