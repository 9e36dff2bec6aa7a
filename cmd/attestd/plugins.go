package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/azureguest"
	"github.com/attestd/attestd/evidence/sgx"
	"github.com/attestd/attestd/evidence/snp"
	"github.com/attestd/attestd/evidence/tdx"
	"github.com/attestd/attestd/evidence/tpm"
)

// plugins are the evidence verifiers this binary is built with. A new TEE
// is one line here (its package exports an evidence.Plugin); nothing else
// in cmd/attestd knows about it.
func plugins() []evidence.Plugin {
	return []evidence.Plugin{sgx.Plugin(), snp.Plugin(), tdx.Plugin(), tpm.Plugin(), azureguest.Plugin()}
}

// registeredVerifiers builds the verifiers of every plugin from its
// configuration blocks. Types left without one are answered with
// NotSupported. close releases what the plugins hold.
func registeredVerifiers(ctx context.Context, cfg *Config, dataDir string, log *slog.Logger) (v map[evidence.Type]evidence.Verifier, close func() error, err error) {
	return registeredVerifiersWith(ctx, cfg, dataDir, log, nil)
}

// registeredVerifiersWith is registeredVerifiers that also hands every
// collateral source a plugin opens to onCollateral (with the plugin's
// name), for metrics and readiness; onCollateral may be nil.
func registeredVerifiersWith(ctx context.Context, cfg *Config, dataDir string, log *slog.Logger, onCollateral func(plugin string, r evidence.CollateralReporter)) (v map[evidence.Type]evidence.Verifier, close func() error, err error) {
	v = map[evidence.Type]evidence.Verifier{}
	var closers []func() error
	close = func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	env := evidence.PluginEnv{
		Block:   func(name string) json.RawMessage { return cfg.Blocks[name] },
		Path:    cfg.path,
		DataDir: dataDir,
		Logger:  log,
	}
	for _, p := range plugins() {
		env.Collateral = nil
		if onCollateral != nil {
			name := p.Name
			env.Collateral = func(r evidence.CollateralReporter) { onCollateral(name, r) }
		}
		pv, pclose, err := p.Open(ctx, env)
		if err != nil {
			close()
			if errors.Is(err, evidence.ErrConfig) {
				err = fmt.Errorf("%w: %w", errUsage, err)
			}
			return nil, nil, fmt.Errorf("%s verifier: %w", p.Name, err)
		}
		closers = append(closers, pclose)
		if pv == nil {
			continue // disabled by its configuration
		}
		for _, t := range p.Types {
			if v[t] != nil {
				close()
				return nil, nil, fmt.Errorf("plugins: two verifiers for attestation type %s", t)
			}
			v[t] = pv
		}
	}
	var missing []string
	for _, t := range evidence.Types {
		if v[t] == nil {
			missing = append(missing, string(t))
		}
	}
	if len(missing) > 0 {
		log.Warn("attestation types without an evidence verifier in this build (attest calls answer 501 NotSupported)", "types", strings.Join(missing, ","))
	}
	return v, close, nil
}
