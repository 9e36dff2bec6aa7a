package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat. The kernel
// exports these fields in USER_HZ, which is 100 on every architecture Linux
// supports today (sysconf(_SC_CLK_TCK) would need cgo to ask).
const userHZ = 100

// ProcSample is one reading of a process's resource use from /proc.
type ProcSample struct {
	CPU time.Duration // utime + stime, all threads
	RSS int64         // bytes resident now (VmRSS)
	HWM int64         // bytes, peak resident set since start or the last ResetPeak (VmHWM)
}

// ProcDelta is a process's resource use over an interval.
type ProcDelta struct {
	CPU     time.Duration `json:"cpu_ns"`         // CPU time consumed in the interval
	PeakRSS int64         `json:"peak_rss_bytes"` // VmHWM at the end
	RSS     int64         `json:"rss_bytes"`      // VmRSS at the end
}

// Sub is the resource use between an earlier sample and s.
func (s ProcSample) Sub(earlier ProcSample) *ProcDelta {
	return &ProcDelta{CPU: s.CPU - earlier.CPU, PeakRSS: s.HWM, RSS: s.RSS}
}

// ReadProc samples process pid from /proc (Linux only).
func ReadProc(ctx context.Context, pid int) (ProcSample, error) {
	if err := ctx.Err(); err != nil {
		return ProcSample{}, err
	}
	if pid <= 0 {
		return ProcSample{}, fmt.Errorf("proc: pid %d", pid)
	}
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ProcSample{}, fmt.Errorf("proc: %w", err)
	}
	cpu, err := ParseStatCPU(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("proc %d stat: %w", pid, err)
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ProcSample{}, fmt.Errorf("proc: %w", err)
	}
	rss, hwm, err := ParseStatusMemory(status)
	if err != nil {
		return ProcSample{}, fmt.Errorf("proc %d status: %w", pid, err)
	}
	return ProcSample{CPU: cpu, RSS: rss, HWM: hwm}, nil
}

// ResetPeak resets pid's VmHWM to its current RSS (writing 5 to
// /proc/<pid>/clear_refs, Linux ≥ 4.0), so that the peak of one load phase
// is not the peak of an earlier one. It needs the permission to write the
// process's clear_refs (same user).
func ResetPeak(ctx context.Context, pid int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("proc: reset peak RSS: %w", err)
	}
	return nil
}

// ParseStatCPU returns utime+stime from the text of /proc/<pid>/stat. The
// command name (field 2) is in parentheses and may itself contain spaces
// and parentheses, so fields are counted after the last ')'.
func ParseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	f := bytes.Fields(b[i+1:])
	// After the command: state(3) ppid(4) … utime(14) stime(15), so utime
	// is f[11] and stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(string(s), 10, 63)
		if err != nil {
			return 0, fmt.Errorf("utime/stime %q: %w", s, err)
		}
		if v > maxTicks || ticks > maxTicks-v {
			return 0, errors.New("utime+stime overflows")
		}
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

const (
	math63   = 1<<63 - 1
	maxTicks = uint64(math63 / int64(time.Second/userHZ)) // the most a time.Duration holds
)

// ParseStatusMemory returns VmRSS and VmHWM in bytes from the text of
// /proc/<pid>/status (lines "VmHWM:\t  1234 kB").
func ParseStatusMemory(b []byte) (rss, hwm int64, err error) {
	var haveRSS, haveHWM bool
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "VmRSS":
			dst, haveRSS = &rss, true
		case "VmHWM":
			dst, haveHWM = &hwm, true
		default:
			continue
		}
		f := bytes.Fields(val)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, 0, fmt.Errorf("%s: %q is not \"<n> kB\"", key, bytes.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > math63/1024 {
			return 0, 0, fmt.Errorf("%s: bad size %q", key, f[0])
		}
		*dst = kb * 1024
	}
	if !haveRSS || !haveHWM {
		return 0, 0, errors.New("VmRSS or VmHWM missing (kernel thread or exited process?)")
	}
	return rss, hwm, nil
}
