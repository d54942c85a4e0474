package server_test

import (
	"strconv"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

func TestLoginBinaryAndText(t *testing.T) {
	ts := servertest.Start(t, servertest.HelloInterval(7*time.Second))
	for _, path := range []string{"/binfo", "/info"} {
		t.Run(path, func(t *testing.T) {
			c := dial(t, ts, path+"?sdkappid="+strconv.Itoa(servertest.SDKAppID)+"&platform=7")
			hb := c.call(wire.CmdHeartbeat, map[string]any{"identifier": "alice", "usersig": "x"}, nil)
			if hb.code() != 0 {
				t.Fatalf("heartbeat before login: %s", hb.Raw)
			}
			r := c.mustLogin("alice", ts.Sig("alice", time.Hour))
			if r.str("A2Key") == "" || r.str("TinyId") == "" || c.inst == 0 {
				t.Fatalf("login reply lacks credentials: %s", r.Raw)
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
			if h := c.call(wire.CmdHello, nil, map[string]any{"is_web_uniapp": 0}); h.code() != 0 {
				t.Errorf("wshello: %s", h.Raw)
			}
			if lo := c.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0, "is_web_uniapp": 0}); lo.code() != 0 {
				t.Errorf("wslogout: %s", lo.Raw)
			}
		})
	}
}

func TestServertestSmoke(t *testing.T) {
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	c.mustLogin("bob", ts.Sig("bob", time.Hour))
	ts.Restart()
	if _, err := c.tryRead(5 * time.Second); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after restart the socket ended with %v, want close 1001", err)
	}
	c2 := dial(t, ts, "/binfo")
	c2.a2, c2.tiny, c2.inst = c.a2, c.tiny, c.inst
	if r := c2.relogin(); r.code() != 0 || uint64(r.Body["InstId"].(float64)) != c.inst {
		t.Fatalf("a2 re-login after restart: %s", r.Raw)
	}
}
