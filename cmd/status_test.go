package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
	"chatctl/pkg/wire"
)

// status without a process: its flags and statusRun (lifecycle_opts_test.go).

func TestStatusFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newStatusCmd, "status")
	if code != 0 || o == nil || o.Check || o.IO.JSON() {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	// status shows every profile: --profile is not looked at.
	o, code, _, stderr = parseArgs(t, newStatusCmd, "--profile", "../x", "status", "--check", "-o", "json")
	if code != 0 || o == nil || !o.Check || !o.IO.JSON() || o.Profile != "" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, stderr = parseArgs(t, newStatusCmd, "status", "all")
	if o != nil || code != ExitUsage || stderr != "chatctl: unknown command \"all\" for \"chatctl status\" (see 'chatctl status --help')\n" {
		t.Errorf("status all: exit %d %q", code, stderr)
	}
}

func statusRunTest(t *testing.T) {
	e := newSubEnv(t)
	ts := e.server()
	ctx := context.Background()
	status := func(o StatusOptions) error {
		// No --endpoint: each profile's own.
		o.lifecycleOptions = e.lifecycle("", "")
		o.Endpoint = ""
		return statusRun(ctx, &o)
	}
	doc := func(err error) statusResult {
		t.Helper()
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("no document with %v", err)
		}
		return ee.Data.(statusResult)
	}

	err := status(StatusOptions{})
	e.want(err, ExitNotLoggedIn, KindNotLoggedIn, "no profile: run `chatctl login USER`", "", "")
	if d := doc(err); d.Checked || d.Profiles == nil || len(d.Profiles) != 0 {
		t.Errorf("no profile: %+v", d)
	}

	a := e.login("a", "alice")
	b := e.loginAs("b", "bob", int(wire.PlatformIPhone))
	row := func(name string, p session.Profile, state string, ok bool, checked time.Time) statusProfile {
		platform := "Web"
		if name == "b" {
			platform = "iPhone"
		}
		return statusProfile{Profile: name, User: p.UserID, SDKAppID: ts.App.SDKAppID, Endpoint: ts.WSURL, Platform: platform,
			Instance: p.InstID, State: state, CheckedAt: jsonTime(checked), Expires: jsonTime(p.SigExpiresAt), OK: ok}
	}
	// From the file: unchecked, exit 0; the text table says the same.
	login := e.now
	e.json()
	e.want(status(StatusOptions{}), 0, "", "", jsonDoc(t, statusResult{Profiles: []statusProfile{
		row("a", a, "unchecked", true, login), row("b", b, "unchecked", true, login)}}), "")
	e.app.V.Set("output", "text")
	if err := status(StatusOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(e.out.String(), "\n")
	wantRows := [][]string{
		{"PROFILE", "USER", "SDKAPPID", "ENDPOINT", "STATE", "CHECKED", "USERSIG", "EXPIRES"},
		{"a", "alice", u64(ts.App.SDKAppID), ts.WSURL, "unchecked", stamp(login), stamp(a.SigExpiresAt)},
		{"b", "bob", u64(ts.App.SDKAppID), ts.WSURL, "unchecked", stamp(login), stamp(b.SigExpiresAt)},
	}
	if len(lines) != 4 || lines[3] != "" {
		t.Fatalf("table:\n%s", e.out.String())
	}
	for i, w := range wantRows {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("row %d: %q, want %q", i, got, w)
		}
	}
	e.reset()

	// --check: ready; then a kick of a by another login, which only
	// --check sees (and records); c's UserSig is past its expiry by the
	// clock; d's server is gone.
	e.now = e.now.Add(time.Minute)
	e.json()
	e.want(status(StatusOptions{Check: true}), 0, "", "", jsonDoc(t, statusResult{Checked: true, Profiles: []statusProfile{
		row("a", a, "ready", true, e.now), row("b", b, "ready", true, e.now)}}), "")
	e.login("tab", "alice")
	dead := deadEndpoint(t)
	d := e.login("d", "dave")
	e.edit("d", func(p *session.Profile) { p.Endpoint = dead })
	err = status(StatusOptions{Check: true})
	e.out.Reset()
	kicked := "alice was kicked out (multipleAccount) at " + stamp(e.now) + " (profile \"a\"): run `chatctl login alice` again"
	e.want(err, ExitKicked, KindKicked, kicked, "", "")
	got := doc(err)
	if len(got.Profiles) != 4 {
		t.Fatalf("status --check: %+v", got)
	}
	wantA := row("a", a, "kicked", false, e.now)
	wantA.KickType = client.KickedMultipleAccount
	wantA.Error = &errorDoc{Code: ExitKicked, Kind: KindKicked, Message: kicked, KickType: client.KickedMultipleAccount,
		TencentCode: wire.CodeA2Rejected} // the a2 re-login's refusal
	if !reflectEqual(got.Profiles[0], wantA) || !got.Profiles[1].OK || got.Profiles[1].State != "ready" || !got.Profiles[3].OK {
		t.Errorf("status --check after the kick:\n%+v %+v\nwant a: %+v %+v", got.Profiles, got.Profiles[0].Error, wantA, wantA.Error)
	}
	if gd := got.Profiles[2]; gd.Profile != "d" || gd.State != "unreachable" || gd.OK || gd.Error == nil ||
		gd.Error.Code != ExitUnreachable || gd.Error.Kind != KindUnreachable || gd.Instance != d.InstID {
		t.Errorf("d: %+v", gd)
	}
	if p := e.profile("a"); p.State != session.StateKicked || p.KickType != client.KickedMultipleAccount || !p.StateAt.Equal(e.now) {
		t.Errorf("the kick was not recorded: %+v", p)
	}

	// Without --check, a UserSig past its expiry is expired, exit 5
	// unless an earlier profile is worse (a, kicked, comes first).
	e.now = e.now.Add(2 * time.Hour)
	e.app.V.Set("output", "text")
	err = status(StatusOptions{})
	e.out.Reset()
	e.want(err, ExitKicked, KindKicked, kicked, "", "")
	for _, p := range doc(err).Profiles[1:] {
		if p.State != "expired" || p.KickType != client.KickedUserSigExpired || p.Error.Code != ExitSigRejected ||
			p.Error.Message != p.User+"'s UserSig expired (userSigExpired) at "+stamp(e.profile(p.Profile).SigExpiresAt)+" (profile \""+p.Profile+"\"): log in again with a new UserSig" {
			t.Errorf("past the UserSig's expiry: %+v %+v", p, p.Error)
		}
	}
}

func reflectEqual(a, b statusProfile) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// A session file that cannot be read still gives status's and logout
// --all's documents their shape, "profiles": [], beside the error: a
// script's .profiles[] meets an empty list, not null.
func TestUnreadableFileKeepsTheShape(t *testing.T) {
	e := newRunEnv(t)
	if err := os.WriteFile(filepath.Join(e.dir, session.FileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"status":       statusRun(context.Background(), &StatusOptions{lifecycleOptions: e.lifecycle("", "")}),
		"logout --all": logoutRun(context.Background(), &LogoutOptions{lifecycleOptions: e.lifecycle("", ""), All: true}),
	} {
		var ee *ExitError
		if c := classify(err); c.Kind != KindSessionFile || !errors.As(err, &ee) {
			t.Fatalf("%s: kind %q: %v", name, c.Kind, err)
		}
		if b, _ := json.Marshal(ee.Data); !strings.Contains(string(b), `"profiles":[]`) {
			t.Errorf("%s: document data %s", name, b)
		}
	}
}
