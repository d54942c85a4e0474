package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/rest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// A kicked admin keeps no REST power on any node: a REST kick of the
// administrator sent to node 2 refuses its earlier UserSig (70009) for
// every command on nodes 1 and 3 and for wslogin; a fresh one works.
func TestKickedAdminRefusedAnyNode(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{})
	ns := e.nodes(3)
	ctx := context.Background()
	// Leaked two seconds ago: minted in an earlier second than the kick.
	leaked := *e.admin(ns[0])
	leaked.Now = func() time.Time { return time.Now().Add(-2 * time.Second) }
	if _, err := leaked.Do(ctx, rest.CmdMultiAccountImport, rest.MultiAccountImportRequest{Accounts: []string{"administrator", "victim"}}, nil); err != nil {
		t.Fatal(err)
	}
	victim, _ := e.login(ns[0], "victim", 0)
	if _, err := e.admin(ns[1]).Do(ctx, rest.CmdKick, rest.KickRequest{UserID: "administrator"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{ns[0], ns[2]} {
		at := leaked
		at.BaseURL = n.rest
		for _, c := range []struct {
			cmd string
			req any
		}{
			{rest.CmdKick, rest.KickRequest{UserID: "victim"}},
			{rest.CmdAccountDelete, rest.AccountDeleteRequest{DeleteItem: []rest.UserRef{{UserID: "victim"}}}},
			{rest.CmdAccountImport, rest.AccountImportRequest{UserID: "mallory"}},
			{rest.CmdMultiAccountImport, rest.MultiAccountImportRequest{Accounts: []string{"mallory"}}},
			{rest.CmdAccountCheck, rest.AccountCheckRequest{CheckItem: []rest.UserRef{{UserID: "victim"}}}},
			{rest.CmdQueryOnlineStatus, rest.QueryOnlineStatusRequest{ToAccount: []string{"victim"}}},
		} {
			_, err := at.Do(ctx, c.cmd, c.req, nil)
			var re *rest.Error
			if !errors.As(err, &re) || re.Code != wire.CodeSigKicked {
				t.Fatalf("%s on %s with the kicked admin's UserSig: %v", c.cmd, n.rest, err)
			}
		}
	}
	noKick(t, victim, "the victim")
	e.sameOnline(ns, "victim", "Web:Online")
	var check rest.AccountCheckResponse
	if _, err := e.admin(ns[2]).Do(ctx, rest.CmdAccountCheck, rest.AccountCheckRequest{CheckItem: []rest.UserRef{{UserID: "mallory"}}}, &check); err != nil ||
		check.ResultItem[0].AccountStatus != rest.AccountNotImported {
		t.Fatalf("mallory: %+v, %v", check, err)
	}
	// wslogin on node 3 refuses it too.
	old := sig.Gen(sig.Params{SDKAppID: testApp, Key: e.app.Key, UserID: "administrator", Expire: 3600}, time.Now().Add(-2*time.Second))
	_, err := dial(t, ns[2], 0).Login(ctx, "administrator", old)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != wire.CodeSigKicked {
		t.Fatalf("wslogin with the kicked admin's UserSig: %v", err)
	}
}

// account_delete sent to node 3 of an account online on nodes 1 and 2:
// both instances get KICKED_OUT REST_API_Kick, every node then answers
// NotImported (70107) for it, its A2Keys are refused on every node.
func TestAccountDeleteAnyNode(t *testing.T) {
	e := newEnv(t, redistest.URL(t), server.AppConfig{})
	ns := e.nodes(3)
	ctx := context.Background()
	c1, r1 := e.login(ns[0], "alice", 0)
	c2, r2 := e.login(ns[1], "alice", int(wire.PlatformAndroid))
	other, _ := e.login(ns[1], "bob", 0)
	e.sameOnline(ns, "alice", "Android:Online", "Web:Online")

	var del rest.AccountDeleteResponse
	if _, err := e.admin(ns[2]).Do(ctx, rest.CmdAccountDelete, rest.AccountDeleteRequest{DeleteItem: []rest.UserRef{{UserID: "alice"}}}, &del); err != nil ||
		len(del.ResultItem) != 1 || del.ResultItem[0].ResultCode != 0 {
		t.Fatalf("account_delete: %+v, %v", del, err)
	}
	for i, c := range []*client.Conn{c1, c2} {
		if kt := servertest.WaitKick(t, c); kt != wire.KickRESTAPI {
			t.Fatalf("alice on node %d got KickType %d, want REST_API_Kick", i+1, kt)
		}
	}
	noKick(t, other, "bob")
	for i, n := range ns {
		var q rest.QueryOnlineStatusResponse
		if _, err := e.admin(n).Do(ctx, rest.CmdQueryOnlineStatus, rest.QueryOnlineStatusRequest{ToAccount: []string{"alice"}}, &q); err != nil {
			t.Fatal(err)
		}
		if len(q.QueryResult) != 0 || len(q.ErrorList) != 1 || q.ErrorList[0].ErrorCode != wire.CodeNotImported {
			t.Fatalf("node %d: alice after the delete: %+v", i+1, q)
		}
	}
	for i, r := range []client.LoginResult{r1, r2} {
		_, err := dial(t, ns[(i+2)%3], 0).Relogin(ctx, r.Session())
		refused(t, err, "REST_API_Kick")
	}
	e.sameOnline(ns, "bob", "Web:Online")
}
