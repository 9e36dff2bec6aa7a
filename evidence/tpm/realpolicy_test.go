package tpm_test

import (
	"context"
	"crypto"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-attestation/attest"

	"github.com/attestd/attestd/evidence/tpm/eventlog"
	"github.com/attestd/attestd/internal/testenv"
	"github.com/attestd/attestd/policy"
)

// windowsLog replays the real Windows boot log of a GCP shielded VM
// (go-attestation's windows_gcp_shielded_vm.json) against its PCRs.
func windowsLog(t *testing.T) *eventlog.Log {
	t.Helper()
	var d struct {
		Log struct {
			PCRs []struct {
				Index     int
				Digest    []byte
				DigestAlg crypto.Hash
			}
			Raw []byte
		}
	}
	if err := json.Unmarshal(testenv.ReadShared(t, "vectors/go-attestation/attest/testdata/windows_gcp_shielded_vm.json"), &d); err != nil {
		t.Fatal(err)
	}
	var pcrs []eventlog.PCR
	for _, p := range d.Log.PCRs {
		pcrs = append(pcrs, eventlog.PCR{Index: p.Index, Alg: p.DigestAlg, Digest: p.Digest})
	}
	l, err := eventlog.Replay(d.Log.Raw, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDocPoliciesOnRealWindowsLog runs documented 1.2 Tpm policies (boot
// properties, the DHA health policy) over the "events" claim built from a
// real Windows boot log, and requires what their JmesPath queries derive to
// equal what go-attestation's own Windows parser (ParseWinEvents) reads
// from the same replayed events: two independent readings of one log.
func TestDocPoliciesOnRealWindowsLog(t *testing.T) {
	l := windowsLog(t)
	js, err := l.JSON()
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.Windows()
	if err != nil {
		t.Fatal(err)
	}
	secureBoot, _ := l.SecureBoot()
	elam := false
	for _, m := range w.LoadedModules {
		if m.ImageValidated && strings.HasSuffix(strings.ToLower(m.FilePath), `\wdboot.sys`) {
			elam = true
		}
	}
	bitlocker := false
	for _, b := range w.BitlockerUnlocks {
		if b != 0 {
			bitlocker = true
		}
	}
	dep := map[attest.Ternary]int64{attest.TernaryTrue: 1, attest.TernaryFalse: 0}[w.DEPEnabled]
	for _, tc := range []struct {
		file string
		want map[string]any
	}{
		{"28-docs-tpm-v1.2-boot-properties.txt", map[string]any{
			"SecureBootEnabled": secureBoot, "CodeIntegrityEnabled": w.CodeIntegrityEnabled == attest.TernaryTrue,
			"BitlockerStatus": bitlocker, "ELAMDriverLoaded": elam}},
		{"41-dha-csp-v1.2-windows-health.txt", map[string]any{
			"secureBootEnabled": secureBoot, "codeIntegrityEnabled": w.CodeIntegrityEnabled == attest.TernaryTrue,
			"bitlockerEnabled": bitlocker, "WindowsDefenderElamDriverLoaded": elam,
			"bootDebuggingDisabled": !w.BootDebuggingEnabled, "osKernelDebuggingDisabled": !w.KernelDebugEnabled,
			"testSigningDisabled": !w.TestSigningEnabled, "depPolicy": dep}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := policy.Parse(string(testenv.ReadShared(t, "spec/policies/"+tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			in := []policy.Claim{{Type: "events", Value: js, Issuer: policy.IssuerService}, {Type: "aikValidated", Value: true, Issuer: policy.IssuerService}}
			r, err := p.Evaluate(context.Background(), "Tpm", in, policy.EvalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for _, c := range r.Issued {
				got[c.Type] = c.Value
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s = %#v (from the policy's JmesPath), go-attestation reads %#v", k, got[k], want)
				}
			}
		})
	}
	if !secureBoot || !elam || w.CodeIntegrityEnabled != attest.TernaryTrue {
		t.Errorf("the GCP shielded VM log: secure boot %v, ELAM %v, code integrity %v; want all on", secureBoot, elam, w.CodeIntegrityEnabled)
	}
}
