package cluster_test

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"chatctl/fault"
	"chatctl/pkg/client"
	"chatctl/pkg/rest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/cluster"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/wire"
)

// redisProxy puts a fault.Proxy between one node and Redis and returns
// it with the URL that reaches Redis through it. SetRefuse(true) then Cut
// partitions that node from Redis (the others are not); SetRefuse(false)
// heals it.
func redisProxy(t *testing.T, redisURL string) (*fault.Proxy, string) {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fault.NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	return p, u.String()
}

// partition drops every connection through p and refuses new ones.
func partition(p *fault.Proxy) {
	p.SetRefuse(true)
	p.Cut()
}

// waitOnline polls n until user's instances are want (bounded).
func (e *env) waitOnline(n *node, user string, want ...string) {
	e.t.Helper()
	if want == nil {
		want = []string{}
	}
	eventually(e.t, 10*time.Second, func() error {
		if got := e.online(n, user); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("%s on %s: %v, want %v", user, n.rest, got, want)
		}
		return nil
	})
}

// Node 1 cut off from Redis for less than the node TTL: a logout (answered
// OK) and a closed socket meanwhile fail to reach Redis. When node 1 is back
// in touch, both are retried: offline on every node, and the logged-out
// A2Key refused everywhere.
func TestPartitionWritesRetried(t *testing.T) {
	redisURL := redistest.URL(t)
	e := newEnv(t, redisURL, server.AppConfig{})
	e.ttl = 5 * time.Second // the cut stays well under it: the others keep counting node 1
	px, pxURL := redisProxy(t, redisURL)
	n1, n2 := e.startAt(pxURL), e.start()
	ctx := context.Background()
	lo, rlo := e.login(n1, "lou", 0)
	gone, _ := e.login(n1, "gus", 0)
	e.sameOnline([]*node{n1, n2}, "lou", "Web:Online")
	e.sameOnline([]*node{n1, n2}, "gus", "Web:Online")

	partition(px)
	if err := lo.Logout(ctx, wire.LogoutUser); err != nil {
		t.Fatalf("logout with node 1 cut off from Redis: %v", err)
	}
	gone.Close()
	eventually(t, 10*time.Second, func() error {
		if n := n1.srv.PendingWrites(); n != 2 {
			return fmt.Errorf("node 1 owes writes for %d instances, want 2 (the logout, the closed socket)", n)
		}
		return nil
	})
	px.SetRefuse(false)

	e.waitOnline(n2, "lou")
	e.waitOnline(n2, "gus")
	e.sameOnline([]*node{n1, n2}, "lou")
	e.sameOnline([]*node{n1, n2}, "gus")
	if n := n1.srv.PendingWrites(); n != 0 {
		t.Fatalf("node 1 still owes %d writes", n)
	}
	_, err := dial(t, n2, 0).Relogin(ctx, rlo.Session())
	refused(t, err, "logout")
}

// Node 1 cut off from Redis for longer than the node TTL: the others
// count its instances offline, so a REST kick and logins past the policy
// on node 2 meanwhile find nothing on node 1. When node 1 is back, its
// resync applies them: the REST-kicked instance is kicked REST_API_Kick,
// the Web instance one too many (the older, node 1's) multipleAccount, and
// neither comes back into the presence; node 2's instances are untouched.
func TestPartitionResyncAppliesDecisions(t *testing.T) {
	redisURL := redistest.URL(t)
	e := newEnv(t, redisURL, server.AppConfig{WebInstances: 2})
	px, pxURL := redisProxy(t, redisURL)
	n1, n2 := e.startAt(pxURL), e.start()
	ctx := context.Background()
	k1, rk := e.login(n1, "kim", 0)
	p1, rp := e.login(n1, "pat", 0)
	a1, _ := e.login(n1, "ann", 0) // nothing decided about her: restored

	partition(px)
	e.waitOnline(n2, "kim") // node 1's heartbeat key expired
	e.waitOnline(n2, "pat")
	if _, err := e.admin(n2).Do(ctx, rest.CmdKick, rest.KickRequest{UserID: "kim"}, nil); err != nil {
		t.Fatal(err)
	}
	p2, _ := e.login(n2, "pat", 0)
	p3, _ := e.login(n2, "pat", 0) // with p1, three Web instances: one too many
	px.SetRefuse(false)

	if kt := servertest.WaitKick(t, k1); kt != wire.KickRESTAPI {
		t.Fatalf("REST-kicked while node 1 was away: KickType %d, want %d", kt, wire.KickRESTAPI)
	}
	if kt := servertest.WaitKick(t, p1); kt != wire.KickMultipleAccount {
		t.Fatalf("the older of three Web instances: KickType %d, want %d", kt, wire.KickMultipleAccount)
	}
	e.waitOnline(n1, "ann", "Web:Online")
	e.sameOnline([]*node{n1, n2}, "ann", "Web:Online")
	e.sameOnline([]*node{n1, n2}, "kim")
	e.sameOnline([]*node{n1, n2}, "pat", "Web:Online", "Web:Online")
	for _, c := range []struct {
		sess   client.Session
		reason string
	}{{rk.Session(), "REST_API_Kick"}, {rp.Session(), "multipleAccount"}} {
		_, err := dial(t, n2, 0).Relogin(ctx, c.sess)
		refused(t, err, c.reason)
	}
	for _, c := range []*client.Conn{p2, p3, a1} {
		if _, err := c.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		noKick(t, c, "an instance admitted meanwhile")
	}
}

// Node 1's heartbeat lapses while its connection to Redis is fine (the
// process stopped, or starved, longer than the node TTL: here its
// heartbeats are held and its mark deleted, as the TTL would): the others
// count its instances offline, so a Web login on node 2 past the policy
// kicks nothing. The next heartbeat works at once, with no failure before
// it; finding the mark gone, node 1 resyncs, and the policy kicks its
// older instance.
func TestLapsedHeartbeatResyncs(t *testing.T) {
	redisURL := redistest.URL(t)
	e := newEnv(t, redisURL, server.AppConfig{WebInstances: 1})
	n1, n2 := e.start(), e.start()
	ctx := context.Background()
	p1, rp := e.login(n1, "pat", 0)

	release := cluster.HoldBeats(n1.cl)
	t.Cleanup(release)
	if err := n1.cl.Store.NodeLeave(ctx, n1.cl.NodeID()); err != nil {
		t.Fatal(err)
	}
	e.waitOnline(n2, "pat")
	p2, _ := e.login(n2, "pat", 0)
	release()

	if kt := servertest.WaitKick(t, p1); kt != wire.KickMultipleAccount {
		t.Fatalf("node 1's Web instance after its heartbeat lapsed: KickType %d, want %d", kt, wire.KickMultipleAccount)
	}
	e.sameOnline([]*node{n1, n2}, "pat", "Web:Online")
	_, err := dial(t, n2, 0).Relogin(ctx, rp.Session())
	refused(t, err, "multipleAccount")
	if _, err := p2.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	noKick(t, p2, "the login node 2 admitted")
}
