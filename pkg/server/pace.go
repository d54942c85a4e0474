package server

import (
	"net/http"
	"sync"
	"time"
)

// Pacing of inbound frames. Every frame a socket sends costs a token, of
// whatever kind: requests of any servcmd (logged in or not), heartbeats,
// hellos, wslogout, frames answered with an error, and WebSocket ping and
// pong control frames. A message costs a token and a refused wslogin 10;
// on top, every 4 KiB read off the socket costs a token, charged as it is
// read (wirePaced.charge), so that the bytes of a message pay whether it came
// whole or in fragments, empty fragments' heads included.
// A socket has a bucket of FrameBurst tokens refilled at FrameRate a
// second, and a logged-in user a bucket of UserFrameBurst refilled at
// UserFrameRate shared by all the sockets logged in as that user. The
// sockets of a source that the per-source limit covers (connlimit.go: not
// loopback, by default) also share its bucket of SourceFrameBurst refilled
// at SourceFrameRate, logged in or not. When a bucket is empty the socket's
// reader waits until it is back at zero: its frames are not dropped, they
// back up in TCP and the sender's writes block. Nothing is refused, so a
// client never sees an error for sending fast, only slower answers.
//
// The official SDK sends about 15 frames right after a login (wslogin, a
// heartbeat, its 13 background requests) and a few more after a re-login,
// then one wshello every HelloInterval (≥ 1 s) and a heartbeat after 10 s
// without inbound frames (docs/PROTOCOL.md 3.1, 3.2): far below these
// buckets. A flood from a few sockets gets FrameRate frames a second each
// through, and one from many sockets of one address SourceFrameRate in
// all, and cannot take the server's CPU from everyone else
// (docs/RELIABILITY.md).
const (
	FrameRate      = 20
	FrameBurst     = 50
	UserFrameRate  = 50
	UserFrameBurst = 200
	// SourceFrameRate, SourceFrameBurst: a NAT of a thousand SDKs sends
	// about 200 frames a second once logged in (a wshello each every 5 s),
	// and 200 logging in at once after a restart about 3,000 (15 each).
	SourceFrameRate  = 1000
	SourceFrameBurst = 4000
	// wireCostBytes: the bytes read off a socket cost a token per that
	// many, so that a message cut into a thousand fragments (each parsed
	// by itself) or sent at 256 KB cannot buy more reading for its one
	// token. They are charged as they are read, not once the message is
	// whole: gorilla reads a message's fragments inside one Read, and a
	// stream of empty ones never ends a message, so a charge at its end
	// never came (34 million empty fragments a second from one socket).
	wireCostBytes = 4096
	// failedLoginCost is what a refused wslogin costs (bad identifier or
	// UserSig, unknown app, lockout, refused A2Key): a socket gets 5 of
	// them at once, then one every half second, so that a flood of failed
	// logins must pay a new connection for every few (a user mistyping
	// is far from it).
	failedLoginCost = 10
)

// bucket is a token bucket; its zero value is full.
type bucket struct {
	tokens float64
	last   time.Time
}

// spend takes cost tokens at now from a bucket of burst tokens refilled at
// rate a second, and returns how long the caller must wait for it to be
// back at zero: at most burst/rate.
func (b *bucket) spend(now time.Time, cost, rate, burst float64) time.Duration {
	b.tokens = b.level(now, rate, burst)
	if now.After(b.last) {
		b.last = now // a clock that went back refills nothing
	}
	// Debt stops at one burst: a user's bucket is charged by sockets that
	// come and go (a script logging in a hundred times in a row), and an
	// unbounded debt would make that user wait ever longer for frames long
	// gone. A socket gets there only with a message of more than one burst
	// (256 KiB costs 64 tokens): the cap then makes it a little cheaper.
	b.tokens = max(b.tokens-cost, -burst)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second))
}

// level is how many tokens the bucket holds at now, refilled, without
// taking any.
func (b *bucket) level(now time.Time, rate, burst float64) float64 {
	if b.last.IsZero() {
		return burst
	}
	if d := now.Sub(b.last); d > 0 {
		return min(burst, b.tokens+d.Seconds()*rate)
	}
	return b.tokens
}

// full reports whether the bucket would be full at now (it can be forgotten).
func (b *bucket) full(now time.Time, rate, burst float64) bool {
	return b.level(now, rate, burst) >= burst
}

// framePace holds the users' buckets.
type framePace struct {
	off   bool // Config.Unpaced
	mu    sync.Mutex
	users sweptMap[userKey, bucket]
}

// user charges cost to k's bucket and returns how long to wait.
func (p *framePace) user(k userKey, now time.Time, cost float64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Only users who logged in have a bucket, and a full one is the same
	// as none: forget those, so that the map holds the users who sent
	// frames in the last few seconds.
	p.users.sweep(now, 1024, func(b *bucket) bool { return b.full(now, UserFrameRate, UserFrameBurst) })
	return p.users.get(k).spend(now, cost, UserFrameRate, UserFrameBurst)
}

// paceRequest charges an HTTP request (REST, the page, /healthz) to its
// source's frame bucket, as a frame of its sockets, and waits as pace
// does: 11,800 REST answers a second from one address over 4 keep-alive
// connections took the cores the logins needed. false when the request's
// context ended meanwhile. Sources the per-source limit does not cover
// (loopback, by default) are not paced.
func (s *Server) paceRequest(r *http.Request) bool {
	src := requestSource(r)
	if s.framePace.off || src == nil {
		return true
	}
	return waitOut(s.connLimit.frame(src, time.Now(), 1), r.Context().Done(), nil)
}

// waitOut waits d (nothing when d <= 0); false when a or b (nil: never)
// is closed first.
func waitOut(d time.Duration, a, b <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a:
		return false
	case <-b:
		return false
	}
}

// wirePaced is the part of a socket's net.Conn (sockConn, readConn) that
// charges the bytes its Read returns to the socket once it is upgraded:
// only the socket's reader reads it then.
type wirePaced struct{ c *conn }

// paceReads makes the reads from now on charged to c.
func (w *wirePaced) paceReads(c *conn) { w.c = c }

// charge charges n bytes just read and waits as pace does; err, or
// errSocketEnding when the socket is ending meanwhile.
func (w *wirePaced) charge(n int, err error) error {
	if n > 0 && w.c != nil && !w.c.pace(float64(n)/wireCostBytes) && err == nil {
		return errSocketEnding
	}
	return err
}

// pace charges a frame of cost to the socket's bucket, and to its user's
// when it has logged in, then waits as long as the emptier one says; false
// when the socket is ending meanwhile. Only the reader goroutine calls it.
func (c *conn) pace(cost float64) bool {
	p := &c.s.framePace
	if p.off {
		return true
	}
	now := time.Now()
	d := c.bucket.spend(now, cost, FrameRate, FrameBurst)
	if k := c.paceUser.Load(); k != nil {
		d = max(d, p.user(*k, now, cost))
	}
	if c.source != nil {
		d = max(d, c.s.connLimit.frame(c.source, now, cost))
	}
	return waitOut(d, c.quit, c.writeDone)
}
