package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/client"
	"chatctl/pkg/rest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/cluster"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

const testApp = 1400000043

// node is one real chatctl server on a loopback port, on the cluster
// backend: exactly what `serve --store redis://…` assembles.
type node struct {
	srv  *server.Server
	cl   *cluster.Cluster
	ws   string
	rest string

	stopOnce sync.Once
	served   chan error
}

type env struct {
	t      testing.TB
	url    string
	prefix string
	app    server.AppConfig
	ttl    time.Duration
}

func newEnv(t testing.TB, url string, app server.AppConfig) *env {
	var key [32]byte
	rand.Read(key[:])
	app.SDKAppID, app.Key, app.Admins = testApp, hex.EncodeToString(key[:]), []string{"administrator"}
	return &env{t: t, url: url, prefix: redistest.Prefix(t, url), app: app, ttl: time.Second}
}

func (e *env) start() *node {
	e.t.Helper()
	return e.startAt(e.url)
}

// startAt starts a node that reaches Redis at url (e.g. through a proxy).
func (e *env) startAt(url string) *node {
	t := e.t
	t.Helper()
	ctx := context.Background()
	cl, err := cluster.Open(ctx, url, cluster.Options{Prefix: e.prefix, NodeTTL: e.ttl})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Apps: []server.AppConfig{e.app}, Store: cl.Store, Bus: cl.Bus, Presence: cl.Presence(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cl.Close(ctx)
		t.Fatal(err)
	}
	cl.Bind(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{srv: srv, cl: cl, ws: "ws://" + ln.Addr().String(), rest: "http://" + ln.Addr().String(),
		served: make(chan error, 1)}
	go func() { n.served <- srv.Serve(ln) }()
	t.Cleanup(func() { n.stop(false) })
	return n
}

// stop shuts the node down: cleanly (the node leaves the cluster), or
// killed (no NodeLeave, no presence writes: what SIGKILL leaves behind).
func (n *node) stop(killed bool) {
	n.stopOnce.Do(func() {
		if killed {
			n.cl.Kill()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.srv.Shutdown(ctx)
		<-n.served
		n.cl.Close(ctx)
	})
}

func (e *env) nodes(k int) []*node {
	ns := make([]*node, k)
	for i := range ns {
		ns[i] = e.start()
	}
	return ns
}

func (e *env) mint(user string) string {
	return sig.Gen(sig.Params{SDKAppID: testApp, Key: e.app.Key, UserID: user, Expire: 3600}, time.Now())
}

func dial(t testing.TB, n *node, platform int) *client.Conn {
	t.Helper()
	c, err := client.Dial(context.Background(), client.Config{Endpoint: n.ws, SDKAppID: testApp, Platform: platform})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// login dials n and logs user in on platform (0 = Web).
func (e *env) login(n *node, user string, platform int) (*client.Conn, client.LoginResult) {
	e.t.Helper()
	c := dial(e.t, n, platform)
	r, err := c.Login(context.Background(), user, e.mint(user))
	if err != nil {
		e.t.Fatalf("login %s on %s: %v", user, n.ws, err)
	}
	return c, r
}

// eventually polls cond every 20 ms until it returns nil, and fails the
// test with cond's last error if that takes longer than timeout. The
// timeout only bounds a wait for something the cluster must do; it asserts
// no timing.
func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noKick checks that c got no kick push so far.
func noKick(t testing.TB, c *client.Conn, who string) {
	t.Helper()
	for {
		select {
		case f := <-c.Pushes():
			if f.Head.ServCmd == wire.CmdForceOffline {
				t.Fatalf("%s was kicked: %s", who, f.Body)
			}
		default:
			return
		}
	}
}

func (e *env) admin(n *node) *rest.Client {
	return &rest.Client{BaseURL: n.rest, SDKAppID: testApp, Admin: "administrator", Key: e.app.Key}
}

// online asks n's REST API for user's instances, "Platform:Status" sorted.
func (e *env) online(n *node, user string) []string {
	e.t.Helper()
	var resp rest.QueryOnlineStatusResponse
	_, err := e.admin(n).Do(context.Background(), rest.CmdQueryOnlineStatus,
		rest.QueryOnlineStatusRequest{IsNeedDetail: true, ToAccount: []string{user}}, &resp)
	if err != nil {
		e.t.Fatalf("query_online_status on %s: %v", n.rest, err)
	}
	if len(resp.QueryResult) != 1 {
		e.t.Fatalf("query_online_status: %+v", resp)
	}
	out := []string{}
	for _, d := range resp.QueryResult[0].Detail {
		out = append(out, d.Platform+":"+d.Status)
	}
	slices.Sort(out)
	return out
}

// sameOnline checks that every node reports want for user.
func (e *env) sameOnline(ns []*node, user string, want ...string) {
	e.t.Helper()
	if want == nil {
		want = []string{}
	}
	for i, n := range ns {
		if got := e.online(n, user); !reflect.DeepEqual(got, want) {
			e.t.Fatalf("query_online_status %s on node %d: %v, want %v", user, i+1, got, want)
		}
	}
}

// refusedTold re-logs in on n with s, wants it refused 70002 with reason
// and then the kick pushed with kickType; it returns the socket.
func refusedTold(t testing.TB, n *node, s client.Session, reason string, kickType int) *client.Conn {
	t.Helper()
	c := dial(t, n, 0)
	_, err := c.Relogin(context.Background(), s)
	refused(t, err, reason)
	if kt := servertest.WaitKick(t, c); kt != kickType {
		t.Fatalf("late push on %s: KickType %d, want %d", n.ws, kt, kickType)
	}
	return c
}

// refusedUntold re-logs in on n with s and wants it refused 70002 with
// reason, and no kick pushed after the refusal.
func refusedUntold(t testing.TB, n *node, s client.Session, reason, who string) {
	t.Helper()
	c := dial(t, n, 0)
	_, err := c.Relogin(context.Background(), s)
	refused(t, err, reason)
	if _, err := c.Heartbeat(context.Background()); err != nil { // after any push that followed the refusal
		t.Fatal(err)
	}
	noKick(t, c, who)
}

func refused(t testing.TB, err error, reason string) {
	t.Helper()
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != wire.CodeA2Rejected || se.RevokedReason() != reason {
		t.Fatalf("a2 re-login: %v; want 70002 revoked %s", err, reason)
	}
}

// The same user logging in on node 2 kicks the Web
// instance on node 1 (multipleAccount); every node then reports one Web
// instance, and the kicked A2Key is refused on every node.
func TestCrossNodeMultipleAccount(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{})
	ns := e.nodes(3)
	c1, r1 := e.login(ns[0], "alice", 0)
	e.sameOnline(ns, "alice", "Web:Online")
	c2, _ := e.login(ns[1], "alice", 0)
	if kt := servertest.WaitKick(t, c1); kt != wire.KickMultipleAccount {
		t.Fatalf("node 1's instance got KickType %d, want multipleAccount", kt)
	}
	noKick(t, c2, "node 2's instance")
	e.sameOnline(ns, "alice", "Web:Online")
	for i, n := range ns {
		_, err := dial(t, n, 0).Relogin(context.Background(), r1.Session())
		if t.Failed() {
			return
		}
		refused(t, err, "multipleAccount")
		_ = i
	}
	// Two Web instances allowed: a third Web login on node 3 kicks the
	// oldest (node 2's), not node 3's own.
	e2 := newEnv(t, e.url, server.AppConfig{WebInstances: 2})
	ms := e2.nodes(3)
	a, _ := e2.login(ms[0], "bob", 0)
	b, _ := e2.login(ms[1], "bob", 0)
	e2.sameOnline(ms, "bob", "Web:Online", "Web:Online")
	c, _ := e2.login(ms[2], "bob", 0)
	if kt := servertest.WaitKick(t, a); kt != wire.KickMultipleAccount {
		t.Fatalf("oldest Web instance got KickType %d", kt)
	}
	noKick(t, b, "second Web instance")
	noKick(t, c, "newest Web instance")
	e2.sameOnline(ms, "bob", "Web:Online", "Web:Online")
}

// multipleDevice across nodes: the same non-Web platform on another node,
// and under "single" any other platform on another node.
func TestCrossNodeMultipleDevice(t *testing.T) {
	url := redistest.URL(t)
	e := newEnv(t, url, server.AppConfig{})
	ns := e.nodes(2)
	web, _ := e.login(ns[0], "alice", 0)
	a1, _ := e.login(ns[0], "alice", int(wire.PlatformAndroid))
	e.sameOnline(ns, "alice", "Android:Online", "Web:Online")
	a2, _ := e.login(ns[1], "alice", int(wire.PlatformAndroid))
	if kt := servertest.WaitKick(t, a1); kt != wire.KickMultipleDevice {
		t.Fatalf("Android on node 1 got KickType %d, want multipleDevice", kt)
	}
	noKick(t, web, "Web (another platform, multi)")
	noKick(t, a2, "the new Android")
	e.sameOnline(ns, "alice", "Android:Online", "Web:Online")

	s := newEnv(t, url, server.AppConfig{MultiDevice: server.MultiDeviceSingle})
	ms := s.nodes(2)
	w, _ := s.login(ms[0], "bob", 0)
	p, _ := s.login(ms[1], "bob", int(wire.PlatformIPhone))
	if kt := servertest.WaitKick(t, w); kt != wire.KickMultipleDevice {
		t.Fatalf("Web on node 1 got KickType %d, want multipleDevice (single)", kt)
	}
	noKick(t, p, "the iPhone")
	s.sameOnline(ms, "bob", "iPhone:Online")
}

// A REST kick sent to node 3 reaches the instances
// on nodes 1 and 2 (REST_API_Kick); query_online_status is the same on all
// three nodes before and after.
func TestRESTKickAnyNode(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{WebInstances: 2})
	ns := e.nodes(3)
	c1, r1 := e.login(ns[0], "alice", 0)
	c2, r2 := e.login(ns[1], "alice", 0)
	c3, _ := e.login(ns[1], "alice", int(wire.PlatformIPad))
	other, _ := e.login(ns[2], "bob", 0)
	e.sameOnline(ns, "alice", "Web:Online", "Web:Online", "iPad:Online")
	e.sameOnline(ns, "bob", "Web:Online")
	// A detached mobile instance is PushOnline on every node.
	c3.Close()
	eventually(t, 10*time.Second, func() error {
		if got := e.online(ns[2], "alice"); !slices.Contains(got, "iPad:PushOnline") {
			return fmt.Errorf("closed iPad socket: %v, want iPad:PushOnline", got)
		}
		return nil
	})
	e.sameOnline(ns, "alice", "Web:Online", "Web:Online", "iPad:PushOnline")

	if _, err := e.admin(ns[2]).Do(context.Background(), rest.CmdKick, rest.KickRequest{UserID: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*client.Conn{c1, c2} {
		if kt := servertest.WaitKick(t, c); kt != wire.KickRESTAPI {
			t.Fatalf("alice on node %d got KickType %d, want REST_API_Kick", i+1, kt)
		}
	}
	noKick(t, other, "bob")
	e.sameOnline(ns, "alice")
	e.sameOnline(ns, "bob", "Web:Online")
	for i, r := range []client.LoginResult{r1, r2} {
		_, err := dial(t, ns[(i+1)%3], 0).Relogin(context.Background(), r.Session())
		refused(t, err, "REST_API_Kick")
	}
}

// A node that dies without leaving (heartbeat stopped,
// Redis connections and sockets closed with no cleanup, as SIGKILL does):
// its instances are offline on the other nodes within the node TTL, and
// its client re-logs in with its A2Key on another node and stays logged in.
func TestNodeKilled(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{})
	ns := e.nodes(3)
	c1, r1 := e.login(ns[0], "alice", 0)
	e.login(ns[0], "carol", int(wire.PlatformAndroid))
	bob, _ := e.login(ns[1], "bob", 0)
	e.sameOnline(ns, "alice", "Web:Online")
	ns[0].stop(true)
	<-c1.Done()
	// The entries stay in Redis until the node's heartbeat key expires;
	// the test polls rather than asserting the time.
	eventually(t, 10*e.ttl, func() error {
		if a, c := e.online(ns[1], "alice"), e.online(ns[1], "carol"); len(a) > 0 || len(c) > 0 {
			return fmt.Errorf("killed node's instances still online: alice %v carol %v", a, c)
		}
		return nil
	})
	e.sameOnline(ns[1:], "alice")
	e.sameOnline(ns[1:], "bob", "Web:Online")

	// The SDK reconnects to node 2 with its A2Key: same instance, online
	// everywhere, and a new login elsewhere still applies the policy to it.
	c := dial(t, ns[1], 0)
	r, err := c.Relogin(context.Background(), r1.Session())
	if err != nil {
		t.Fatalf("a2 re-login on node 2 after node 1 died: %v", err)
	}
	if r.InstID != r1.InstID {
		t.Fatalf("InstId %d after the re-login, was %d", r.InstID, r1.InstID)
	}
	if _, err := c.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.sameOnline(ns[1:], "alice", "Web:Online")
	e.login(ns[2], "alice", 0)
	if kt := servertest.WaitKick(t, c); kt != wire.KickMultipleAccount {
		t.Fatalf("re-logged-in instance got KickType %d", kt)
	}
	noKick(t, bob, "bob")
}

// Redis unreachable: with Redis down (SIGKILL) a
// connected session keeps heartbeating, a new login is refused 70169, and
// when Redis is back (AOF, fsync always) the nodes recover by themselves:
// logins work, what was acknowledged is still there (the revocation of a
// kicked instance, the sessions), and each node rewrites its presence that
// expired meanwhile. A kick whose push was lost is pushed when the bus
// resubscribes.
func TestRedisDownAndBack(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	e := newEnv(t, rs.URL(), server.AppConfig{})
	ns := e.nodes(2)
	ctx := context.Background()
	alice, ra := e.login(ns[0], "alice", 0)
	bob, _ := e.login(ns[1], "bob", 0)
	old, ro := e.login(ns[0], "carol", 0)
	e.login(ns[1], "carol", 0)
	servertest.WaitKick(t, old)

	rs.Kill()
	for _, c := range []*client.Conn{alice, bob} {
		if _, err := c.Heartbeat(ctx); err != nil {
			t.Fatalf("heartbeat with Redis down: %v", err)
		}
		if err := c.Hello(ctx); err != nil {
			t.Fatalf("wshello with Redis down: %v", err)
		}
	}
	for i, n := range ns {
		_, err := dial(t, n, 0).Login(ctx, "dave", e.mint("dave"))
		var se *client.ServerError
		if !errors.As(err, &se) || se.Code != wire.CodeTimeout {
			t.Fatalf("login on node %d with Redis down: %v; want 70169", i+1, err)
		}
	}
	// Longer than the node TTL: the node keys expire meanwhile.
	time.Sleep(e.ttl + e.ttl/2)
	rs.Restart()

	eventually(t, 15*time.Second, func() error {
		if _, err := dial(t, ns[1], 0).Login(ctx, "dave", e.mint("dave")); err != nil {
			return fmt.Errorf("login after Redis came back: %w", err)
		}
		return nil
	})
	// Presence comes back on every node (each node's heartbeat loop
	// resyncs its own instances, on its own tick: wait for both).
	eventually(t, 15*time.Second, func() error {
		a, b := e.online(ns[1], "alice"), e.online(ns[0], "bob")
		if !reflect.DeepEqual(a, []string{"Web:Online"}) || !reflect.DeepEqual(b, []string{"Web:Online"}) {
			return fmt.Errorf("after the outage: alice %v bob %v, want them Web:Online", a, b)
		}
		return nil
	})
	e.sameOnline(ns, "alice", "Web:Online")
	e.sameOnline(ns, "bob", "Web:Online")
	if _, err := dial(t, ns[1], 0).Relogin(ctx, ra.Session()); err != nil {
		t.Fatalf("alice's A2Key after the outage: %v", err)
	}
	_, err := dial(t, ns[1], 0).Relogin(ctx, ro.Session())
	refused(t, err, "multipleAccount")

	// Kicks decided while node 1's subscription was down, their pushes
	// lost: a kick by a login elsewhere (a revocation in Redis) and a REST
	// kick (the user's watermark, which is all a REST kick writes). Node 1
	// pushes both when it resubscribes, and the instances leave the
	// presence.
	erin, re := e.login(ns[0], "erin", 0)
	if err := ns[1].cl.Store.RevokeInstance(ctx, testApp, re.InstID, time.Now().Add(time.Hour), "multipleDevice"); err != nil {
		t.Fatal(err)
	}
	fay, _ := e.login(ns[0], "fay", 0)
	time.Sleep(2 * time.Millisecond) // the watermark is after fay's A2Key was issued
	if err := ns[1].cl.Store.SetKickWatermark(ctx, testApp, "fay", time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if err := rs.Client().Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if kt := servertest.WaitKick(t, erin); kt != wire.KickMultipleDevice {
		t.Fatalf("missed kick pushed after resubscribe: KickType %d", kt)
	}
	if kt := servertest.WaitKick(t, fay); kt != wire.KickRESTAPI {
		t.Fatalf("missed REST kick pushed after resubscribe: KickType %d", kt)
	}
	eventually(t, 15*time.Second, func() error {
		if got := e.online(ns[1], "erin"); len(got) > 0 {
			return fmt.Errorf("erin after the late kick: %v, want offline", got)
		}
		if got := e.online(ns[1], "fay"); len(got) > 0 {
			return fmt.Errorf("fay after the late REST kick: %v, want offline", got)
		}
		return nil
	})
	e.sameOnline(ns, "alice", "Web:Online")
}

// A Redis that lost its data (restarted without persistence, longer than
// the node TTL): each node rewrites its attached instances when its
// heartbeat succeeds again, so they are online on every node once more,
// and the shared secret is put back (logins and the policy work).
func TestPresenceResync(t *testing.T) {
	rs := redistest.Start(t)
	e := newEnv(t, rs.URL(), server.AppConfig{})
	ns := e.nodes(2)
	ctx := context.Background()
	_, ra := e.login(ns[0], "alice", int(wire.PlatformAndroid))
	e.login(ns[1], "bob", 0)
	rs.Kill()
	time.Sleep(e.ttl + e.ttl/2)
	rs.Restart()
	// The accounts are lost too: the test imports them again.
	for _, u := range []string{"alice", "bob"} {
		if _, err := e.admin(ns[1]).Do(ctx, rest.CmdAccountImport, rest.AccountImportRequest{UserID: u}, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 15*time.Second, func() error {
		a, b := e.online(ns[1], "alice"), e.online(ns[0], "bob")
		if !reflect.DeepEqual(a, []string{"Android:Online"}) || !reflect.DeepEqual(b, []string{"Web:Online"}) {
			return fmt.Errorf("after Redis lost its data: alice %v bob %v, want them online", a, b)
		}
		return nil
	})
	// The resynced entry takes part in the policy: Android on node 2 kicks it.
	c := dial(t, ns[1], int(wire.PlatformAndroid))
	if _, err := c.Login(ctx, "alice", e.mint("alice")); err != nil {
		t.Fatal(err)
	}
	_, err := dial(t, ns[1], 0).Relogin(ctx, ra.Session())
	refused(t, err, "multipleDevice")
}

// A kick whose push was lost (the instance's socket was already gone when
// node 2 kicked it) is pushed after the refused a2 re-login by whichever
// node the SDK reconnects to, once: after its acknowledgement (wslogout
// type 1) no node pushes it again.
func TestMissedKickAnyNode(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{})
	ns := e.nodes(3)
	ctx := context.Background()
	c1, r1 := e.login(ns[0], "alice", 0)
	c1.Close()
	c2, _ := e.login(ns[1], "alice", 0)
	noKick(t, c2, "the new instance")

	c3 := refusedTold(t, ns[2], r1.Session(), "multipleAccount", wire.KickMultipleAccount)
	if err := c3.Logout(ctx, wire.LogoutKickAck); err != nil {
		t.Fatal(err)
	}
	refusedUntold(t, ns[0], r1.Session(), "multipleAccount", "node 1 after the acknowledgement")
	refusedUntold(t, ns[2], r1.Session(), "multipleAccount", "node 3 after the acknowledgement")
}

// A REST-kicked instance whose push was lost (no socket at the kick) is
// told once, whichever nodes its re-logins reach: the REST kick writes only
// the watermark, the first refused re-login revokes the instance and marks
// it told (AckKick after the revocation), the later ones push nothing.
func TestMissedRESTKickToldOnceAnyNode(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{})
	ns := e.nodes(2)
	ctx := context.Background()
	c1, r1 := e.login(ns[0], "alice", 0)
	c1.Close()
	if _, err := e.admin(ns[1]).Do(ctx, rest.CmdKick, rest.KickRequest{UserID: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	refusedTold(t, ns[1], r1.Session(), "REST_API_Kick", wire.KickRESTAPI)
	refusedUntold(t, ns[0], r1.Session(), "REST_API_Kick", "re-login 2 (node 1)")
	refusedUntold(t, ns[1], r1.Session(), "REST_API_Kick", "re-login 3 (node 2)")
}

// A logout on node 1 closes the instance's socket on node 2 (a watch of
// the same session), whose a2 re-login then hears why; a socket of another
// instance of the user stays open.
func TestLogoutReachesOtherNodes(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{})
	ns := e.nodes(2)
	c1, r1 := e.login(ns[0], "alice", 0)
	watch := dial(t, ns[1], 0)
	if _, err := watch.Relogin(context.Background(), r1.Session()); err != nil {
		t.Fatal(err)
	}
	other, _ := e.login(ns[1], "alice", int(wire.PlatformAndroid))
	if err := c1.Logout(context.Background(), wire.LogoutUser); err != nil {
		t.Fatal(err)
	}
	select {
	case <-watch.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("node 2's socket of the instance is still open 10 s after its logout on node 1")
	}
	refusedUntold(t, ns[1], r1.Session(), "logout", "the logged-out instance")
	if _, err := other.Heartbeat(context.Background()); err != nil {
		t.Fatalf("the Android instance's socket: %v", err)
	}
	noKick(t, other, "the Android instance")
}

// A clean shutdown (serve's SIGTERM): the node leaves at once, so its
// instances are offline on the other nodes right away, and nothing of the
// cluster (heartbeat loop, repair goroutine, bus, Redis pools) is left
// running.
func TestCleanShutdown(t *testing.T) {
	url := redistest.URL(t)
	e := newEnv(t, url, server.AppConfig{})
	leaktest.Check(t) // after newEnv, so that its Redis and key cleanups run after the check
	ns := e.nodes(2)
	c, _ := e.login(ns[0], "alice", 0)
	e.sameOnline(ns, "alice", "Web:Online")
	ns[0].stop(false)
	<-c.Done()
	e.sameOnline(ns[1:], "alice")
	ns[1].stop(false)
}
