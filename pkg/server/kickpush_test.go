package server_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/store"
	"chatctl/pkg/server/ui"
	"chatctl/pkg/wire"
)

// blockingBus holds back the publication of one instance's kick until
// released, so that a test can place another login inside a login
// (between its attach and its wslogin reply).
type blockingBus struct {
	*server.LocalBus
	mu      sync.Mutex
	inst    uint64
	blocked chan struct{}
	release chan struct{}
}

func (b *blockingBus) Publish(k server.Kick) {
	b.mu.Lock()
	hold := b.inst != 0 && k.InstID == b.inst
	b.mu.Unlock()
	if hold {
		close(b.blocked)
		<-b.release
	}
	b.LocalBus.Publish(k)
}

// A kick that comes while its socket's wslogin is being answered is pushed
// after the wslogin reply, never before it (the SDK drops a push before its
// login has finished).
// kickInsideLogin logs sam in on z, then on a, and while a's login is
// between its attach and its reply (its kick of z held on the bus) a third
// login on b kicks a. It returns the server, the three sockets and the seq
// of a's wslogin, whose reply is still unread.
func kickInsideLogin(t *testing.T) (ts *servertest.Server, z, a, b *client, seq uint64) {
	t.Helper()
	bus := &blockingBus{LocalBus: server.NewLocalBus(), blocked: make(chan struct{}), release: make(chan struct{})}
	ts = servertest.Start(t, servertest.Bus(bus))
	z = dial(t, ts, "/binfo")
	z.mustLogin("sam", ts.Sig("sam", time.Hour))
	bus.mu.Lock()
	bus.inst = z.inst
	bus.mu.Unlock()
	a = dial(t, ts, "/binfo")
	seq = a.send(wire.CmdLogin, map[string]any{"identifier": "sam", "usersig": ts.Sig("sam", time.Hour), "a2": nil, "tinyid": nil, "status_instid": 0}, loginBody)
	<-bus.blocked
	b = dial(t, ts, "/binfo")
	b.mustLogin("sam", ts.Sig("sam", time.Hour))
	close(bus.release)
	return ts, z, a, b, seq
}

func TestKickPushAfterLoginReply(t *testing.T) {
	leaktest.Check(t)
	ts, z, a, _, seq := kickInsideLogin(t)

	first := a.read()
	if first.Head["servcmd"] != wire.CmdLogin || first.Head["seq"] != float64(seq) || first.code() != 0 {
		t.Fatalf("first frame on the kicked socket is not its wslogin reply: %s", first.Raw)
	}
	a.inst = uint64(first.Body["InstId"].(float64))
	a.a2, a.tiny = first.str("A2Key"), first.str("TinyId")
	// Its first frame with the new a2 (the SDK has taken the reply) lets
	// the held push go.
	a.call(wire.CmdHeartbeat, nil, nil)
	if p := a.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleAccount {
		t.Fatalf("after the reply: %s, want the kick push", p.Raw)
	}
	// Acknowledged: nothing is repeated.
	for _, c := range []*client{a, z} {
		if r := c.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 1, "is_web_uniapp": 0}); r.code() != 0 {
			t.Fatalf("kick ack: %s", r.Raw)
		}
	}
	if n := server.PendingKickPushes(ts.Server()); n != 0 {
		t.Fatalf("%d kick pushes still to repeat after both acknowledged", n)
	}
}

// A kick push the instance does not acknowledge is pushed again, at most
// three times, while the socket stays open; an acknowledgement or the
// socket's close stops it, and no timer outlives the socket.
func TestUnacknowledgedKickPushedAgain(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.WebInstances(1))
	never := dial(t, ts, "/binfo")
	never.mustLogin("tom", ts.Sig("tom", time.Hour))
	acks := dial(t, ts, "/binfo")
	acks.mustLogin("tom", ts.Sig("tom", time.Hour)) // kicks never
	gone := dial(t, ts, "/binfo")
	gone.mustLogin("tom", ts.Sig("tom", time.Hour)) // kicks acks
	dial(t, ts, "/binfo").mustLogin("tom", ts.Sig("tom", time.Hour))

	// gone: kicked, its socket closes before any repeat.
	if p := gone.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleAccount {
		t.Fatalf("gone: %s", p.Raw)
	}
	gone.ws.Close()
	eventually(t, "the server notices the closed socket", func() bool { return ts.Server().Stats(false).Sockets == 3 })
	// Its repeat is stopped with it; never's and acks' wait.
	if n := server.PendingKickPushes(ts.Server()); n != 2 {
		t.Fatalf("%d kick pushes to repeat after a kicked socket closed, want 2", n)
	}

	// acks acknowledges the repeat: pushed twice, then no more.
	for i := 0; i < 2; i++ {
		if p, err := acks.tryRead(5 * time.Second); err != nil || p.Head["servcmd"] != wire.CmdForceOffline {
			t.Fatalf("acks, push %d: %s %v", i, p.Raw, err)
		}
	}
	seq := acks.send(wire.CmdLogout, nil, map[string]any{"wslogout_type": 1, "is_web_uniapp": 0})
	if r, err := acks.tryRead(5 * time.Second); err != nil || r.Head["seq"] != float64(seq) || r.code() != 0 {
		t.Fatalf("kick ack: %s %v", r.Raw, err)
	}
	// never never acknowledges: the push and three repeats, each bounded
	// by a generous read timeout (no assumption on how late a repeat is).
	for i := 0; i < 4; i++ {
		if p, err := never.tryRead(5 * time.Second); err != nil || p.Head["servcmd"] != wire.CmdForceOffline || p.kickType() != wire.KickMultipleAccount {
			t.Fatalf("never, push %d of 4: %s %v", i+1, p.Raw, err)
		}
	}
	// Nothing left to repeat (the last repeat is queued after its retry is
	// dropped), so whatever comes now is an extra push.
	eventually(t, "no kick push left to repeat", func() bool { return server.PendingKickPushes(ts.Server()) == 0 })
	for _, c := range []*client{never, acks} {
		if r, err := c.tryRead(200 * time.Millisecond); err == nil {
			t.Fatalf("a push after the repeats ended or after the acknowledgement: %s", r.Raw)
		}
	}
}

// A push held for the instance a socket had is not delivered after the
// socket logs in another instance: it would kick the new login.
func TestHeldPushDroppedOnOtherLogin(t *testing.T) {
	leaktest.Check(t)
	ts, z, a, _, _ := kickInsideLogin(t) // b's login kicks a's instance: its push is held
	if first := a.read(); first.Head["servcmd"] != wire.CmdLogin || first.code() != 0 {
		t.Fatalf("first frame: %s", first.Raw)
	}
	// The socket logs in another user before taking its reply.
	r := a.call(wire.CmdLogin, map[string]any{"identifier": "tom", "usersig": ts.Sig("tom", time.Hour), "a2": nil, "tinyid": nil, "status_instid": 0}, loginBody)
	if r.code() != 0 {
		t.Fatalf("login tom: %s", r.Raw)
	}
	before := len(a.pushes) // a push before tom's reply was still sam's
	a.a2, a.tiny = r.str("A2Key"), r.str("TinyId")
	a.call(wire.CmdHeartbeat, nil, nil) // takes tom's reply: releases what is held
	for _, p := range a.pushes[before:] {
		if p.Head["servcmd"] == wire.CmdForceOffline {
			t.Fatalf("tom's login got the kick of sam's instance: %s", p.Raw)
		}
	}
	// Nor later: the repeat of sam's kick went with tom's login. (z was
	// kicked by a's login too: it acknowledges, so none of its is left.)
	if r := z.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 1, "is_web_uniapp": 0}); r.code() != 0 {
		t.Fatalf("z's kick ack: %s", r.Raw)
	}
	if n := server.PendingKickPushes(ts.Server()); n != 0 {
		t.Fatalf("%d kick pushes still to repeat after the socket logged in another instance", n)
	}
}

// heldPresence holds the first armed Attach after the presence's write,
// before the hub's: the gap in which another login's kick of the instance
// finds no socket on this node.
type heldPresence struct {
	server.Presence
	armed            atomic.Bool
	entered, release chan struct{}
}

func (h *heldPresence) Attach(ctx context.Context, in store.Instance, p store.Policy) ([]store.Victim, error) {
	v, err := h.Presence.Attach(ctx, in, p)
	if h.armed.CompareAndSwap(true, false) {
		h.entered <- struct{}{}
		<-h.release
	}
	return v, err
}

// Two logins of one user at once: the second's kick of the first came
// while the first was written to the presence but not yet to this node's
// hub, so its push found no socket and was dropped; the first was then
// answered OK, revoked, listed online here, and never told (13 of 30
// such races on a Redis presence, in a network pass). The kick is kept
// for the attach and pushed after the first's reply.
func TestKickDuringAttachIsPushed(t *testing.T) {
	leaktest.Check(t)
	hp := &heldPresence{entered: make(chan struct{}), release: make(chan struct{})}
	ts := servertest.Start(t, servertest.WrapPresence(func(p server.Presence) server.Presence { hp.Presence = p; return hp }))
	a := dial(t, ts, "/binfo")
	hp.armed.Store(true)
	seq := a.send(wire.CmdLogin, map[string]any{"identifier": "alice", "usersig": ts.Sig("alice", time.Hour), "a2": nil, "tinyid": nil, "status_instid": 0},
		map[string]any{"State": "Online", "is_web_uniapp": 0, "InstType": 0, "CustomInfo": ""})
	<-hp.entered // in the presence, not in the hub
	b := dial(t, ts, "/binfo")
	b.mustLogin("alice", ts.Sig("alice", time.Hour)) // kicks a's instance (multipleAccount)
	close(hp.release)
	r := a.await(wire.CmdLogin, seq)
	if r.code() != 0 {
		t.Fatalf("a's login: %s", r.Raw)
	}
	a.keep(r)
	a.call(wire.CmdHeartbeat, nil, nil) // takes its reply, as the SDK's next request does
	if p := a.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleAccount {
		t.Fatalf("a's kick push: %s", p.Raw)
	}
	// The page (this node's hub) had listed both instances online.
	var st ui.State
	uiGet(t, ts, "/ui/api/state", &st)
	if u := findUser(st, "alice"); u == nil || len(u.Instances) != 1 || u.Instances[0].Inst == a.inst {
		t.Errorf("alice on the page after the kick: %+v", u)
	}
}

// lateRevokes is a store whose revocations, once armed, are not written:
// in a cluster the kicker publishes a kick before it writes the
// revocation, and a re-login may come in between.
type lateRevokes struct {
	store.Store
	armed atomic.Bool
}

func (l *lateRevokes) RevokeInstance(ctx context.Context, app, inst uint64, until time.Time, reason string) error {
	if l.armed.Load() {
		return nil
	}
	return l.Store.RevokeInstance(ctx, app, inst, until, reason)
}

// A kick whose bus message reaches this node while nobody holds the
// instance here, and whose revocation is not written yet, then an a2
// re-login of it: the login passed every revocation check and its
// presence write kicked the login that had kicked it (the user offline),
// or, before the node kept such kicks, held the kicked instance, never
// told. The re-login is refused as revoked before its presence write
// and pushed the kick; the kicker stays online, untouched.
func TestRecentKickRefusesRelogin(t *testing.T) {
	leaktest.Check(t)
	late := &lateRevokes{}
	ts := servertest.Start(t, servertest.WrapStore(func(s store.Store) store.Store { late.Store = s; return late }))
	a := dial(t, ts, "/binfo")
	a.mustLogin("alice", ts.Sig("alice", time.Hour))
	a.ws.Close() // detached: no holder here
	waitOffline(t, ts, "alice")
	late.armed.Store(true)
	l := dial(t, ts, "/binfo")
	l.mustLogin("alice", ts.Sig("alice", time.Hour)) // kicks a's detached instance; its revocation not written
	r := a.reconnect(t, ts)
	r.refusedRevoked("multipleAccount", "re-login of the kicked instance before its revocation")
	if p := r.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleAccount {
		t.Fatalf("the refused re-login's kick push: %s", p.Raw)
	}
	if p, err := l.tryRead(time.Second); err == nil {
		t.Fatalf("the kicker got %s", p.Raw)
	}
	if out := mustJSON(restCall(t, ts, "openim/query_online_status", map[string]any{"To_Account": []string{"alice"}})); !strings.Contains(out, `"Status":"Online"`) {
		t.Fatalf("alice after the refused re-login: %s", out)
	}
}
