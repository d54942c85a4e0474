package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

func TestLoginBinaryAndText(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.HelloInterval(7*time.Second))
	for _, path := range []string{"/binfo", "/info", "//binfo"} {
		t.Run(path, func(t *testing.T) {
			c := dial(t, ts, path+"?sdkappid="+strconv.Itoa(servertest.SDKAppID)+"&platform=7&instanceid=abc&random=0.5")
			hb := c.call(wire.CmdHeartbeat, map[string]any{"identifier": "alice", "usersig": "x"}, nil)
			if hb.code() != 0 {
				t.Fatalf("heartbeat before login: %s", hb.Raw)
			}
			r := c.mustLogin("alice", ts.Sig("alice", time.Hour))
			if r.str("A2Key") == "" || r.str("TinyId") == "" || c.inst == 0 || c.inst >= 1<<53 {
				t.Fatalf("login reply lacks credentials: %s", r.Raw)
			}
			if r.str("ActionStatus") != "OK" {
				t.Errorf("ActionStatus = %q", r.str("ActionStatus"))
			}
			if r.Body["HelloInterval"] != float64(7) {
				t.Errorf("HelloInterval = %v, want 7", r.Body["HelloInterval"])
			}
			if ts := int64(r.Body["TimeStamp"].(float64)); ts < time.Now().Unix()-2 || ts > time.Now().Unix()+2 {
				t.Errorf("TimeStamp = %d, want about now", ts)
			}
			if len(r.Head) != 2 {
				t.Errorf("reply head = %v, want only servcmd and seq", r.Head)
			}
			if bytes.Contains(r.Raw, []byte("usersig")) {
				t.Errorf("reply echoes the usersig: %s", r.Raw)
			}
			if h := c.call(wire.CmdHello, nil, map[string]any{"is_web_uniapp": 0}); h.code() != 0 {
				t.Errorf("wshello: %s", h.Raw)
			}
			if lo := c.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0, "is_web_uniapp": 0}); lo.code() != 0 {
				t.Errorf("wslogout: %s", lo.Raw)
			}
		})
	}
}

func TestTinyIDStableAndInstIDUnique(t *testing.T) {
	ts := servertest.Start(t, servertest.WebInstances(5))
	seen := map[uint64]bool{}
	var tiny string
	for i := 0; i < 3; i++ {
		c := dial(t, ts, "/binfo")
		c.mustLogin("carol", ts.Sig("carol", time.Hour))
		if seen[c.inst] {
			t.Fatalf("InstId %d handed out twice", c.inst)
		}
		seen[c.inst] = true
		if tiny != "" && c.tiny != tiny {
			t.Fatalf("TinyId changed: %s then %s", tiny, c.tiny)
		}
		tiny = c.tiny
	}
	d := dial(t, ts, "/binfo")
	d.mustLogin("dave", ts.Sig("dave", time.Hour))
	if d.tiny == tiny {
		t.Fatalf("two users share TinyId %s", tiny)
	}
	if ok, err := ts.Store().AccountExists(context.Background(), servertest.SDKAppID, "carol"); err != nil || !ok {
		t.Fatalf("login did not import the account: %v %v", ok, err)
	}
}

func TestA2Relogin(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	c.mustLogin("alice", ts.Sig("alice", time.Hour))

	// Reconnect: a new socket, the a2 form, the same InstId.
	c.ws.Close()
	c2 := c.reconnect(t, ts)
	r := c2.relogin()
	if r.code() != 0 || uint64(r.Body["InstId"].(float64)) != c.inst || r.str("TinyId") != c.tiny {
		t.Fatalf("a2 re-login: %s", r.Raw)
	}

	// Without sdkappid in the head or the URL, the A2Key names the app.
	if r := c2.call(wire.CmdLogin, map[string]any{"sdkappid": nil}, loginBody); r.code() != 0 {
		t.Fatalf("a2 re-login without sdkappid: %s", r.Raw)
	}

	for name, mod := range map[string]func(*client){
		"forged":         func(x *client) { x.a2 = c.a2[:len(c.a2)-2] + "AA" },
		"garbage":        func(x *client) { x.a2 = "not-an-a2" },
		"tinyidMismatch": func(x *client) { x.tiny = "144115000000000001" },
	} {
		t.Run(name, func(t *testing.T) {
			x := c.reconnect(t, ts)
			mod(x)
			if r := x.relogin(); r.code() != wire.CodeA2Rejected {
				t.Fatalf("got %s, want %d", r.Raw, wire.CodeA2Rejected)
			}
			// The socket stays usable.
			if hb := x.call(wire.CmdHeartbeat, nil, nil); hb.code() != 0 {
				t.Fatalf("heartbeat after refusal: %s", hb.Raw)
			}
		})
	}
}

func TestRestartKeepsA2(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	c.mustLogin("bob", ts.Sig("bob", time.Hour))
	go ts.Restart()
	_, err := c.tryRead(5 * time.Second)
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("on restart the socket ended with %v, want close 1001", err)
	}
	var c2 *client
	for i := 0; ; i++ { // the restart may still be under way
		var err error
		if c2, _, err = dialHeader(t, ts, "/binfo", nil); err == nil {
			break
		}
		if i > 200 {
			t.Fatalf("no server after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c2.a2, c2.tiny, c2.inst = c.a2, c.tiny, c.inst
	if r := c2.relogin(); r.code() != 0 || uint64(r.Body["InstId"].(float64)) != c.inst {
		t.Fatalf("a2 re-login after restart: %s", r.Raw)
	}
	if on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "bob"); len(on) != 1 {
		t.Fatalf("online after re-login: %v", on)
	}
}

func TestHeartbeatNeverAuthenticated(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	for _, head := range []map[string]any{
		nil,
		{"a2": "stale", "tinyid": "1", "status_instid": 5},
		{"identifier": "x", "usersig": "garbage"},
		{"sdkappid": 1},
	} {
		if r := c.call(wire.CmdHeartbeat, head, nil); r.code() != 0 || r.str("ActionStatus") != "OK" {
			t.Fatalf("heartbeat with head %v: %s", head, r.Raw)
		}
	}
}

func TestBackgroundReplies(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	c.mustLogin("alice", ts.Sig("alice", time.Hour))
	if len(wire.BackgroundReplies) != 13 {
		t.Fatalf("%d background commands, want 13", len(wire.BackgroundReplies))
	}
	for cmd := range wire.BackgroundReplies {
		r := c.call(cmd, nil, map[string]any{"From_Account": "alice"})
		want, _ := wire.BackgroundReply(cmd)
		if !bytes.Contains(r.Raw, append([]byte(`"body":`), want...)) {
			t.Errorf("%s: got %s, want body %s", cmd, r.Raw, want)
		}
	}
	// The loops of PROTOCOL.md section 5 need these exact fields.
	if r := c.call("recentcontact.page_get", nil, nil); r.Body["CompleteFlag"] != float64(1) {
		t.Errorf("page_get: %s", r.Raw)
	}
	if r := c.call("sns.black_list_get", nil, nil); r.Body["StartIndex"] != float64(0) {
		t.Errorf("black_list_get: %s", r.Raw)
	}
}

func TestUnknownCommandAndBadJSON(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/info")
	if r := c.call("foo.bar", nil, nil); r.code() != wire.CodeUnknownCommand || r.str("ActionStatus") != "FAIL" {
		t.Fatalf("unknown servcmd: %s", r.Raw)
	}
	// Bad JSON whose head is still readable: a reply to that request.
	c.sendRaw([]byte(`{"head":{"servcmd":"openim.getmsg","seq":42},"body":{"Cookie":`))
	if r := c.await("openim.getmsg", 42); r.code() != wire.CodeBadJSON {
		t.Fatalf("bad JSON: %s", r.Raw)
	}
	// Garbage: an error frame with seq 0 (a push the SDK ignores).
	c.sendRaw([]byte(`not json at all`))
	if r := c.await("", 0); r.code() != wire.CodeBadJSON {
		t.Fatalf("garbage: %s", r.Raw)
	}
	// No servcmd.
	c.sendRaw([]byte(`{"head":{"seq":7},"body":{}}`))
	if r := c.await("", 7); r.code() != wire.CodeBadJSON {
		t.Fatalf("no servcmd: %s", r.Raw)
	}
	if r := c.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
		t.Fatalf("connection not kept: %s", r.Raw)
	}
}

func TestOversizedFrame(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	big := `{"head":{"servcmd":"openim.sendmsg","seq":99},"body":{"Text":"` + strings.Repeat("x", wire.MaxFrameSize) + `"}}`
	c.sendRaw([]byte(big))
	if r := c.await("openim.sendmsg", 99); r.code() != wire.CodeTooLarge {
		t.Fatalf("13 KB frame: %s", r.Raw)
	}
	if r := c.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
		t.Fatalf("socket not kept after 80002: %s", r.Raw)
	}
	// A frame of exactly MaxFrameSize is fine.
	pad := wire.MaxFrameSize - len(`{"head":{"servcmd":"heartbeat.alive","seq":5},"body":{"p":""}}`)
	c.sendRaw([]byte(`{"head":{"servcmd":"heartbeat.alive","seq":5},"body":{"p":"` + strings.Repeat("y", pad) + `"}}`))
	if r := c.await(wire.CmdHeartbeat, 5); r.code() != 0 {
		t.Fatalf("12 KB frame: %s", r.Raw)
	}
	// Past the hard limit the socket is closed (1009).
	c.sendRaw(bytes.Repeat([]byte("z"), server.HardReadLimit+1))
	if err := c.closed(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("huge frame: socket ended with %v, want 1009", err)
	}
}

func TestHealthz(t *testing.T) {
	ts := servertest.Start(t)
	resp, err := http.Get(ts.RESTURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(ts.RESTURL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/nope: %d", resp.StatusCode)
	}
}

func TestUnknownApp(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	r := c.call(wire.CmdLogin, map[string]any{"sdkappid": 1400009999, "identifier": "a", "usersig": "x"}, loginBody)
	if r.code() != wire.CodeAppNotFound {
		t.Fatalf("unknown app: %s", r.Raw)
	}
}

func TestBadUserSig(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	other := servertest.Start(t) // same SDKAppID, another key
	for _, tc := range []struct {
		sig  string
		user string
		code int
	}{
		{"", "alice", wire.CodeSigEmpty},
		{"@@@", "alice", wire.CodeSigMalformed},
		{other.Sig("alice", time.Hour), "alice", wire.CodeSigBadMAC},
		{ts.Sig("bob", time.Hour), "alice", wire.CodeUserMismatch},
	} {
		r := c.call(wire.CmdLogin, map[string]any{"identifier": tc.user, "usersig": tc.sig}, loginBody)
		if r.code() != tc.code {
			t.Errorf("sig %.10q: got %s, want %d", tc.sig, r.Raw, tc.code)
		}
	}
	c.mustLogin("alice", ts.Sig("alice", time.Hour)) // still usable
}

func TestMultipleAccountKick(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	a := dial(t, ts, "/binfo")
	a.mustLogin("alice", ts.Sig("alice", time.Hour))
	b := dial(t, ts, "/binfo")
	b.mustLogin("alice", ts.Sig("alice", time.Hour))

	p := a.awaitPush(wire.CmdForceOffline)
	if p.kickType() != wire.KickMultipleAccount || p.Head["seq"] != float64(0) {
		t.Fatalf("kick push: %s", p.Raw)
	}
	// The kicked socket stays open: heartbeats, then the kick ack.
	if r := a.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
		t.Fatalf("heartbeat after kick: %s", r.Raw)
	}
	if r := a.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 1, "is_web_uniapp": 0}); r.code() != 0 {
		t.Fatalf("kick ack: %s", r.Raw)
	}
	if r := a.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
		t.Fatalf("heartbeat after kick ack: %s", r.Raw)
	}
	// The kicked instance's a2 is revoked; the refusal says why. It got its
	// push already, so none follows (a second one would be a second
	// KICKED_OUT in the SDK).
	r := a.relogin()
	if r.code() != wire.CodeA2Rejected || !strings.Contains(r.str("ErrorInfo"), "multipleAccount") {
		t.Fatalf("kicked a2 re-login: %s", r.Raw)
	}
	a.call(wire.CmdHeartbeat, nil, nil)
	if len(a.pushes) != 0 {
		t.Fatalf("kick pushed again: %s", a.pushes[0].Raw)
	}
	// The new instance is untouched.
	if r := b.call(wire.CmdHello, nil, nil); r.code() != 0 {
		t.Fatalf("new instance: %s", r.Raw)
	}
	if len(b.pushes) != 0 {
		t.Fatalf("new instance got pushes: %v", b.pushes)
	}
	on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "alice")
	if len(on) != 1 || on[0].Platform != "Web" || on[0].Status != "Online" {
		t.Fatalf("online: %v", on)
	}
}

func TestWebInstancesKicksOldest(t *testing.T) {
	ts := servertest.Start(t, servertest.WebInstances(2))
	var cs []*client
	for i := 0; i < 3; i++ {
		c := dial(t, ts, "/binfo")
		c.mustLogin("erin", ts.Sig("erin", time.Hour))
		cs = append(cs, c)
	}
	if p := cs[0].awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleAccount {
		t.Fatalf("oldest: %s", p.Raw)
	}
	for _, c := range cs[1:] {
		c.call(wire.CmdHeartbeat, nil, nil)
		if len(c.pushes) != 0 {
			t.Fatalf("a newer instance was kicked: %s", c.pushes[0].Raw)
		}
	}
	on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "erin")
	if len(on) != 2 {
		t.Fatalf("online: %v", on)
	}
}

func TestMultipleDeviceKick(t *testing.T) {
	t.Run("samePlatform", func(t *testing.T) {
		ts := servertest.Start(t)
		web := dial(t, ts, "/binfo")
		web.mustLogin("frank", ts.Sig("frank", time.Hour))
		p1 := dial(t, ts, "/binfo?platform=iPhone")
		p1.mustLogin("frank", ts.Sig("frank", time.Hour))
		pc := dial(t, ts, "/binfo?platform=3")
		pc.mustLogin("frank", ts.Sig("frank", time.Hour))
		p2 := dial(t, ts, "/binfo?platform=1")
		p2.mustLogin("frank", ts.Sig("frank", time.Hour))
		if p := p1.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleDevice {
			t.Fatalf("first iPhone: %s", p.Raw)
		}
		for _, c := range []*client{web, pc, p2} {
			c.call(wire.CmdHeartbeat, nil, nil)
			if len(c.pushes) != 0 {
				t.Fatalf("kicked under the multi policy: %s", c.pushes[0].Raw)
			}
		}
		on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "frank")
		got := map[string]bool{}
		for _, i := range on {
			got[i.Platform] = true
		}
		if len(on) != 3 || !got["Web"] || !got["iPhone"] || !got["PC"] {
			t.Fatalf("online: %v", on)
		}
	})
	t.Run("single", func(t *testing.T) {
		ts := servertest.Start(t, servertest.MultiDevice(server.MultiDeviceSingle))
		web := dial(t, ts, "/binfo")
		web.mustLogin("gina", ts.Sig("gina", time.Hour))
		mac := dial(t, ts, "/binfo?platform=mac")
		mac.mustLogin("gina", ts.Sig("gina", time.Hour))
		if p := web.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleDevice {
			t.Fatalf("web under single: %s", p.Raw)
		}
		web2 := dial(t, ts, "/info")
		web2.mustLogin("gina", ts.Sig("gina", time.Hour))
		if p := mac.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleDevice {
			t.Fatalf("mac under single: %s", p.Raw)
		}
	})
}

func TestRESTKick(t *testing.T) {
	leaktest.Check(t)
	clk := newFakeClock()
	ts := servertest.Start(t, servertest.Clock(clk.Now), servertest.WebInstances(2))
	oldSig := ts.Sig("hank", time.Hour)
	a := dial(t, ts, "/binfo")
	a.mustLogin("hank", oldSig)
	b := dial(t, ts, "/binfo?platform=Android")
	b.mustLogin("hank", oldSig)

	clk.Add(time.Second) // the kick refuses UserSigs minted in an earlier second
	n, err := ts.Server().Kick(context.Background(), servertest.SDKAppID, "hank")
	if err != nil || n != 2 {
		t.Fatalf("Kick = %d, %v; want 2 online", n, err)
	}
	for _, c := range []*client{a, b} {
		if p := c.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
			t.Fatalf("REST kick push: %s", p.Raw)
		}
	}
	if on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "hank"); len(on) != 0 {
		t.Fatalf("online after kick: %v", on)
	}
	// The old UserSig is refused, with a code the SDK does not react to.
	x := dial(t, ts, "/binfo")
	if r := x.login("hank", oldSig); r.code() != wire.CodeSigKicked {
		t.Fatalf("old usersig after kick: %s", r.Raw)
	}
	// The old a2 too.
	x.a2, x.tiny, x.inst = a.a2, a.tiny, a.inst
	if r := x.relogin(); r.code() != wire.CodeA2Rejected || !strings.Contains(r.str("ErrorInfo"), "REST_API_Kick") {
		t.Fatalf("old a2 after kick: %s", r.Raw)
	}
	// A fresh UserSig works, even one minted in the kick's second.
	y := dial(t, ts, "/binfo")
	y.mustLogin("hank", ts.Sig("hank", time.Hour))
	// A kick with nobody online reports 0.
	if n, err := ts.Server().Kick(context.Background(), servertest.SDKAppID, "nobody"); n != 0 || err != nil {
		t.Fatalf("Kick(nobody) = %d, %v", n, err)
	}
}

func TestLogoutRevokes(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	c.mustLogin("ivan", ts.Sig("ivan", time.Hour))
	if r := c.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0}); r.code() != 0 {
		t.Fatalf("logout: %s", r.Raw)
	}
	if on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "ivan"); len(on) != 0 {
		t.Fatalf("online after logout: %v", on)
	}
	if r := c.relogin(); r.code() != wire.CodeA2Rejected || !strings.Contains(r.str("ErrorInfo"), "logout") {
		t.Fatalf("a2 after logout: %s", r.Raw)
	}
	c.call(wire.CmdHeartbeat, nil, nil)
	if len(c.pushes) != 0 {
		t.Fatalf("logout revocation pushed: %s", c.pushes[0].Raw)
	}
	// Another socket of the instance (a watch of the profile) is closed,
	// and its a2 re-login hears that the instance was logged out.
	w := dial(t, ts, "/binfo")
	w.mustLogin("ivan", ts.Sig("ivan", time.Hour))
	v := w.reconnect(t, ts)
	if r := v.relogin(); r.code() != 0 {
		t.Fatalf("a2 re-login on a second socket: %s", r.Raw)
	}
	if r := w.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0}); r.code() != 0 {
		t.Fatalf("logout: %s", r.Raw)
	}
	closedAsLoggedOut(t, ts, v, "ivan")
	// A logout re-sent on a fresh socket (after a reconnect) ends the
	// instance named by its a2.
	d := dial(t, ts, "/binfo")
	d.mustLogin("ivan", ts.Sig("ivan", time.Hour))
	e := d.reconnect(t, ts)
	if r := e.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0}); r.code() != 0 {
		t.Fatalf("logout by a2: %s", r.Raw)
	}
	if r := e.relogin(); r.code() != wire.CodeA2Rejected {
		t.Fatalf("a2 after logout by a2: %s", r.Raw)
	}
}

func TestUserSigExpired(t *testing.T) {
	clk := newFakeClock()
	ts := servertest.Start(t, servertest.Clock(clk.Now))
	c := dial(t, ts, "/binfo")
	c.mustLogin("judy", ts.Sig("judy", 10*time.Second))
	if r := c.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
		t.Fatalf("heartbeat before expiry: %s", r.Raw)
	}
	clk.Add(11 * time.Second)
	if r := c.call(wire.CmdHeartbeat, nil, nil); r.code() != wire.CodeSigExpired {
		t.Fatalf("heartbeat after expiry: %s", r.Raw)
	}
	// Once: the session is gone, later heartbeats are plain.
	if r := c.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
		t.Fatalf("second heartbeat: %s", r.Raw)
	}
	if on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "judy"); len(on) != 0 {
		t.Fatalf("online after expiry: %v", on)
	}

	// On wshello too.
	d := dial(t, ts, "/info")
	d.mustLogin("judy", ts.Sig("judy", 5*time.Second))
	clk.Add(6 * time.Second)
	if r := d.call(wire.CmdHello, nil, nil); r.code() != wire.CodeSigExpired {
		t.Fatalf("wshello after expiry: %s", r.Raw)
	}

	// An a2 that ran out while the client was away: 70002 on the re-login,
	// then 70001 on the next heartbeat (KICKED_OUT userSigExpired).
	e := dial(t, ts, "/binfo")
	e.mustLogin("judy", ts.Sig("judy", 5*time.Second))
	e.ws.Close()
	clk.Add(6 * time.Second)
	f := e.reconnect(t, ts)
	if r := f.relogin(); r.code() != wire.CodeA2Rejected {
		t.Fatalf("expired a2: %s", r.Raw)
	}
	if r := f.call(wire.CmdHeartbeat, nil, nil); r.code() != wire.CodeSigExpired {
		t.Fatalf("heartbeat after expired a2: %s", r.Raw)
	}
}

func TestLockout(t *testing.T) {
	clk := newFakeClock()
	ts := servertest.Start(t, servertest.Clock(clk.Now))
	c := dial(t, ts, "/binfo")
	bad := servertest.Start(t).Sig("kim", time.Hour) // another key
	for i := 0; i < server.LockoutFailures; i++ {
		if r := c.login("kim", bad); r.code() != wire.CodeSigBadMAC {
			t.Fatalf("failure %d: %s", i, r.Raw)
		}
	}
	// Locked: a failing UserSig gets 70050, not its own code.
	if r := c.login("kim", bad); r.code() != wire.CodeLocked {
		t.Fatalf("after %d failures: %s", server.LockoutFailures, r.Raw)
	}
	// Other users are not affected, and neither is kim's own UserSig,
	// which no one else can make: the lockout must not lock kim out.
	dial(t, ts, "/binfo").mustLogin("lee", ts.Sig("lee", time.Hour))
	dial(t, ts, "/binfo").mustLogin("kim", ts.Sig("kim", time.Hour))
	// The login cleared the count.
	if r := c.login("kim", bad); r.code() != wire.CodeSigBadMAC {
		t.Fatalf("after kim's login: %s", r.Raw)
	}
	clk.Add(server.LockoutDuration + time.Second)
	c.mustLogin("kim", ts.Sig("kim", time.Hour))
}

func TestOriginCheck(t *testing.T) {
	ts := servertest.Start(t, servertest.AllowedOrigins("http://localhost:5173"))
	for _, tc := range []struct {
		origin string
		host   string // the Host header, when not the server's address
		ok     bool
	}{
		{"", "", true},
		{"http://localhost:5173", "", true},
		{"http://" + ts.Addr, "", true}, // same host
		{"http://evil.example", "", false},
		{"http://localhost:5174", "", false},
		// DNS rebinding: a hostile page's name resolved to this server
		// is the same host as the page, but not an IP or localhost
		{"http://evil.example:7468", "evil.example:7468", false},
		{"http://localhost:7468", "localhost:7468", true},
		{"null", "", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		if tc.host != "" {
			h.Set("Host", tc.host)
		}
		_, resp, err := dialHeader(t, ts, "/binfo", h)
		if tc.ok && err != nil {
			t.Errorf("origin %q refused: %v", tc.origin, err)
		}
		if !tc.ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Errorf("origin %q: err %v, want 403", tc.origin, err)
		}
	}
	// Two Origins, the first one empty (which alone is allowed): refused,
	// with any allowed origin too.
	for _, two := range [][]string{{"", "http://evil.example"}, {"http://localhost:5173", "http://evil.example"}} {
		if _, resp, err := dialHeader(t, ts, "/binfo", http.Header{"Origin": two}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origins %q: err %v, want 403", two, err)
		}
	}
	any := servertest.Start(t, servertest.AllowedOrigins("*"))
	if _, _, err := dialHeader(t, any, "/binfo", http.Header{"Origin": {"http://evil.example"}}); err != nil {
		t.Errorf("* refused: %v", err)
	}
}

func TestSlowClientDoesNotStallOthers(t *testing.T) {
	leaktest.Check(t)
	// Unpaced: pacing would hold the slow client's requests back long
	// before its replies fill anything (TestFloodsArePaced); this is about
	// a client that does not read.
	ts := servertest.Start(t, servertest.WriteTimeout(300*time.Millisecond), servertest.Unpaced())
	// The slow client has a small receive window, sends requests and never
	// reads: the server's writes to it block, then time out, and the
	// server drops it.
	slow := dialSlowReader(t, ts)
	fast := dial(t, ts, "/binfo")
	fast.mustLogin("mia", ts.Sig("mia", time.Hour))
	req, _ := json.Marshal(map[string]any{"head": map[string]any{"servcmd": "sns.friend_get", "seq": 1}, "body": map[string]any{}})
	dropped := false
	for i := 0; i < 1_000_000; i++ {
		slow.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := slow.WriteMessage(websocket.BinaryMessage, req); err != nil {
			dropped = true
			t.Logf("dropped after %d requests: %v", i, err)
			break
		}
		if i%2000 == 0 {
			if r := fast.call(wire.CmdHeartbeat, nil, nil); r.code() != 0 {
				t.Fatalf("fast client: %s", r.Raw)
			}
		}
	}
	if !dropped {
		t.Fatalf("the slow client was never dropped")
	}
	if r := fast.call(wire.CmdHello, nil, nil); r.code() != 0 {
		t.Fatalf("fast client after the drop: %s", r.Raw)
	}
}

func TestPipelinedRequestsAreNotDropped(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	// More than the send queue, within the socket's pacing burst and a
	// few seconds of its rate (pace.go).
	const n = 100
	var buf []uint64
	for i := 0; i < n; i++ {
		buf = append(buf, c.send("sns.friend_get", nil, nil))
	}
	for _, seq := range buf {
		if r := c.await("sns.friend_get", seq); r.code() != 0 {
			t.Fatalf("reply %d: %s", seq, r.Raw)
		}
	}
}

func TestShutdownClosesSockets(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	var cs []*client
	for i := 0; i < 5; i++ {
		c := dial(t, ts, "/binfo")
		c.mustLogin("user"+strconv.Itoa(i), ts.Sig("user"+strconv.Itoa(i), time.Hour))
		cs = append(cs, c)
	}
	done := make(chan struct{})
	go func() { ts.Close(); close(done) }()
	for _, c := range cs {
		err := c.closed()
		var ce *websocket.CloseError
		if !errorsAs(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
			t.Errorf("socket ended with %v, want 1001 server shutting down", err)
		}
	}
	<-done
	if _, _, err := dialHeader(t, ts, "/binfo", nil); err == nil {
		t.Fatalf("dial after Close worked")
	}
}

// restCall POSTs a REST command as the admin, with a fresh UserSig.
func restCall(t *testing.T, ts *servertest.Server, cmd string, body any) map[string]any {
	t.Helper()
	return restAs(t, ts, ts.Sig(servertest.Admin, time.Hour), cmd, body)
}

func TestRESTMounted(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo?platform=Android")
	c.mustLogin("nina", ts.Sig("nina", time.Hour))
	out := restCall(t, ts, "openim/query_online_status", map[string]any{"IsNeedDetail": 1, "To_Account": []string{"nina", "omar"}})
	if out["ErrorCode"] != float64(0) || !strings.Contains(mustJSON(out), `"Platform":"Android"`) {
		t.Fatalf("query_online_status: %v", mustJSON(out))
	}
	out = restCall(t, ts, "im_open_login_svc/kick", map[string]any{"UserID": "nina"})
	if out["ErrorCode"] != float64(0) {
		t.Fatalf("kick: %v", mustJSON(out))
	}
	if p := c.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
		t.Fatalf("REST kick push: %s", p.Raw)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// An instance kicked while its socket was gone learns it on its return: the
// a2 re-login gets 70002, then the push it missed, once.
func TestKickWhileDetached(t *testing.T) {
	for _, tc := range []struct {
		name string
		kick func(t *testing.T, ts *servertest.Server)
		want int
	}{
		{"multipleAccount", func(t *testing.T, ts *servertest.Server) {
			dial(t, ts, "/binfo").mustLogin("pat", ts.Sig("pat", time.Hour))
		}, wire.KickMultipleAccount},
		{"REST", func(t *testing.T, ts *servertest.Server) {
			ts.Server().Kick(context.Background(), servertest.SDKAppID, "pat")
		}, wire.KickRESTAPI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := servertest.Start(t)
			a := dial(t, ts, "/binfo")
			a.mustLogin("pat", ts.Sig("pat", time.Hour))
			a.ws.Close()
			waitOffline(t, ts, "pat")
			tc.kick(t, ts)
			back := a.reconnect(t, ts)
			if r := back.relogin(); r.code() != wire.CodeA2Rejected {
				t.Fatalf("a2 re-login after a kick while away: %s", r.Raw)
			}
			if p := back.awaitPush(wire.CmdForceOffline); p.kickType() != tc.want {
				t.Fatalf("missed kick: %s", p.Raw)
			}
			if r := back.relogin(); r.code() != wire.CodeA2Rejected {
				t.Fatalf("second a2 re-login: %s", r.Raw)
			}
			back.call(wire.CmdHeartbeat, nil, nil)
			if len(back.pushes) != 0 {
				t.Fatalf("missed kick pushed twice: %s", back.pushes[0].Raw)
			}
		})
	}
}

// A REST kick's one durable write is the user's watermark: the instances
// it kicks are not revoked apart, yet their A2Keys are refused ("instance
// revoked: REST_API_Kick"), and one coming back gets the push it may have
// lost once, revoked from then on.
func TestRESTKickWritesOnlyTheWatermark(t *testing.T) {
	clk := newFakeClock()
	ts := servertest.Start(t, servertest.Clock(clk.Now))
	a := dial(t, ts, "/binfo")
	a.mustLogin("quin", ts.Sig("quin", time.Hour))
	clk.Add(time.Second) // the kick comes after the login's millisecond
	if n, err := ts.Server().Kick(context.Background(), servertest.SDKAppID, "quin"); err != nil || n != 1 {
		t.Fatalf("kick: online %d, %v", n, err)
	}
	if p := a.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
		t.Fatalf("push: %s", p.Raw)
	}
	revoked := func() bool {
		_, ok, err := ts.Store().Revoked(context.Background(), servertest.SDKAppID, a.inst)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if revoked() {
		t.Fatal("the REST kick revoked the instance apart from its watermark")
	}
	back := a.reconnect(t, ts)
	back.refusedRevoked("REST_API_Kick", "a2 re-login after a REST kick")
	if p := back.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
		t.Fatalf("late push: %s", p.Raw)
	}
	if !revoked() {
		t.Fatal("the refused re-login did not revoke the instance")
	}
	again := a.reconnect(t, ts)
	again.refusedRevoked("REST_API_Kick", "second a2 re-login")
	again.call(wire.CmdHeartbeat, nil, nil)
	if len(again.pushes) != 0 {
		t.Fatalf("the kick was pushed twice: %s", again.pushes[0].Raw)
	}
}

// waitOffline waits until the server has noticed user's socket is gone.
func waitOffline(t *testing.T, ts *servertest.Server, user string) {
	t.Helper()
	eventually(t, user+" offline", func() bool {
		on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, user)
		return len(on) == 0
	})
}

func TestSilentSocketClosed(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.HeartbeatTimeout(300*time.Millisecond))
	c := dial(t, ts, "/binfo?platform=Android")
	c.mustLogin("quinn", ts.Sig("quinn", time.Hour))
	if _, err := c.tryRead(5 * time.Second); err == nil {
		t.Fatalf("a silent socket got a frame instead of being closed")
	}
	// Detached, a mobile instance shows as PushOnline for a while, and its
	// a2 re-login on a new socket resumes it.
	for i := 0; ; i++ {
		on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "quinn")
		if len(on) == 1 && on[0].Status == "PushOnline" {
			break
		}
		if i > 500 {
			t.Fatalf("online: %v", on)
		}
		time.Sleep(time.Millisecond)
	}
	d := dial(t, ts, "/binfo?platform=Android")
	d.a2, d.tiny, d.inst = c.a2, c.tiny, c.inst
	if r := d.relogin(); r.code() != 0 {
		t.Fatalf("re-login after the timeout: %s", r.Raw)
	}
	if on, _ := ts.Server().Online(context.Background(), servertest.SDKAppID, "quinn"); len(on) != 1 || on[0].Status != "Online" {
		t.Fatalf("online after re-login: %v", on)
	}
}

// recordingBus is a Bus that remembers what went through it.
type recordingBus struct {
	*server.LocalBus
	mu    sync.Mutex
	kicks []server.Kick
}

func (b *recordingBus) Publish(k server.Kick) {
	b.mu.Lock()
	b.kicks = append(b.kicks, k)
	b.mu.Unlock()
	b.LocalBus.Publish(k)
}

func TestKicksGoThroughTheBus(t *testing.T) {
	bus := &recordingBus{LocalBus: server.NewLocalBus()}
	ts := servertest.Start(t, servertest.Bus(bus))
	a := dial(t, ts, "/binfo")
	a.mustLogin("rita", ts.Sig("rita", time.Hour))
	b := dial(t, ts, "/binfo")
	b.mustLogin("rita", ts.Sig("rita", time.Hour))
	a.awaitPush(wire.CmdForceOffline)
	bus.mu.Lock()
	defer bus.mu.Unlock()
	want := server.Kick{App: servertest.SDKAppID, User: "rita", InstID: a.inst, Type: wire.KickMultipleAccount, By: b.inst}
	if len(bus.kicks) != 1 || bus.kicks[0] != want {
		t.Fatalf("bus saw %+v, want %+v", bus.kicks, want)
	}
}

// A frame that looks like a keep-alive to the reader (the bytes of a
// heartbeat's servcmd anywhere in it) but is something else is answered
// as what it is: a wslogin carrying them in its body logs in, and a
// wslogout ends the session, as from any other frame.
func TestKeepAliveLookalikeFrames(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	body := map[string]any{"State": "Online", "is_web_uniapp": 0, "InstType": 0, "CustomInfo": "",
		"servcmd": wire.CmdHeartbeat}
	r := c.call(wire.CmdLogin, map[string]any{"identifier": "alice", "usersig": ts.Sig("alice", time.Hour)}, body)
	if r.code() != 0 || r.str("A2Key") == "" {
		t.Fatalf("login carrying a heartbeat's servcmd: %s", r.Raw)
	}
	if n := ts.Server().Stats(false).Sessions; n != 1 {
		t.Fatalf("%d sessions after the login, want 1", n)
	}
	c.keep(r)
	if r := c.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0, "servcmd": wire.CmdHello}); r.code() != 0 {
		t.Fatalf("logout carrying a wshello's servcmd: %s", r.Raw)
	}
	eventually(t, "the session ended", func() bool { return ts.Server().Stats(false).Sessions == 0 })
}

// A hello interval past MaxHelloInterval is cut to it: 3 × it, the
// default heartbeat timeout, overflowed to 30 s, below the hello interval
// (every session closed between two wshellos).
func TestHelloIntervalBounded(t *testing.T) {
	ts := servertest.Start(t, servertest.HelloInterval(1<<62))
	s := ts.Server()
	if s.HelloInterval() != server.MaxHelloInterval || s.HeartbeatTimeout() < s.HelloInterval() {
		t.Errorf("hello %s, heartbeat timeout %s", s.HelloInterval(), s.HeartbeatTimeout())
	}
}
