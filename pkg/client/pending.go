package client

import (
	"encoding/json"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// maxSeq bounds request seqs like the SDK (PROTOCOL.md 2.1).
const maxSeq = 2415919103

// seqGen hands out request seqs: a random start, +1 per request, wrapping
// below maxSeq.
type seqGen struct{ n atomic.Uint64 }

func newSeqGen(start uint64) *seqGen {
	g := &seqGen{}
	if start == 0 {
		// Like the SDK: a random start well below the limit.
		start = 1 + rand.Uint64N(1<<30)
	}
	g.n.Store(start - 1)
	return g
}

func (g *seqGen) next() uint64 {
	for {
		old := g.n.Load()
		n := old + 1
		if n >= maxSeq {
			n = 1
		}
		if g.n.CompareAndSwap(old, n) {
			return n
		}
	}
}

// reply is what a pending request receives.
type reply struct {
	body json.RawMessage
	at   time.Time // local time the frame was read (real clock)
	err  error     // transport error (ErrConnLost, ErrClosed)
}

// pendingCall is a request in flight. Its Done channel receives exactly one reply
// (buffered), then nothing more.
type pendingCall struct {
	Cmd  string
	Seq  uint64
	sent time.Time
	done chan reply
}

type callKey struct {
	cmd string
	seq uint64
}

// pendingTable matches replies to requests by servcmd+seq.
type pendingTable struct {
	mu     sync.Mutex
	calls  map[callKey]*pendingCall
	closed error // once set, add fails with it
}

func newPendingTable() *pendingTable {
	return &pendingTable{calls: make(map[callKey]*pendingCall)}
}

// add registers c; it fails once the table is closed.
func (p *pendingTable) add(c *pendingCall) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed != nil {
		return p.closed
	}
	p.calls[callKey{c.Cmd, c.Seq}] = c
	return nil
}

// resolve delivers r to the request with that servcmd+seq and reports
// whether there was one (false: the frame is a push).
func (p *pendingTable) resolve(cmd string, seq uint64, r reply) bool {
	p.mu.Lock()
	c, ok := p.calls[callKey{cmd, seq}]
	if ok {
		delete(p.calls, callKey{cmd, seq})
	}
	p.mu.Unlock()
	if ok {
		c.done <- r
	}
	return ok
}

// remove forgets c (its waiter gave up). A reply arriving later is a push.
func (p *pendingTable) remove(c *pendingCall) {
	p.mu.Lock()
	if p.calls[callKey{c.Cmd, c.Seq}] == c {
		delete(p.calls, callKey{c.Cmd, c.Seq})
	}
	p.mu.Unlock()
}

// close fails every pending request with err and refuses new ones.
func (p *pendingTable) close(err error) {
	p.mu.Lock()
	if p.closed == nil {
		p.closed = err
	}
	calls := p.calls
	p.calls = map[callKey]*pendingCall{}
	p.mu.Unlock()
	for _, c := range calls {
		c.done <- reply{err: err}
	}
}

func (p *pendingTable) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}
