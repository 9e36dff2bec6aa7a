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

// TestInit: after Init the TPM wants TPM2_Startup; Startup(CLEAR) is a TPM
// Reset (resetCount+1), Shutdown(STATE) then Startup(STATE) a TPM Resume
// (restartCount+1, resetCount kept).
func TestInit(t *testing.T) {
	tp := Start(t)
	tr := tp.Transport()
	clock := func() tpm2.TPMSClockInfo {
		t.Helper()
		rsp, err := tpm2.ReadClock{}.Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		return rsp.CurrentTime.ClockInfo
	}
	cycle := func(shutdown, startup tpm2.TPMSU) {
		t.Helper()
		if _, err := (tpm2.Shutdown{ShutdownType: shutdown}).Execute(tr); err != nil {
			t.Fatal(err)
		}
		if err := tp.Init(); err != nil {
			t.Fatal(err)
		}
		if _, err := (tpm2.GetRandom{BytesRequested: 1}).Execute(tr); err == nil {
			t.Error("the TPM answered between _TPM_Init and TPM2_Startup")
		}
		if _, err := (tpm2.Startup{StartupType: startup}).Execute(tr); err != nil {
			t.Fatal(err)
		}
	}
	c0 := clock()
	cycle(tpm2.TPMSUState, tpm2.TPMSUState)
	c1 := clock()
	if c1.ResetCount != c0.ResetCount || c1.RestartCount != c0.RestartCount+1 {
		t.Errorf("resume: reset/restart %d/%d → %d/%d, want the restart count +1", c0.ResetCount, c0.RestartCount, c1.ResetCount, c1.RestartCount)
	}
	cycle(tpm2.TPMSUClear, tpm2.TPMSUClear)
	c2 := clock()
	if c2.ResetCount != c1.ResetCount+1 || c2.RestartCount != 0 {
		t.Errorf("reset: reset/restart %d/%d → %d/%d, want the reset count +1 and restarts 0", c1.ResetCount, c1.RestartCount, c2.ResetCount, c2.RestartCount)
	}
}
