package server

import (
	"time"

	"chatctl/pkg/wire"
)

// Kick pushes and the SDK's login (docs/PROTOCOL.md 4.5, SERVER.md "Kick
// pushes"). The official SDK drops a stat_forceoffline push that reaches
// it before it has finished its login (an unhandled 2024 "not logged in"
// inside it) and then stays "ready" while the server has revoked it. Two
// logins of one user at the same moment produce exactly that: the second
// one's kick reaches the first one's socket between its attach and its
// wslogin reply, or just after the reply. So:
//
//   - held: a push to a socket whose wslogin is between attach and reply
//     waits and is written right after that reply (finishLogin releases it);
//   - retries: a kick push that the instance does not acknowledge (wslogout
//     type 1 for multipleAccount/multipleDevice; the SDK closes the socket
//     after a REST_API_Kick) is pushed again every kickRetryEvery, at most
//     kickRetries times, while the socket stays open.
//
// kickRetryEvery is 1 s: the SDK is logged in a few milliseconds after the
// wslogin reply (SDK_READY after a 1 ms timer, PROTOCOL.md 3.1) and
// acknowledges a push it processed at once (one round trip), so an
// acknowledgement missing after 1 s means the push was dropped; 1 s is
// also far below the SDK's 10 s heartbeat, so the app learns of the kick
// in about a second. kickRetries 3 bounds what a client that never
// acknowledges (an old or foreign client) costs: three more frames over
// three seconds, and no timer survives its socket.
const (
	kickRetryEvery = time.Second
	kickRetries    = 3
)

// kickRetry is one kick push to push again to c unless acknowledged.
type kickRetry struct {
	c    *conn
	ik   instKey
	msg  []byte
	left int
	t    *time.Timer
	done bool // cancelled or finished; guarded by s.mu
}

// kickPushes is the Server's state for held and repeated pushes, guarded
// by s.mu.
type kickPushes struct {
	// held: sockets whose wslogin reply is pending, with the pushes that
	// wait for it (the key is present, with a nil list, while none wait).
	held   map[*conn][][]byte
	byConn map[*conn][]*kickRetry
	byInst map[instKey][]*kickRetry
}

func newKickPushes() kickPushes {
	return kickPushes{held: map[*conn][][]byte{}, byConn: map[*conn][]*kickRetry{}, byInst: map[instKey][]*kickRetry{}}
}

// releasePushes writes the pushes held for c, after its wslogin reply has
// been queued.
func (s *Server) releasePushes(c *conn) {
	s.mu.Lock()
	msgs := s.kp.held[c]
	delete(s.kp.held, c)
	s.mu.Unlock()
	for _, m := range msgs {
		c.enqueue(m)
	}
}

// pushKickLocked queues kick push msg for c (held behind a pending wslogin
// reply) and arranges for it to be pushed again until instance ik
// acknowledges it. It reports whether the caller must enqueue msg now
// (after unlocking).
func (s *Server) pushKickLocked(c *conn, ik instKey, msg []byte) (now bool) {
	if _, open := s.conns[c]; open && !s.closing {
		r := &kickRetry{c: c, ik: ik, msg: msg, left: kickRetries}
		r.t = time.AfterFunc(kickRetryEvery, func() { s.retryKick(r) })
		s.kp.byConn[c] = append(s.kp.byConn[c], r)
		s.kp.byInst[ik] = append(s.kp.byInst[ik], r)
	}
	if q, held := s.kp.held[c]; held {
		s.kp.held[c] = append(q, msg)
		return false
	}
	return true
}

// pushKick is pushKickLocked for a caller that does not hold s.mu.
func (s *Server) pushKick(c *conn, ik instKey, kickType int, by uint64) {
	body, _ := jsonMarshal(wire.NewKickPush(kickType, by))
	msg := frame(wire.CmdForceOffline, 0, body)
	s.mu.Lock()
	now := s.pushKickLocked(c, ik, msg)
	s.mu.Unlock()
	if now {
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
	if left > 0 {
		r.t.Reset(kickRetryEvery)
	} else {
		s.dropRetryLocked(r)
	}
	_, held := s.kp.held[r.c]
	if held {
		s.kp.held[r.c] = append(s.kp.held[r.c], r.msg)
	}
	s.mu.Unlock()
	r.c.log.Info("kick not acknowledged: pushed again", "app", r.ik.app, "inst", r.ik.inst, "left", left)
	if !held {
		r.c.enqueue(r.msg)
	}
}

// dropRetryLocked stops r and forgets it.
func (s *Server) dropRetryLocked(r *kickRetry) {
	if r.done {
		return
	}
	r.done = true
	r.t.Stop()
	del := func(list []*kickRetry) []*kickRetry {
		for i, o := range list {
			if o == r {
				return append(list[:i:i], list[i+1:]...)
			}
		}
		return list
	}
	if l := del(s.kp.byConn[r.c]); len(l) == 0 {
		delete(s.kp.byConn, r.c)
	} else {
		s.kp.byConn[r.c] = l
	}
	if l := del(s.kp.byInst[r.ik]); len(l) == 0 {
		delete(s.kp.byInst, r.ik)
	} else {
		s.kp.byInst[r.ik] = l
	}
}

// kickAckedLocked stops pushing again the kicks of instance ik, and (c
// non-nil) every kick push to socket c: it acknowledged one.
func (s *Server) kickAckedLocked(c *conn, ik instKey) {
	for _, r := range append([]*kickRetry(nil), s.kp.byInst[ik]...) {
		s.dropRetryLocked(r)
	}
	if c != nil {
		for _, r := range append([]*kickRetry(nil), s.kp.byConn[c]...) {
			s.dropRetryLocked(r)
		}
	}
}

// forgetConnLocked drops what waits for socket c: it closed.
func (s *Server) forgetConnLocked(c *conn) {
	for _, r := range append([]*kickRetry(nil), s.kp.byConn[c]...) {
		s.dropRetryLocked(r)
	}
	delete(s.kp.held, c)
}

// loginOnConnLocked runs when socket c logs in instance ik: its wslogin
// reply is pending (pushes to c wait for it), and kicks of other instances
// it held are no longer its own to repeat.
func (s *Server) loginOnConnLocked(c *conn, ik instKey) {
	for _, r := range append([]*kickRetry(nil), s.kp.byConn[c]...) {
		if r.ik != ik {
			s.dropRetryLocked(r)
		}
	}
	if _, ok := s.kp.held[c]; !ok {
		s.kp.held[c] = nil
	}
}

// stopKickRetriesLocked stops every pending repeat (shutdown).
func (s *Server) stopKickRetriesLocked() {
	for _, l := range s.kp.byConn {
		for _, r := range append([]*kickRetry(nil), l...) {
			s.dropRetryLocked(r)
		}
	}
}

// PendingKickPushes is how many kick pushes wait to be pushed again (not
// acknowledged yet, socket open); for tests and debugging.
func (s *Server) PendingKickPushes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.kp.byConn {
		n += len(l)
	}
	return n
}
