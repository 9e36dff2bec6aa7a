// Package testenv locates the project's shared test material (real hardware
// vectors, MAA samples, specs) that lives beside the repository in ../shared.
//
// The material is never copied into the repository. A user's clone has no
// ../shared: tests that need it skip with a clear message. CI (CI=true) always
// has it, so there a missing directory fails the test instead of skipping it.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar overrides the location of the shared directory.
const EnvVar = "ATTESTD_SHARED"

// SharedDir returns the absolute path of the shared directory, or "" when it
// cannot be found. It looks at $ATTESTD_SHARED first, then at "../shared"
// next to the module root (the directory holding go.mod).
func SharedDir() string {
	if d := os.Getenv(EnvVar); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			abs, _ := filepath.Abs(d)
			return abs
		}
		return ""
	}
	root := ModuleRoot()
	if root == "" {
		return ""
	}
	d := filepath.Join(filepath.Dir(root), "shared")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	return ""
}

// ModuleRoot returns the directory holding go.mod, searching upwards from the
// working directory (go test runs each package in its own directory).
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Shared returns the path of rel inside the shared directory. When the shared
// directory is missing it skips the test, or fails it when running under CI.
func Shared(tb testing.TB, rel string) string {
	tb.Helper()
	d := SharedDir()
	if d == "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("shared test material not found (set %s or place it at ../shared); CI must have it", EnvVar)
		}
		tb.Skipf("skipping: shared test material not found at ../shared (set %s); it holds real hardware vectors that are not part of the repository", EnvVar)
	}
	p := filepath.Join(d, rel)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("shared test material %s: %v", rel, err)
	}
	return p
}

// ReadShared reads a file from the shared directory (see Shared).
func ReadShared(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Shared(tb, rel))
	if err != nil {
		tb.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// Seeds reads shared files for a fuzz target's seed corpus. Without the
// shared directory it returns nothing (fuzz tests must run in a user's clone
// too); with it, every file must exist, so a renamed or mistyped vector fails
// the test instead of silently shrinking the corpus to the inline seeds.
func Seeds(tb testing.TB, rels ...string) [][]byte {
	tb.Helper()
	d := SharedDir()
	if d == "" {
		return nil
	}
	out := make([][]byte, 0, len(rels))
	for _, rel := range rels {
		b, err := os.ReadFile(filepath.Join(d, rel))
		if err != nil {
			tb.Fatalf("fuzz seed %s: %v", rel, err)
		}
		out = append(out, b)
	}
	return out
}
