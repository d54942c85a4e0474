package server_test

import (
	"context"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
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
	c2 := dial(t, ts, "/binfo")
	c2.a2, c2.tiny, c2.inst = c.a2, c.tiny, c.inst
	if r := c2.relogin(); r.code() != 0 {
		t.Fatalf("a2 re-login: %s", r.Raw)
	}
	if ok, err := ts.Store().AccountExists(ctx, servertest.SDKAppID, "alice"); err != nil || !ok {
		t.Fatalf("the a2 re-login did not import the account: %v, %v", ok, err)
	}
}
