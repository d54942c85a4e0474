package fault

import (
	"errors"
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
// closed, never left open to a target that stays silent.
func TestProxyCutInFlight(t *testing.T) {
	target := silentTarget(t)
	p, err := NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
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
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("round %d: a connection accepted before the cut is still open (read: %v)", round, err)
		}
		p.SetRefuse(false)
	}
}

// silentTarget listens on loopback, accepts connections and never writes;
// it closes them when the test ends.
func silentTarget(t *testing.T) string {
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
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
