package ui

import (
	"fmt"
	"testing"
)

// One address holds at most MaxStreamsPerSource event streams (an IPv6
// one by its /48); a stream closed gives its place back; other addresses
// and loopback are not held back. One client that opened 64 streams and
// never read kept every other client of the page out.
func TestStreamsPerSource(t *testing.T) {
	h := &handler{}
	var held []func()
	for i := range MaxStreamsPerSource {
		release, ok := h.takeStream(fmt.Sprintf("203.0.113.1:%d", 1000+i))
		if !ok {
			t.Fatalf("stream %d of one address refused", i+1)
		}
		held = append(held, release)
	}
	if _, ok := h.takeStream("203.0.113.1:2000"); ok {
		t.Fatal("a stream past the address's share")
	}
	if _, ok := h.takeStream("[::ffff:203.0.113.1]:2001"); ok {
		t.Fatal("the same address, IPv4-mapped, got past its share")
	}
	if _, ok := h.takeStream("203.0.113.2:2000"); !ok {
		t.Fatal("another address refused")
	}
	for i := range MaxStreamsPerSource + 2 {
		if _, ok := h.takeStream(fmt.Sprintf("127.0.0.1:%d", 3000+i)); !ok {
			t.Fatal("loopback refused")
		}
	}
	held[0]()
	if _, ok := h.takeStream("203.0.113.1:2002"); !ok {
		t.Fatal("refused after one of the address's streams closed")
	}
	for i := range MaxStreamsPerSource {
		if _, ok := h.takeStream(fmt.Sprintf("[2001:db8:1:%x::1]:1", i+1)); !ok {
			t.Fatalf("IPv6 stream %d refused", i+1)
		}
	}
	if _, ok := h.takeStream("[2001:db8:1:ff::1]:1"); ok {
		t.Fatal("another /64 of the same /48 got past its share")
	}
}
