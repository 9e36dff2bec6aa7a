package loadgen

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

const statusSample = "Name:\tattestd\nState:\tS (sleeping)\nVmPeak:\t 1300000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   40000 kB\nThreads:\t9\n"

func TestParseStatCPU(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{"plain", "1234 (attestd) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 3250 * time.Millisecond, ""},
		{"name with spaces and parentheses", "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 1 2 0 0", 30 * time.Millisecond, ""},
		{"no name", "1234 attestd S 1", 0, "')'"},
		{"short", "1 (x) S 1 2 3", 0, "fields"},
		{"negative ticks", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 2", 0, "utime"},
		{"overflow", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 9223372036854775807 1", 0, "overflows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatCPU([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseStatusMemory(t *testing.T) {
	cases := []struct {
		name          string
		in            string
		rss, hwm      int64
		wantErrSubstr string
	}{
		{"sample", statusSample, 40000 << 10, 81234 << 10, ""},
		{"kernel thread", "Name:\tkthreadd\nState:\tS\n", 0, 0, "missing"},
		{"unit", "VmHWM:\t10 MB\nVmRSS:\t1 kB\n", 0, 0, "kB"},
		{"negative", "VmHWM:\t-10 kB\nVmRSS:\t1 kB\n", 0, 0, "bad size"},
		{"huge", "VmHWM:\t9223372036854775807 kB\nVmRSS:\t1 kB\n", 0, 0, "bad size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rss, hwm, err := ParseStatusMemory([]byte(tc.in))
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("got %d %d %v; want error with %q", rss, hwm, err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil || rss != tc.rss || hwm != tc.hwm {
				t.Fatalf("got %d %d %v; want %d %d", rss, hwm, err, tc.rss, tc.hwm)
			}
		})
	}
}

// TestReadProcSelf reads this test process: resident memory is positive,
// the peak is not below the current RSS, and CPU time never decreases.
func TestReadProcSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux only")
	}
	ctx := context.Background()
	a, err := ReadProc(ctx, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a.RSS <= 0 || a.HWM < a.RSS {
		t.Fatalf("rss %d hwm %d", a.RSS, a.HWM)
	}
	if err := ResetPeak(ctx, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	b, err := ReadProc(ctx, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Sub(a); d.CPU < 0 || d.PeakRSS < d.RSS {
		t.Fatalf("delta %+v", d)
	}
	if _, err := ReadProc(ctx, 0); err == nil {
		t.Fatal("pid 0 accepted")
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("1234 (attestd) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0"))
	f.Add([]byte("77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 1 2 0 0"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseStatCPU(b)
		if err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
	})
}

func FuzzParseStatusMemory(f *testing.F) {
	f.Add([]byte(statusSample))
	f.Add([]byte("VmHWM:\t1 kB\nVmRSS:\t1 kB"))
	f.Add([]byte("VmHWM:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rss, hwm, err := ParseStatusMemory(b)
		if err == nil && (rss < 0 || hwm < 0) {
			t.Fatalf("negative sizes %d %d", rss, hwm)
		}
	})
}
