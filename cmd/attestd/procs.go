package main

import (
	"log/slog"
	"runtime"
)

// minProcs is the fewest Ps (GOMAXPROCS) attestd serves with.
//
// With a single P, admission control cannot engage under overload
// (measured: BENCHMARKS.md, "Overload and scaling over HTTPS"). The Go
// scheduler runs a goroutine readied by the network poller from the global
// run queue, which a P consults only once every 61 scheduling rounds while
// its local queue is not empty, and it polls the network itself only when
// it has nothing else to run (sysmon does so every 10 ms otherwise). Under
// saturation the admitted attestations keep the only P's local queue busy
// (each hands its slot and the CPU straight to the next waiter), so the
// accept loop, TLS handshakes and new requests wait in that global queue
// and in the kernel's accept backlog: in a 900/s flood on one CPU, 400
// connections sat unaccepted, /metrics went unanswered for seconds and no
// request reached admission to be told 429. With two Ps the second one,
// whenever its local queue runs dry, polls the network and drains the
// global queue, so arrivals reach admission and past capacity get a prompt
// 429 (same flood: p99 0.7 s, no timeouts). On one CPU the two Ps share it
// through the kernel's scheduler; CPU per attestation is unchanged.
const minProcs = 2

// procsFor decides GOMAXPROCS at startup. current is runtime.GOMAXPROCS(0)
// and explicit tells whether the GOMAXPROCS environment variable set it.
// Go's default (the CPUs attestd may use: affinity mask, cgroup quota) is
// raised to minProcs; an explicit setting is the operator's and stays, with
// a warning when it is below minProcs.
func procsFor(current int, explicit bool) (n int, raise, warn bool) {
	switch {
	case current >= minProcs:
		return current, false, false
	case explicit:
		return current, false, true
	default:
		return minProcs, true, false
	}
}

// ensureProcs applies procsFor before anything sizes itself by GOMAXPROCS
// (admission control's slots). Calling runtime.GOMAXPROCS stops Go from
// following later changes of the CPU quota, which is why it is called only
// when the default is 1.
func ensureProcs(log *slog.Logger, getenv func(string) string) {
	cur := runtime.GOMAXPROCS(0)
	n, raise, warn := procsFor(cur, getenv("GOMAXPROCS") != "")
	switch {
	case raise:
		runtime.GOMAXPROCS(n)
		log.Info("raised GOMAXPROCS", "from", cur, "to", n, "cpus", runtime.NumCPU(),
			"why", "with one P, connections and requests starve in front of admission control under overload")
	case warn:
		log.Warn("GOMAXPROCS below the minimum", "gomaxprocs", cur, "minimum", minProcs,
			"why", "with one P, connections and requests starve in front of admission control under overload and no 429 is sent; unset GOMAXPROCS to let attestd raise it")
	}
}
