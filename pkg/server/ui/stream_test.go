package ui

import (
	"testing"
)

// One source holds at most MaxStreamsPerSource event streams; a stream
// closed gives its place back; other sources, and requests of no source
// (Backend.Source: one the per-source limits do not cover), are not held
// back. One client that opened 64 streams and never read kept every other
// client of the page out. What a source is (an IPv6 one by its /48,
// loopback exempt by default) is the server's rule (TestUIStreamsPerSource).
func TestStreamsPerSource(t *testing.T) {
	h := &handler{}
	one, other := new(int), new(int)
	var held []func()
	for i := range MaxStreamsPerSource {
		release, ok := h.takeStream(one)
		if !ok {
			t.Fatalf("stream %d of one source refused", i+1)
		}
		held = append(held, release)
	}
	if _, ok := h.takeStream(one); ok {
		t.Fatal("a stream past the source's share")
	}
	if _, ok := h.takeStream(other); !ok {
		t.Fatal("another source refused")
	}
	for range MaxStreamsPerSource + 2 {
		if _, ok := h.takeStream(nil); !ok {
			t.Fatal("a request of no limited source refused")
		}
	}
	held[0]()
	if _, ok := h.takeStream(one); !ok {
		t.Fatal("refused after one of the source's streams closed")
	}
}
