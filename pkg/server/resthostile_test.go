package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"
)

func restCode(m map[string]any) int { n, _ := m["ErrorCode"].(float64); return int(n) }

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
