package sgx

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// TestRunVerifyInitTime: "attestd verify --init-time-data FILE" checks that
// SHA-256 of the file is CONFIGID[0:32], naming the check exactly as the
// server does (inittimedata.binding), and prints the KSS claims; runtime
// data mismatches are named as the server names them (runtimedata.binding).
func TestRunVerifyInitTime(t *testing.T) {
	p := newPlatform(t, sgxplatform.Options{})
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	coll, err := bundle.MarshalQVLJSON(p.Collateral())
	if err != nil {
		t.Fatal(err)
	}
	init := []byte(`{"mode":"prod"}`)
	o := sgxplatform.QuoteOptions{ConfigSVN: 5}
	o.BindInitTime(init)
	kss, err := p.Quote(o)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p.Quote(sgxplatform.QuoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--at", testNow.Format(time.RFC3339), "--collateral", write("coll.json", coll), "--roots", write("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Roots()[0].Raw}))}
	kssPath, plainPath := write("kss.bin", kss), write("plain.bin", plain)
	initPath, otherPath := write("init.json", init), write("other.bin", []byte("other"))
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"bound", []string{"--evidence", kssPath, "--init-time-data", initPath}, ExitOK,
			[]string{`"x-ms-sgx-config-id": "` + hex.EncodeToString(o.ConfigID[:]) + `"`, `"x-ms-sgx-config-svn": 5`}, ""},
		{"no init-time data", []string{"--evidence", kssPath}, ExitOK, []string{`"x-ms-sgx-config-svn": 5`}, ""},
		{"unbound", []string{"--evidence", kssPath, "--init-time-data", otherPath}, ExitRejected, nil, "verification failed: inittimedata.binding:"},
		{"non-KSS", []string{"--evidence", plainPath, "--init-time-data", initPath}, ExitRejected, nil, "verification failed: inittimedata.binding:"},
		{"runtime", []string{"--evidence", plainPath, "--runtime-data", otherPath}, ExitRejected, nil, "verification failed: runtimedata.binding:"},
		{"missing file", []string{"--evidence", kssPath, "--init-time-data", filepath.Join(dir, "nope")}, ExitUsage, nil, "nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := RunVerify(context.Background(), append(append([]string{}, base...), c.args...), &out, &errb)
			if code != c.code || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("code %d stderr %q, want %d %q", code, errb.String(), c.code, c.stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %s:\n%s", s, out.String())
				}
			}
			if code == ExitOK {
				var m map[string]any
				if err := json.Unmarshal(out.Bytes(), &m); err != nil {
					t.Errorf("stdout is not JSON: %v", err)
				}
			}
		})
	}
}
