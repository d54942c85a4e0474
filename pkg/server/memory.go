package server

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// MemoryPresence is the Presence of one node, in its memory (as LocalBus is
// its Bus): New uses it when Config.Presence is nil. It keeps the same
// list as the Redis presence (pkg/server/store/redis) and applies the same
// policy (presencetest holds both to one table); its one node never dies.
type MemoryPresence struct {
	store store.Store // the kick watermarks and revocations Attach reads, the watermarks Restore reads
	now   func() time.Time

	mu        sync.Mutex
	users     map[userKey][]store.Instance
	acks      map[instKey]time.Time // AckKick marks, until
	lastSweep time.Time
}

// MemoryNode is the Node of a MemoryPresence.
const MemoryNode = "local"

// NewMemoryPresence returns an empty MemoryPresence; st gives the kick
// watermarks (Attach, Restore), now the clock (nil: time.Now).
func NewMemoryPresence(st store.Store, now func() time.Time) *MemoryPresence {
	if now == nil {
		now = time.Now
	}
	return &MemoryPresence{store: st, now: now,
		users: map[userKey][]store.Instance{}, acks: map[instKey]time.Time{}}
}

// Node is MemoryNode.
func (m *MemoryPresence) Node() string { return MemoryNode }

// liveLocked is user k's entries that still count at now (UserSig not
// expired, not detached for longer than detachedFor) but inst's; the
// others are forgotten.
func (m *MemoryPresence) liveLocked(k userKey, now time.Time, detachedFor time.Duration, inst uint64) []store.Instance {
	return slices.DeleteFunc(m.users[k], func(o store.Instance) bool {
		return o.InstID == inst || !live(o, now, detachedFor)
	})
}

// live reports whether an entry counts at now: its UserSig has not expired
// and it is not detached for longer than detachedFor. An entry whose
// UserSig expired is no longer logged in (its socket, if any, gets
// 70001 at its next heartbeat): it counts against no limit and is
// kicked by nobody.
func live(in store.Instance, now time.Time, detachedFor time.Duration) bool {
	return now.Unix() <= in.Expires && (in.Detached.IsZero() || now.Sub(in.Detached) <= detachedFor)
}

// Attach applies p (policyVictims) to the user's live entries and records in.
func (m *MemoryPresence) Attach(ctx context.Context, in store.Instance, p store.Policy) ([]store.Victim, error) {
	now := m.now()
	k := userKey{in.App, in.User}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Under the lock: a REST kick writes its watermark, then lists the
	// instances, and a kick or logout revokes, then removes the instance
	// (each waits for the lock).
	reason, revoked, err := m.store.Revoked(ctx, in.App, in.InstID)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, &store.RevokedError{Reason: reason}
	}
	wm, err := m.store.KickWatermark(ctx, in.App, in.User)
	if err != nil {
		return nil, err
	}
	if store.A2Kicked(wm, in.LoginAt.UnixMilli()) {
		return []store.Victim{{Instance: in, KickType: wire.KickRESTAPI}}, nil
	}
	m.sweepLocked(now, p.DetachedFor)
	list := m.liveLocked(k, now, p.DetachedFor, in.InstID)
	victims := policyVictims(in.Platform, list, p)
	list = slices.DeleteFunc(list, func(o store.Instance) bool {
		return slices.ContainsFunc(victims, func(v store.Victim) bool { return v.InstID == o.InstID })
	})
	m.users[k] = append(list, in)
	return victims, nil
}

// Restore: see Presence.
func (m *MemoryPresence) Restore(ctx context.Context, in store.Instance, p store.Policy) (int, error) {
	wm, err := m.store.KickWatermark(ctx, in.App, in.User)
	if err != nil {
		return 0, err
	}
	now := m.now()
	k := userKey{in.App, in.User}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.users[k], func(o store.Instance) bool { return o.InstID == in.InstID })
	if i >= 0 && m.users[k][i].Node != in.Node {
		return 0, nil
	}
	if store.A2Kicked(wm, in.LoginAt.UnixMilli()) {
		if i >= 0 {
			setList(m.users, k, slices.Delete(m.users[k], i, i+1))
		}
		return wire.KickRESTAPI, nil
	}
	if i >= 0 {
		m.users[k][i] = in
		return 0, nil
	}
	list := m.liveLocked(k, now, p.DetachedFor, in.InstID)
	if t := restoreFits(in.Platform, list, p); t != 0 {
		setList(m.users, k, list)
		return t, nil
	}
	m.users[k] = append(list, in)
	return 0, nil
}

// setList stores list as m[k], or deletes k when list is empty.
func setList[K comparable, V any](m map[K][]V, k K, list []V) {
	if len(list) == 0 {
		delete(m, k)
	} else {
		m[k] = list
	}
}

// edit applies fn to the entry of inst, if any (keep false deletes it).
func (m *MemoryPresence) edit(app uint64, user string, inst uint64, fn func(*store.Instance) (keep bool)) {
	k := userKey{app, user}
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.users[k]
	if i := slices.IndexFunc(list, func(o store.Instance) bool { return o.InstID == inst }); i >= 0 && !fn(&list[i]) {
		setList(m.users, k, slices.Delete(list, i, i+1))
	}
}

// Detach: see Presence.
func (m *MemoryPresence) Detach(ctx context.Context, app uint64, user string, inst uint64, at time.Time) error {
	m.edit(app, user, inst, func(o *store.Instance) bool {
		if o.Node == MemoryNode {
			o.Detached = at
		}
		return true
	})
	return nil
}

// Remove: see Presence.
func (m *MemoryPresence) Remove(ctx context.Context, app uint64, user string, inst uint64) error {
	m.edit(app, user, inst, func(*store.Instance) bool { return false })
	return nil
}

// RemoveOwn: see Presence.
func (m *MemoryPresence) RemoveOwn(ctx context.Context, app uint64, user string, inst uint64) error {
	m.edit(app, user, inst, func(o *store.Instance) bool { return o.Node != MemoryNode })
	return nil
}

// Instances lists user's entries whose UserSig has not expired, by InstID.
func (m *MemoryPresence) Instances(ctx context.Context, app uint64, user string) ([]store.Instance, error) {
	now := m.now().Unix()
	m.mu.Lock()
	var out []store.Instance
	for _, o := range m.users[userKey{app, user}] {
		if now <= o.Expires {
			out = append(out, o)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b store.Instance) int { return cmp.Compare(a.InstID, b.InstID) })
	return out, nil
}

// RemoveInstances: see Presence.
func (m *MemoryPresence) RemoveInstances(ctx context.Context, app uint64, user string, insts []uint64) error {
	k := userKey{app, user}
	m.mu.Lock()
	defer m.mu.Unlock()
	setList(m.users, k, slices.DeleteFunc(m.users[k], func(o store.Instance) bool { return slices.Contains(insts, o.InstID) }))
	return nil
}

// AckKick: see Presence. One node has no revocation to expire the mark
// with: it lasts missedFor.
func (m *MemoryPresence) AckKick(ctx context.Context, app uint64, inst uint64) (bool, error) {
	now := m.now()
	k := instKey{app, inst}
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.acks[k]; ok && !now.After(until) {
		return true, nil
	}
	if len(m.acks) >= maxAcks {
		// A user looping login, kick, acknowledgement must not grow this
		// for a week: forget a sixteenth, any. A forgotten mark only
		// means that instance's next re-login is told its kick once more.
		n := maxAcks / 16
		for k := range m.acks {
			if n--; n < 0 {
				break
			}
			delete(m.acks, k)
		}
	}
	m.acks[k] = now.Add(missedFor)
	return false, nil
}

// maxAcks bounds the kick acknowledgements kept (about 20 MB at most).
const maxAcks = 1 << 18

// missedFor bounds how long a kick acknowledgement is remembered in
// memory: an A2Key re-login after that is refused all the same (revoked),
// only without the kick pushed once more.
const missedFor = 7 * 24 * time.Hour

// sweepLocked forgets the entries that no longer count and the expired
// acknowledgements, at most once per every.
func (m *MemoryPresence) sweepLocked(now time.Time, every time.Duration) {
	if now.Sub(m.lastSweep) < every {
		return
	}
	m.lastSweep = now
	for k, until := range m.acks {
		if now.After(until) {
			delete(m.acks, k)
		}
	}
	for k := range m.users {
		setList(m.users, k, m.liveLocked(k, now, every, 0))
	}
}
