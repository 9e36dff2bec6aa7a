package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed dcapqvl.js
var dcapqvlJS []byte

// dcapQVL is @phala/dcap-qvl (pure JavaScript) verifying one quote in a
// long-lived Node child process; it times its own batches with
// process.cpuUsage() (dcapqvl.js has the line protocol).
type dcapQVL struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     *bufio.Reader
	version string
	outcome Outcome
	stderr  *strings.Builder
}

// maxReply bounds one reply line of the child.
const maxReply = 64 << 10

// startDCAPQVL starts `node` on the embedded script with NODE_PATH set to
// nodeModules (a directory holding @phala/dcap-qvl).
func startDCAPQVL(ctx context.Context, node, nodeModules, dir, quoteFile, collFile string, at time.Time) (*dcapQVL, error) {
	script := filepath.Join(dir, "dcapqvl.js")
	if err := os.WriteFile(script, dcapqvlJS, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, script, quoteFile, collFile, strconv.FormatInt(at.Unix(), 10))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", node, err)
	}
	d := &dcapQVL{cmd: cmd, stdin: stdin, out: bufio.NewReaderSize(stdout, 4096), stderr: stderr}
	line, err := d.readLine()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("dcap-qvl: %w (stderr: %.500s)", err, stderr.String())
	}
	h, err := parseHello(line)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("dcap-qvl: %w", err)
	}
	d.version = h.Version
	d.outcome = Outcome{Status: h.Status, Advisories: h.Advisories}
	return d, nil
}

func (d *dcapQVL) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := d.out.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > maxReply {
			return nil, fmt.Errorf("reply longer than %d bytes", maxReply)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

type hello struct {
	Version    string   `json:"version"`
	Status     string   `json:"status"`
	Advisories []string `json:"advisory_ids"`
	Error      string   `json:"error"`
}

// parseHello reads the child's first line: the outcome of one verification.
func parseHello(b []byte) (*hello, error) {
	var h hello
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("first reply %.200q: %v", b, err)
	}
	switch {
	case h.Error != "":
		return nil, fmt.Errorf("verification failed: %s", h.Error)
	case h.Status == "":
		return nil, fmt.Errorf("first reply %.200q has no status", b)
	}
	if h.Advisories == nil {
		h.Advisories = []string{}
	}
	return &h, nil
}

type batchReply struct {
	N     int      `json:"n"`
	CPUus *float64 `json:"cpu_us"`
	Error string   `json:"error"`
}

// parseBatch reads a reply to a batch of n and returns the CPU time per
// verification.
func parseBatch(b []byte, n int) (time.Duration, error) {
	var r batchReply
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("batch reply %.200q: %v", b, err)
	}
	switch {
	case r.Error != "":
		return 0, fmt.Errorf("batch failed: %s", r.Error)
	case r.N != n:
		return 0, fmt.Errorf("batch reply for %d verifications, asked for %d", r.N, n)
	case r.CPUus == nil || math.IsNaN(*r.CPUus) || *r.CPUus < 0 || *r.CPUus > 1e12:
		return 0, fmt.Errorf("batch reply %.200q: no plausible cpu_us", b)
	}
	return time.Duration(*r.CPUus * 1e3 / float64(n)), nil
}

func (d *dcapQVL) Name() string { return "@phala/dcap-qvl " + d.version + " (node)" }

func (d *dcapQVL) Outcome(ctx context.Context) (Outcome, error) { return d.outcome, ctx.Err() }

func (d *dcapQVL) Batch(ctx context.Context, n int) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := fmt.Fprintf(d.stdin, "%d\n", n); err != nil {
		return 0, fmt.Errorf("dcap-qvl: %w", err)
	}
	line, err := d.readLine()
	if err != nil {
		return 0, fmt.Errorf("dcap-qvl: %w (stderr: %.500s)", err, d.stderr.String())
	}
	return parseBatch(line, n)
}

// Close ends the child (closing its stdin ends its read loop) and waits.
func (d *dcapQVL) Close() error {
	d.stdin.Close()
	err := d.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && d.outcome.Status == "" {
		return nil // it failed at start and said why in its first line
	}
	return err
}
