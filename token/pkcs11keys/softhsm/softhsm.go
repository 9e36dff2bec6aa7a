// Package softhsm gives tests a fresh SoftHSM2 token (a software PKCS#11
// module) for the pkcs11 build of attestd: token/pkcs11keys and the
// cmd/attestd tests built with -tags pkcs11 share it.
package softhsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Modules are where Debian's softhsm2 package installs the module.
var Modules = []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"}

// Token initialises a fresh SoftHSM2 token in a temporary directory
// (SOFTHSM2_CONF points at it for the rest of the test) and returns the
// module path, the token label and the user PIN. Without SoftHSM2 it skips
// the test, or fails it under CI=true, where .ci/run installs softhsm2.
func Token(t testing.TB) (module, label, pin string) {
	t.Helper()
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("SoftHSM2 (libsofthsm2.so, softhsm2-util) missing under CI=true: .ci/run must install softhsm2")
		}
		t.Skip("SoftHSM2 not installed (apt-get install softhsm2)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	label, pin = "attestd-test", "1234"
	if out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	return module, label, pin
}
