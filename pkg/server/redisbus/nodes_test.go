package redisbus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server"
	"chatctl/pkg/server/redisbus"
	"chatctl/pkg/server/servertest"
	rstore "chatctl/pkg/server/store/redis"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// node is one real chatctl server on a loopback port with the Redis store
// and the Redis bus, without the shared presence (pkg/server/cluster
// assembles all three for `serve --store redis://…`).
type node struct {
	srv *server.Server
	ws  string
}

const testApp = 1400000042

func startNode(t *testing.T, url, prefix string, app server.AppConfig) *node {
	t.Helper()
	ctx := context.Background()
	st, err := rstore.Open(ctx, url, rstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	bus, err := redisbus.New(ctx, st.Client(), redisbus.Options{Channel: st.Prefix() + "kick"})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Apps: []server.AppConfig{app}, Store: st, Bus: bus,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
		bus.Close()
		st.Close()
	})
	return &node{srv: srv, ws: "ws://" + ln.Addr().String()}
}

func dial(t *testing.T, n *node) *client.Conn {
	t.Helper()
	c, err := client.Dial(context.Background(), client.Config{Endpoint: n.ws, SDKAppID: testApp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Two real servers on one Redis, with only the foundations of this
// package and the Redis store plugged into server.Config (no shared
// presence): an A2Key of one node is accepted by the other, a REST
// kick decided on node 1 is pushed by node 2 (which holds the socket) and
// its watermark refuses older UserSigs on node 2.
func TestTwoServersShareRedis(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	var key [32]byte
	rand.Read(key[:])
	app := server.AppConfig{SDKAppID: testApp, Key: hex.EncodeToString(key[:]), Admins: []string{"administrator"}}
	n1, n2 := startNode(t, url, prefix, app), startNode(t, url, prefix, app)
	ctx := context.Background()
	mint := func(user string, at time.Time) string {
		return sig.Gen(sig.Params{SDKAppID: testApp, Key: app.Key, UserID: user, Expire: 3600}, at)
	}

	// alice logs in on node 1, then her SDK reconnects to node 2 with its A2Key.
	c1 := dial(t, n1)
	r1, err := c1.Login(ctx, "alice", mint("alice", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, n2)
	r2, err := c2.Relogin(ctx, r1.Session())
	if err != nil {
		t.Fatalf("a2 re-login on node 2: %v", err)
	}
	if r2.InstID != r1.InstID || r2.TinyID != r1.TinyID {
		t.Fatalf("node 2 gave inst %d tiny %s; node 1 gave %d %s", r2.InstID, r2.TinyID, r1.InstID, r1.TinyID)
	}
	// Node 1's socket goes away: node 1 keeps the instance (detached).
	c1.Close()

	// A REST kick on node 1 reaches the socket on node 2 through Redis.
	if _, err := n1.srv.Kick(ctx, testApp, "alice"); err != nil {
		t.Fatal(err)
	}
	if kt := servertest.WaitKick(t, c2); kt != wire.KickRESTAPI {
		t.Fatalf("node 2's socket got KickType %d, want %d (REST_API_Kick)", kt, wire.KickRESTAPI)
	}
	// The watermark is shared: node 2 refuses the
	// A2Key and a UserSig minted before the kick.
	c3 := dial(t, n2)
	_, err = c3.Relogin(ctx, r1.Session())
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != wire.CodeA2Rejected || se.RevokedReason() != "REST_API_Kick" {
		t.Fatalf("a2 re-login on node 2 after the kick: %v; want 70002 revoked REST_API_Kick", err)
	}
	_, err = c3.Login(ctx, "alice", mint("alice", time.Now().Add(-5*time.Second)))
	if !errors.As(err, &se) || se.Code != wire.CodeSigKicked {
		t.Fatalf("old UserSig on node 2 after the kick: %v; want %d", err, wire.CodeSigKicked)
	}
	// Instance ids of the two nodes never collide.
	seen := map[uint64]bool{}
	for i := range 10 {
		c := dial(t, []*node{n1, n2}[i%2])
		r, err := c.Login(ctx, "bob", mint("bob", time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if seen[r.InstID] {
			t.Fatalf("InstId %d handed out twice", r.InstID)
		}
		seen[r.InstID] = true
		c.Close()
	}
}

// Redis down: a connected session keeps heartbeating, a new login is
// refused with a store error, and the node recovers by itself when Redis
// is back.
func TestServerRedisDown(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	var key [32]byte
	rand.Read(key[:])
	app := server.AppConfig{SDKAppID: testApp, Key: hex.EncodeToString(key[:]), Admins: []string{"administrator"}}
	n := startNode(t, srv.URL(), "", app)
	ctx := context.Background()
	mint := func(user string) string {
		return sig.Gen(sig.Params{SDKAppID: testApp, Key: app.Key, UserID: user, Expire: 3600}, time.Now())
	}
	c := dial(t, n)
	r, err := c.Login(ctx, "alice", mint("alice"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, err := c.Heartbeat(ctx); err != nil {
		t.Fatalf("heartbeat of a connected session with Redis down: %v", err)
	}
	if err := c.Hello(ctx); err != nil {
		t.Fatalf("wshello with Redis down: %v", err)
	}
	c2 := dial(t, n)
	_, err = c2.Login(ctx, "bob", mint("bob"))
	var se *client.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("login with Redis down: %v; want a refusal", err)
	}
	// 70169: the store is unavailable, try again (docs/MULTINODE.md).
	if se.Code != wire.CodeTimeout {
		t.Fatalf("login with Redis down: code %d; want 70169", se.Code)
	}
	t.Logf("login with Redis down: %d %s", se.Code, se.Info)
	srv.Restart()
	if _, err := c2.Login(ctx, "bob", mint("bob")); err != nil {
		t.Fatalf("login after Redis came back: %v", err)
	}
	// The session from before the outage is still valid everywhere.
	c3 := dial(t, n)
	if _, err := c3.Relogin(ctx, r.Session()); err != nil {
		t.Fatalf("a2 re-login after the outage: %v", err)
	}
}
