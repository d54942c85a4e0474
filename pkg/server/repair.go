package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// Cluster repair: what a node owes the shared state after Redis was
// unreachable (the writes that failed), and the resync of its instances
// after an outage (the cluster runs both).

// Writes that failed (Redis unreachable) are remembered and retried by
// ResyncPresence, so that what this node acknowledged (a logout, a closed
// socket, a kick) reaches the shared state late rather than never.
//
// A logout whose revocation fails is still answered OK: the official SDK
// ignores a failed logout (it resets itself and forgets the A2Key either
// way, PROTOCOL.md 3.3), so an error would tell it nothing and would not
// be retried by it; the node retries instead. Until Redis takes the
// revocation, the A2Key is refused only by this node (its hub no
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
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
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

// PendingWrites is how many instances have writes owed to the store
// (failed, to retry by ResyncPresence); for the cluster and tests.
func (s *Server) PendingWrites() int {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return len(s.pending)
}

// RetryPending retries the store writes that failed (the cluster, and
// ResyncPresence first); one that succeeds is forgotten (unless it changed
// meanwhile). An instance held by a socket here again owes nothing (the
// resync rewrites it).
func (s *Server) RetryPending(ctx context.Context) error {
	type item struct {
		k instKey
		p pendingWrite
	}
	var list []item
	s.pendingMu.Lock()
	for k, p := range s.pending {
		if s.hub.holds(k, nil) {
			delete(s.pending, k)
			continue
		}
		list = append(list, item{k, p})
	}
	s.pendingMu.Unlock()
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
		s.pendingMu.Lock()
		if cur, ok := s.pending[k]; ok && cur == p {
			delete(s.pending, k)
		}
		s.pendingMu.Unlock()
		s.log.Info("presence: failed write done late", "app", k.app, "user", p.user, "inst", k.inst,
			"revoke", p.reason, "remove", p.remove, "detach", !p.detachAt.IsZero())
		return nil
	})
}

// ResyncPresence repairs the presence after an outage (the cluster):
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
	list := s.hub.heldEntries()
	return parallel(len(list), func(i int) error {
		return s.resyncOne(ctx, list[i])
	})
}

// resyncOne is ResyncPresence for one attached instance. A kick takes it
// out of the hub as it is delivered here (deliverKick).
func (s *Server) resyncOne(ctx context.Context, e *entry) error {
	// Serialized with this instance's attach and detach on this node.
	mu := s.instLock(e.InstID)
	mu.Lock()
	defer mu.Unlock()
	if !s.hub.holds(e.ik(), e) {
		return nil // gone or kicked meanwhile
	}
	reason, revoked, err := s.store.Revoked(ctx, e.App, e.InstID)
	if err != nil {
		return err
	}
	if revoked {
		if t, ok := kickTypeOf(reason); ok {
			s.log.Info("kick pushed late", "app", e.App, "user", e.User, "inst", e.InstID, "type", reason)
			s.deliverKick(Kick{App: e.App, User: e.User, InstID: e.InstID, Type: t})
			return s.presence.RemoveOwn(ctx, e.App, e.User, e.InstID)
		}
		return nil // logged out elsewhere: nothing to tell, nothing to restore
	}
	// The watermark (REST_API_Kick: its A2Key was issued before a REST kick,
	// as loginA2 refuses it) and the policy, atomically with the write.
	kickType, err := s.presence.Restore(ctx, e.Instance, s.policy(e.App))
	if err != nil {
		return err
	}
	if kickType == 0 {
		return nil
	}
	s.log.Info("kicked at resync", "app", e.App, "user", e.User, "inst", e.InstID, "type", wire.KickTypeName(kickType))
	s.kick(ctx, []store.Victim{{Instance: e.Instance, KickType: kickType}}, 0)
	return nil
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
		wg.Go(func() {
			for first.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}
