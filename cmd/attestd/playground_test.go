package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPlaygroundOption: the instance option "playground" is on unless set
// to false.
func TestPlaygroundOption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.json")
	os.WriteFile(path, []byte(`{"instances":[{"name":"default","auth":{"dev":true}},
		{"name":"on","playground":true,"auth":{"dev":true}},
		{"name":"off","playground":false,"auth":{"dev":true}}]}`), 0o644)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.resolve("127.0.0.1:8443")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"default": false, "on": false, "off": true}
	for _, ri := range got {
		if ri.NoPlayground != want[ri.Name] {
			t.Errorf("%s: NoPlayground %v, want %v", ri.Name, ri.NoPlayground, want[ri.Name])
		}
	}
	if err := os.WriteFile(path, []byte(`{"instances":[{"name":"default","playground":"no","auth":{"dev":true}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil {
		t.Fatal("a non-boolean playground option was accepted")
	}
}
