package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/client"
	"chatctl/pkg/wire"
)

func TestLoginReadyLogout(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	ctx := context.Background()

	c, err := client.Dial(ctx, cfg(ts))
	if err != nil {
		t.Fatal(err)
	}
	userSig := ts.Sig("alice", time.Hour)
	res, err := c.Login(ctx, "alice", userSig)
	if err != nil {
		t.Fatal(err)
	}
	if res.A2Key == "" || res.TinyID == "" || res.InstID == 0 || res.HelloInterval != time.Second {
		t.Fatalf("login result %+v", res)
	}
	// Same machine, same clock: the SDK formula lands within a second or so.
	if res.ServerTime.IsZero() || res.Offset > 2*time.Second || res.Offset < -2*time.Second {
		t.Fatalf("server time %v offset %v", res.ServerTime, res.Offset)
	}
	if _, err := c.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close() // like `chatctl login` exiting: the session stays
	s := res.Session()

	w := watch(t, cfg(ts), s)
	w.expect(t, "SDK_READY")
	waitOnline(t, ts, "alice", 1)
	w.cancel()
	if err := w.result(t); err != nil {
		t.Fatalf("Watch after cancel: %v", err)
	}
	w.none(t, client.EventKickedOut, client.EventSDKNotReady)

	// server-time / whoami --check: a live a2 re-login on a fresh socket.
	p, err := client.Probe(ctx, cfg(ts), s)
	if err != nil {
		t.Fatal(err)
	}
	if p.InstID != s.InstID || p.ServerTime.IsZero() {
		t.Fatalf("probe %+v", p)
	}

	// logout: re-attach, wslogout type 0.
	if err := client.LogoutSession(ctx, cfg(ts), s); err != nil {
		t.Fatal(err)
	}
	_, err = client.Probe(ctx, cfg(ts), s)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != wire.CodeA2Rejected || se.RevokedReason() != "logout" || se.KickedType() != "" {
		t.Fatalf("probe after logout: %v", err)
	}
	// Logging out again reports that the session is already over.
	if err := client.LogoutSession(ctx, cfg(ts), s); !errors.As(err, &se) || se.RevokedReason() != "logout" {
		t.Fatalf("second logout: %v", err)
	}
	w = watch(t, cfg(ts), s)
	w.expect(t, "SDK_NOT_READY 70002")
	if err := w.result(t); !errors.As(err, &se) || se.Code != wire.CodeA2Rejected {
		t.Fatalf("watch after logout: %v", err)
	}
	for _, secret := range []string{userSig, s.A2Key} {
		if strings.Contains(err.Error(), secret) {
			t.Fatal("secret in error text")
		}
	}
}

func TestSecondLoginKicksFirstMultipleAccount(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	ctx := context.Background()
	first := login(t, ts, "alice", time.Hour)
	w := watch(t, cfg(ts), first)
	w.expect(t, "SDK_READY")
	waitOnline(t, ts, "alice", 1)

	c, err := client.Dial(ctx, cfg(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	second, err := c.Login(ctx, "alice", ts.Sig("alice", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// The watch answered with wslogout type 1 and emitted KICKED_OUT only
	// after its reply (unit-tested against a scripted peer in pkg/client).
	w.expect(t, "KICKED_OUT multipleAccount", "SDK_NOT_READY")
	wantKicked(t, w.result(t), client.KickedMultipleAccount)

	// The kicked session stays refused, and says why.
	_, err = client.Probe(ctx, cfg(ts), first)
	var se *client.ServerError
	if !errors.As(err, &se) || se.KickedType() != client.KickedMultipleAccount {
		t.Fatalf("probe of the kicked session: %v", err)
	}
	// The second device was not disturbed by the first one's wslogout.
	if _, err := c.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if second.InstID == first.InstID {
		t.Fatal("same instance id for two logins")
	}
	waitOnline(t, ts, "alice", 1)
}

func TestRESTKick(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	s := login(t, ts, "bob", time.Hour)
	w := watch(t, cfg(ts), s)
	w.expect(t, "SDK_READY")
	waitOnline(t, ts, "bob", 1)
	restKick(t, ts, "bob")
	w.expect(t, "KICKED_OUT REST_API_Kick", "SDK_NOT_READY")
	wantKicked(t, w.result(t), client.KickedRESTAPI)

	// Attaching again later learns the reason from the refusal.
	w2 := watch(t, cfg(ts), s)
	w2.expect(t, "KICKED_OUT REST_API_Kick", "SDK_NOT_READY")
	wantKicked(t, w2.result(t), client.KickedRESTAPI)
}

func TestUserSigExpired(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	s := login(t, ts, "carol", 2*time.Second)
	w := watch(t, cfg(ts), s)
	w.expect(t, "SDK_READY", "KICKED_OUT userSigExpired", "SDK_NOT_READY")
	wantKicked(t, w.result(t), client.KickedUserSigExpired)

	// Later checks (whoami --check) see it expired too.
	_, err := client.Probe(context.Background(), cfg(ts), s)
	var se *client.ServerError
	if !errors.As(err, &se) || se.KickedType() != client.KickedUserSigExpired {
		t.Fatalf("probe of the expired session: %v", err)
	}
}

func TestServerRestartKeepsSession(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	ctx := context.Background()
	s := login(t, ts, "dave", time.Hour)
	w := watch(t, cfg(ts), s)
	w.expect(t, "SDK_READY")
	waitOnline(t, ts, "dave", 1)

	ts.Restart()
	w.expect(t, "NET_STATE_CHANGE connecting")
	// connected comes right away, or after a failed attempt while the port
	// was closed.
	for {
		e := <-w.ch
		if e.Name == client.EventNetStateChange && e.State == client.StateConnected {
			break
		}
		if e.Name != client.EventNetStateChange || e.State != client.StateDisconnected {
			t.Fatalf("event %v during reconnect", describe(e))
		}
	}
	// The a2 re-login was accepted: the new process has the instance online.
	waitOnline(t, ts, "dave", 1)
	w.none(t, client.EventKickedOut, client.EventSDKNotReady)

	// And it is really attached: a second login kicks it.
	c, err := client.Dial(ctx, cfg(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, "dave", ts.Sig("dave", time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "KICKED_OUT multipleAccount", "SDK_NOT_READY")
	wantKicked(t, w.result(t), client.KickedMultipleAccount)
}

func TestBadUserSig(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	ctx := context.Background()
	c, err := client.Dial(ctx, cfg(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name, sig string
		code      int
	}{
		{"garbage", "not-a-usersig", 0},
		{"other key", otherKeySig(ts, "erin"), wire.CodeSigBadMAC},
		{"other user", ts.Sig("frank", time.Hour), 0},
	} {
		_, err := c.Login(ctx, "erin", tc.sig)
		var se *client.ServerError
		if !errors.As(err, &se) || se.Code == 0 || (tc.code != 0 && se.Code != tc.code) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if se.SigExpired() || se.Code == wire.CodeKickedByReply {
			t.Fatalf("%s: code %d triggers SDK side effects", tc.name, se.Code)
		}
		if strings.Contains(err.Error(), tc.sig) {
			t.Fatalf("%s: UserSig in error", tc.name)
		}
	}
	// The socket is still usable after refusals, as with the SDK.
	if _, err := c.Login(ctx, "erin", ts.Sig("erin", time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachable(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	s := login(t, ts, "gina", time.Hour)
	ts.Close()
	ctx := context.Background()
	if _, err := client.Dial(ctx, cfg(ts)); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("Dial: %v", err)
	}
	if _, err := client.Probe(ctx, cfg(ts), s); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("Probe: %v", err)
	}
	err := client.Watch(ctx, cfg(ts), s, func(e client.Event) { t.Errorf("event %v", describe(e)) })
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("Watch: %v", err)
	}
}

// `chatctl server-time` or `whoami --check` while `chatctl watch` runs: the
// probe's a2 re-login must not leave the watch deaf to kicks.
// The server keeps every open socket of an instance as a holder, so the
// kick below reaches the watch although the probe re-logged in after it.
func TestProbeWhileWatching(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	ctx := context.Background()
	s := login(t, ts, "ivy", time.Hour)
	w := watch(t, cfg(ts), s)
	w.expect(t, "SDK_READY")
	waitOnline(t, ts, "ivy", 1)
	if _, err := client.Probe(ctx, cfg(ts), s); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, cfg(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, "ivy", ts.Sig("ivy", time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "KICKED_OUT multipleAccount", "SDK_NOT_READY")
}

// Two PC terminals of one user: the default policy keeps one per non-Web
// platform, so the first gets multipleDevice (answered like multipleAccount).
func TestSecondTerminalKicksFirstMultipleDevice(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	ctx := context.Background()
	pc := cfg(ts)
	pc.Platform = 3 // PC
	c, err := client.Dial(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Login(ctx, "jo", ts.Sig("jo", time.Hour))
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	w := watch(t, pc, res.Session())
	w.expect(t, "SDK_READY")
	waitOnline(t, ts, "jo", 1)

	// A Web login does not disturb it (multi policy).
	login(t, ts, "jo", time.Hour)
	c2, err := client.Dial(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Login(ctx, "jo", ts.Sig("jo", time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "KICKED_OUT multipleDevice", "SDK_NOT_READY")
	wantKicked(t, w.result(t), client.KickedMultipleDevice)
}
