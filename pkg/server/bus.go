package server

import "sync"

// Kick is one instance to push a stat_forceoffline to.
type Kick struct {
	App    uint64
	User   string
	InstID uint64 // the kicked instance
	Type   int    // wire.KickMultipleAccount, KickMultipleDevice or KickRESTAPI
	By     uint64 // the instance that caused it (0 for a REST kick)
	// Logout: not a kick but the instance's logout on the node that
	// publishes it, which has revoked it. A node holding sockets of the
	// instance (a watch of the same session) closes them with no push:
	// their a2 re-login hears 70002 "instance revoked: logout".
	Logout bool
}

// Bus delivers kicks (and logouts, Kick.Logout) to whichever node holds
// the instance's socket.
// The in-process bus (NewLocalBus) serves one node; a pub/sub bus (Redis)
// can replace it for several. Publish must not block on slow subscribers.
type Bus interface {
	Publish(k Kick)
	// Subscribe registers fn for every kick published from now on; the
	// returned func unsubscribes.
	Subscribe(fn func(Kick)) (cancel func())
}

// LocalBus is the in-process Bus: Publish calls every subscriber in turn.
type LocalBus struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(Kick)
}

// NewLocalBus returns an empty in-process bus.
func NewLocalBus() *LocalBus { return &LocalBus{subs: map[int]func(Kick){}} }

// Publish delivers k to every subscriber synchronously.
func (b *LocalBus) Publish(k Kick) {
	b.mu.RLock()
	fns := make([]func(Kick), 0, len(b.subs))
	for _, fn := range b.subs {
		fns = append(fns, fn)
	}
	b.mu.RUnlock()
	for _, fn := range fns {
		fn(k)
	}
}

// Subscribe adds fn.
func (b *LocalBus) Subscribe(fn func(Kick)) (cancel func()) {
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = fn
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}
