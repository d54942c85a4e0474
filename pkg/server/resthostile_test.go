package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// restAs POSTs a REST command with the admin UserSig usersig.
func restAs(t *testing.T, ts *servertest.Server, usersig, cmd string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	q := url.Values{"sdkappid": {strconv.Itoa(servertest.SDKAppID)}, "identifier": {servertest.Admin},
		"usersig": {usersig}, "random": {"1"}, "contenttype": {"json"}}
	resp, err := http.Post(ts.RESTURL+"/v4/"+cmd+"?"+q.Encode(), "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

func restCode(m map[string]any) int { n, _ := m["ErrorCode"].(float64); return int(n) }

// A kicked admin keeps no REST power: after `admin kick administrator`
// every UserSig of the admin minted before the kick is refused (70009) by
// every command and by wslogin, on the server that holds the watermark; a
// fresh one works.
func TestKickedAdminLosesRESTPower(t *testing.T) {
	leaktest.Check(t)
	clk := newFakeClock()
	ts := servertest.Start(t, servertest.Clock(clk.Now))
	leaked := ts.Sig(servertest.Admin, 24*time.Hour)
	if m := restAs(t, ts, leaked, "im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []string{servertest.Admin, "victim"}}); restCode(m) != 0 {
		t.Fatalf("import: %v", m)
	}
	v := dial(t, ts, "/binfo")
	v.mustLogin("victim", ts.Sig("victim", time.Hour))

	clk.Add(time.Second)
	if m := restAs(t, ts, ts.Sig(servertest.Admin, time.Hour), "im_open_login_svc/kick", map[string]any{"UserID": servertest.Admin}); restCode(m) != 0 {
		t.Fatalf("kick administrator: %v", m)
	}
	for _, c := range []struct {
		cmd  string
		body any
	}{
		{"im_open_login_svc/kick", map[string]any{"UserID": "victim"}},
		{"im_open_login_svc/account_delete", map[string]any{"DeleteItem": []any{map[string]any{"UserID": "victim"}}}},
		{"im_open_login_svc/account_import", map[string]any{"UserID": "mallory"}},
		{"im_open_login_svc/multiaccount_import", map[string]any{"Accounts": []string{"mallory"}}},
		{"im_open_login_svc/account_check", map[string]any{"CheckItem": []any{map[string]any{"UserID": "victim"}}}},
		{"openim/query_online_status", map[string]any{"To_Account": []string{"victim"}}},
	} {
		if m := restAs(t, ts, leaked, c.cmd, c.body); restCode(m) != wire.CodeSigKicked {
			t.Fatalf("%s with the kicked admin's UserSig: %v", c.cmd, m)
		}
	}
	// The victim is still online and imported; nobody was imported.
	v.call(wire.CmdHeartbeat, nil, nil)
	if len(v.pushes) != 0 {
		t.Fatalf("the kicked admin kicked: %s", v.pushes[0].Raw)
	}
	if ok, _ := ts.Store().AccountExists(context.Background(), servertest.SDKAppID, "mallory"); ok {
		t.Fatal("the kicked admin imported an account")
	}
	// wslogin refuses it too (one rule).
	if r := dial(t, ts, "/binfo").login(servertest.Admin, leaked); r.code() != wire.CodeSigKicked {
		t.Fatalf("wslogin with the kicked admin's UserSig: %s", r.Raw)
	}
	// A fresh UserSig has the admin's power back.
	if m := restCall(t, ts, "im_open_login_svc/kick", map[string]any{"UserID": "victim"}); restCode(m) != 0 {
		t.Fatalf("kick with a fresh admin UserSig: %v", m)
	}
	if p := v.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
		t.Fatalf("push: %s", p.Raw)
	}
	// The watermark is durable: a restarted server still refuses it.
	ts.Restart()
	if m := restAs(t, ts, leaked, "openim/query_online_status", map[string]any{"To_Account": []string{"victim"}}); restCode(m) != wire.CodeSigKicked {
		t.Fatalf("after a restart: %v", m)
	}
}

// account_delete of an online user ends its sessions as a REST kick does
// (KICKED_OUT REST_API_Kick on every socket), refuses its A2Keys (70002
// "instance revoked: REST_API_Kick", the a2 refusal every kicked instance
// gets) and its earlier UserSigs (70009); admin online then says
// NotImported and admin kick 70107. A UserSig minted after the deletion
// logs in as a new account (auto-import), as on Tencent.
func TestAccountDeleteEndsSessions(t *testing.T) {
	leaktest.Check(t)
	clk := newFakeClock()
	ts := servertest.Start(t, servertest.Clock(clk.Now))
	old := ts.Sig("dora", time.Hour)
	web := dial(t, ts, "/binfo")
	web.mustLogin("dora", old)
	android := dial(t, ts, "/binfo?platform=Android")
	android.mustLogin("dora", old)
	// A third instance whose socket is gone (detached) is refused too.
	pc := dial(t, ts, "/binfo?platform=PC")
	pc.mustLogin("dora", old)
	pc.ws.Close()

	clk.Add(time.Second)
	m := restCall(t, ts, "im_open_login_svc/account_delete", map[string]any{"DeleteItem": []any{map[string]any{"UserID": "dora"}}})
	if b, _ := json.Marshal(m["ResultItem"]); restCode(m) != 0 || string(b) != `[{"ResultCode":0,"ResultInfo":"","UserID":"dora"}]` {
		t.Fatalf("account_delete: %v", m)
	}
	for _, c := range []*client{web, android} {
		if p := c.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
			t.Fatalf("push: %s", p.Raw)
		}
	}
	waitOffline(t, ts, "dora")
	m = restCall(t, ts, "openim/query_online_status", map[string]any{"To_Account": []string{"dora"}})
	if b, _ := json.Marshal(m["ErrorList"]); string(b) != `[{"ErrorCode":70107,"To_Account":"dora"}]` {
		t.Fatalf("query_online_status after the delete: %v", m)
	}
	if m := restCall(t, ts, "im_open_login_svc/kick", map[string]any{"UserID": "dora"}); restCode(m) != wire.CodeNotImported {
		t.Fatalf("kick after the delete: %v", m)
	}
	for _, c := range []*client{web, android, pc} {
		back := c.reconnect(t, ts)
		back.refusedRevoked("REST_API_Kick", "a2 of the deleted account")
	}
	if r := dial(t, ts, "/binfo").login("dora", old); r.code() != wire.CodeSigKicked {
		t.Fatalf("old UserSig of the deleted account: %s", r.Raw)
	}
	if ok, _ := ts.Store().AccountExists(context.Background(), servertest.SDKAppID, "dora"); ok {
		t.Fatal("a refused login re-imported the deleted account")
	}
	dial(t, ts, "/binfo").mustLogin("dora", ts.Sig("dora", time.Hour))
	if ok, _ := ts.Store().AccountExists(context.Background(), servertest.SDKAppID, "dora"); !ok {
		t.Fatal("a fresh login did not import the account again")
	}
}

// A UserSig dated after the kick (its minting clock ran ahead) is, by its
// own TLS.time, later than the kick: the watermark cannot tell it from one
// minted after the kick, so it is accepted. What a stateless UserSig
// allows; rotating the app's key is the remedy (docs/RELIABILITY.md).
func TestFutureDatedUserSigAfterKick(t *testing.T) {
	clk := newFakeClock()
	ts := servertest.Start(t, servertest.Clock(clk.Now))
	ahead := sig.Gen(sig.Params{SDKAppID: ts.App.SDKAppID, Key: ts.App.Key, UserID: "fay", Expire: 3600}, clk.Now().Add(time.Hour))
	behind := ts.Sig("fay", time.Hour)
	dial(t, ts, "/binfo").mustLogin("fay", behind)
	clk.Add(time.Second)
	if _, err := ts.Server().Kick(context.Background(), servertest.SDKAppID, "fay"); err != nil {
		t.Fatal(err)
	}
	if r := dial(t, ts, "/binfo").login("fay", behind); r.code() != wire.CodeSigKicked {
		t.Fatalf("UserSig minted before the kick: %s", r.Raw)
	}
	if r := dial(t, ts, "/binfo").login("fay", ahead); r.code() != 0 {
		t.Fatalf("UserSig dated after the kick: %s", r.Raw)
	}
}

// The UserID rule of wslogin and of the REST API is one: whoever can log in
// can be kicked, queried and deleted.
func TestLoggedInUserIsReachableByREST(t *testing.T) {
	ts := servertest.Start(t)
	for _, u := range []string{"日本語ユーザー", "a.b-c_d@e!#$%^&*()+=[]{} ~", strings.Repeat("k", 32)} {
		c := dial(t, ts, "/binfo")
		c.mustLogin(u, ts.Sig(u, time.Hour))
		m := restCall(t, ts, "openim/query_online_status", map[string]any{"To_Account": []string{u}})
		if b, _ := json.Marshal(m["QueryResult"]); !strings.Contains(string(b), `"Status":"Online"`) {
			t.Fatalf("%q: query_online_status %v", u, m)
		}
		if m := restCall(t, ts, "im_open_login_svc/kick", map[string]any{"UserID": u}); restCode(m) != 0 {
			t.Fatalf("%q: kick %v", u, m)
		}
		if p := c.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickRESTAPI {
			t.Fatalf("%q: push %s", u, p.Raw)
		}
		m = restCall(t, ts, "im_open_login_svc/account_delete", map[string]any{"DeleteItem": []any{map[string]any{"UserID": u}}})
		if b, _ := json.Marshal(m["ResultItem"]); !strings.Contains(string(b), `"ResultCode":0`) {
			t.Fatalf("%q: account_delete %v", u, m)
		}
	}
}
