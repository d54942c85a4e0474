package fault

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Cut also ends a connection the proxy had accepted but not yet joined to
// the target (its dial still in flight): after SetRefuse(true) and Cut, no
// connection accepted before them is forwarded. A client connection is cut
// right after the proxy accepted it, many times over; each one must be
// closed, never left open to the target.
func TestProxyCutInFlight(t *testing.T) {
	p := newTestProxy(t)
	for round := range 100 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(p.Accepts()) <= round {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the proxy did not accept the connection", round)
			}
			runtime.Gosched()
		}
		p.SetRefuse(true)
		p.Cut()
		// The target echoes, the client sends nothing: the read ends only
		// when the connection is closed.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("round %d: a connection accepted before the cut is still open (read: %v)", round, err)
		}
		p.SetRefuse(false)
	}
}

// Freeze leaves the connections open at the time open but silent for
// good, while later ones flow; Close still ends the frozen ones.
func TestProxyFreeze(t *testing.T) {
	p := newTestProxy(t)
	old := dialEcho(t, p)
	p.Freeze()
	if _, err := old.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back, and the connection is not closed either.
	old.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := old.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("frozen connection: read %d bytes, %v; want nothing until the deadline", n, err)
	}
	dialEcho(t, p).Close() // a new connection flows
	p.Close()
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("frozen connection after Close: %v; want it closed", err)
	}
}

// dialEcho connects through p and checks that a byte makes the round trip.
func dialEcho(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := []byte{0}
	if _, err := c.Write([]byte("e")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'e' {
		t.Fatalf("echo through the proxy: %q, %v", buf, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// newTestProxy is a Proxy, closed when the test ends, to a target on
// loopback that echoes what it reads.
func newTestProxy(t *testing.T) *Proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	p, err := NewProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
