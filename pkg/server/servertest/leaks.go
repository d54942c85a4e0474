package servertest

import (
	"runtime"
	"testing"
	"time"
)

// NoLeaks fails the test if goroutines started after the call are still
// running when it ends: its cleanup waits up to 5 s for the count to come
// back, then reports every goroutine's stack. Call it before starting what
// it guards, so that its cleanup runs after theirs (cleanups run in
// reverse).
func NoLeaks(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
