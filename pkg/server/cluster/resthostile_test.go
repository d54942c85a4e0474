package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server"
	"chatctl/pkg/server/rest"
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
