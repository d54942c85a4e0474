package server

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/server/rest"
	"chatctl/pkg/wire"
)

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

// ackKick records that instance k's SDK acknowledged its kick, in the
// presence: the SDK may re-log in on any node. c, when not nil, is the
// socket the acknowledgement came on: its kick pushes are not repeated any
// more (kickpush.go).
func (s *Server) ackKick(c *conn, k instKey) {
	s.mu.Lock()
	s.kickAckedLocked(c, k)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := s.presence.AckKick(ctx, k.app, k.inst); err != nil {
		s.log.Warn("presence: kick ack failed", "app", k.app, "inst", k.inst, "err", err)
	}
}

// takeMissed is the kick instance k missed, if any, to push after its
// refused re-login; reason is its revocation's. A kick is missed (the push
// may have gone to a socket that was already dead, or there was no socket)
// until the SDK acknowledges it: whichever node it re-logs in on pushes it
// once more and records it as acknowledged. A multipleAccount or
// multipleDevice kick is acknowledged by wslogout type 1; the SDK never
// re-logs in after a REST_API_Kick push it received.
func (s *Server) takeMissed(ctx context.Context, k instKey, reason string) (int, bool) {
	t, ok := kickTypeOf(reason)
	if !ok {
		return 0, false
	}
	already, err := s.presence.AckKick(ctx, k.app, k.inst)
	if err != nil {
		s.log.Warn("presence: kick ack failed", "app", k.app, "inst", k.inst, "err", err)
		return 0, false
	}
	return t, !already
}

// kickReason is the store's revocation reason for a KickType.
func kickReason(t int) string { return wire.KickTypeName(t) }

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

// kick revokes the victims' A2Keys and pushes their kicks through the bus.
//
// The pushes go first: a push needs no durability (the SDK that gets it
// logs out and forgets its A2Key), so the victims learn of the kick
// without waiting for the store's commit; the revocations are then
// written, and the caller (the kicking login's reply, a resync) waits for
// them. A REST kick publishes and revokes apart (Kick).
func (s *Server) kick(ctx context.Context, victims []victim, by uint64) {
	s.publishKicks(victims, by)
	s.revoke(ctx, victims)
}

// publishKicks logs the victims' kicks and pushes them through the bus.
func (s *Server) publishKicks(victims []victim, by uint64) {
	for _, v := range victims {
		ss := v.sess
		s.log.Info("kick", "app", ss.app, "user", ss.user, "inst", ss.inst,
			"platform", ss.platform.String(), "type", wire.KickTypeName(v.kickType), "by", by)
		s.noteKick(v, by)
		s.bus.Publish(Kick{App: ss.app, User: ss.user, InstID: ss.inst, Type: v.kickType, By: by})
	}
}

// revoke writes the victims' revocations; one that fails is logged, and
// retried in a cluster (oweRevoke).
func (s *Server) revoke(ctx context.Context, victims []victim) {
	for _, v := range victims {
		ss := v.sess
		if err := s.store.RevokeInstance(ctx, ss.app, ss.inst, ss.revokeUntil(), kickReason(v.kickType)); err != nil {
			s.log.Error("revoke failed", "app", ss.app, "user", ss.user, "inst", ss.inst, "retried", s.retryWrites, "err", err)
			s.oweRevoke(ss, kickReason(v.kickType))
		}
	}
}

// uncovered are the victims of a REST kick whose A2Key its watermark wm
// (unix ms) does not refuse: issued at or after it by a login that
// finished while the kick was being decided. They need a revocation of
// their own; the others do not (loginA2 and the resync check the
// watermark).
func uncovered(victims []victim, wm int64) (rest []victim) {
	for _, v := range victims {
		if v.sess.loginAt.UnixMilli() >= wm {
			rest = append(rest, v)
		}
	}
	return rest
}

// deliverKick is the bus subscriber: it pushes stat_forceoffline to the
// socket holding the kicked instance, if this node has it. The socket stays
// open (the SDK answers with wslogout type 1, PROTOCOL.md 4.5). A push
// never goes before the socket's pending wslogin reply, and is pushed
// again until acknowledged (kickpush.go).
func (s *Server) deliverKick(k Kick) {
	ik := instKey{k.App, k.InstID}
	s.mu.Lock()
	var holders []*conn
	if c := s.attached[ik]; c != nil {
		delete(s.attached, ik)
		holders = append(holders, c)
		if ss := c.sess; ss != nil && ss.inst == k.InstID {
			holders = append(holders, ss.others...)
			for _, h := range holders {
				if h.sess == ss {
					h.sess = nil
				}
			}
			ss.c, ss.others = nil, nil
		}
	}
	s.mu.Unlock()
	// Not holding s.mu from the registry to the push: a socket detached
	// meanwhile is no longer open (pushKickLocked checks) and gets nothing.
	s.pushKick(ik, k.Type, k.By, holders...)
}

// Kick is the REST kick (rest.Backend): it sets the user's kick watermark
// (earlier UserSigs and A2Keys are refused), pushes KickType 3 to every
// instance of the user on every node (and any this node holds that the
// presence lost, e.g. before a resync), each by the node holding it, and
// removes them. It returns how many were online.
//
// The watermark is the kick's one durable write: every instance it kicks
// has an A2Key issued before it, which loginA2 refuses ("instance revoked:
// REST_API_Kick", then the push again), so none is revoked apart but one
// whose A2Key was issued at or after the watermark (a login that finished
// while the kick was being decided). The watermark is written before the
// instances are read, so that an instance restored meanwhile (a resync) is
// either read here or refused by the watermark in Restore; the pushes go
// before the revocations.
func (s *Server) Kick(ctx context.Context, app uint64, user string) (int, error) {
	now := s.now()
	wm := now.UnixMilli()
	if err := s.store.SetKickWatermark(ctx, app, user, wm); err != nil {
		return 0, err
	}
	victims, online, err := s.takeRESTVictims(ctx, app, user, now)
	if err != nil {
		return 0, err
	}
	s.publishKicks(victims, 0)
	s.revoke(ctx, uncovered(victims, wm))
	return online, nil
}

// takeRESTVictims takes user's instances out of the presence and this
// node's registry for a REST kick: the victims (but those gone past the
// heartbeat timeout) and how many of them hold a socket.
func (s *Server) takeRESTVictims(ctx context.Context, app uint64, user string, now time.Time) (victims []victim, online int, err error) {
	ins, err := s.presence.Instances(ctx, app, user)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]uint64, len(ins))
	for i, in := range ins {
		ids[i] = in.InstID
	}
	if err := s.presence.RemoveInstances(ctx, app, user, ids); err != nil {
		return nil, 0, err
	}
	seen := make(map[uint64]bool, len(ins))
	for _, in := range ins {
		if !in.Detached.IsZero() && now.Sub(in.Detached) > s.hbTimeout {
			continue
		}
		if in.Detached.IsZero() {
			online++
		}
		seen[in.InstID] = true
		victims = append(victims, victim{&session{app: app, user: user, inst: in.InstID, platform: in.Platform,
			loginAt: in.LoginAt, expires: in.Expires}, wire.KickRESTAPI})
	}
	k := userKey{app, user}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.users[k] {
		if seen[o.inst] || (o.c == nil && now.Sub(o.detachedAt) > s.hbTimeout) {
			continue
		}
		if o.c != nil {
			online++
		}
		victims = append(victims, victim{o, wire.KickRESTAPI})
	}
	delete(s.users, k)
	return victims, online, nil
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

// ResyncPresence repairs the presence after an outage (cluster.Node):
// first the writes that failed meanwhile (revocations, removals, detaches:
// what this node no longer holds), then this node's instances that hold a
// socket, which the other nodes dropped if the outage outlasted the node
// TTL. An instance is not simply put back: what the cluster decided without
// it applies first. One revoked meanwhile is kicked with its reason; one
// whose A2Key was issued before the user's kick watermark (a REST kick
// while this node was away) is kicked REST_API_Kick; else it is restored
// with the policy against the instances present now, and kicked
// (multipleAccount/multipleDevice) if it does not fit: it is the older,
// the others were admitted meanwhile.
func (s *Server) ResyncPresence(ctx context.Context) error {
	if err := s.RetryPending(ctx); err != nil {
		return err
	}
	var list []*session
	s.mu.Lock()
	for _, c := range s.attached {
		if ss := c.sess; ss != nil {
			list = append(list, ss)
		}
	}
	s.mu.Unlock()
	return parallel(len(list), func(i int) error {
		return s.resyncOne(ctx, list[i])
	})
}

// resyncOne is ResyncPresence for one attached instance.
func (s *Server) resyncOne(ctx context.Context, ss *session) error {
	// Serialized with this instance's attach and detach on this node.
	mu := s.instLock(ss.inst)
	mu.Lock()
	defer mu.Unlock()
	ik := instKey{ss.app, ss.inst}
	s.mu.Lock()
	c := s.attached[ik]
	still := c != nil && c.sess == ss
	s.mu.Unlock()
	if !still {
		return nil // gone or kicked meanwhile
	}
	reason, revoked, err := s.store.Revoked(ctx, ss.app, ss.inst)
	if err != nil {
		return err
	}
	if revoked {
		if t, ok := kickTypeOf(reason); ok {
			s.log.Info("kick pushed late", "app", ss.app, "user", ss.user, "inst", ss.inst, "type", reason)
			s.deliverKick(Kick{App: ss.app, User: ss.user, InstID: ss.inst, Type: t})
			s.dropLocal(ss)
			return s.presence.RemoveOwn(ctx, ss.app, ss.user, ss.inst)
		}
		return nil // logged out elsewhere: nothing to tell, nothing to restore
	}
	// The watermark (REST_API_Kick: its A2Key was issued before a REST kick,
	// as loginA2 refuses it) and the policy, atomically with the write.
	kickType, err := s.presence.Restore(ctx, ss.app, ss.user, s.presenceOf(ss), s.policy(ss.app))
	if err != nil {
		return err
	}
	if kickType == 0 {
		return nil
	}
	s.log.Info("kicked at resync", "app", ss.app, "user", ss.user, "inst", ss.inst, "type", wire.KickTypeName(kickType))
	s.kick(ctx, []victim{{ss, kickType}}, 0)
	s.dropLocal(ss)
	return nil
}

// dropLocal takes a kicked instance out of this node's registry (its
// sockets have been pushed the kick already).
func (s *Server) dropLocal(ss *session) {
	s.mu.Lock()
	s.removeLocked(ss)
	s.mu.Unlock()
}

// repairWorkers is how many store calls a resync has in flight.
const repairWorkers = 16

// parallel runs fn(0..n-1) on repairWorkers goroutines and returns the
// first error; after an error the remaining calls are skipped.
func parallel(n int, fn func(i int) error) error {
	var (
		next  atomic.Int64
		first atomic.Pointer[error]
		wg    sync.WaitGroup
	)
	for range min(n, repairWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

// kickTypeOf is the KickType of a revocation reason (kickReason).
func kickTypeOf(reason string) (int, bool) {
	for _, t := range []int{wire.KickMultipleAccount, wire.KickMultipleDevice, wire.KickRESTAPI} {
		if kickReason(t) == reason {
			return t, true
		}
	}
	return 0, false
}
