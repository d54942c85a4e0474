package loadgen

import (
	"os"
	"testing"
	"time"
)

// TestProcessCPU: the CPU-time clock of a process (nanoseconds) agrees
// with its /proc/PID/stat (10 ms ticks, truncated) read just before, and
// a pid that does not exist is an error, not 0.
func TestProcessCPU(t *testing.T) {
	pid := os.Getpid()
	for x, end := 0, time.Now().Add(50*time.Millisecond); time.Now().Before(end); x++ {
	}
	st, err := statCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	clk, err := ProcessCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if clk < st || clk-st > 200*time.Millisecond {
		t.Errorf("clock %v, /proc/%d/stat %v read just before", clk, pid, st)
	}
	if clk%(10*time.Millisecond) == 0 {
		t.Errorf("clock %v is a whole number of ticks: the /proc/PID/stat fallback answered", clk)
	}
	for _, p := range []int{1<<22 + 1, 1 << 30, -1} { // above Linux's PID_MAX_LIMIT, or not a pid
		if d, err := ProcessCPU(p); err == nil {
			t.Errorf("pid %d: %v, want an error", p, d)
		}
	}
}
