package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const envChild = "ATTESTD_PGTEST_WATCHDOG_CHILD"

// TestServerStoppedWhenProcessDies: a test process that dies without
// calling Stop (a panicking test skips TestMain's Stop; a -timeout panic
// skips every cleanup) leaves no PostgreSQL server or data directory
// behind. The child process starts a server and exits at once.
func TestServerStoppedWhenProcessDies(t *testing.T) {
	if os.Getenv(envChild) == "1" {
		s, err := Start(context.Background())
		if err != nil {
			fmt.Printf("START-ERROR %v\n", err)
			os.Exit(3)
		}
		fmt.Printf("SERVER %s %s\n", s.dir, s.dsn)
		os.Exit(2) // no Stop, no cleanups: as a panic would leave it
	}
	if os.Getenv(EnvDSN) != "" {
		t.Skip("an external server (" + EnvDSN + ") is not started or stopped by pgtest")
	}
	_, err := BinDir()
	Require(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^TestServerStoppedWhenProcessDies$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"=1")
	out, _ := cmd.Output()
	var dir, dsn string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "SERVER" {
			dir, dsn = f[1], f[2]
		}
	}
	if dir == "" {
		t.Fatalf("child did not start a server: %s", out)
	}
	host := strings.TrimPrefix(strings.SplitN(strings.SplitN(dsn, "@", 2)[1], "/", 2)[0], "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		c, dialErr := net.DialTimeout("tcp", host, time.Second)
		if c != nil {
			c.Close()
		}
		if os.IsNotExist(statErr) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			// Clean up what the harness left, then fail.
			s := &Server{dir: dir, owner: ownerOf()}
			s.bin, _ = BinDir()
			s.Stop()
			t.Fatalf("20 s after the test process died: data directory present=%v, server at %s answering=%v", statErr == nil, host, dialErr == nil)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ownerOf() string {
	if os.Geteuid() == 0 {
		return "postgres"
	}
	return ""
}
