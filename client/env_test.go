package client_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/internal/attestdtest"
)

func newKey(t testing.TB, cn string, ec bool) *attestdtest.Key {
	t.Helper()
	k, err := attestdtest.NewKey(cn, ec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signerOf(t testing.TB, k *attestdtest.Key) *client.Signer {
	t.Helper()
	s, err := client.NewSigner(k.Key, k.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// env is a real in-process attestd (see internal/attestdtest).
type env struct{ *attestdtest.Server }

var (
	envOnce   sync.Once
	shared    env
	sharedDir string
	envErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.Server != nil {
		shared.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func startShared() {
	if sharedDir, envErr = os.MkdirTemp("", "attestd-client-test-"); envErr == nil {
		shared.Server, envErr = attestdtest.Start(sharedDir)
	}
}

// sharedEnv returns the package's attestd: tests that use it work on
// attestation types or state they do not share, and starting attestd per
// test would dominate the run time.
func sharedEnv(t *testing.T) env {
	t.Helper()
	envOnce.Do(startShared)
	if envErr != nil {
		t.Fatal(envErr)
	}
	return shared
}

// newEnv starts a private attestd (for tests that change instance state).
func newEnv(t *testing.T) env {
	t.Helper()
	s, err := attestdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return env{s}
}

// client returns a client for the instance at path ("" or "/tenants/iso")
// with the given bearer token ("" for none) and validation options.
func (e env) client(t testing.TB, path, bearer string, v client.Validation) *client.Client {
	t.Helper()
	opts := &client.Options{HTTPClient: e.HTTPClient(), Validation: v}
	if bearer != "" {
		opts.Credential = func(context.Context) (string, error) { return bearer, nil }
	}
	c, err := client.New(e.URL+path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// quote mints a test-platform quote (or OE report) binding runtime.
func (e env) quote(t testing.TB, oe bool, runtime []byte, debug bool) []byte {
	t.Helper()
	q, err := e.Quote(oe, runtime, debug)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
