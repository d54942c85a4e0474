package server

import (
	"encoding/json"
	"slices"
	"time"

	"chatctl/pkg/wire"
)

// Kick pushes and the SDK's login (docs/PROTOCOL.md 4.5, addendum 6). The
// official SDK drops a stat_forceoffline push that reaches it before it has
// finished its login: it answers a kick push with logout(1), which rejects
// 2024 "not logged in" until the SDK has processed its wslogin reply
// (setA2Key/setTinyID, a few to a few hundred milliseconds after the reply
// arrives, after a timer). It then stays "ready" while the server has
// revoked it. Two logins of one user at the same moment produce exactly
// that: the second one's kick reaches the first one's socket between its
// attach and its wslogin reply, or just after the reply. So:
//
//   - held: a push to a socket whose wslogin is being answered waits. After
//     an a2 re-login's reply it goes at once (that SDK was logged in
//     already); after a UserSig login's reply it waits until the socket
//     sends a frame carrying the new A2Key (the SDK has taken it, so it is
//     logged in), at most kickHoldMax;
//   - repeated: a kick push that the instance does not acknowledge (wslogout
//     type 1 for multipleAccount/multipleDevice; the SDK closes the socket
//     after a REST_API_Kick) is pushed again every kickRetryEvery, at most
//     kickRetries times, while the socket stays open.
//
// kickHoldMax and kickRetryEvery are 1 s: the SDK took 20–200 ms from its
// wslogin reply to logged-in on a loaded 2-core machine, and acknowledges a
// push it processed at once (one round trip), so an acknowledgement missing
// 1 s after the push means the push was dropped; 1 s is also well below the
// SDK's 10 s heartbeat, so the app learns of a kick within about a second.
// kickRetries 3 bounds what a client that never acknowledges (an old or
// foreign client) costs: three more frames over three seconds. No timer
// survives its socket or the server's Shutdown.
const (
	kickHoldMax    = time.Second
	kickRetryEvery = time.Second
	kickRetries    = 3
)

// kickRetry is one kick push to push again to c unless acknowledged. Its
// timer starts when the push is written (not while it is held).
type kickRetry struct {
	c    *conn
	ik   instKey
	msg  []byte
	left int
	t    *time.Timer // nil until the push is written
	done bool        // cancelled or finished; guarded by s.mu
}

// heldPush is one push held for a socket, and the instance it kicks.
type heldPush struct {
	msg []byte
	ik  instKey
}

// hold is a socket whose pushes wait for its login (guarded by s.mu).
type hold struct {
	pushes  []heldPush
	retries []*kickRetry // to start when pushes are written
	a2      string       // the A2Key of the login's reply; set once replied
	t       *time.Timer  // kickHoldMax after the reply
}

// kickPushes is the Server's state for held and repeated pushes, guarded
// by s.mu.
type kickPushes struct {
	held   map[*conn]*hold
	byConn map[*conn][]*kickRetry
	byInst map[instKey][]*kickRetry
}

func newKickPushes() kickPushes {
	return kickPushes{held: map[*conn]*hold{}, byConn: map[*conn][]*kickRetry{}, byInst: map[instKey][]*kickRetry{}}
}

// loginOnConnLocked runs when socket c logs in instance ik (attach, just
// before the hub makes c reachable for kicks): pushes to c wait for its
// login, and kicks of other instances it held are no longer its own to
// repeat.
func (s *Server) loginOnConnLocked(c *conn, ik instKey) {
	for _, r := range append([]*kickRetry(nil), s.kp.byConn[c]...) {
		if r.ik != ik {
			s.dropRetryLocked(r)
		}
	}
	// A new hold each login: a timer of the last one that already fired
	// (waiting for s.mu) finds it is not its hold and releases nothing.
	h := &hold{}
	if old := s.kp.held[c]; old != nil {
		if old.t != nil {
			old.t.Stop()
		}
		// Pushes held for another instance would kick this login: only
		// those of ik itself (the same instance again) stay held.
		for _, p := range old.pushes {
			if p.ik == ik {
				h.pushes = append(h.pushes, p)
			}
		}
		for _, r := range old.retries {
			if r.ik == ik {
				h.retries = append(h.retries, r)
			}
		}
	}
	s.kp.held[c] = h
}

// loginReplied runs after c's wslogin reply is queued. After an a2
// re-login the held pushes go now; after a UserSig login when c sends a
// frame with a2 (frameIn), or kickHoldMax from now.
func (s *Server) loginReplied(c *conn, a2, form string) {
	if form == "a2" {
		s.releasePushes(c, nil)
		return
	}
	s.mu.Lock()
	h := s.kp.held[c]
	if h != nil && h.a2 == "" {
		h.a2 = a2
		h.t = time.AfterFunc(kickHoldMax, func() { s.releasePushes(c, h) })
		c.awaitA2.Store(true)
	}
	s.mu.Unlock()
}

// frameIn sees a frame from c: one carrying the A2Key of c's last login
// means the SDK has taken its login reply, so held pushes may go (called
// by conn.dispatch for every frame that decodes with a servcmd; without a
// hold awaiting an A2Key it takes no lock).
func (s *Server) frameIn(c *conn, head *wire.Head) {
	if head.A2 == "" || !c.awaitA2.Load() {
		return
	}
	s.mu.Lock()
	h := s.kp.held[c]
	match := h != nil && h.a2 != "" && h.a2 == head.A2
	s.mu.Unlock()
	if match {
		s.releasePushes(c, h)
	}
}

// releasePushes writes the pushes held for c (only if they are still h's,
// when h is not nil) and starts their repeats.
func (s *Server) releasePushes(c *conn, h *hold) {
	s.mu.Lock()
	cur := s.kp.held[c]
	if cur == nil || (h != nil && cur != h) {
		s.mu.Unlock()
		return
	}
	s.dropHoldLocked(c)
	for _, r := range cur.retries {
		s.startRetryLocked(r)
	}
	s.mu.Unlock()
	for _, p := range cur.pushes {
		c.enqueue(p.msg)
	}
}

// pushKickLocked queues kick push msg for c (held while c's login is not
// done) and arranges for it to be pushed again until instance ik
// acknowledges it. It reports whether the caller must enqueue msg now
// (after unlocking).
func (s *Server) pushKickLocked(c *conn, ik instKey, msg []byte) (now bool) {
	if s.hub.holdsOther(c, ik) {
		// c logged in as another instance between the kick finding it
		// (hub.kick) and this push: the kick is not its own any more, and
		// its SDK would take it for its new session's and log that out.
		return false
	}
	var r *kickRetry
	if _, open := s.conns[c]; open && !s.closing {
		r = &kickRetry{c: c, ik: ik, msg: msg, left: kickRetries}
		s.kp.byConn[c] = append(s.kp.byConn[c], r)
		s.kp.byInst[ik] = append(s.kp.byInst[ik], r)
	}
	if h := s.kp.held[c]; h != nil {
		h.pushes = append(h.pushes, heldPush{msg, ik})
		if r != nil {
			h.retries = append(h.retries, r)
		}
		return false
	}
	if r != nil {
		s.startRetryLocked(r)
	}
	return true
}

func (s *Server) startRetryLocked(r *kickRetry) {
	if r.done {
		return
	}
	if r.t == nil {
		r.t = time.AfterFunc(kickRetryEvery, func() { s.retryKick(r) })
	} else {
		r.t.Reset(kickRetryEvery)
	}
}

// kickPushMsg is the stat_forceoffline frame of a kick (PROTOCOL.md 4.5).
func kickPushMsg(kickType int, by uint64) []byte {
	body, _ := json.Marshal(wire.NewKickPush(kickType, by))
	return frame(wire.CmdForceOffline, 0, body)
}

// pushKick is pushKickLocked for callers that do not hold s.mu: the kick
// of instance ik to each of cs.
func (s *Server) pushKick(ik instKey, kickType int, by uint64, cs ...*conn) {
	if len(cs) == 0 {
		return
	}
	msg := kickPushMsg(kickType, by)
	now := make([]*conn, 0, len(cs))
	s.mu.Lock()
	for _, c := range cs {
		if s.pushKickLocked(c, ik, msg) {
			now = append(now, c)
		}
	}
	s.mu.Unlock()
	for _, c := range now {
		c.enqueue(msg)
	}
}

// retryKick is r's timer: the push again, while the socket is open and
// nobody acknowledged it.
func (s *Server) retryKick(r *kickRetry) {
	s.mu.Lock()
	if r.done {
		s.mu.Unlock()
		return
	}
	if _, open := s.conns[r.c]; !open || s.closing {
		s.dropRetryLocked(r)
		s.mu.Unlock()
		return
	}
	r.left--
	left := r.left
	h := s.kp.held[r.c]
	switch {
	case h != nil:
		// c is logging in again (the same instance): after that login.
		h.pushes = append(h.pushes, heldPush{r.msg, r.ik})
		if left > 0 {
			h.retries = append(h.retries, r)
		}
	case left > 0:
		r.t.Reset(kickRetryEvery)
	}
	if left <= 0 {
		s.dropRetryLocked(r)
	}
	s.mu.Unlock()
	r.c.log.Info("kick not acknowledged: pushed again", "app", r.ik.app, "inst", r.ik.inst, "left", left)
	if h == nil {
		r.c.enqueue(r.msg)
	}
}

// dropRetryLocked stops r and forgets it.
func (s *Server) dropRetryLocked(r *kickRetry) {
	if r.done {
		return
	}
	r.done = true
	if r.t != nil {
		r.t.Stop()
	}
	isR := func(o *kickRetry) bool { return o == r }
	setList(s.kp.byConn, r.c, slices.DeleteFunc(s.kp.byConn[r.c], isR))
	setList(s.kp.byInst, r.ik, slices.DeleteFunc(s.kp.byInst[r.ik], isR))
}

// dropRetriesLocked stops and forgets every retry in list (a copy is
// walked: dropRetryLocked edits the index the list came from).
func (s *Server) dropRetriesLocked(list []*kickRetry) {
	for _, r := range append([]*kickRetry(nil), list...) {
		s.dropRetryLocked(r)
	}
}

// dropHoldLocked forgets c's hold, if any, and stops its timer.
func (s *Server) dropHoldLocked(c *conn) {
	if h := s.kp.held[c]; h != nil {
		if h.t != nil {
			h.t.Stop()
		}
		delete(s.kp.held, c)
	}
	c.awaitA2.Store(false)
}

// kickAckedLocked stops pushing again the kicks of instance ik, and (c
// non-nil) every kick push to socket c: it acknowledged one.
func (s *Server) kickAckedLocked(c *conn, ik instKey) {
	s.dropRetriesLocked(s.kp.byInst[ik])
	if c != nil {
		s.dropRetriesLocked(s.kp.byConn[c])
	}
}

// forgetConnLocked drops what waits for socket c: it closed.
func (s *Server) forgetConnLocked(c *conn) {
	s.dropRetriesLocked(s.kp.byConn[c])
	s.dropHoldLocked(c)
}

// stopKickPushesLocked stops every pending repeat and hold (shutdown).
func (s *Server) stopKickPushesLocked() {
	for c := range s.kp.byConn {
		s.forgetConnLocked(c)
	}
	for c := range s.kp.held {
		s.dropHoldLocked(c)
	}
}
