package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
)

// The kernel's blocklist of the per-source limit (synfilter.go), on real
// listeners with real dials from other loopback addresses (Linux routes
// all of 127/8 to lo). A blocked source's SYNs are dropped, so its dial
// cannot complete: it ends at the dialer's timeout, never with a
// connection or a reset.

// tcpListen listens on addr in plain TCP (Go's default listener is
// Multipath TCP; go.mod turns that off for the module, this does not rely
// on it).
func tcpListen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// acceptAll accepts and closes ln's connections until ln is closed, at
// the test's end.
func acceptAll(t *testing.T, ln net.Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// dialVia dials addr from the local IP src within timeout.
func dialVia(src, addr string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// mustStall: a dial from src does not complete within a second.
func mustStall(t *testing.T, src, addr string) {
	t.Helper()
	if err := dialVia(src, addr, time.Second); !isTimeout(err) {
		t.Fatalf("dial from blocked %s to %s: %v, want a timeout (SYN dropped)", src, addr, err)
	}
}

// mustConnect: a dial from src completes (a generous bound: only a dropped
// SYN takes seconds on loopback).
func mustConnect(t *testing.T, src, addr string) {
	t.Helper()
	if err := dialVia(src, addr, 20*time.Second); err != nil {
		t.Fatalf("dial from %s to %s: %v", src, addr, err)
	}
}

// eventually waits up to 30 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not after 30 s: %s", what)
		}
	}
}

// newSynFilter is ln's blocklist; the test is skipped where the kernel
// refuses a socket filter (not Linux, or an unprivileged user in a
// sandbox that forbids it), which the fallback test covers.
func newSynFilter(t *testing.T, ln net.Listener, max int) *server.SynFilter {
	t.Helper()
	var log bytes.Buffer
	f := server.NewSynFilter(ln, slog.New(slog.NewTextHandler(&log, nil)), max, 10*time.Millisecond)
	if f == nil {
		if runtime.GOOS == "linux" && strings.Contains(log.String(), "not permitted") {
			t.Skipf("the kernel refuses a socket filter here: %s", log.String())
		}
		if runtime.GOOS != "linux" {
			t.Skip("a socket filter needs Linux")
		}
		t.Fatalf("no filter on a plain TCP listener: %s", log.String())
	}
	t.Cleanup(f.Close)
	return f
}

func tcpAddrOf(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip)} }

// A blocked source's dials stall while others connect, on an IPv4
// listener and on a dual-stack one (IPv4 peers arrive as IPv4 packets
// there; IPv6 ones are matched by /64); after its expiry it connects again.
func TestSynFilterBlocksSource(t *testing.T) {
	leaktest.Check(t)
	for _, tc := range []struct{ network, listen, dst string }{
		{"tcp4", "127.0.0.1:0", "127.0.0.1"},
		{"tcp", "[::]:0", "127.0.0.1"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			ln := tcpListen(t, tc.network, tc.listen)
			acceptAll(t, ln)
			addr := net.JoinHostPort(tc.dst, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
			f := newSynFilter(t, ln, 16)
			mustConnect(t, "127.0.0.2", addr)

			expiry := time.Now().Add(4 * time.Second)
			if !f.Block(tcpAddrOf("127.0.0.2"), expiry) {
				t.Fatal("block refused with an empty list")
			}
			eventually(t, "the block in the kernel", func() bool { _, k := f.State(); return k == 1 })
			mustStall(t, "127.0.0.2", addr)
			mustConnect(t, "127.0.0.1", addr)
			mustConnect(t, "127.0.0.3", addr)

			eventually(t, "the block's expiry", func() bool { l, k := f.State(); return l == 0 && k == 0 })
			if time.Now().Before(expiry) {
				t.Fatalf("unblocked before its expiry")
			}
			mustConnect(t, "127.0.0.2", addr)
		})
	}

	// IPv6 on the dual-stack listener: ::1's /64 (::/64) blocked, while
	// IPv4 (127.0.0.1, whose key is no IPv6 one) connects.
	ln := tcpListen(t, "tcp", "[::]:0")
	acceptAll(t, ln)
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	f := newSynFilter(t, ln, 16)
	v6 := net.JoinHostPort("::1", port)
	if err := dialVia("::1", v6, 20*time.Second); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	f.Block(tcpAddrOf("::1"), time.Now().Add(time.Hour))
	eventually(t, "the IPv6 block in the kernel", func() bool { _, k := f.State(); return k == 1 })
	mustStall(t, "::1", v6)
	mustConnect(t, "127.0.0.1", net.JoinHostPort("127.0.0.1", port))
}

// The list holds at most its bound; sources beyond it are not blocked
// (the accept loop's reset still refuses them), and everyone else
// connects.
func TestSynFilterBound(t *testing.T) {
	leaktest.Check(t)
	ln := tcpListen(t, "tcp4", "127.0.0.1:0")
	acceptAll(t, ln)
	addr := ln.Addr().String()
	f := newSynFilter(t, ln, 4)
	until := time.Now().Add(time.Hour)
	for i := range 10 {
		ok := f.Block(tcpAddrOf(fmt.Sprintf("127.0.1.%d", i+1)), until)
		if ok != (i < 4) {
			t.Fatalf("block of source %d: %v, want %v (bound 4)", i+1, ok, i < 4)
		}
	}
	if !f.Block(tcpAddrOf("127.0.1.2"), until.Add(time.Hour)) {
		t.Fatal("a listed source's block not extended at the bound")
	}
	eventually(t, "4 sources in the kernel", func() bool { l, k := f.State(); return l == 4 && k == 4 })
	mustStall(t, "127.0.1.4", addr)
	mustConnect(t, "127.0.1.5", addr) // beyond the bound
	mustConnect(t, "127.0.0.1", addr)
}

// When the kernel refuses a new list (here a program over classic BPF's
// 4,096 instructions; in the field net.core.optmem_max), no filter is
// left at all: a source of the old list connects again at once, instead
// of being dropped until the server restarts (from review).
func TestSynFilterRefusedListLeavesNoFilter(t *testing.T) {
	leaktest.Check(t)
	ln := tcpListen(t, "tcp4", "127.0.0.1:0")
	acceptAll(t, ln)
	addr := ln.Addr().String()
	f := newSynFilter(t, ln, 2000)
	f.Block(tcpAddrOf("127.0.0.2"), time.Now().Add(time.Hour))
	eventually(t, "the block in the kernel", func() bool { _, k := f.State(); return k == 1 })
	mustStall(t, "127.0.0.2", addr)

	until := time.Now().Add(time.Hour)
	for i := range 900 { // 5 instructions each: over 4,096
		f.Block(&net.TCPAddr{IP: net.IP{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, until)
	}
	eventually(t, "the refused list given up", func() bool { l, k := f.State(); return l == 0 && k == 0 })
	mustConnect(t, "127.0.0.2", addr)
}

// Where no filter can be set, newSynFilter says so once and returns nil
// (the accept loop's reset alone): a Unix listener, a closed one.
func TestSynFilterFallback(t *testing.T) {
	leaktest.Check(t)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	ul, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	closed := tcpListen(t, "tcp4", "127.0.0.1:0")
	closed.Close()
	for i, ln := range []net.Listener{ul, closed} {
		if f := server.NewSynFilter(ln, logger, 4, time.Millisecond); f != nil {
			t.Fatalf("listener %d (%T): a filter", i, ln)
		}
		if n := strings.Count(log.String(), "cannot drop their SYNs"); n != i+1 {
			t.Fatalf("listener %d: %d log lines, want one each:\n%s", i, n, log.String())
		}
	}
}

// A server whose per-source limit refuses a source that keeps dialing
// hands it to the kernel: the attacker's dials end up stalling, while the
// good client on another address still logs in, and the server shuts down
// with the block in place.
func TestSynFilterServer(t *testing.T) {
	leaktest.Check(t)
	if runtime.GOOS != "linux" {
		t.Skip("a socket filter needs Linux")
	}
	var log syncBuf
	ts := servertest.Start(t, servertest.ConnLimit(0.001, 3, true),
		servertest.Logger(slog.New(slog.NewTextHandler(&log, nil))))
	eventually(t, "the server's accept loop", func() bool { return dialVia("127.0.0.1", ts.Addr, 20*time.Second) == nil })
	if l := log.String(); strings.Contains(l, "cannot drop their SYNs") {
		if strings.Contains(l, "not permitted") {
			t.Skipf("the kernel refuses a socket filter here: %s", l)
		}
		t.Fatalf("the server's listener got no filter:\n%s", l)
	}
	server.SetConnBlockAfter(ts.Server(), 5)

	// Two attackers on 127.0.0.2 dial in a loop (a connection admitted is
	// closed at once) until one's dial stalls.
	var stalled atomic.Bool
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		wg.Go(func() {
			for !stalled.Load() && ctx.Err() == nil {
				if err := dialVia("127.0.0.2", ts.Addr, time.Second); isTimeout(err) {
					stalled.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if !stalled.Load() {
		t.Fatal("the attacker's dials never stalled within a minute")
	}
	if got := ts.Server().Stats(false).ConnsRefused; got < 5 {
		t.Errorf("conns_refused %d, want at least the 5 that got the source blocked", got)
	}
	if got := ts.Server().Stats(false).SourcesBlocked; got != 1 {
		t.Errorf("sources_blocked %d, want 1: one source, blocked once", got)
	}
	if l := log.String(); strings.Count(l, "source blocked in the kernel") != 1 || !strings.Contains(l, "source=127.0.0.2") {
		t.Errorf("want one log line naming the blocked source 127.0.0.2:\n%s", l)
	}
	mustStall(t, "127.0.0.2", ts.Addr)
	g, err := dialFrom(t, ts, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	g.mustLogin("good", ts.Sig("good", time.Hour))
}

// syncBuf is a log any goroutine may write.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
