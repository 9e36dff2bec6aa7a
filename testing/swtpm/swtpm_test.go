package swtpm

import (
	"os"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

func TestStartGetRandomStop(t *testing.T) {
	tp := Start(t)
	rsp, err := tpm2.GetRandom{BytesRequested: 16}.Execute(tp.Transport())
	if err != nil {
		t.Fatal(err)
	}
	if len(rsp.RandomBytes.Buffer) != 16 {
		t.Fatalf("%d random bytes", len(rsp.RandomBytes.Buffer))
	}
	dir := tp.dir
	tp.Stop()
	tp.Stop()
	if _, err := (tpm2.GetRandom{BytesRequested: 1}).Execute(tp.Transport()); err == nil {
		t.Error("a stopped TPM answered")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("state directory %s survived Stop", dir)
	}
}
