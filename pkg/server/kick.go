package server

import (
	"context"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// Kick delivery: a decided kick is published on the bus, pushed by the
// node holding the instance's socket (deliverKick, kickpush.go) and its
// A2Key revoked; a kick the instance missed is pushed after its refused
// re-login, once (AckKick). The REST kick and its watermark are here too.

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
	s.presenceAck(ctx, k)
}

// presenceAck is Presence.AckKick; a failure is logged and reads as
// already recorded (nobody pushes the kick again on its account).
func (s *Server) presenceAck(ctx context.Context, k instKey) (already bool) {
	already, err := s.presence.AckKick(ctx, k.app, k.inst)
	if err != nil {
		s.log.Warn("presence: kick ack failed", "app", k.app, "inst", k.inst, "err", err)
	}
	return already || err != nil
}

// kick revokes the victims' A2Keys and pushes their kicks through the bus.
//
// The pushes go first: a push needs no durability (the SDK that gets it
// logs out and forgets its A2Key), so the victims learn of the kick
// without waiting for the store's commit; the revocations are then
// written, and the caller (the kicking login's reply, a resync) waits for
// them. A REST kick publishes and revokes apart (Kick).
//
// From the push until the revocation is committed the instances are marked
// revoking, and loginA2 refuses them as revoked: a kicked SDK whose socket
// dies right after the push re-logs in with its A2Key within milliseconds,
// faster than the store's commit (seen in interop scenario 2b on a loaded
// machine, where that re-login was accepted).
func (s *Server) kick(ctx context.Context, victims []store.Victim, by uint64) {
	s.revokingMu.Lock()
	for _, v := range victims {
		k := instKey{v.App, v.InstID}
		r := s.revoking[k]
		r.reason, r.n = wire.KickTypeName(v.KickType), r.n+1
		s.revoking[k] = r
	}
	s.revokingMu.Unlock()
	s.publishKicks(victims, by)
	s.revoke(ctx, victims)
	s.revokingMu.Lock()
	for _, v := range victims {
		k := instKey{v.App, v.InstID}
		if r := s.revoking[k]; r.n > 1 {
			r.n--
			s.revoking[k] = r
		} else {
			delete(s.revoking, k)
		}
	}
	s.revokingMu.Unlock()
}

// revoking is an instance's revocation in flight: its reason, and how many
// kicks are writing it.
type revoking struct {
	reason string
	n      int
}

// revokingReason is the reason of inst's revocation in flight, if any.
func (s *Server) revokingReason(k instKey) (string, bool) {
	s.revokingMu.Lock()
	defer s.revokingMu.Unlock()
	r, ok := s.revoking[k]
	return r.reason, ok
}

// publishKicks logs the victims' kicks and pushes them through the bus.
func (s *Server) publishKicks(victims []store.Victim, by uint64) {
	for _, v := range victims {
		s.log.Info("kick", "app", v.App, "user", v.User, "inst", v.InstID,
			"platform", v.Platform.String(), "type", wire.KickTypeName(v.KickType), "by", by)
		s.noteKick(v, by)
		s.bus.Publish(Kick{App: v.App, User: v.User, InstID: v.InstID, Type: v.KickType, By: by})
	}
}

// revoke writes the victims' revocations; one that fails is logged, and
// retried in a cluster (owe).
func (s *Server) revoke(ctx context.Context, victims []store.Victim) {
	for _, v := range victims {
		s.revokeOne(ctx, v.Instance, wire.KickTypeName(v.KickType))
	}
}

// revokeOne writes in's revocation for reason; one that fails is logged,
// and retried in a cluster (owe).
func (s *Server) revokeOne(ctx context.Context, in store.Instance, reason string) {
	if err := s.store.RevokeInstance(ctx, in.App, in.InstID, in.RevokeUntil(), reason); err != nil {
		s.log.Error("revoke failed", "app", in.App, "user", in.User, "inst", in.InstID, "reason", reason, "retried", s.retryWrites, "err", err)
		s.owe(instKey{in.App, in.InstID}, in.User, func(p *pendingWrite) {
			p.revoke, p.until, p.reason = true, in.RevokeUntil(), reason
		})
	}
}

// uncovered are the victims of a REST kick whose A2Key its watermark wm
// (unix ms) does not refuse: issued at or after it by a login that
// finished while the kick was being decided. They need a revocation of
// their own; the others do not (loginA2 and the resync check the
// watermark).
func uncovered(victims []store.Victim, wm int64) (rest []store.Victim) {
	for _, v := range victims {
		if v.LoginAt.UnixMilli() >= wm {
			rest = append(rest, v)
		}
	}
	return rest
}

// deliverKick is the bus subscriber: it pushes stat_forceoffline to the
// socket holding the kicked instance, if this node has it. The socket stays
// open (the SDK answers with wslogout type 1, PROTOCOL.md 4.5). A push
// never goes before the socket's pending wslogin reply, and is pushed
// again until acknowledged (kickpush.go). A logout (k.Logout) pushes
// nothing: the sockets still holding the instance here are closed.
func (s *Server) deliverKick(k Kick) {
	if k.Logout {
		// Not kept for an attach: a logout of an a2 re-login's instance
		// in flight is revokedSinceCheck's (login.go).
		s.hub.closeIdle(s.hub.kick(k.App, k.User, k.InstID))
		return
	}
	holders := s.hub.kickOrKeep(k, s.now())
	// Not holding one lock from the hub to the push: a socket closed
	// meanwhile is no longer open (pushKickLocked checks) and gets no
	// repeats.
	s.pushKick(instKey{k.App, k.InstID}, k.Type, k.By, holders...)
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
// node's hub for a REST kick: the victims (but those gone past the
// heartbeat timeout) and how many of them hold a socket.
func (s *Server) takeRESTVictims(ctx context.Context, app uint64, user string, now time.Time) (victims []store.Victim, online int, err error) {
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
	// Then those this node has that the presence lost.
	seen := make(map[uint64]bool, len(ins))
	for _, in := range append(ins, s.hub.take(userKey{app, user})...) {
		if seen[in.InstID] || (!in.Detached.IsZero() && now.Sub(in.Detached) > s.hbTimeout) {
			continue
		}
		seen[in.InstID] = true
		if in.Detached.IsZero() {
			online++
		}
		victims = append(victims, store.Victim{Instance: in, KickType: wire.KickRESTAPI})
	}
	return victims, online, nil
}

// kickTypeOf is the KickType of a revocation reason (wire.KickTypeName).
func kickTypeOf(reason string) (int, bool) {
	for _, t := range []int{wire.KickMultipleAccount, wire.KickMultipleDevice, wire.KickRESTAPI} {
		if wire.KickTypeName(t) == reason {
			return t, true
		}
	}
	return 0, false
}
