// Package leaktest fails tests that leave goroutines running: per test
// (Check) or per package (Run, from TestMain).
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// Check fails the test if goroutines started after the call are still
// running when it ends: its cleanup waits up to 5 s for the count to come
// back, then reports every goroutine's stack. Call it before starting what
// it guards, so that its cleanup runs after theirs (cleanups run in
// reverse).
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		if stacks := settle(before); stacks != "" {
			t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), stacks)
		}
	})
}

// Run runs a package's tests (m.Run, from its TestMain) and makes the
// run fail if goroutines they started are still running 5 s after the
// last one ended: Check around all of them, also for tests that run in
// parallel, where a count per test cannot tell whose a goroutine is.
func Run(m *testing.M) int {
	before := runtime.NumGoroutine()
	code := m.Run()
	if stacks := settle(before); code == 0 && stacks != "" {
		fmt.Fprintf(os.Stderr, "goroutines: %d before the tests, %d after:\n%s", before, runtime.NumGoroutine(), stacks)
		code = 1
	}
	return code
}

// settle waits up to 5 s for the goroutine count to come back to before;
// "" if it did, else every goroutine's stack.
func settle(before int) string {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return string(buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ""
}
