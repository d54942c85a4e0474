// Package presencetest is the conformance suite of server.Presence: the
// multi-instance policy and the list's life (web instances, devices,
// expired and long-detached entries, kicks, acknowledgements, restores,
// node loss), written once. server.MemoryPresence runs it in pkg/server's
// tests and the Redis presence (its policy in Lua) in pkg/server/cluster's,
// against a real redis-server: the suite is what keeps the two equal. It
// is one file over the ~450 lines of the others for storetest's reason:
// one table of the contract, case after case.
package presencetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"chatctl/pkg/server"
	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// Harness is one fresh, empty presence for a test.
type Harness struct {
	// Nodes are the presences of the nodes sharing the state (at least
	// one; MemoryPresence has one). Each Node() is different.
	Nodes []server.Presence
	// Revoke records instance inst's revocation until then, as the store
	// does for a kick (AckKick records only while one runs, on Redis).
	Revoke func(app, inst uint64, until time.Time)
	// SetWatermark records a REST kick of user at unix ms (Restore).
	SetWatermark func(app uint64, user string, ms int64)
	// Kill makes node i dead to the others (its heartbeat gone, nothing
	// cleaned up); nil when the implementation's one node cannot die.
	Kill func(i int)
}

// Run runs the suite; newHarness returns a fresh, empty presence.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("Policy", func(t *testing.T) { testPolicy(t, newHarness(t)) })
	t.Run("GoneEntriesDoNotCount", func(t *testing.T) { testGone(t, newHarness(t)) })
	t.Run("Detach", func(t *testing.T) { testDetach(t, newHarness(t)) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, newHarness(t)) })
	t.Run("AckKick", func(t *testing.T) { testAck(t, newHarness(t)) })
	t.Run("Restore", func(t *testing.T) { testRestore(t, newHarness(t)) })
	t.Run("AttachAfterWatermark", func(t *testing.T) { testAttachAfterWatermark(t, newHarness(t)) })
	t.Run("AttachRevoked", func(t *testing.T) { testAttachRevoked(t, newHarness(t)) })
	t.Run("NodeLoss", func(t *testing.T) {
		h := newHarness(t)
		if h.Kill == nil || len(h.Nodes) < 2 {
			t.Skip("one node that cannot die")
		}
		testNodeLoss(t, h)
	})
}

const (
	app                 = 1
	web                 = wire.PlatformWeb
	iphone              = wire.PlatformIPhone
	pc                  = wire.PlatformPC
	acct, dev, restKick = wire.KickMultipleAccount, wire.KickMultipleDevice, wire.KickRESTAPI
)

var ctx = context.Background()

func policy(web int, single bool) store.Policy {
	return store.Policy{WebInstances: web, SingleDevice: single, DetachedFor: time.Minute}
}

// node is h's node i, the nodes taken in turn when there are fewer.
func (h Harness) node(i int) server.Presence { return h.Nodes[i%len(h.Nodes)] }

func inst(p server.Presence, id uint64, plat wire.Platform, loginAt time.Time) store.Instance {
	return store.Instance{App: app, InstID: id, Node: p.Node(), Platform: plat, LoginAt: loginAt,
		Expires: time.Now().Add(time.Hour).Unix()}
}

// attach attaches in as user's and returns its victims, each checked to
// be one of user's.
func attach(t *testing.T, p server.Presence, user string, in store.Instance, pol store.Policy) map[uint64]int {
	t.Helper()
	in.User = user
	vs, err := p.Attach(ctx, in, pol)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{}
	for _, v := range vs {
		if v.App != app || v.User != user {
			t.Fatalf("victim %d is %d/%q's, want %d/%q's", v.InstID, v.App, v.User, app, user)
		}
		got[v.InstID] = v.KickType
	}
	return got
}

// ids is what each node lists for user, which must be the same on all.
func ids(t *testing.T, h Harness, user string) []uint64 {
	t.Helper()
	var first []uint64
	for i, p := range h.Nodes {
		ins, err := p.Instances(ctx, app, user)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, in := range ins {
			if in.App != app || in.User != user {
				t.Fatalf("node %d lists instance %d as %d/%q's, want %d/%q's", i, in.InstID, in.App, in.User, app, user)
			}
			got = append(got, in.InstID)
		}
		if i > 0 && !slices.Equal(got, first) {
			t.Fatalf("node %d lists %v, node 0 %v", i, got, first)
		}
		first = got
	}
	return first
}

func wantIDs(t *testing.T, h Harness, user string, want ...uint64) {
	t.Helper()
	if got := ids(t, h, user); !slices.Equal(got, want) {
		t.Fatalf("%s: instances %v, want %v", user, got, want)
	}
}

// The policy's table: each step is a login on a node (taken in turn), and
// its victims.
func testPolicy(t *testing.T, h Harness) {
	type login struct {
		inst uint64
		plat wire.Platform
	}
	type want map[uint64]int
	cases := []struct {
		name   string
		policy store.Policy
		steps  []login
		wants  []want
	}{
		{"web limit 1 kicks the older", policy(1, false),
			[]login{{1, web}, {2, web}}, []want{{}, {1: acct}}},
		{"web limit 2 kicks the oldest", policy(2, false),
			[]login{{1, web}, {2, web}, {3, web}}, []want{{}, {}, {1: acct}}},
		{"web limit 3 keeps three", policy(3, false),
			[]login{{1, web}, {2, web}, {3, web}, {4, web}}, []want{{}, {}, {}, {1: acct}}},
		{"same platform kicks multipleDevice", policy(1, false),
			[]login{{1, iphone}, {2, iphone}}, []want{{}, {1: dev}}},
		{"multi: platforms coexist", policy(1, false),
			[]login{{1, web}, {2, iphone}, {3, pc}}, []want{{}, {}, {}}},
		{"multi: a web login leaves other platforms", policy(1, false),
			[]login{{1, iphone}, {2, pc}, {3, web}, {4, web}}, []want{{}, {}, {}, {3: acct}}},
		{"single: any other platform is kicked", policy(1, true),
			[]login{{1, web}, {2, iphone}, {3, pc}}, []want{{}, {1: dev}, {2: dev}}},
		{"single + web limit", policy(1, true),
			[]login{{1, iphone}, {2, web}, {3, web}}, []want{{}, {1: dev}, {2: acct}}},
		{"single: web instances of a web login stay within the limit", policy(2, true),
			[]login{{1, web}, {2, web}, {3, iphone}}, []want{{}, {}, {1: dev, 2: dev}}},
		{"a re-attach of the same instance kicks nobody", policy(1, false),
			[]login{{1, web}, {1, web}, {2, iphone}, {2, iphone}}, []want{{}, {}, {}, {}}},
	}
	base := time.Now().Add(-time.Minute)
	for ci, c := range cases {
		user := fmt.Sprint("policy", ci)
		live := map[uint64]bool{}
		for i, st := range c.steps {
			p := h.node(i)
			got := attach(t, p, user, inst(p, st.inst, st.plat, base.Add(time.Duration(i)*time.Second)), c.policy)
			if fmt.Sprint(got) != fmt.Sprint(c.wants[i]) {
				t.Fatalf("%s: step %d: victims %v, want %v", c.name, i, got, c.wants[i])
			}
			for id := range got {
				delete(live, id)
			}
			live[st.inst] = true
		}
		var want []uint64
		for id := range live {
			want = append(want, id)
		}
		slices.Sort(want)
		wantIDs(t, h, user, want...)
	}
	// Web instances of one login time: the lower InstID is the older.
	p := h.node(0)
	at := time.Now().Add(-time.Second)
	attach(t, p, "tie", inst(p, 9, web, at), policy(2, false))
	attach(t, p, "tie", inst(p, 8, web, at), policy(2, false))
	if got := attach(t, h.node(1), "tie", inst(h.node(1), 10, web, time.Now()), policy(2, false)); fmt.Sprint(got) != "map[8:1]" {
		t.Fatalf("tie: victims %v, want 8 (multipleAccount)", got)
	}
}

// An attach of an instance whose A2Key was issued before the user's kick
// watermark (a REST kick after the login's check) writes nothing and kicks
// nobody: the instance itself is the one victim, REST_API_Kick. One issued
// after it attaches as usual.
func testAttachAfterWatermark(t *testing.T, h Harness) {
	p, q := h.node(0), h.node(1)
	kickAt := time.Now()
	attach(t, p, "wm", inst(p, 1, web, kickAt.Add(-time.Minute)), policy(1, false))
	h.SetWatermark(app, "wm", kickAt.UnixMilli())
	if got := attach(t, q, "wm", inst(q, 2, web, kickAt.Add(-time.Second)), policy(1, false)); fmt.Sprint(got) != fmt.Sprint(map[uint64]int{2: restKick}) {
		t.Fatalf("an A2Key issued before the watermark: victims %v, want itself, REST_API_Kick", got)
	}
	wantIDs(t, h, "wm", 1) // the REST kick's own sweep takes 1
	if got := attach(t, q, "wm", inst(q, 3, web, kickAt.Add(time.Millisecond)), policy(1, false)); fmt.Sprint(got) != fmt.Sprint(map[uint64]int{1: acct}) {
		t.Fatalf("an A2Key issued after the watermark: victims %v, want 1 (multipleAccount)", got)
	}
	wantIDs(t, h, "wm", 3)
}

// An attach of a revoked instance (a logout, or a kick by another login,
// after the re-login's check) is refused: nothing written, nobody kicked,
// where it would have kicked the login that kicked it.
func testAttachRevoked(t *testing.T, h Harness) {
	p, q := h.node(0), h.node(1)
	at := time.Now().Add(-time.Minute)
	attach(t, p, "rv", inst(p, 2, web, at.Add(time.Second)), policy(1, false))
	h.Revoke(app, 1, time.Now().Add(time.Hour))
	in := inst(q, 1, web, at)
	in.User = "rv"
	vs, err := q.Attach(ctx, in, policy(1, false))
	var re *store.RevokedError
	if !errors.As(err, &re) || re.Reason != "multipleAccount" || len(vs) != 0 {
		t.Fatalf("attach of a revoked instance: %v, %v; want store.RevokedError multipleAccount and no victims", vs, err)
	}
	wantIDs(t, h, "rv", 2)
}

// An entry whose UserSig expired, or detached for longer than
// DetachedFor, is no longer logged in: it counts against no limit, is
// kicked by nobody and is not listed.
func testGone(t *testing.T, h Harness) {
	p := h.node(0)
	now := time.Now()
	// A long-lived entry first, so that the user's list outlives the
	// expired one (Redis expires the list with its last UserSig).
	attach(t, p, "gone", inst(p, 1, pc, now.Add(-time.Minute)), policy(1, false))
	expired := inst(p, 2, web, now.Add(-time.Minute))
	expired.Expires = now.Add(-time.Hour).Unix()
	attach(t, p, "gone", expired, policy(1, false))
	detached := inst(p, 3, iphone, now.Add(-time.Minute))
	detached.Detached = now.Add(-2 * time.Minute)
	attach(t, p, "gone", detached, policy(1, false))
	// Listed: the detached one (REST kicks and query_online_status judge
	// its age), not the expired one.
	wantIDs(t, h, "gone", 1, 3)
	q := h.node(1)
	if got := attach(t, q, "gone", inst(q, 4, web, now), policy(1, false)); len(got) != 0 {
		t.Fatalf("web login next to an expired web entry: victims %v, want none", got)
	}
	if got := attach(t, q, "gone", inst(q, 5, iphone, now), policy(1, false)); len(got) != 0 {
		t.Fatalf("iphone login next to a long-detached iphone entry: victims %v, want none", got)
	}
	wantIDs(t, h, "gone", 1, 4, 5)
	// A detached entry within DetachedFor still counts.
	recent := inst(p, 6, pc, now)
	recent.Detached = now.Add(-time.Second)
	if got := attach(t, p, "gone", recent, policy(1, false)); fmt.Sprint(got) != "map[1:2]" {
		t.Fatalf("victims %v, want 1 (multipleDevice)", got)
	}
	if got := attach(t, q, "gone", inst(q, 7, pc, now), policy(1, false)); fmt.Sprint(got) != "map[6:2]" {
		t.Fatalf("login next to a recently detached pc: victims %v, want 6 (multipleDevice)", got)
	}
}

// Detach marks the entry detached only while its node holds it; a
// re-attach clears it.
func testDetach(t *testing.T, h Harness) {
	p, q := h.node(0), h.node(1)
	at := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	attach(t, p, "det", inst(p, 1, web, at), policy(2, false))
	if err := p.Detach(ctx, app, "det", 1, at); err != nil {
		t.Fatal(err)
	}
	detachedAt := func(id uint64) time.Time {
		t.Helper()
		ins, err := q.Instances(ctx, app, "det")
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range ins {
			if in.InstID == id {
				return in.Detached
			}
		}
		t.Fatalf("instance %d not listed: %+v", id, ins)
		return time.Time{}
	}
	if d := detachedAt(1); !d.Equal(at) {
		t.Fatalf("detached %v, want %v", d, at)
	}
	attach(t, q, "det", inst(q, 1, web, at), policy(2, false))
	if d := detachedAt(1); !d.IsZero() {
		t.Fatalf("re-attached entry still detached since %v", d)
	}
	if p.Node() != q.Node() {
		// q holds it now: p's late detach leaves it alone.
		if err := p.Detach(ctx, app, "det", 1, at); err != nil {
			t.Fatal(err)
		}
		if d := detachedAt(1); !d.IsZero() {
			t.Fatalf("another node's detach marked it: %v", d)
		}
	}
	// Detaching what is not there writes nothing.
	if err := p.Detach(ctx, app, "det", 99, at); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, h, "det", 1)
}

// Remove, RemoveOwn and RemoveInstances (a REST kick: those listed; one
// written since stays).
func testRemove(t *testing.T, h Harness) {
	p, q := h.node(0), h.node(1)
	now := time.Now()
	for id := uint64(1); id <= 4; id++ {
		n := h.node(int(id))
		attach(t, n, "rm", inst(n, id, web, now), policy(10, false))
	}
	if err := p.Remove(ctx, app, "rm", 1); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, h, "rm", 2, 3, 4)
	// Entry 2 is node 0's when there is one node, else node 0's too
	// (taken in turn: 2 % n); entry 3 is node 1's.
	if err := h.node(3).RemoveOwn(ctx, app, "rm", 3); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, h, "rm", 2, 4)
	if p.Node() != q.Node() {
		if err := q.RemoveOwn(ctx, app, "rm", 2); err != nil {
			t.Fatal(err)
		}
		wantIDs(t, h, "rm", 2, 4)
	}
	listed := ids(t, h, "rm")
	attach(t, q, "rm", inst(q, 5, web, time.Now()), policy(10, false))
	if err := q.RemoveInstances(ctx, app, "rm", listed); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, h, "rm", 5)
	if err := q.RemoveInstances(ctx, app, "rm", nil); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, h, "rm", 5)
}

// AckKick: set once, seen by every node; per instance.
func testAck(t *testing.T, h Harness) {
	until := time.Now().Add(time.Hour)
	h.Revoke(app, 7, until)
	h.Revoke(app, 8, until)
	ack := func(p server.Presence, inst uint64) bool {
		t.Helper()
		already, err := p.AckKick(ctx, app, inst)
		if err != nil {
			t.Fatal(err)
		}
		return already
	}
	if ack(h.node(0), 7) {
		t.Fatal("first ack: already")
	}
	if !ack(h.node(1), 7) || !ack(h.node(0), 7) {
		t.Fatal("second ack: not already")
	}
	if ack(h.node(1), 8) {
		t.Fatal("another instance's first ack: already")
	}
}

// Restore: this node's entry is rewritten; one gone comes back only if it
// fits next to what was admitted meanwhile; a REST kick since its A2Key
// wins; another node's entry stays.
func testRestore(t *testing.T, h Harness) {
	p, q := h.node(0), h.node(1)
	old := time.Now().Add(-time.Hour)
	restore := func(n server.Presence, user string, in store.Instance, pol store.Policy) int {
		t.Helper()
		in.User = user
		kt, err := n.Restore(ctx, in, pol)
		if err != nil {
			t.Fatal(err)
		}
		return kt
	}
	// Own entry there: rewritten, whatever the others.
	a := inst(p, 1, web, old)
	attach(t, p, "r1", a, policy(1, false))
	if kt := restore(p, "r1", a, policy(1, false)); kt != 0 {
		t.Fatalf("own entry: %d", kt)
	}
	wantIDs(t, h, "r1", 1)
	// Gone: fits (another platform) → written.
	attach(t, q, "r2", inst(q, 2, iphone, old), policy(1, false))
	if kt := restore(p, "r2", inst(p, 3, web, old), policy(1, false)); kt != 0 {
		t.Fatalf("fits: %d", kt)
	}
	wantIDs(t, h, "r2", 2, 3)
	// Gone: the web limit is full → multipleAccount, nothing written.
	if kt := restore(p, "r2", inst(p, 4, web, old), policy(1, false)); kt != acct {
		t.Fatalf("web limit full: %d, want %d", kt, acct)
	}
	// Gone: same device, or another one under single → multipleDevice.
	if kt := restore(p, "r2", inst(p, 5, iphone, old), policy(2, false)); kt != dev {
		t.Fatalf("same device: %d, want %d", kt, dev)
	}
	if kt := restore(p, "r2", inst(p, 6, pc, old), policy(3, true)); kt != dev {
		t.Fatalf("single: %d, want %d", kt, dev)
	}
	wantIDs(t, h, "r2", 2, 3)
	// An expired entry does not count against the restored one.
	attach(t, q, "r3", inst(q, 10, pc, old), policy(1, false))
	exp := inst(q, 11, web, old)
	exp.Expires = time.Now().Add(-time.Hour).Unix()
	attach(t, q, "r3", exp, policy(1, false))
	if kt := restore(p, "r3", inst(p, 12, web, old), policy(1, false)); kt != 0 {
		t.Fatalf("next to an expired web entry: %d", kt)
	}
	wantIDs(t, h, "r3", 10, 12)
	// A REST kick after the A2Key: REST_API_Kick, the entry goes.
	h.SetWatermark(app, "r3", time.Now().UnixMilli())
	if kt := restore(p, "r3", inst(p, 12, web, old), policy(1, false)); kt != restKick {
		t.Fatalf("watermark: %d, want %d", kt, restKick)
	}
	wantIDs(t, h, "r3", 10)
	// An A2Key issued after the kick is restored.
	if kt := restore(p, "r3", inst(p, 13, web, time.Now().Add(time.Second)), policy(1, false)); kt != 0 {
		t.Fatalf("A2Key after the watermark: %d", kt)
	}
	wantIDs(t, h, "r3", 10, 13)
	if p.Node() != q.Node() {
		// Held by another node now: left alone, 0.
		if kt := restore(q, "r3", inst(q, 13, pc, old), policy(1, false)); kt != 0 {
			t.Fatalf("held elsewhere: %d", kt)
		}
		ins, _ := p.Instances(ctx, app, "r3")
		if len(ins) != 2 || ins[1].Node != p.Node() || ins[1].Platform != web {
			t.Fatalf("held elsewhere: rewritten: %+v", ins)
		}
	}
}

// A dead node's entries vanish from every view and count for nothing.
func testNodeLoss(t *testing.T, h Harness) {
	p, q := h.Nodes[0], h.Nodes[1]
	attach(t, q, "loss", inst(q, 1, web, time.Now().Add(-time.Minute)), policy(1, false))
	attach(t, q, "loss", inst(q, 2, iphone, time.Now().Add(-time.Minute)), policy(1, false))
	attach(t, p, "loss", inst(p, 3, pc, time.Now().Add(-time.Minute)), policy(1, false))
	h.Kill(1)
	ins, err := p.Instances(ctx, app, "loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].InstID != 3 {
		t.Fatalf("after node loss: %+v, want 3 only", ins)
	}
	if got := attach(t, p, "loss", inst(p, 4, web, time.Now()), policy(1, false)); len(got) != 0 {
		t.Fatalf("victims on a dead node: %v", got)
	}
	if got := attach(t, p, "loss", inst(p, 5, iphone, time.Now()), policy(1, false)); len(got) != 0 {
		t.Fatalf("victims on a dead node: %v", got)
	}
	restored := inst(p, 3, pc, time.Now().Add(-time.Minute))
	restored.User = "loss"
	if kt, err := p.Restore(ctx, restored, policy(1, false)); err != nil || kt != 0 {
		t.Fatalf("restore own: %d, %v", kt, err)
	}
}
