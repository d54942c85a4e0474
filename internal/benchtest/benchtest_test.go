package benchtest

import (
	"os"
	"testing"
)

// CPU (getrusage) and ProcessCPU (the process's CPU-time clock) count the
// same time: a clock read after a getrusage is not behind it.
func TestCPUAgrees(t *testing.T) {
	for x := 0; x < 1e7; x++ {
	}
	self := CPU(t)
	if clk := ProcessCPU(t, os.Getpid()); self <= 0 || clk < self {
		t.Errorf("getrusage %v, then the clock %v", self, clk)
	}
}
