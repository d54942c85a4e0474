// Package fault is chatctl's fault and attack suite (docs/RELIABILITY.md):
// the server killed mid-write, connections cut, stalled and delayed by a TCP
// proxy, hundreds of CLI processes on one session file, a full or read-only
// config dir, hostile sockets and forged credentials. Everything but the
// Proxy is in _test.go files.
package fault

import (
	"net"
	"sync"
	"time"
)

// Proxy is a TCP proxy on loopback between a client and a server that can
// cut, stall, freeze, delay and refuse connections, to play a flaky network.
//
//	p, _ := fault.NewProxy("127.0.0.1:7468")
//	defer p.Close()
//	// point the client at p.Addr(); later:
//	p.Cut()            // reset every open connection
//	p.SetRefuse(true)  // accept and close at once (server "down")
//	p.SetStall(true)   // keep connections open, forward nothing
//	p.Freeze()         // the same for the connections open now only, for good
//	p.SetDelay(100 * time.Millisecond)
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cond    *sync.Cond
	conns   map[net.Conn]*link
	stall   bool
	refuse  bool
	delay   time.Duration
	accepts []time.Time // when each connection was accepted
	epoch   epoch       // how many Cuts and Freezes ran
	closed  bool
	wg      sync.WaitGroup
}

// link is the state of one relayed connection (both its sockets).
type link struct {
	frozen bool // guarded by Proxy.mu
}

// epoch counts the Cuts and Freezes: a connection compares the one it was
// accepted in with the one it starts forwarding in, so that neither misses
// a connection whose dial to the target was in flight.
type epoch struct{ cuts, freezes int }

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]*link{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepts returns when each connection was accepted, refused ones included.
func (p *Proxy) Accepts() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.accepts...)
}

// Cut closes every open connection (both sides see a reset or EOF),
// including one accepted before the call whose dial to the target is still
// in flight. With SetRefuse(true) first, nothing gets through afterwards.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch.cuts++
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, like a dropped NAT entry
		}
		c.Close()
	}
}

// SetRefuse makes new connections be closed as soon as they are accepted.
func (p *Proxy) SetRefuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Freeze stops forwarding, for good, on every connection open now (one
// accepted whose dial is in flight included): they stay open and carry
// nothing, as with a peer that vanished without closing. Connections
// accepted afterwards flow.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch.freezes++
	for _, l := range p.conns {
		l.frozen = true
	}
}

// SetStall stops (true) or resumes (false) forwarding bytes in both
// directions; connections stay open, as behind a dead link.
func (p *Proxy) SetStall(on bool) {
	p.mu.Lock()
	p.stall = on
	p.cond.Broadcast()
	p.mu.Unlock()
}

// SetDelay delays every chunk forwarded, in each direction, by d.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.stall = false
	p.cond.Broadcast()
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepts = append(p.accepts, time.Now())
		refuse, closed, at := p.refuse, p.closed, p.epoch
		p.mu.Unlock()
		if refuse || closed {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c, at)
	}
}

// track registers c, a socket of l, for Cut and Freeze; false when the
// proxy closed or a Cut ran since the connection was accepted (in epoch
// at). A Freeze since then freezes l.
func (p *Proxy) track(c net.Conn, l *link, at epoch) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.epoch.cuts != at.cuts {
		return false
	}
	if p.epoch.freezes != at.freezes {
		l.frozen = true
	}
	p.conns[c] = l
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) serve(client net.Conn, at epoch) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	l := &link{}
	if !p.track(client, l, at) || !p.track(server, l, at) {
		client.Close()
		server.Close()
		p.untrack(client)
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client, l) }()
	go func() { defer wg.Done(); p.pipe(client, server, l) }()
	wg.Wait()
	p.untrack(client)
	p.untrack(server)
}

// pipe copies src to dst chunk by chunk, honouring stall, freeze and
// delay; when either side ends, both are closed.
func (p *Proxy) pipe(dst, src net.Conn, l *link) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a reset: the deferred closes end the other side
		}
	}
}

// hold waits while the proxy is stalled or l frozen, then sleeps the
// delay; false when the proxy closed meanwhile.
func (p *Proxy) hold(l *link) bool {
	p.mu.Lock()
	for (p.stall || l.frozen) && !p.closed {
		p.cond.Wait()
	}
	d, closed := p.delay, p.closed
	p.mu.Unlock()
	if closed {
		return false
	}
	if d > 0 {
		time.Sleep(d)
	}
	return true
}
