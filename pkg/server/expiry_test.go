package server_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// A UserSig whose time+expire is near the top of int64 (a key holder's
// "never expires") must not overflow the server's arithmetic: its
// instance's logout and kicks still revoke its A2Key.
func TestHugeExpiryStillRevoked(t *testing.T) {
	ts := servertest.Start(t)
	now := time.Now()
	for _, exp := range []int64{math.MaxInt64 - now.Unix(), 1 << 62, 1e16, 9_223_372_036_854_775 - now.Unix() + 1} {
		t.Run(strconv.FormatInt(exp, 10), func(t *testing.T) {
			s := sig.Gen(sig.Params{SDKAppID: ts.App.SDKAppID, Key: ts.App.Key, UserID: "zed", Expire: exp}, now)
			c := dial(t, ts, "/binfo")
			c.mustLogin("zed", s)
			if r := c.call(wire.CmdLogout, nil, map[string]any{"wslogout_type": 0}); r.code() != 0 {
				t.Fatalf("logout: %s", r.Raw)
			}
			c.refusedRevoked("logout", "a2 re-login after logout")
			// A multipleAccount kick of such an instance sticks too.
			a := dial(t, ts, "/binfo")
			a.mustLogin("zed", s)
			dial(t, ts, "/binfo").mustLogin("zed", s)
			if p := a.awaitPush(wire.CmdForceOffline); p.kickType() != wire.KickMultipleAccount {
				t.Fatalf("push: %s", p.Raw)
			}
			back := a.reconnect(t, ts)
			if r := back.relogin(); r.code() != wire.CodeA2Rejected {
				t.Fatalf("kicked a2 re-login: %s", r.Raw)
			}
		})
	}
}
