package server

import (
	"context"
	"sync"

	"chatctl/pkg/server/rest"
	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// Logins and closed sockets between the presence (every node's instances,
// the policy) and the hub (this node's, hub.go); kicks are delivered by
// kick.go.

// attach puts e in the presence and in the hub on socket c, applying the
// app's policy. It returns the instances to kick, and the instance c held
// before (to end as logged out) if it was another one, with its other
// sockets here. The presence applies the policy (across nodes, with
// several) first: an error there fails the login.
//
// kept is a kick of e that came between the presence's write and the
// hub's (another login of the user, on any node, decided it from the
// presence): its push found nobody here, so the login delivers it.
func (s *Server) attach(ctx context.Context, c *conn, e *entry) (victims []store.Victim, replaced *entry, others []*conn, kept *Kick, err error) {
	// The presence write and the local attach are one step for this
	// instance's detach (below), so that a late detach never marks an
	// instance that was re-attached here.
	mu := s.instLock(e.InstID)
	mu.Lock()
	defer mu.Unlock()
	if kickType, kicked := s.hub.beginAttach(e.ik(), s.now()); kicked {
		// Kicked a moment ago, its revocation not written yet: refused
		// as revoked before the presence write, which would kick its
		// kicker (store.RevokedError: finishLogin pushes the kick).
		return nil, nil, nil, nil, &store.RevokedError{Reason: wire.KickTypeName(kickType)}
	}
	victims, err = s.presence.Attach(ctx, e.Instance, s.policy(e.App))
	if err != nil {
		s.hub.endAttach(e.ik(), s.now())
		return nil, nil, nil, nil, err
	}
	// The hold of c's kick pushes and its attach are one step under s.mu,
	// which pushKick takes too: c is reachable for kicks once the hub has
	// it, and its pushes wait for the wslogin reply (kickpush.go).
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginOnConnLocked(c, e.ik())
	replaced, others, kept = s.hub.attach(c, e, victims, s.now())
	return victims, replaced, others, kept, nil
}

// instLocks serialize the presence writes of one instance on this node.
type instLocks [256]sync.Mutex

func (s *Server) instLock(inst uint64) *sync.Mutex {
	return &s.instLocks[inst%uint64(len(s.instLocks))]
}

// policy is app's multi-instance policy for Presence.Attach.
func (s *Server) policy(app uint64) store.Policy {
	a := s.apps[app]
	return store.Policy{WebInstances: a.WebInstances, SingleDevice: a.MultiDevice == MultiDeviceSingle, DetachedFor: s.hbTimeout}
}

// detach runs when socket c is gone: its instance stays in the hub,
// detached, for HeartbeatTimeout so that a reconnect finds it (and a login
// elsewhere meanwhile still applies the policy to it).
func (s *Server) detach(c *conn) {
	now := s.now()
	gone := s.hub.release(c, now)
	s.mu.Lock()
	delete(s.conns, c)
	s.forgetConnLocked(c)
	closing := s.closing
	s.mu.Unlock()
	if gone != nil && !closing {
		// Other nodes see it detached (a reconnect to any node finds it),
		// unless a reconnect here has re-attached it already. Not at
		// shutdown: the node's NodeLeave takes all its entries.
		mu := s.instLock(gone.InstID)
		mu.Lock()
		defer mu.Unlock()
		if s.hub.holds(gone.ik(), nil) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := s.presence.Detach(ctx, gone.App, gone.User, gone.InstID, now); err != nil {
			s.log.Warn("presence: detach failed; retried when the store is back", "app", gone.App, "user", gone.User, "inst", gone.InstID, "err", err)
			s.owe(gone.ik(), gone.User, func(p *pendingWrite) { p.detachAt = now })
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

// presenceRemove takes in out of the presence (logged out, replaced).
func (s *Server) presenceRemove(ctx context.Context, in store.Instance) {
	if err := s.presence.Remove(ctx, in.App, in.User, in.InstID); err != nil {
		s.log.Warn("presence: remove failed; retried when the store is back", "app", in.App, "user", in.User, "inst", in.InstID, "err", err)
		s.owe(instKey{in.App, in.InstID}, in.User, func(p *pendingWrite) { p.remove = true })
	}
}
