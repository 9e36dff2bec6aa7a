package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/testing/snpplatform"
)

// TestPluginBlocks: the configuration blocks belong to the plugins. The
// "sgx" and "collateral" blocks keep working as documented; a block no
// plugin reads is refused at load, a bad member of a plugin's block when
// the plugin opens (a usage error); "disabled" leaves the types without a
// verifier.
func TestPluginBlocks(t *testing.T) {
	dir := t.TempDir()
	writePlatform(t, dir, sgxplatform.Options{})
	sp, err := snpplatform.New(snpplatform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "snp-roots.pem"), sp.RootsPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "snp-leaf.pem"), sp.ChainPEM(false), 0o644); err != nil {
		t.Fatal(err)
	}
	coll := `"collateral": {"type": "bundle", "path": "collateral.json"}`
	for _, tc := range []struct {
		name    string
		config  string
		loadErr string
		openErr string
		types   []evidence.Type
	}{
		{"sgx and collateral", `{` + coll + `, "sgx": {"roots": ["root.pem"], "grace": "1h"}}`, "", "", []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave, evidence.Tpm, evidence.SevSnpVm, evidence.TdxVm, evidence.AzureGuest}},
		{"collateral only", `{` + coll + `}`, "", "", []evidence.Type{evidence.SgxEnclave, evidence.OpenEnclave, evidence.Tpm, evidence.SevSnpVm, evidence.TdxVm, evidence.AzureGuest}},
		{"disabled", `{"sgx": {"disabled": true}, "tdx": {"disabled": true}, "snp": {"disabled": true}, "tpm": {"disabled": true}}`, "", "", nil},
		{"snp only", `{"sgx": {"disabled": true}, "tdx": {"disabled": true}, "tpm": {"disabled": true}, "snp": {"roots": ["snp-roots.pem"], "kds": {"disabled": true}}}`, "", "", []evidence.Type{evidence.SevSnpVm, evidence.AzureGuest}},
		{"azureguest disabled", `{"sgx": {"disabled": true}, "tdx": {"disabled": true}, "tpm": {"disabled": true}, "azureguest": {"disabled": true}, "snp": {"roots": ["snp-roots.pem"], "kds": {"disabled": true}}}`, "", "", []evidence.Type{evidence.SevSnpVm}},
		{"tdx only", `{` + coll + `, "sgx": {"disabled": true}, "snp": {"disabled": true}, "tpm": {"disabled": true}, "tdx": {"roots": ["root.pem"], "grace": "1h"}}`, "", "", []evidence.Type{evidence.TdxVm, evidence.AzureGuest}},
		{"unknown tdx member", `{"tdx": {"rootz": []}}`, "", `unknown field "rootz"`, nil},
		{"bad tdx grace", `{` + coll + `, "tdx": {"grace": "soon"}}`, "", "tdx.grace", nil},
		{"tdx root is not a CA", `{` + coll + `, "tdx": {"roots": ["snp-leaf.pem"]}}`, "", "not a CA certificate", nil},
		{"unknown azureguest member", `{"azureguest": {"ak_rootz": []}}`, "", `unknown field "ak_rootz"`, nil},
		{"tpm only, GCE roots", `{"sgx": {"disabled": true}, "tdx": {"disabled": true}, "snp": {"disabled": true}, "tpm": {"builtin_roots": ["gce"], "roots": ["root.pem"]}}`, "", "", []evidence.Type{evidence.Tpm}},
		{"unknown tpm root set", `{"tpm": {"builtin_roots": ["azure"]}}`, "", `unknown set "azure"`, nil},
		{"unknown tpm member", `{"tpm": {"rootz": []}}`, "", `unknown field "rootz"`, nil},
		{"tpm trusted AK file without a key", `{"tpm": {"trusted_aks": ["collateral.json"]}}`, "", "no PUBLIC KEY", nil},
		{"unknown snp member", `{"snp": {"rootz": []}}`, "", `unknown field "rootz"`, nil},
		{"snp root file without an ARK", `{"snp": {"roots": ["root.pem"]}}`, "", "holds no ARK", nil},
		{"snp crl without kds", `{"snp": {"check_crl": true, "kds": {"disabled": true}}}`, "", "check_crl", nil},
		{"no plugin reads it", `{"nosuchtee": {}}`, `unknown field "nosuchtee"`, "", nil},
		{"unknown sgx member", `{` + coll + `, "sgx": {"rootz": []}}`, "", `unknown field "rootz"`, nil},
		{"unknown collateral member", `{"collateral": {"type": "bundle", "pth": "x"}}`, "", `unknown field "pth"`, nil},
		{"bad grace", `{` + coll + `, "sgx": {"grace": "soon"}}`, "", "sgx.grace", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "config.json")
			if err := os.WriteFile(path, []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tc.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.loadErr) {
					t.Fatalf("LoadConfig: %v, want %q", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, closeAll, err := registeredVerifiers(context.Background(), cfg, filepath.Join(dir, "data"), slog.New(slog.DiscardHandler))
			if tc.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.openErr) || !errors.Is(err, errUsage) {
					t.Fatalf("open: %v, want a usage error naming %q", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeAll()
			for _, typ := range evidence.Types {
				want := false
				for _, w := range tc.types {
					want = want || w == typ
				}
				if (v[typ] != nil) != want {
					t.Errorf("%s: verifier registered = %v, want %v", typ, v[typ] != nil, want)
				}
			}
			// The registered value is the verifier itself: its optional
			// capabilities are visible to the pipeline.
			if sv := v[evidence.SgxEnclave]; sv != nil {
				if _, ok := sv.(evidence.BaselineLister); !ok {
					t.Error("the SGX verifier lost its BaselineLister capability")
				}
			}
		})
	}
}
