package server

import (
	"maps"
	"slices"
	"sync"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// The hub is this node's registry: its instances of each user (held by a
// socket, or detached for up to the heartbeat timeout so that a reconnect
// finds them) and which of its sockets hold each. It alone writes that
// (the users' lists, an instance's holders, a socket's link back to the
// instance it holds), under its own lock, which its methods take and
// nothing else does. The policy is the presence's (policy.go); kicks are
// delivered by kick.go, which asks the hub for the holders.
//
// One lock, not shards: a socket may move from one instance to another
// (a login of another user on it), which would take two shards at once.
// Its critical sections are short and touch no store.
type hub struct {
	mu          sync.Mutex
	users       map[userKey][]*entry // each user's instances here, held or detached
	held        map[instKey]*entry   // the instances a socket holds
	detachedFor time.Duration        // a detached instance older than this is gone for good
	lastSweep   time.Time
	// attaching are the instances whose login is between the presence's
	// attach and this hub's, each with the kick that came meanwhile, if
	// one did (kickOrKeep): nobody here held it yet to push it to, and
	// the login would have been answered OK, revoked and never told.
	attaching map[instKey]*Kick
	// recent are the bus's kicks of the last recentKickFor that found the
	// instance neither held nor being attached here, oldest first in
	// recentOrder. An a2 re-login whose kick's message came before its
	// mark, and whose revocation (written after the publish) is not there
	// yet, is refused from here (beginAttach) before its presence write,
	// which would have kicked its kicker.
	recent      map[instKey]recentKick
	recentOrder []recentAt
}

// recentKick is a kick of recent: its KickType (all a refusal needs; not
// the user, a name from the bus) and when it came.
type recentKick struct {
	kickType int
	at       time.Time
}

// recentAt is an entry of recentOrder.
type recentAt struct {
	ik instKey
	at time.Time
}

const (
	// recentKickFor is how long a kick is kept in recent: the kicker
	// writes the revocation within its store timeout of the publish.
	recentKickFor = 2 * storeTimeout
	// recentKickMax bounds recentOrder, and so recent (a flood of kicks
	// of instances held elsewhere, or of one instance): past it the
	// oldest go first. An entry is 48 bytes in the map and 40 in the
	// order, about 100 with the map's share: 6.5 MB at most.
	recentKickMax = 1 << 16
)

// entry is one instance in the hub. Its Instance is as the login wrote it
// and never changes after attach (Detached stays zero), so that anyone may
// read it without the hub's lock; the hub's own fields below are guarded
// by it.
type entry struct {
	store.Instance
	// holders are the open sockets holding the instance, the primary
	// first: an a2 re-login of an instance that a socket already holds (a
	// `watch` and a `whoami --check` of one profile, two watches) adds a
	// holder instead of silently taking the instance away. Kicks reach
	// every holder; when the primary closes, the last one takes its place.
	// Each holder's conn.held is this entry.
	holders []*conn
	one     [1]*conn // holders' first array: most instances have one socket
	// detached is when its last holder went (unix ns, the server's clock);
	// 0 while held.
	detached int64
}

func newHub(detachedFor time.Duration) *hub {
	return &hub{users: map[userKey][]*entry{}, held: map[instKey]*entry{}, detachedFor: detachedFor,
		attaching: map[instKey]*Kick{}, recent: map[instKey]recentKick{}}
}

func (e *entry) ik() instKey { return instKey{e.App, e.InstID} }
func (e *entry) uk() userKey { return userKey{e.App, e.User} }

// gone reports whether e is detached for longer than detachedFor.
func (h *hub) gone(e *entry, now time.Time) bool {
	return len(e.holders) == 0 && now.Sub(time.Unix(0, e.detached)) > h.detachedFor
}

// attach makes socket c the primary holder of e (a login): sockets already
// holding the same instance stay holders. e leaves victims, the instances
// the presence displaced, out of the user's list; their holders stay
// theirs until the kick reaches them (kick). It returns the instance c
// held before, if another one: it is out of the hub (to revoke as logged
// out). It ends e's beginAttach mark and returns the kick kept meanwhile,
// if any: from now on a kick finds e's holders.
func (h *hub) attach(c *conn, e *entry, victims []store.Victim, now time.Time) (replaced *entry, others []*conn, kept *Kick) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kept = h.attaching[e.ik()]
	delete(h.attaching, e.ik())
	h.sweepLocked(now)
	if old := c.held; old != nil && old.InstID != e.InstID {
		others = othersThan(old.holders, c)
		h.removeLocked(old)
		replaced = old
	}
	c.pendingExpired = false
	e.one[0], e.detached = c, 0
	e.holders = e.one[:]
	if prev := h.held[e.ik()]; prev != nil {
		// The same instance again (a reconnect, or a second socket of the
		// same session): its open sockets stay holders.
		for _, oc := range prev.holders {
			if oc != c {
				e.holders = append(e.holders, oc)
			}
		}
		prev.holders = nil
	}
	for _, hc := range e.holders {
		hc.held = e
	}
	k := e.uk()
	list := h.users[k][:0:0]
	for _, o := range h.users[k] {
		if o.InstID != e.InstID && !h.gone(o, now) &&
			!slices.ContainsFunc(victims, func(v store.Victim) bool { return v.InstID == o.InstID }) {
			list = append(list, o)
		}
	}
	h.users[k] = append(list, e)
	h.held[e.ik()] = e
	return replaced, others, kept
}

// release takes socket c off the instance it holds (it closed). The last
// holder leaves the instance detached since now: it returns it then.
func (h *hub) release(c *conn, now time.Time) (detached *entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := c.held
	if e == nil {
		return nil
	}
	c.held = nil
	i := slices.Index(e.holders, c)
	if e.one[0] == c {
		e.one[0] = nil // a detached entry stays listed: not a closed socket with it
	}
	switch n := len(e.holders); {
	case i < 0:
		return nil
	case i == 0 && n > 1:
		// Another open socket holds the instance: it takes over.
		e.holders[0] = e.holders[n-1]
		e.holders[n-1] = nil
		e.holders = e.holders[:n-1]
	case n > 1:
		e.holders = slices.Delete(e.holders, i, i+1)
	default:
		e.holders, e.detached = nil, now.UnixNano()
		if h.held[e.ik()] == e {
			delete(h.held, e.ik())
		}
		return e
	}
	return nil
}

// kick takes instance inst of user out of the hub (it was kicked) and
// returns the sockets that held it, to push the kick to.
func (h *hub) kick(app uint64, user string, inst uint64) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.kickLocked(app, user, inst)
}

// kickOrKeep is kick for k, a kick (not a logout) from the bus, at now;
// when the instance is being attached here (beginAttach), k is also kept
// for that login, which delivers it once attached (attach returns it):
// its socket is no holder yet, whether or not others (an old socket of
// the same instance) are, and would hold the kicked instance, never told.
// A kick that finds nobody is kept in recent (but a REST kick).
func (h *hub) kickOrKeep(k Kick, now time.Time) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	holders := h.kickLocked(k.App, k.User, k.InstID)
	ik := instKey{k.App, k.InstID}
	if _, ok := h.attaching[ik]; ok {
		h.attaching[ik] = &k
	} else if len(holders) == 0 && k.Type != wire.KickRESTAPI {
		// Not a REST kick: its watermark, written before its publish,
		// refuses the instance's A2Key (loginA2, the attach); a login
		// past that check is its own victim in the attach, kicked
		// after its reply (TestRESTKickDuringLogin).
		h.rememberLocked(k, now)
	}
	return holders
}

// rememberLocked puts k in recent at now.
func (h *hub) rememberLocked(k Kick, now time.Time) {
	h.trimRecentLocked(now, recentKickMax-1)
	ik := instKey{k.App, k.InstID}
	h.recent[ik] = recentKick{k.Type, now}
	h.recentOrder = append(h.recentOrder, recentAt{ik, now})
}

// trimRecentLocked drops the kicks expired at now and, past max, the
// oldest: kicks come in time order, so both are at the front of
// recentOrder.
func (h *hub) trimRecentLocked(now time.Time, max int) {
	for len(h.recentOrder) > 0 && (len(h.recentOrder) > max || now.Sub(h.recentOrder[0].at) >= recentKickFor) {
		r := h.recentOrder[0]
		h.recentOrder = h.recentOrder[1:]
		if cur, ok := h.recent[r.ik]; ok && cur.at.Equal(r.at) {
			delete(h.recent, r.ik) // not a later kick of it
		}
	}
}

// beginAttach marks ik as being attached here, before the presence's
// attach: from then on a kick of it is kept for the attach too. A kick of
// it in recent (of the last recentKickFor, at now) is reported instead
// (its KickType), and nothing marked: the login is refused as revoked,
// kicking nobody. It stays in recent, for another re-login of the
// instance.
func (h *hub) beginAttach(ik instKey, now time.Time) (kickType int, kicked bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.recent[ik]; ok && now.Sub(r.at) < recentKickFor {
		return r.kickType, true
	}
	h.attaching[ik] = nil
	return 0, false
}

// endAttach ends ik's mark after the presence's attach failed (attach
// ends it itself); a kick kept meanwhile goes to recent, for the retry.
func (h *hub) endAttach(ik instKey, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if k := h.attaching[ik]; k != nil {
		h.rememberLocked(*k, now)
	}
	delete(h.attaching, ik)
}

func (h *hub) kickLocked(app uint64, user string, inst uint64) []*conn {
	var holders []*conn
	if e := h.held[instKey{app, inst}]; e != nil {
		holders = e.holders
		h.removeLocked(e)
	}
	if e := h.findLocked(userKey{app, user}, inst); e != nil {
		h.removeLocked(e) // detached here
	}
	return holders
}

// findLocked is instance inst in user k's list, or nil.
func (h *hub) findLocked(k userKey, inst uint64) *entry {
	if i := slices.IndexFunc(h.users[k], func(o *entry) bool { return o.InstID == inst }); i >= 0 {
		return h.users[k][i]
	}
	return nil
}

// removeLocked takes e out of the hub and off its sockets (kicked, logged
// out, expired, replaced); a no-op when it is not there any more.
func (h *hub) removeLocked(e *entry) {
	h.forgetLocked(e)
	for _, c := range e.holders {
		if c.held == e {
			c.held = nil
		}
	}
	e.holders = nil
	if h.held[e.ik()] == e {
		delete(h.held, e.ik())
	}
}

// forgetLocked takes e out of its user's list only: its holders stay until
// its kick reaches them.
func (h *hub) forgetLocked(e *entry) {
	setList(h.users, e.uk(), slices.DeleteFunc(h.users[e.uk()], func(o *entry) bool { return o == e }))
}

// logout takes out of the hub the instance socket c holds or, if it holds
// none, instance inst of user k (a logout sent again after a reconnect),
// and returns it, with its holders other than c; nil if neither is here.
func (h *hub) logout(c *conn, k userKey, inst uint64) (e *entry, others []*conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e = c.held
	if e == nil {
		e = h.findLocked(k, inst)
	}
	if e != nil {
		others = othersThan(e.holders, c)
		h.removeLocked(e)
	}
	return e, others
}

// othersThan is a copy of holders without c.
func othersThan(holders []*conn, c *conn) []*conn {
	return slices.DeleteFunc(slices.Clone(holders), func(o *conn) bool { return o == c })
}

// closeIdle closes the sockets of conns that still hold no instance: a
// logged-out instance's other holders (endLoggedOut), once it is revoked.
// One that logged in again meanwhile (a new instance, another user), or
// whose wslogin is being handled, is left alone.
func (h *hub) closeIdle(conns []*conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range conns {
		if c.held == nil && !c.loggingIn.Load() {
			c.ws.Close()
		}
	}
}

// take takes user k's instances out of the hub's list for a REST kick
// and returns them, Detached set for those without a socket; their holders
// stay until the kick reaches them.
func (h *hub) take(k userKey) []store.Instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]store.Instance, len(h.users[k]))
	for i, o := range h.users[k] {
		out[i] = o.Instance
		if o.detached != 0 {
			out[i].Detached = time.Unix(0, o.detached)
		}
	}
	delete(h.users, k)
	return out
}

// forget takes instance inst of user k out of the user's list for a kick
// and returns it (nil if it is not there); its holders stay until the
// kick reaches them.
func (h *hub) forget(k userKey, inst uint64) *entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.findLocked(k, inst)
	if e != nil {
		h.forgetLocked(e)
	}
	return e
}

// expired reports whether socket c's next heartbeat is answered 70001: its
// re-login was refused as expired, or the instance it holds has expired at
// now (then it is out of the hub, and returned).
func (h *hub) expired(c *conn, now time.Time) (bool, *entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.pendingExpired {
		c.pendingExpired = false
		return true, nil
	}
	if e := c.held; e != nil && now.Unix() > e.Expires {
		h.removeLocked(e)
		return true, e
	}
	return false, nil
}

// expireNext makes c's next heartbeat answer 70001 (its A2Key expired).
func (h *hub) expireNext(c *conn) {
	h.mu.Lock()
	c.pendingExpired = true
	h.mu.Unlock()
}

// holds reports whether e is the instance a socket holds for its key: it
// was not released, kicked or logged in again meanwhile. A nil e asks
// whether any entry of ik is held.
func (h *hub) holds(ik instKey, e *entry) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.held[ik]
	return cur != nil && (e == nil || cur == e)
}

// holdsOther reports whether socket c holds an instance other than ik
// now (it logged in again after a kick of ik found it).
func (h *hub) holdsOther(c *conn, ik instKey) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.held != nil && c.held.ik() != ik
}

// heldEntries are the instances sockets hold now.
func (h *hub) heldEntries() []*entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(maps.Values(h.held))
}

// counts are how many instances sockets hold and how many users the hub
// lists.
func (h *hub) counts() (held, users int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held), len(h.users)
}

// read calls fn with the users' lists under the hub's lock; fn only reads.
func (h *hub) read(fn func(users map[userKey][]*entry)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h.users)
}

// sweepLocked forgets detached instances older than detachedFor, at most
// once per detachedFor.
func (h *hub) sweepLocked(now time.Time) {
	if now.Sub(h.lastSweep) < h.detachedFor {
		return
	}
	h.lastSweep = now
	for k, list := range h.users {
		setList(h.users, k, slices.DeleteFunc(list, func(o *entry) bool { return h.gone(o, now) }))
	}
	h.trimRecentLocked(now, recentKickMax)
}
