package server

import (
	"context"
	"time"

	"chatctl/pkg/wire"
)

// Presence is the cluster-wide list of every user's online instances, for
// several nodes sharing one state (docs/MULTINODE.md): the multi-instance
// policy, REST kicks and query_online_status then see the instances of
// every node. Sockets stay per node. MemoryPresence keeps the list in one
// node's memory (Config.Presence nil); pkg/server/cluster implements it on
// Redis (presence hashes and node heartbeats, pkg/server/store/redis).
// pkg/server/presencetest holds both to one behaviour.
type Presence interface {
	// Node is this node's id, as written in its instances' entries.
	Node() string
	// Attach records in (a login, or a reconnect of the same instance on
	// any node) and applies p to the user's other instances on every live
	// node, atomically: it returns those to kick, already removed. The same
	// InstID again replaces its entry and kicks nobody.
	Attach(ctx context.Context, app uint64, user string, in PresenceInstance, p PresencePolicy) ([]PresenceVictim, error)
	// Restore rewrites this node's in (a resync after an outage), unless
	// another node holds it now (left alone, 0). In one atomic step: an
	// instance whose A2Key was issued (LoginAt) before the user's kick
	// watermark is removed and gets wire.KickRESTAPI; when its entry is
	// gone (dropped while this node was dead to the others), p is applied
	// against the user's instances present now: if in does not fit, nothing
	// is written and the KickType in gets is returned
	// (wire.KickMultipleAccount/KickMultipleDevice); else 0.
	Restore(ctx context.Context, app uint64, user string, in PresenceInstance, p PresencePolicy) (kickType int, err error)
	// Detach marks instance inst as detached since at, if this node still
	// holds it (a reconnect on another node may have taken it over).
	Detach(ctx context.Context, app uint64, user string, inst uint64, at time.Time) error
	// Remove deletes one instance (logged out, replaced, expired).
	Remove(ctx context.Context, app uint64, user string, inst uint64) error
	// RemoveOwn is Remove only if this node holds the entry (a removal
	// retried late must not delete another node's).
	RemoveOwn(ctx context.Context, app uint64, user string, inst uint64) error
	// Instances lists user's instances on live nodes, detached ones too.
	Instances(ctx context.Context, app uint64, user string) ([]PresenceInstance, error)
	// RemoveInstances deletes the instances insts of user (a REST kick:
	// those Instances listed); an entry written since stays.
	RemoveInstances(ctx context.Context, app uint64, user string, insts []uint64) error
	// AckKick records that the kicked instance inst was told of its kick
	// (its SDK acknowledged the push, or a node pushed it again after a
	// refused re-login), for as long as its revocation runs; it reports
	// whether that was recorded already (check and set in one step).
	AckKick(ctx context.Context, app uint64, inst uint64) (already bool, err error)
}

// PresenceInstance is one instance of a user, on some node.
type PresenceInstance struct {
	InstID   uint64
	Node     string
	Platform wire.Platform
	LoginAt  time.Time // first (UserSig) login
	Expires  int64     // unix seconds: the UserSig's expiry
	Detached time.Time // when its socket closed; zero while it has one
}

// PresencePolicy is an app's multi-instance policy as Presence.Attach
// applies it (AppConfig).
type PresencePolicy struct {
	WebInstances int
	SingleDevice bool
	// DetachedFor: a detached instance older than this is gone for good
	// (the heartbeat timeout).
	DetachedFor time.Duration
}

// PresenceVictim is an instance Attach displaced.
type PresenceVictim struct {
	PresenceInstance
	KickType int // wire.KickMultipleAccount or wire.KickMultipleDevice
}

// Writes that failed (Redis unreachable) are remembered and retried by
// ResyncPresence, so that what this node acknowledged (a logout, a closed
// socket, a kick) reaches the shared state late rather than never.
//
// A logout whose revocation fails is still answered OK: the official SDK
// ignores a failed logout (it resets itself and forgets the A2Key either
// way, PROTOCOL.md 3.3), so an error would tell it nothing and would not
// be retried by it; the node retries instead. Until Redis takes the
// revocation, the A2Key is refused only by this node (its registry no
// longer has the instance; other nodes, which need Redis for an a2
// re-login too, would accept it if they reach Redis first).

// maxPendingWrites bounds the remembered writes; past it one is dropped
// (logged) for each new one: an outage that long is covered by the node
// TTL (every entry of this node goes) and the A2Key expiry.
const maxPendingWrites = 100_000

// pendingWrite is what is owed to Redis for one instance.
type pendingWrite struct {
	user     string
	revoke   bool // RevokeInstance(until, reason)
	until    time.Time
	reason   string
	remove   bool      // RemoveOwn
	detachAt time.Time // Detach(detachAt), if not zero and not remove
}

// owe records a failed write for instance k (merged with what is
// owed already).
func (s *Server) owe(k instKey, user string, f func(*pendingWrite)) {
	if !s.retryWrites {
		// One node: nothing would retry them (the cluster node's loop
		// does); the failure is logged where it happened.
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[k]
	if !ok && len(s.pending) >= maxPendingWrites {
		for old := range s.pending { // any one: they are all that old
			delete(s.pending, old)
			s.log.Warn("presence: too many failed writes, one forgotten", "app", old.app, "inst", old.inst)
			break
		}
	}
	p.user = user
	f(&p)
	s.pending[k] = p
}

// oweRevoke remembers a revocation that failed.
func (s *Server) oweRevoke(ss *session, reason string) {
	s.owe(instKey{ss.app, ss.inst}, ss.user, func(p *pendingWrite) {
		p.revoke, p.until, p.reason = true, ss.revokeUntil(), reason
	})
}

// PendingWrites is how many instances have writes owed to the store
// (failed, to retry by ResyncPresence); for cluster.Node and tests.
func (s *Server) PendingWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// RetryPending retries the store writes that failed (cluster.Node, and
// ResyncPresence first); one that succeeds is forgotten (unless it changed
// meanwhile). An instance held by a socket here again owes nothing (the
// resync rewrites it).
func (s *Server) RetryPending(ctx context.Context) error {
	type item struct {
		k instKey
		p pendingWrite
	}
	var list []item
	s.mu.Lock()
	for k, p := range s.pending {
		if _, back := s.attached[k]; back {
			delete(s.pending, k)
			continue
		}
		list = append(list, item{k, p})
	}
	s.mu.Unlock()
	return parallel(len(list), func(i int) error {
		k, p := list[i].k, list[i].p
		if p.revoke {
			if err := s.store.RevokeInstance(ctx, k.app, k.inst, p.until, p.reason); err != nil {
				return err
			}
		}
		switch { // owed only in a cluster (owe)
		case p.remove:
			if err := s.presence.RemoveOwn(ctx, k.app, p.user, k.inst); err != nil {
				return err
			}
		case !p.detachAt.IsZero():
			if err := s.presence.Detach(ctx, k.app, p.user, k.inst, p.detachAt); err != nil {
				return err
			}
		}
		s.mu.Lock()
		if cur, ok := s.pending[k]; ok && cur == p {
			delete(s.pending, k)
		}
		s.mu.Unlock()
		s.log.Info("presence: failed write done late", "app", k.app, "user", p.user, "inst", k.inst,
			"revoke", p.reason, "remove", p.remove, "detach", !p.detachAt.IsZero())
		return nil
	})
}
