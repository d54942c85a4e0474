// Package benchtest holds what the benchmarks share to measure CPU time:
// this process's, another process's (a server started apart;
// loadgen.ProcessCPU, which `chatctl bench --server-pid` reads too), and a
// wait for servers to finish tearing their sockets down, so that a reading
// taken after it holds all the work of a run.
package benchtest

import (
	"testing"
	"time"

	"chatctl/pkg/loadgen"
	"chatctl/pkg/server"
)

// CPU is this process's user + system CPU time so far, all threads
// (getrusage RUSAGE_SELF: microseconds). It fails tb where the system has
// no such figure.
func CPU(tb testing.TB) time.Duration {
	d, err := selfCPU()
	if err != nil {
		tb.Helper() // here only: it costs a stack walk, which a reading would count
		tb.Fatalf("benchtest: CPU time of this process: %v", err)
	}
	return d
}

// ProcessCPU is loadgen.ProcessCPU (process pid's CPU time, all its
// threads); it fails tb when pid cannot be read, and on other systems.
func ProcessCPU(tb testing.TB, pid int) time.Duration {
	d, err := loadgen.ProcessCPU(pid)
	if err != nil {
		tb.Helper()
		tb.Fatalf("benchtest: CPU time of process %d: %v", pid, err)
	}
	return d
}

// WaitClosed waits (at most 10 s, then fails tb) until none of srvs has
// an open socket: the server's side of every close is done (read, close
// frame, instance detached). A CPU reading taken after a run of logins
// and WaitClosed counts the whole of each login on both sides.
func WaitClosed(tb testing.TB, srvs ...*server.Server) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range srvs {
		for {
			n := s.Stats(false).Sockets
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("benchtest: %d sockets still open 10 s after the run", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
