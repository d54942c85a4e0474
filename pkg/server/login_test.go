package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// An a2 re-login imports its account when the store does not hold it: a
// crash may lose a login's import (committed after the reply,
// store.Store.LoginAccount); here the account is deleted behind the
// server's back, with no kick, as such a crash would leave it.
func TestA2ReloginReimports(t *testing.T) {
	ts := servertest.Start(t)
	ctx := context.Background()
	c := dial(t, ts, "/binfo")
	c.mustLogin("alice", ts.Sig("alice", time.Hour))
	if existed, err := ts.Store().DeleteAccount(ctx, servertest.SDKAppID, "alice"); err != nil || !existed {
		t.Fatalf("DeleteAccount = %v, %v", existed, err)
	}
	c.ws.Close()
	c2 := c.reconnect(t, ts)
	if r := c2.relogin(); r.code() != 0 {
		t.Fatalf("a2 re-login: %s", r.Raw)
	}
	if ok, err := ts.Store().AccountExists(ctx, servertest.SDKAppID, "alice"); err != nil || !ok {
		t.Fatalf("the a2 re-login did not import the account: %v, %v", ok, err)
	}
}

// heldStore is a store whose LoginAccount (once it has answered) or
// RevokeInstance (before it writes), once armed, waits for release: a
// login held between its checks (revocation, kick watermark) and its
// attach, or a logout between taking the instance out of the hub and its
// revocation.
type heldStore struct {
	store.Store
	loginArmed, revokeArmed atomic.Bool
	entered, release        chan struct{}
}

func newHeldStore() *heldStore {
	return &heldStore{entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldStore) hold(armed *atomic.Bool) {
	if armed.CompareAndSwap(true, false) {
		h.entered <- struct{}{}
		<-h.release
	}
}

func (h *heldStore) LoginAccount(ctx context.Context, app uint64, user string, now time.Time, admit func(int64) bool) (bool, error) {
	ok, err := h.Store.LoginAccount(ctx, app, user, now, admit)
	h.hold(&h.loginArmed)
	return ok, err
}

func (h *heldStore) RevokeInstance(ctx context.Context, app, inst uint64, until time.Time, reason string) error {
	h.hold(&h.revokeArmed)
	return h.Store.RevokeInstance(ctx, app, inst, until, reason)
}

// startHeld starts a server on h and logs alice in; r is a second socket
// with her A2Key (a `chatctl watch` of her profile).
func startHeld(t *testing.T, h *heldStore, opts ...servertest.Option) (ts *servertest.Server, a, r *client) {
	ts = servertest.Start(t, append(opts, servertest.WrapStore(func(s store.Store) store.Store { h.Store = s; return h }))...)
	a = dial(t, ts, "/binfo")
	a.mustLogin("alice", ts.Sig("alice", time.Hour))
	r = a.reconnect(t, ts)
	return ts, a, r
}

func offline(t *testing.T, ts *servertest.Server, user string) {
	t.Helper()
	if out := restCall(t, ts, "openim/query_online_status", map[string]any{"To_Account": []string{user}}); !strings.Contains(mustJSON(out), `"Status":"Offline"`) {
		t.Fatalf("%s after her logout: %s", user, mustJSON(out))
	}
}

// A logout of an instance that lands between an a2 re-login's revocation
// check and its attach (the SDK's socket logging out while a `chatctl
// watch` of the profile reconnects) revoked the instance, but the re-login
// then attached it: answered OK, online, holding a revoked instance (28 of
// 60 such races in a cluster, in an attack pass). It is refused as the
// logout's, and the user is offline.
func TestLogoutDuringA2Relogin(t *testing.T) {
	h := newHeldStore()
	ts, a, r := startHeld(t, h)
	h.loginArmed.Store(true)
	seq := r.send(wire.CmdLogin, nil, map[string]any{"State": "Online"})
	<-h.entered // past its revocation check
	if out := a.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0}); out.code() != 0 {
		t.Fatalf("logout: %s", out.Raw)
	}
	close(h.release)
	if out := r.await(wire.CmdLogin, seq); out.code() != wire.CodeA2Rejected || out.str("ErrorInfo") != "instance revoked: logout" {
		t.Fatalf("the a2 re-login the logout overtook: %s; want %d instance revoked: logout", out.Raw, wire.CodeA2Rejected)
	}
	offline(t, ts, "alice")
}

// The other order: the re-login checks and attaches after the logout took
// the instance out of the hub but before its revocation is written. The
// logout's notice on the bus (delivered on its own node too) then finds it
// attached again and closes its socket, whose next re-login hears why.
func TestA2ReloginDuringLogout(t *testing.T) {
	h := newHeldStore()
	ts, a, r := startHeld(t, h)
	h.revokeArmed.Store(true)
	seq := a.send(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0})
	<-h.entered // out of the hub, not yet revoked
	if out := r.relogin(); out.code() != 0 {
		t.Fatalf("a2 re-login before the revocation: %s", out.Raw)
	}
	close(h.release)
	if out := a.await(wire.CmdLogout, seq); out.code() != 0 {
		t.Fatalf("logout: %s", out.Raw)
	}
	closedAsLoggedOut(t, ts, r, "alice")
}

// closedAsLoggedOut checks that socket c, a holder of user's instance that
// was logged out, is closed, that user is offline, and that the instance's
// next re-login hears why.
func closedAsLoggedOut(t *testing.T, ts *servertest.Server, c *client, user string) {
	t.Helper()
	var ne net.Error
	if err := c.closed(); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the logged-out instance's other socket is still open 5 s after")
	}
	offline(t, ts, user)
	again := c.reconnect(t, ts)
	again.refusedRevoked("logout", "its next re-login")
}

// A socket that logs in as another instance logs its earlier instance out,
// as a wslogout would: that instance's other sockets (a `chatctl watch`
// beside it) are closed, and their re-login hears why. They stayed open,
// holding nothing and told of nothing (the network pass).
func TestLoginOfAnotherInstanceEndsTheFirsts(t *testing.T) {
	ts := servertest.Start(t)
	a := dial(t, ts, "/binfo")
	a.mustLogin("alice", ts.Sig("alice", time.Hour))
	w := a.reconnect(t, ts)
	if out := w.relogin(); out.code() != 0 {
		t.Fatalf("second socket of alice's instance: %s", out.Raw)
	}
	a.mustLogin("bob", ts.Sig("bob", time.Hour))
	closedAsLoggedOut(t, ts, w, "alice")
}

// An A2Key already logged out, sent in wslogout over and over from sockets
// that never log in, was each time a revocation written again, a log line,
// a feed event and a bus message (24,000 log lines in 5 s from 200
// sockets, in an attack pass). Each is answered OK, and nothing else
// happens: one logout in the log.
func TestLogoutOfRevokedA2KeyDoesNothing(t *testing.T) {
	var log syncBuf
	ts := servertest.Start(t, servertest.Logger(slog.New(slog.NewTextHandler(&log, nil))))
	a := dial(t, ts, "/binfo")
	a.mustLogin("alice", ts.Sig("alice", time.Hour))
	if out := a.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0}); out.code() != 0 {
		t.Fatalf("logout: %s", out.Raw)
	}
	for range 5 {
		b := a.reconnect(t, ts)
		if out := b.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0}); out.code() != 0 {
			t.Fatalf("logout again with the stale A2Key: %s", out.Raw)
		}
	}
	if n := strings.Count(log.String(), "msg=logout "); n != 1 {
		t.Fatalf("%d logout lines in the log, want 1:\n%s", n, log.String())
	}
}

// A REST kick landing between a login's kick-watermark check and its
// attach read the presence before the instance was in it: the login was
// answered OK and stayed online, unkicked (6 of 60 such races against an
// a2 re-login on one Redis node, in an attack pass). Now the attach reads
// the watermark in the same step (Presence.Attach) and the login is
// kicked REST_API_Kick after its reply, and the user is offline. Both forms: a UserSig login, and an a2
// re-login of an instance whose socket is gone.
func TestRESTKickDuringLogin(t *testing.T) {
	for _, form := range []string{"usersig", "a2"} {
		t.Run(form, func(t *testing.T) {
			h := newHeldStore()
			// The kick comes a second after the login's clock reading:
			// in the same millisecond the A2Key (issued at or after the
			// watermark) would be admitted, as the rule says.
			clock := newFakeClock()
			ts, a, r := startHeld(t, h, servertest.Clock(clock.Now))
			a.ws.Close()
			if form == "usersig" {
				r.a2 = ""
			}
			h.loginArmed.Store(true)
			var seq uint64
			if form == "usersig" {
				seq = r.send(wire.CmdLogin, map[string]any{"identifier": "alice", "usersig": ts.Sig("alice", time.Hour)}, map[string]any{"State": "Online"})
			} else {
				seq = r.send(wire.CmdLogin, nil, map[string]any{"State": "Online"})
			}
			<-h.entered // past its watermark check
			clock.Add(time.Second)
			if out := restCall(t, ts, "im_open_login_svc/kick", map[string]any{"UserID": "alice"}); out["ErrorCode"] != float64(0) {
				t.Fatalf("kick: %s", mustJSON(out))
			}
			close(h.release)
			if out := r.await(wire.CmdLogin, seq); out.code() != 0 {
				t.Fatalf("the login the kick overtook: %s", out.Raw)
			}
			if p := r.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
				t.Fatalf("its kick push: %s", p.Raw)
			}
			offline(t, ts, "alice")
		})
	}
}

// The review's ping-pong: X's a2 re-login passes its revocation check, a
// new login Y kicks X (WebInstances 1), then X attaches. X used to kick Y
// and only then be refused as revoked, leaving the user offline. Now X's
// attach is refused with nobody kicked: Y stays online.
func TestRevokedReloginKicksNobody(t *testing.T) {
	h := newHeldStore()
	ts := servertest.Start(t, servertest.WebInstances(1), servertest.WrapStore(func(s store.Store) store.Store { h.Store = s; return h }))
	x := dial(t, ts, "/binfo")
	x.mustLogin("alice", ts.Sig("alice", time.Hour))
	x.ws.Close()
	r := x.reconnect(t, ts)
	h.loginArmed.Store(true)
	seq := r.send(wire.CmdLogin, nil, map[string]any{"State": "Online"})
	<-h.entered // past its checks
	y := dial(t, ts, "/binfo")
	y.mustLogin("alice", ts.Sig("alice", time.Hour))
	close(h.release)
	if out := r.await(wire.CmdLogin, seq); out.code() != wire.CodeA2Rejected || out.str("ErrorInfo") != "instance revoked: multipleAccount" {
		t.Fatalf("the re-login of the instance kicked meanwhile: %s", out.Raw)
	}
	if out := y.call(wire.CmdHeartbeat, nil, nil); out.code() != 0 {
		t.Fatalf("the login that kicked it: %s", out.Raw)
	}
	if _, err := y.tryRead(300 * time.Millisecond); err == nil || !isTimeout(err) {
		t.Fatalf("the login that kicked it got a push or lost its socket: %v", err)
	}
	if out := restCall(t, ts, "openim/query_online_status", map[string]any{"To_Account": []string{"alice"}}); !strings.Contains(mustJSON(out), `"Status":"Online"`) {
		t.Fatalf("alice: %s", mustJSON(out))
	}
}
