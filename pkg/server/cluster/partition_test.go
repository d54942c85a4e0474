package cluster_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server"
	"chatctl/pkg/server/rest"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/wire"
)

// proxy is a TCP relay to Redis for one node: cut drops its connections
// and refuses new ones (the node is partitioned from Redis, the others
// are not) until heal.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, redisURL string) *proxy {
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.partition()
		p.wg.Wait()
	})
	return p
}

// url is redisURL with the proxy's address.
func (p *proxy) url(redisURL string) string {
	u, _ := url.Parse(redisURL)
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				io.Copy(pair[0], pair[1])
				pair[0].Close()
				pair[1].Close()
				p.mu.Lock()
				delete(p.conns, pair[0])
				delete(p.conns, pair[1])
				p.mu.Unlock()
			}()
		}
	}
}

// partition drops every relayed connection and refuses new ones.
func (p *proxy) partition() {
	p.mu.Lock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *proxy) heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// waitOnline polls n until user's instances are want (bounded).
func (e *env) waitOnline(n *node, user string, want ...string) {
	e.t.Helper()
	if want == nil {
		want = []string{}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.online(n, user)
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s on %s: %v, want %v", user, n.rest, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Node 1 cut off from Redis for less than the node TTL: a logout (answered
// OK) and a closed socket meanwhile fail to reach Redis. When node 1 is back
// in touch, both are retried: offline on every node, and the logged-out
// A2Key refused everywhere.
func TestPartitionWritesRetried(t *testing.T) {
	redisURL := redistest.URL(t)
	e := newEnv(t, redisURL, server.AppConfig{})
	e.ttl = 5 * time.Second // the cut stays well under it: the others keep counting node 1
	px := startProxy(t, redisURL)
	n1, n2 := e.startAt(px.url(redisURL)), e.start()
	ctx := context.Background()
	lo, rlo := e.login(n1, "lou", 0)
	gone, _ := e.login(n1, "gus", 0)
	e.sameOnline([]*node{n1, n2}, "lou", "Web:Online")
	e.sameOnline([]*node{n1, n2}, "gus", "Web:Online")

	px.partition()
	if err := lo.Logout(ctx, wire.LogoutUser); err != nil {
		t.Fatalf("logout with node 1 cut off from Redis: %v", err)
	}
	gone.Close()
	for deadline := time.Now().Add(10 * time.Second); n1.srv.PendingWrites() != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("node 1 owes writes for %d instances, want 2 (the logout, the closed socket)", n1.srv.PendingWrites())
		}
		time.Sleep(10 * time.Millisecond)
	}
	px.heal()

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
	px := startProxy(t, redisURL)
	n1, n2 := e.startAt(px.url(redisURL)), e.start()
	ctx := context.Background()
	k1, rk := e.login(n1, "kim", 0)
	p1, rp := e.login(n1, "pat", 0)
	a1, _ := e.login(n1, "ann", 0) // nothing decided about her: restored

	px.partition()
	e.waitOnline(n2, "kim") // node 1's heartbeat key expired
	e.waitOnline(n2, "pat")
	if _, err := e.admin(n2).Do(ctx, rest.CmdKick, rest.KickRequest{UserID: "kim"}, nil); err != nil {
		t.Fatal(err)
	}
	p2, _ := e.login(n2, "pat", 0)
	p3, _ := e.login(n2, "pat", 0) // with p1, three Web instances: one too many
	px.heal()

	if kt := waitKick(t, k1); kt != wire.KickRESTAPI {
		t.Fatalf("REST-kicked while node 1 was away: KickType %d, want %d", kt, wire.KickRESTAPI)
	}
	if kt := waitKick(t, p1); kt != wire.KickMultipleAccount {
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
