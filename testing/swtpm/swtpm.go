// Package swtpm starts Debian's swtpm (a software TPM 2.0 on libtpms) for
// tests and connects go-tpm to it over TCP.
//
// Each Start runs one swtpm with a fresh state directory on two free
// loopback ports. swtpm runs under a small watchdog shell that holds it as
// a child and waits for EOF on a pipe only the test process writes: when
// the test process exits for any reason (Stop, a panic, a timeout's kill),
// the pipe closes and the watchdog kills swtpm and removes the directory,
// so no TPM outlives its test (the idea of store/postgres/pgtest).
//
// Without swtpm on $PATH, Start skips the test; under CI=true it fails it.
package swtpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// TPM is a running swtpm.
type TPM struct {
	dir      string
	port     int
	ctrl     int // swtpm's control channel (Init)
	watchdog *exec.Cmd
	watchIn  io.WriteCloser
	mu       sync.Mutex
	conn     net.Conn
	tpm      transport.TPMCloser
}

// Start starts a swtpm for tb and registers Stop with tb.Cleanup.
func Start(tb testing.TB) *TPM {
	tb.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("swtpm not found on PATH; CI must install swtpm (apt-get install swtpm swtpm-tools)")
		}
		tb.Skip("swtpm not found on PATH (apt-get install swtpm swtpm-tools)")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		t, err := start(bin)
		if err == nil {
			tb.Cleanup(t.Stop)
			return t
		}
		lastErr = err
	}
	tb.Fatalf("swtpm: %v", lastErr)
	return nil
}

// Run starts a swtpm outside a test (testing/swtpm/cmd/tpmhelper): the
// caller must Stop it; if the process dies first, the watchdog still
// removes it.
func Run() (*TPM, error) {
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		return nil, fmt.Errorf("swtpm not found on PATH (apt-get install swtpm swtpm-tools): %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		t, err := start(bin)
		if err == nil {
			return t, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePorts() (int, int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for len(ports) < 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports[0], ports[1], nil
}

func start(bin string) (*TPM, error) {
	dir, err := os.MkdirTemp("", "swtpm-test-")
	if err != nil {
		return nil, err
	}
	port, ctrl, err := freePorts()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The watchdog starts swtpm in the background, waits for EOF on stdin
	// (this process's pipe), then kills swtpm and removes the directory.
	const script = `d="$1"; shift; "$@" >"$d/swtpm.out" 2>&1 & p=$!; cat >/dev/null; kill $p 2>/dev/null; wait $p 2>/dev/null; rm -rf "$d"`
	args := []string{"-c", script, "swtpm-watchdog", dir, bin, "socket", "--tpm2",
		"--server", "type=tcp,port=" + strconv.Itoa(port) + ",bindaddr=127.0.0.1",
		"--ctrl", "type=tcp,port=" + strconv.Itoa(ctrl) + ",bindaddr=127.0.0.1",
		"--flags", "not-need-init,startup-clear",
		"--tpmstate", "dir=" + dir}
	cmd := exec.Command("sh", args...)
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a Ctrl-C must not kill it before it cleans up
	in, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t := &TPM{dir: dir, port: port, ctrl: ctrl, watchdog: cmd, watchIn: in}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			t.conn = c
			t.tpm = transport.FromReadWriteCloser(c)
			return t, nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(dir, "swtpm.out"))
			t.Stop()
			return nil, fmt.Errorf("not listening on port %d after 10s: %v; output: %s", port, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Transport returns a go-tpm transport to the TPM that retries commands
// the TPM answers with TPM_RC_RETRY (swtpm may, right after start).
func (t *TPM) Transport() transport.TPM { return retrying{t} }

// Stop stops swtpm and removes its state. It is safe to call twice.
func (t *TPM) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
	if t.watchIn != nil {
		t.watchIn.Close()
		t.watchdog.Wait() //nolint:errcheck // nothing to report: the watchdog only cleans up
		t.watchIn = nil
	}
}

// cmdInit is swtpm's control-channel CMD_INIT (swtpm-ioctl(8), tpm_ioctl.h).
const cmdInit = 0x00000002

// Init signals _TPM_Init, as a power cycle or platform reset does: the TPM
// then refuses commands until TPM2_Startup, which the caller sends (CLEAR:
// a TPM Reset, resetCount+1; STATE after TPM2_Shutdown(STATE): a TPM
// Resume, restartCount+1, as on resume from hibernation). Volatile state
// saved by TPM2_Shutdown(STATE) is kept (init flags 0).
func (t *TPM) Init() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(t.ctrl), 5*time.Second)
	if err != nil {
		return fmt.Errorf("swtpm control channel: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, cmdInit), 0)); err != nil {
		return fmt.Errorf("swtpm CMD_INIT: %w", err)
	}
	var rsp [4]byte
	if _, err := io.ReadFull(c, rsp[:]); err != nil {
		return fmt.Errorf("swtpm CMD_INIT: %w", err)
	}
	if rc := binary.BigEndian.Uint32(rsp[:]); rc != 0 {
		return fmt.Errorf("swtpm CMD_INIT: TPM result %#x", rc)
	}
	return nil
}

type retrying struct{ t *TPM }

// TPM response codes worth retrying (Part 2 §6.6.3: warnings).
const (
	rcRetry   = 0x922
	rcYielded = 0x908
	rcTesting = 0x90A
)

func (r retrying) Send(cmd []byte) ([]byte, error) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	if r.t.tpm == nil {
		return nil, errors.New("swtpm: stopped")
	}
	var rsp []byte
	var err error
	for i := 0; i < 50; i++ {
		rsp, err = r.t.tpm.Send(cmd)
		if err != nil || len(rsp) < 10 {
			return rsp, err
		}
		switch binary.BigEndian.Uint32(rsp[6:10]) {
		case rcRetry, rcYielded, rcTesting:
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return rsp, nil
	}
	return rsp, err
}
