package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"chatctl/pkg/server/rest"
	"chatctl/pkg/wire"
)

// This node's registry (the hub): which local sockets hold which
// instances (users, attached, the sessions' sockets), attached and
// detached as logins and sockets come and go. The policy is the
// presence's (policy.go); kicks are delivered by kick.go.

// session is one logged-in instance in the registry.
type session struct {
	app      uint64
	user     string
	tiny     uint64
	inst     uint64
	platform wire.Platform
	loginAt  time.Time // first (UserSig) login of the instance
	expires  int64     // unix seconds; the session is valid up to and including it
	// c is the socket holding the instance; nil while detached (the socket
	// closed and the SDK has not re-logged in yet), since detachedAt.
	c          *conn
	detachedAt time.Time
	// others are further open sockets holding the same instance: an a2
	// re-login of an instance that a socket already holds (a `watch` and a
	// `whoami --check` of one profile, two watches) adds a holder instead of
	// silently taking the instance away. Kicks reach every holder; when c
	// closes, one of them takes its place.
	others []*conn
}

// revokeUntil is how long a revocation must last: past the A2Key's expiry
// the key is refused anyway.
func (ss *session) revokeUntil() time.Time { return time.Unix(ss.expires+1, 0) }

type victim struct {
	sess     *session
	kickType int
}

// attach puts sess in the registry on socket c and applies the app's
// policy. It returns the instances to kick, and the instance c held before
// (to revoke as logged out) if it was another one. The presence applies
// the policy (across nodes, with several) first: an error there fails the
// login.
func (s *Server) attach(ctx context.Context, c *conn, sess *session) (victims []victim, replaced *session, err error) {
	// The presence write and the local attach are one step for this
	// instance's detach (below), so that a late detach never marks an
	// instance that was re-attached here.
	mu := s.instLock(sess.inst)
	mu.Lock()
	defer mu.Unlock()
	pv, err := s.presence.Attach(ctx, sess.app, sess.user, s.presenceOf(sess), s.policy(sess.app))
	if err != nil {
		return nil, nil, err
	}
	victims, replaced = s.attachLocal(c, sess, pv)
	return victims, replaced, nil
}

// instLocks serialize the presence writes of one instance on this node.
type instLocks [256]sync.Mutex

func (s *Server) instLock(inst uint64) *sync.Mutex {
	return &s.instLocks[inst%uint64(len(s.instLocks))]
}

// policy is app's multi-instance policy for Presence.Attach.
func (s *Server) policy(app uint64) PresencePolicy {
	a := s.apps[app]
	return PresencePolicy{WebInstances: a.WebInstances, SingleDevice: a.MultiDevice == MultiDeviceSingle, DetachedFor: s.hbTimeout}
}

// presenceOf is sess as an entry of this node's in the presence.
func (s *Server) presenceOf(sess *session) PresenceInstance {
	return PresenceInstance{InstID: sess.inst, Node: s.presence.Node(), Platform: sess.platform,
		LoginAt: sess.loginAt, Expires: sess.expires}
}

// attachLocal is attach on this node's registry: the victims are pv, the
// presence's decision; those held here leave users too.
func (s *Server) attachLocal(c *conn, sess *session, pv []PresenceVictim) (victims []victim, replaced *session) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if old := c.sess; old != nil && old.inst != sess.inst {
		s.removeLocked(old)
		replaced = old
	}
	c.sess, c.pendingExpired = sess, false
	sess.c = c
	// Reachable for kicks from here on: pushes wait for the wslogin reply.
	s.loginOnConnLocked(c, instKey{sess.app, sess.inst})

	k := userKey{sess.app, sess.user}
	list := s.users[k][:0:0]
	for _, o := range s.users[k] {
		switch {
		case o.inst == sess.inst:
			// The same instance again (a reconnect, or a second socket of
			// the same session): the new socket becomes its holder and the
			// older open ones stay holders too.
			for _, oc := range append([]*conn{o.c}, o.others...) {
				if oc != nil && oc != c {
					oc.sess = sess
					sess.others = append(sess.others, oc)
				}
			}
		case o.c == nil && now.Sub(o.detachedAt) > s.hbTimeout:
			// Gone for good; its socket never came back.
		default:
			list = append(list, o)
		}
	}
	victims, keep := presenceVictims(sess, list, pv)
	s.users[k] = append(keep, sess)
	s.attached[instKey{sess.app, sess.inst}] = c
	return victims, replaced
}

// presenceVictims are the victims the presence decided (pv) among the
// user's other instances here (list), and those of list to keep. A victim
// held by another node gets a session for the kick and the log.
func presenceVictims(sess *session, list []*session, pv []PresenceVictim) (victims []victim, keep []*session) {
	keep = list
next:
	for _, v := range pv {
		for i, o := range keep {
			if o.inst == v.InstID {
				victims = append(victims, victim{o, v.KickType})
				keep = slices.Delete(keep, i, i+1)
				continue next
			}
		}
		victims = append(victims, victim{&session{app: sess.app, user: sess.user, inst: v.InstID,
			platform: v.Platform, loginAt: v.LoginAt, expires: v.Expires}, v.KickType})
	}
	return victims, keep
}

// removeLocked takes sess out of the registry and off its socket.
func (s *Server) removeLocked(sess *session) {
	k := userKey{sess.app, sess.user}
	list := slices.DeleteFunc(s.users[k], func(o *session) bool { return o == sess })
	if len(list) == 0 {
		delete(s.users, k)
	} else {
		s.users[k] = list
	}
	for _, oc := range sess.others {
		if oc.sess == sess {
			oc.sess = nil
		}
	}
	sess.others = nil
	if sess.c != nil {
		if sess.c.sess == sess {
			sess.c.sess = nil
		}
		ik := instKey{sess.app, sess.inst}
		if s.attached[ik] == sess.c {
			delete(s.attached, ik)
		}
		sess.c = nil
	}
}

// detach runs when socket c is gone: its instance stays in the registry,
// detached, for HeartbeatTimeout so that a reconnect finds it (and a login
// elsewhere meanwhile still applies the policy to it).
func (s *Server) detach(c *conn) {
	now := s.now()
	s.mu.Lock()
	gone := s.detachLocked(c, now)
	closing := s.closing
	s.mu.Unlock()
	if gone != nil && !closing {
		// Other nodes see it detached (a reconnect to any node finds it),
		// unless a reconnect here has re-attached it already. Not at
		// shutdown: the node's NodeLeave takes all its entries.
		mu := s.instLock(gone.inst)
		mu.Lock()
		defer mu.Unlock()
		s.mu.Lock()
		_, back := s.attached[instKey{gone.app, gone.inst}]
		s.mu.Unlock()
		if back {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := s.presence.Detach(ctx, gone.app, gone.user, gone.inst, now); err != nil {
			s.log.Warn("presence: detach failed; retried when the store is back", "app", gone.app, "user", gone.user, "inst", gone.inst, "err", err)
			s.owe(instKey{gone.app, gone.inst}, gone.user, func(p *pendingWrite) { p.detachAt = now })
		}
	}
}

// detachLocked is detach on this node's registry; it returns the session
// left without a socket, if any.
func (s *Server) detachLocked(c *conn, now time.Time) (gone *session) {
	delete(s.conns, c)
	s.forgetConnLocked(c)
	if ss := c.sess; ss != nil {
		ik := instKey{ss.app, ss.inst}
		ss.others = slices.DeleteFunc(ss.others, func(oc *conn) bool { return oc == c })
		if ss.c == c {
			if n := len(ss.others); n > 0 {
				// Another open socket holds the instance: it takes over.
				ss.c, ss.others = ss.others[n-1], ss.others[:n-1]
				s.attached[ik] = ss.c
			} else {
				ss.c, ss.detachedAt = nil, now
				if s.attached[ik] == c {
					delete(s.attached, ik)
				}
				gone = ss
			}
		}
		c.sess = nil
	}
	return gone
}

// sweepLocked forgets detached instances older than HeartbeatTimeout, at
// most once per HeartbeatTimeout.
func (s *Server) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < s.hbTimeout {
		return
	}
	s.lastSweep = now
	for k, list := range s.users {
		list = slices.DeleteFunc(list, func(o *session) bool {
			return o.c == nil && now.Sub(o.detachedAt) > s.hbTimeout
		})
		if len(list) == 0 {
			delete(s.users, k)
		} else {
			s.users[k] = list
		}
	}
}

// Online lists user's instances on every node (rest.Backend): Online for
// those with a socket, PushOnline for mobile ones whose socket is briefly
// gone.
func (s *Server) Online(ctx context.Context, app uint64, user string) ([]rest.Instance, error) {
	ins, err := s.presence.Instances(ctx, app, user)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []rest.Instance
	for _, in := range ins {
		switch {
		case in.Detached.IsZero():
			out = append(out, rest.Instance{Platform: in.Platform.String(), Status: "Online"})
		case in.Platform.Mobile() && now.Sub(in.Detached) <= s.hbTimeout:
			out = append(out, rest.Instance{Platform: in.Platform.String(), Status: "PushOnline"})
		}
	}
	return out, nil
}

// presenceRemove takes ss out of the presence (logged out, replaced).
func (s *Server) presenceRemove(ctx context.Context, ss *session) {
	if err := s.presence.Remove(ctx, ss.app, ss.user, ss.inst); err != nil {
		s.log.Warn("presence: remove failed; retried when the store is back", "app", ss.app, "user", ss.user, "inst", ss.inst, "err", err)
		s.owe(instKey{ss.app, ss.inst}, ss.user, func(p *pendingWrite) { p.remove = true })
	}
}
