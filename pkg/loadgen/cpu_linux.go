package loadgen

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// ProcessCPU is process pid's user + system CPU time so far, all its
// threads, those that have exited included: the process's CPU-time clock
// (clock_gettime of CPUCLOCK_SCHED for pid: nanoseconds), or where that
// clock cannot be read utime+stime from /proc/PID/stat (clock ticks of 10
// ms). /proc/PID/schedstat is not used: it counts the main thread only.
func ProcessCPU(pid int) (time.Duration, error) {
	if pid <= 0 || pid >= 1<<28 { // the clock id keeps 29 bits of pid; Linux's are < 1<<22
		return 0, fmt.Errorf("bad pid %d", pid)
	}
	// The kernel's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED): the
	// thread group's sum_exec_runtime, readable for any process.
	clk := (^int32(pid))<<3 | 2
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(clk), uintptr(unsafe.Pointer(&ts)), 0); e == 0 {
		return time.Duration(ts.Nano()), nil
	}
	return statCPU(pid)
}

// statCPU is utime+stime from /proc/PID/stat, in clock ticks of 10 ms
// (USER_HZ is 100 on Linux).
func statCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime 14 and stime 15.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
