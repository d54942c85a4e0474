package loadgen_test

import (
	"context"
	"testing"
	"time"

	"chatctl/pkg/loadgen"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"
)

// A kept session answers a kick as the SDK does (PROTOCOL.md 4.5), so the
// server stops pushing it again: wslogout type 1 for multipleAccount (the
// socket stays open), and for REST_API_Kick its own close of the socket,
// which is not an unexpected disconnect.
func TestKeeperAnswersKicks(t *testing.T) {
	ts := servertest.Start(t)
	d, err := loadgen.NewDialer(loadgen.Target{Endpoint: ts.WSURL, SDKAppID: ts.App.SDKAppID})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	login := func(user string) *loadgen.Session {
		t.Helper()
		s, err := d.Login(ctx, user, ts.Sig(user, time.Hour))
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return s
	}
	var k loadgen.Keeper

	a := login("ka")
	k.Keep(a)
	defer a.Close()
	b := login("ka") // same platform: a is kicked multipleAccount
	defer b.Close()
	waitFor(t, "multipleAccount kick acknowledged", func() bool { return k.KickAcks.Load() == 1 })
	if typ, _ := a.Kicked(); typ != wire.KickMultipleAccount {
		t.Fatalf("a kicked with type %d, want %d", typ, wire.KickMultipleAccount)
	}
	if got := k.Live.Load(); got != 1 {
		t.Fatalf("live sockets after a multipleAccount kick = %d, want 1 (the SDK keeps it)", got)
	}

	c := login("kc")
	k.Keep(c)
	defer c.Close()
	if _, err := ts.Server().Kick(ctx, ts.App.SDKAppID, "kc"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "socket closed after a REST kick", func() bool { return k.Live.Load() == 1 })
	if typ, _ := c.Kicked(); typ != wire.KickRESTAPI {
		t.Fatalf("c kicked with type %d, want %d", typ, wire.KickRESTAPI)
	}
	if n := k.Disconnects.Load(); n != 0 {
		t.Fatalf("unexpected disconnects = %d, want 0", n)
	}
	if n := k.KickAcks.Load(); n != 1 {
		t.Fatalf("kick acks = %d, want 1 (no wslogout after a REST kick)", n)
	}
	waitFor(t, "server dropped the REST-kicked socket", func() bool { return ts.Server().Stats(false).Sockets == 2 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
