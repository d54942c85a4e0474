package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// hubStep is one operation on a hub: a login of instance inst of user on
// socket c (victims: the instances the presence displaced), a socket
// closing, a kick, a logout, an expiry.
type hubStep struct {
	op      string // attach, release, kick, logout, expire
	c       int    // socket
	user    string
	inst    uint64
	victims []uint64
	short   bool // attach: its UserSig runs out within the second
}

// hubWant is the hub after the steps.
type hubWant struct {
	holders  map[uint64][]int    // held instance → its sockets, the primary first
	users    map[string][]uint64 // user → the instances listed, held or detached
	detached []uint64            // listed without a holder
	replaced uint64              // the instance the last attach replaced
	released uint64              // the instance the last release detached
	kicked   []int               // the sockets the last kick returned, or a logout's or a replacing attach's other holders
}

const hubApp = 1400000001

// checkHub holds h to its invariants: every holder's link back is its
// entry, every linked socket is among its entry's holders, an instance
// held is held under its own key, a listed instance without holders is
// detached since a time, and no entry keeps a socket that left it.
func checkHub(t *testing.T, h *hub, conns []*conn) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for ik, e := range h.held {
		if e.ik() != ik || len(e.holders) == 0 {
			t.Fatalf("held[%v] is %v with %d holders", ik, e.ik(), len(e.holders))
		}
		for _, c := range e.holders {
			if c.held != e {
				t.Fatalf("a holder of %d links back to %v", e.InstID, c.held)
			}
		}
	}
	for i, c := range conns {
		if c.held != nil && !slices.Contains(c.held.holders, c) {
			t.Fatalf("socket %d links to %d, which does not list it", i, c.held.InstID)
		}
	}
	for _, list := range h.users {
		for _, e := range list {
			if len(e.holders) == 0 && (e.detached == 0 || e.one[0] != nil) {
				t.Fatalf("listed instance %d has no holder but no detach time, or keeps a closed socket", e.InstID)
			}
			if e.one[0] != nil && !slices.Contains(e.holders, e.one[0]) {
				t.Fatalf("instance %d keeps a socket that no longer holds it", e.InstID)
			}
		}
	}
}

func TestHubInvariants(t *testing.T) {
	a := func(c int, user string, inst uint64, victims ...uint64) hubStep {
		return hubStep{op: "attach", c: c, user: user, inst: inst, victims: victims}
	}
	rel := func(c int) hubStep { return hubStep{op: "release", c: c} }
	cases := []struct {
		name  string
		steps []hubStep
		want  hubWant
	}{
		{"a login holds", []hubStep{a(0, "u", 1)},
			hubWant{holders: map[uint64][]int{1: {0}}, users: map[string][]uint64{"u": {1}}}},
		{"release of the last holder detaches", []hubStep{a(0, "u", 1), rel(0)},
			hubWant{users: map[string][]uint64{"u": {1}}, detached: []uint64{1}, released: 1}},
		{"a second socket of one instance becomes the primary, the first stays", []hubStep{a(0, "u", 1), a(1, "u", 1)},
			hubWant{holders: map[uint64][]int{1: {1, 0}}, users: map[string][]uint64{"u": {1}}}},
		{"the primary closing: the last holder takes its place", []hubStep{a(0, "u", 1), a(1, "u", 1), a(2, "u", 1), rel(2)},
			hubWant{holders: map[uint64][]int{1: {0, 1}}, users: map[string][]uint64{"u": {1}}}},
		{"a holder that is not the primary closing", []hubStep{a(0, "u", 1), a(1, "u", 1), a(2, "u", 1), rel(1)},
			hubWant{holders: map[uint64][]int{1: {2, 0}}, users: map[string][]uint64{"u": {1}}}},
		{"a reconnect re-attaches a detached instance", []hubStep{a(0, "u", 1), rel(0), a(1, "u", 1)},
			hubWant{holders: map[uint64][]int{1: {1}}, users: map[string][]uint64{"u": {1}}, released: 1}},
		{"another instance on the same socket replaces the first, and returns its other holders", []hubStep{a(0, "u", 1), a(1, "u", 1), a(0, "v", 2)},
			hubWant{holders: map[uint64][]int{2: {0}}, users: map[string][]uint64{"v": {2}}, replaced: 1, kicked: []int{1}}},
		{"a victim leaves the list, its holders stay until its kick", []hubStep{a(0, "u", 1), a(1, "u", 2, 1)},
			hubWant{holders: map[uint64][]int{1: {0}, 2: {1}}, users: map[string][]uint64{"u": {2}}}},
		{"a kick returns every holder and unlinks them", []hubStep{a(0, "u", 1), a(1, "u", 1), a(2, "u", 2, 1), {op: "kick", user: "u", inst: 1}},
			hubWant{holders: map[uint64][]int{2: {2}}, users: map[string][]uint64{"u": {2}}, kicked: []int{1, 0}}},
		{"a kick of a detached instance forgets it", []hubStep{a(0, "u", 1), a(1, "u", 2), rel(0), {op: "kick", user: "u", inst: 1}},
			hubWant{holders: map[uint64][]int{2: {1}}, users: map[string][]uint64{"u": {2}}, released: 1}},
		{"a socket released after its kick detaches nothing", []hubStep{a(0, "u", 1), {op: "kick", user: "u", inst: 1}, rel(0)},
			hubWant{kicked: []int{0}}},
		{"a logout takes the socket's instance off all its holders, and returns the others", []hubStep{a(0, "u", 1), a(1, "u", 1), {op: "logout", c: 1}},
			hubWant{kicked: []int{0}}},
		{"a logout by a2 on a socket holding nothing", []hubStep{a(0, "u", 1), rel(0), {op: "logout", c: 1, user: "u", inst: 1}},
			hubWant{released: 1}},
		{"an expired instance leaves", []hubStep{{op: "attach", c: 0, user: "u", inst: 1, short: true}, a(1, "u", 2), {op: "expire", c: 0}},
			hubWant{holders: map[uint64][]int{2: {1}}, users: map[string][]uint64{"u": {2}}}},
	}
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(time.Minute)
			conns := make([]*conn, 3)
			for i := range conns {
				conns[i] = &conn{}
			}
			idx := func(c *conn) int { return slices.Index(conns, c) }
			var replaced, released uint64
			var kicked []int
			for _, st := range tc.steps {
				now = now.Add(time.Second)
				switch st.op {
				case "attach":
					var vs []store.Victim
					for _, v := range st.victims {
						vs = append(vs, store.Victim{Instance: store.Instance{App: hubApp, User: st.user, InstID: v}})
					}
					exp := now.Unix() + 3600
					if st.short {
						exp = now.Unix()
					}
					e := &entry{Instance: store.Instance{App: hubApp, User: st.user, InstID: st.inst, Platform: wire.PlatformWeb, Expires: exp}}
					replaced, kicked = 0, nil
					r, others, _ := h.attach(conns[st.c], e, vs, now)
					if r != nil {
						replaced = r.InstID
					}
					for _, o := range others {
						kicked = append(kicked, idx(o))
					}
				case "release":
					released = 0
					if e := h.release(conns[st.c], now); e != nil {
						released = e.InstID
					}
				case "kick":
					kicked = nil
					for _, c := range h.kick(hubApp, st.user, st.inst) {
						kicked = append(kicked, idx(c))
					}
				case "logout":
					_, others := h.logout(conns[st.c], userKey{hubApp, st.user}, st.inst)
					kicked = nil
					for _, o := range others {
						kicked = append(kicked, idx(o))
					}
				case "expire":
					if exp, e := h.expired(conns[st.c], now.Add(time.Second)); !exp || e == nil {
						t.Fatalf("expire: %v %v", exp, e)
					}
				}
				checkHub(t, h, conns)
			}
			got := hubWant{holders: map[uint64][]int{}, users: map[string][]uint64{}, replaced: replaced, released: released, kicked: kicked}
			for ik, e := range h.held {
				for _, c := range e.holders {
					got.holders[ik.inst] = append(got.holders[ik.inst], idx(c))
				}
			}
			for k, list := range h.users {
				for _, e := range list {
					got.users[k.user] = append(got.users[k.user], e.InstID)
					if len(e.holders) == 0 {
						got.detached = append(got.detached, e.InstID)
					}
				}
			}
			if tc.want.holders == nil {
				tc.want.holders = map[uint64][]int{}
			}
			if tc.want.users == nil {
				tc.want.users = map[string][]uint64{}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("hub %+v\nwant %+v", got, tc.want)
			}
			// The readers agree.
			for inst, want := range tc.want.holders {
				if !h.holds(instKey{hubApp, inst}, nil) || !h.holds(instKey{hubApp, inst}, h.held[instKey{hubApp, inst}]) {
					t.Fatalf("holds(%d) is false, want %d holders", inst, len(want))
				}
			}
			if held, _ := h.counts(); held != len(tc.want.holders) || len(h.heldEntries()) != held {
				t.Fatalf("counts: %d held, want %d", held, len(tc.want.holders))
			}
		})
	}
}

// take lists the user's instances, detached ones with their time; a
// detached instance is gone for good after detachedFor, swept by a later
// attach.
func TestHubGone(t *testing.T) {
	h := newHub(time.Minute)
	now := time.Unix(1_800_000_000, 0)
	c0, c1 := &conn{}, &conn{}
	h.attach(c0, &entry{Instance: store.Instance{App: hubApp, User: "u", InstID: 1}}, nil, now)
	h.attach(c1, &entry{Instance: store.Instance{App: hubApp, User: "u", InstID: 2}}, nil, now)
	h.release(c0, now)
	later := now.Add(2 * time.Minute)
	got := h.take(userKey{hubApp, "u"})
	if len(got) != 2 || !got[0].Detached.Equal(now) || !got[1].Detached.IsZero() {
		t.Fatalf("take: %+v, want 1 detached since now and 2 held", got)
	}
	h.attach(c1, &entry{Instance: store.Instance{App: hubApp, User: "v", InstID: 3}}, nil, now)
	h.release(c1, now)
	h.attach(c0, &entry{Instance: store.Instance{App: hubApp, User: "w", InstID: 4}}, nil, later)
	if _, users := h.counts(); users != 1 {
		t.Fatalf("after the sweep: %d users, want 1 (w)", users)
	}
}

// A kick of an instance being attached on a socket is kept for that
// attach, also when another socket here holds the instance (an old one of
// the same session) and gets the push: the new socket would otherwise
// hold the kicked instance, never told.
func TestHubKeepsKickForAttach(t *testing.T) {
	h := newHub(time.Minute)
	now := time.Unix(1_800_000_000, 0)
	a, b := &conn{}, &conn{}
	x := store.Instance{App: hubApp, User: "u", InstID: 7}
	h.attach(a, &entry{Instance: x}, nil, now)
	h.beginAttach(instKey{hubApp, 7}, now)
	k := Kick{App: hubApp, User: "u", InstID: 7, Type: 1}
	if got := h.kickOrKeep(k, now); len(got) != 1 || got[0] != a {
		t.Fatalf("kick pushed to %v, want the holder a", got)
	}
	if _, _, kept := h.attach(b, &entry{Instance: x}, nil, now); kept == nil || *kept != k {
		t.Fatalf("attach of b: kept %v, want the kick", kept)
	}
	// No mark for an instance nobody attaches.
	if got := h.kickOrKeep(Kick{App: hubApp, User: "u", InstID: 8}, now); len(got) != 0 || len(h.attaching) != 0 {
		t.Fatalf("a kick of an instance nobody attaches: %v, %v", got, h.attaching)
	}
}

// A kick that found its instance neither held nor being attached here is
// kept for recentKickFor: a re-login of the instance (beginAttach) within
// it gets it, to be refused before its presence write (which would kick
// its kicker), a second one too; a later one does not. A kick kept for an
// attach whose presence write failed is kept for its retry. The list is
// bounded, the oldest first out.
func TestHubRecentKick(t *testing.T) {
	h := newHub(time.Minute)
	now := time.Unix(1_800_000_000, 0)
	k := Kick{App: hubApp, User: "u", InstID: 9, Type: 1}
	if got := h.kickOrKeep(k, now); len(got) != 0 {
		t.Fatalf("pushed to %v", got)
	}
	ik := instKey{hubApp, 9}
	for _, after := range []time.Duration{time.Second, 2 * time.Second} {
		if typ, ok := h.beginAttach(ik, now.Add(after)); !ok || typ != k.Type {
			t.Fatalf("re-login %s after the kick: %d, %v", after, typ, ok)
		}
	}
	if len(h.attaching) != 0 {
		t.Fatalf("a refused re-login was marked: %v", h.attaching)
	}
	if _, ok := h.beginAttach(ik, now.Add(recentKickFor)); ok {
		t.Fatalf("re-login %s after the kick: refused", recentKickFor)
	}
	h.endAttach(ik, now.Add(recentKickFor))
	ik2, k2 := instKey{hubApp, 11}, Kick{App: hubApp, User: "u", InstID: 11, Type: 2}
	h.beginAttach(ik2, now)
	h.kickOrKeep(k2, now)
	h.endAttach(ik2, now) // its presence write failed
	if typ, ok := h.beginAttach(ik2, now.Add(time.Second)); !ok || typ != k2.Type {
		t.Fatalf("the retry of a failed attach: %d, %v", typ, ok)
	}
	h = newHub(time.Minute)
	for i := range recentKickMax + 100 {
		h.kickOrKeep(Kick{App: hubApp, User: "v", InstID: uint64(1000 + i)}, now.Add(time.Duration(i)))
	}
	if n := len(h.recent); n > recentKickMax {
		t.Fatalf("%d recent kicks kept, at most %d", n, recentKickMax)
	}
	for _, c := range []struct {
		inst uint64
		kept bool
	}{{1000, false}, {1099, false}, {1100, true}, {1000 + recentKickMax + 99, true}} {
		if _, ok := h.recent[instKey{hubApp, c.inst}]; ok != c.kept {
			t.Errorf("kick of %d kept: %v, want %v", c.inst, ok, c.kept)
		}
	}
	// Kicks of one instance over and over: the order is bounded too.
	for i := range recentKickMax + 100 {
		h.kickOrKeep(Kick{App: hubApp, User: "w", InstID: 5}, now.Add(time.Second+time.Duration(i)))
	}
	if len(h.recentOrder) > recentKickMax || len(h.recent) > recentKickMax {
		t.Fatalf("%d in the order, %d kicks kept", len(h.recentOrder), len(h.recent))
	}
	if _, ok := h.beginAttach(instKey{hubApp, 5}, now.Add(2*time.Second)); !ok {
		t.Fatal("the kicked instance's re-login was not refused")
	}
}

// Logins, closes and kicks of a few instances on many sockets at once
// (under -race): the invariants hold throughout and at the end.
func TestHubConcurrent(t *testing.T) {
	h := newHub(time.Minute)
	conns := make([]*conn, 16)
	for i := range conns {
		conns[i] = &conn{}
	}
	now := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for j := range 300 {
				inst := uint64((i+j)%4 + 1)
				user := fmt.Sprint("u", inst%2)
				switch j % 5 {
				case 0, 1, 2:
					h.attach(c, &entry{Instance: store.Instance{App: hubApp, User: user, InstID: inst, Expires: now.Unix() + 3600}}, nil, now)
				case 3:
					h.release(c, now)
				case 4:
					h.kick(hubApp, user, inst)
				}
				if j%50 == 0 {
					h.holds(instKey{hubApp, inst}, nil)
					h.heldEntries()
					h.counts()
				}
			}
		})
	}
	wg.Wait()
	checkHub(t, h, conns)
	for _, c := range conns {
		h.release(c, now)
	}
	checkHub(t, h, conns)
	if held, _ := h.counts(); held != 0 {
		t.Fatalf("every socket released: %d instances still held", held)
	}
}

// closeIdle closes a logged-out instance's other sockets that hold
// nothing, but not one whose wslogin is being handled: it holds nothing
// until its attach, and was closed mid-login (the review).
func TestCloseIdleSparesALoginInFlight(t *testing.T) {
	serverSide := make(chan *websocket.Conn, 2)
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := up.Upgrade(w, r, nil); err == nil {
			serverSide <- ws
		}
	}))
	defer ts.Close()
	var clients [2]*websocket.Conn
	conns := make([]*conn, 2)
	for i := range conns {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		clients[i] = ws
		conns[i] = &conn{ws: <-serverSide}
		defer conns[i].ws.Close()
	}
	conns[1].loggingIn.Store(true)
	newHub(time.Minute).closeIdle(conns)
	for i, want := range []bool{true, false} {
		clients[i].SetReadDeadline(time.Now().Add(time.Second))
		_, _, err := clients[i].ReadMessage()
		var ne net.Error
		if closed := !(errors.As(err, &ne) && ne.Timeout()); closed != want {
			t.Errorf("socket %d (logging in: %v): closed %v, want %v (%v)", i, i == 1, closed, want, err)
		}
	}
}

// A REST kick is not kept in recent: its watermark, written before its
// publish, covers the instance's re-login, which is its own victim in the
// attach and answered before its push (TestRESTKickDuringLogin); kept, a
// re-login past the watermark check was refused instead, by timing.
func TestHubRecentKeepsNoRESTKick(t *testing.T) {
	h := newHub(time.Minute)
	now := time.Unix(1_800_000_000, 0)
	h.kickOrKeep(Kick{App: hubApp, User: "u", InstID: 9, Type: wire.KickRESTAPI}, now)
	if _, ok := h.beginAttach(instKey{hubApp, 9}, now.Add(time.Second)); ok {
		t.Fatal("a re-login after a REST kick was refused")
	}
}
