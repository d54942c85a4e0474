//go:build !race

package sig

import (
	"runtime"
	"testing"
	"time"
)

// The race detector makes sync.Pool drop items, so allocation counts are
// checked only without it.
func TestVerifyDoesNotAllocate(t *testing.T) {
	v := NewVerifier(benchAppID, benchKey)
	s := v.Gen(benchUser, 86400, []byte("buf"), benchNow)
	v.Verify(benchUser, s, benchNow)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(benchUser, s, benchNow); err != nil {
			t.Fatal(err)
		}
	}); n > 0 {
		t.Errorf("Verifier.Verify allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { v.Gen(benchUser, 86400, nil, benchNow) }); n > 1 {
		t.Errorf("Verifier.Gen allocates %v times", n)
	}
}

// allocated is how many bytes f allocates per run, on average.
func allocated(runs int, f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&b)
	return (b.TotalAlloc - a.TotalAlloc) / uint64(runs)
}

// A zlib bomb or a huge input costs a verify no more than a few pooled
// buffers, whatever it would inflate or copy to.
func TestHostileInputsDoNotAllocate(t *testing.T) {
	v := NewVerifier(hostileApp, fixtureKey)
	now := time.Unix(1700000000, 0)
	for _, c := range hostileInputs(t) {
		v.Verify(hostileUser, c.sig, now) // warm the pools
		if n := allocated(20, func() { v.Verify(hostileUser, c.sig, now) }); n > c.maxBytes {
			t.Errorf("%s: %d bytes allocated per verify, want at most %d", c.name, n, c.maxBytes)
		}
	}
}
