//go:build !race

package sig

import (
	"testing"
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
