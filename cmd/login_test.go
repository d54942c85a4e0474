package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/session"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// login without a process: its flags and loginRun (lifecycle_opts_test.go).

func TestLoginFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newLoginCmd, "login", "alice")
	if code != 0 || o == nil || o.UserID != "alice" || o.Platform != 0 || o.Expire != "180d" || o.SigFile != "" || o.SigArg != "" ||
		o.Profile != "default" || o.Endpoint != "" || o.IO.JSON() {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, stderr = parseArgs(t, newLoginCmd, "--profile", "phone", "login", "--user-id", "bob", "--platform", "android",
		"--expire", "2h", "--user-sig-file", "bob.sig", "-o", "json", "--endpoint", "ws://127.0.0.1:9/")
	if code != 0 || o == nil || o.UserID != "bob" || o.Platform != 2 || o.Expire != "2h" || o.SigFile != "bob.sig" ||
		o.Profile != "phone" || o.Endpoint != "ws://127.0.0.1:9" || !o.IO.JSON() {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	if o, _, _, _ := parseArgs(t, newLoginCmd, "login", "bob", "--user-id", "bob", "--platform", "7", "--user-sig", "-"); o == nil || o.Platform != 7 || o.SigArg != "-" {
		t.Fatalf("--platform 7 --user-sig -: %+v", o)
	}
	badID := "a\x01b"
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"login"}, "which user? give USER or --user-id (see 'chatctl login --help')"},
		{[]string{"login", "alice", "--user-id", "bob"}, `USER "alice" and --user-id "bob" differ (see 'chatctl login --help')`},
		{[]string{"login", "alice", "bob"}, "accepts at most 1 arg(s), received 2 (see 'chatctl login --help')"},
		{[]string{"login", "alice", "--platform", "bogus"}, `--platform "bogus": want ` + platformList() + `, or its number (1-5, 7)`},
		{[]string{"login", "alice", "--platform", "0"}, `--platform "0": want ` + platformList() + `, or its number (1-5, 7)`},
		{[]string{"login", badID}, oneLine(checkUserID(badID).Error())},
		// The checks run in their order: the profile, the user, the platform.
		{[]string{"--profile", "a/b", "login", badID, "--platform", "bogus"}, "--profile: " + oneLine(session.ValidateName("a/b").Error())},
		{[]string{"login", badID, "--platform", "bogus"}, oneLine(checkUserID(badID).Error())},
	} {
		o, code, stdout, stderr := parseArgs(t, newLoginCmd, c.args...)
		if o != nil || code != ExitUsage || stdout != "" || stderr != "chatctl: "+c.msg+"\n" {
			t.Errorf("%q: exit %d, ran %v\nstdout %q\nstderr %q\nwant   %q", c.args, code, o != nil, stdout, stderr, "chatctl: "+c.msg+"\n")
		}
	}
}

func loginRunOK(t *testing.T) {
	e := newSubEnv(t)
	ts := e.server()
	ctx := context.Background()
	login := func(o LoginOptions) error {
		profile := o.Profile
		if profile == "" {
			profile = "default"
		}
		o.lifecycleOptions = e.lifecycle(profile, o.Endpoint)
		if o.Expire == "" {
			o.Expire = "1h"
		}
		return loginRun(ctx, &o)
	}

	// A fresh login prints the user, the instance and the UserSig's
	// expiry, and saves the session.
	if err := login(LoginOptions{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	p := e.profile("default")
	line := "alice\tinstance " + u64(p.InstID) + "\texpires " + stamp(e.now.Add(time.Hour))
	e.want(nil, 0, "", "", line+"\n", "")
	if p.UserID != "alice" || p.Endpoint != ts.WSURL || p.SDKAppID != ts.App.SDKAppID || p.Platform != client.DefaultPlatform ||
		p.State != session.StateReady || p.A2Key == "" || p.TinyID == "" || p.InstID == 0 || !p.LoginAt.Equal(e.now) ||
		!p.CheckedAt.Equal(e.now) || !p.StateAt.Equal(e.now) || !p.SigExpiresAt.Equal(e.now.Add(time.Hour)) || p.ClockMeasuredAt.IsZero() {
		t.Errorf("saved %+v", p)
	}

	// Again, same user: repeatLogin, the same instance, checked now.
	e.now = e.now.Add(time.Minute)
	e.want(login(LoginOptions{UserID: "alice"}), 0, "", "", line+" (repeatLogin: already logged in)\n", "")
	if q := e.profile("default"); q.InstID != p.InstID || q.A2Key != p.A2Key || !q.CheckedAt.Equal(e.now) || !q.LoginAt.Equal(p.LoginAt) {
		t.Errorf("repeatLogin saved %+v, had %+v", q, p)
	}

	// -o json: the document, its measured fields aside.
	e.json()
	if err := login(LoginOptions{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	var doc loginResult
	out := e.out.String()
	if err := json.Unmarshal([]byte(out), &doc); err != nil || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, `{"schema_version":1,"profile":"default",`) {
		t.Fatalf("document %q: %v", out, err)
	}
	want := loginResult{Profile: "default", User: "alice", SDKAppID: ts.App.SDKAppID, Endpoint: ts.WSURL, Instance: p.InstID,
		TinyID: p.TinyID, RepeatLogin: true, Expires: jsonTime(e.now.Add(-time.Minute).Add(time.Hour)),
		ServerTimeMS: doc.ServerTimeMS, OffsetMS: doc.OffsetMS, RTTMS: doc.RTTMS, HelloInterval: p.HelloIntervalSec}
	if doc != want || doc.ServerTimeMS == 0 || doc.HelloInterval == 0 {
		t.Errorf("document %+v\nwant     %+v", doc, want)
	}
	e.reset()
	e.app.V.Set("output", "text")

	// Another user on the profile: a conflict, exit 1, nothing changed.
	saved := e.sessionFile()
	e.want(login(LoginOptions{UserID: "bob"}), ExitFailure, KindConflict,
		"profile \"default\" is logged in as alice: run `chatctl logout` first, or use --profile NAME for bob", "", "")
	if e.sessionFile() != saved {
		t.Errorf("a refused login changed the session file")
	}

	// A platform is saved; a kicked session is replaced by a fresh login.
	if err := login(LoginOptions{lifecycleOptions: lifecycleOptions{Profile: "phone"}, UserID: "alice", Platform: 2}); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if q := e.profile("phone"); q.Platform != 2 || q.UserID != "alice" {
		t.Errorf("--platform android saved %+v", q)
	}
	e.login("tab", "alice") // the Web's one instance: kicks "default"
	if err := login(LoginOptions{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	q := e.profile("default")
	e.want(nil, 0, "", "", "alice\tinstance "+u64(q.InstID)+"\texpires "+stamp(e.now.Add(time.Hour))+"\n", "")
	if q.InstID == p.InstID || q.State != session.StateReady {
		t.Errorf("after the kick login kept %+v", q)
	}
}

func loginRunFailures(t *testing.T) {
	e := newSubEnv(t)
	ts := e.server()
	ctx := context.Background()
	login := func(o LoginOptions) error {
		o.lifecycleOptions = e.lifecycle("default", o.Endpoint)
		if o.Expire == "" {
			o.Expire = "1h"
		}
		return loginRun(ctx, &o)
	}
	sigFile := func(s string) string {
		f := filepath.Join(t.TempDir(), "sig")
		if err := os.WriteFile(f, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	noFile := func(what string) {
		t.Helper()
		if f := e.sessionFile(); f != "" {
			t.Errorf("%s wrote the session file: %s", what, f)
		}
	}

	// UserSig rejected by the server (signed with another key): exit 5.
	other := servertest.Start(t)
	err := login(LoginOptions{UserID: "alice", SigFile: sigFile(other.Sig("alice", time.Hour))})
	o := classify(err)
	if o.Code != ExitSigRejected || o.Kind != KindUserSigRejected || o.TencentCode == 0 ||
		!strings.HasPrefix(err.Error(), "UserSig rejected by the server: ") || !strings.HasSuffix(err.Error(), " (code "+strconv.Itoa(o.TencentCode)+")") {
		t.Errorf("a UserSig of another key: exit %d kind %q: %v", o.Code, o.Kind, err)
	}
	e.want(nil, 0, "", "", "", "")
	noFile("a refused login")

	// A UserSig that expired an hour ago: exit 5, usersig_expired.
	old := sig.Gen(sig.Params{SDKAppID: ts.App.SDKAppID, Key: ts.App.Key, UserID: "alice", Expire: 60}, time.Now().Add(-time.Hour))
	e.want(login(LoginOptions{UserID: "alice", SigFile: sigFile(old)}), ExitSigRejected, KindUserSigExpired,
		"UserSig expired (userSigExpired, code 70001): log in again with a new UserSig", "", "")
	noFile("an expired UserSig")

	// The UserSig's sources: stdin, and refusals of argv and emptiness.
	e.app.In = strings.NewReader("")
	e.want(login(LoginOptions{UserID: "alice", SigArg: "-"}), ExitUsage, KindUsage, "the UserSig from stdin is empty", "", "")
	e.want(login(LoginOptions{UserID: "alice", SigArg: "x"}), ExitUsage, KindUsage,
		"--user-sig takes only - (stdin): a UserSig in argv is visible to other users; use --user-sig-file or CHATCTL_USER_SIG", "", "")
	e.want(login(LoginOptions{UserID: "alice", SigArg: "-", SigFile: "f"}), ExitUsage, KindUsage,
		"give --user-sig-file or --user-sig -, not both", "", "")
	e.want(login(LoginOptions{UserID: "alice", Expire: "forever"}), ExitUsage, KindUsage,
		oneLine(exitf(ExitUsage, "--expire: %v", func() error { _, err := parseSigDuration("forever"); return err }()).Error()), "", "")
	for _, exp := range []string{"-1s", "0", "-2d"} {
		e.want(login(LoginOptions{UserID: "alice", Expire: exp}), ExitUsage, KindUsage,
			"--expire "+exp+": a UserSig minted to log in must not be expired at birth; give a positive duration", "", "")
	}
	noFile("a login without a UserSig")

	// Unreachable: exit 6, nothing saved.
	dead := deadEndpoint(t)
	err = login(LoginOptions{UserID: "alice", lifecycleOptions: lifecycleOptions{Endpoint: dead}})
	wantUnreachable(t, err, dead)
	e.reset()
	noFile("an unreachable login")

	// Something on loopback takes the connection and closes it: not "no
	// server there", which only a refused connection says.
	closer := closingServer(t)
	err = login(LoginOptions{UserID: "alice", lifecycleOptions: lifecycleOptions{Endpoint: closer}})
	if o := classify(err); o.Code != ExitUnreachable || strings.Contains(err.Error(), "no server there") || !strings.HasPrefix(err.Error(), "cannot reach "+closer+": ") {
		t.Errorf("a listener that closes: exit %d: %v", o.Code, err)
	}
	e.reset()
	noFile("an unreachable login")

	// From stdin, it logs in.
	e.app.In = strings.NewReader(ts.Sig("alice", time.Hour) + "\n")
	if err := login(LoginOptions{UserID: "alice", SigArg: "-"}); err != nil {
		t.Fatal(err)
	}
	if p := e.profile("default"); p.UserID != "alice" || !p.SigExpiresAt.After(e.now) {
		t.Errorf("saved %+v", p)
	}
	e.reset()
}

// A login that puts a session of another platform (or app, or server) in
// place of the profile's live one logs the old one out on its server,
// once the new one is saved: nothing is left online that no profile
// names. When that server cannot be reached, a warning says so and the
// new session stands.
func loginReplaces(t *testing.T) {
	e := newSubEnv(t)
	ts := e.server()
	ctx := context.Background()
	old := e.loginAs("default", "alice", int(wire.PlatformIPad))
	err := loginRun(ctx, &LoginOptions{lifecycleOptions: e.lifecycle("default", ""), UserID: "alice", Expire: "1h", Platform: int(wire.PlatformAndroid)})
	if err != nil || e.err.String() != "" {
		t.Fatalf("login on Android: %v, stderr %q", err, e.err.String())
	}
	if p := e.profile("default"); p.InstID == old.InstID || p.Platform != int(wire.PlatformAndroid) {
		t.Fatalf("profile %+v", p)
	}
	_, perr := client.Probe(ctx, clientConfig(ts.WSURL, old.SDKAppID, old.Platform), sessionOf(old))
	if k := classify(a2(perr)).Kind; k != KindLoggedOut {
		t.Errorf("the replaced iPad session: %v (kind %q), want logged out", perr, k)
	}

	// The old session's server is gone: warned, the new login saved.
	e.reset()
	other := servertest.Start(t)
	lo := e.lifecycle("default", other.WSURL)
	e.app.V.Set("secret_key", other.App.Key)
	e.app.V.Set("sdkappid", other.App.SDKAppID)
	ts.Close()
	if err := loginRun(ctx, &LoginOptions{lifecycleOptions: lo, UserID: "alice", Expire: "1h"}); err != nil {
		t.Fatal(err)
	}
	if p := e.profile("default"); p.Endpoint != other.WSURL || !strings.Contains(e.err.String(), "was not logged out") || strings.Count(e.err.String(), "\n") != 1 {
		t.Errorf("profile %+v, stderr %q", p, e.err.String())
	}
}

// A UserSig whose expiry has no RFC 3339 form (past year 9999) logs in
// and is saved with its expiry unknown, instead of failing the save.
func loginFarExpiry(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	e.json()
	err := loginRun(context.Background(), &LoginOptions{lifecycleOptions: e.lifecycle("default", ""), UserID: "alice", Expire: "3000000d"})
	if err != nil || !strings.Contains(e.out.String(), `"usersig_expires":null`) {
		t.Fatalf("login: %v, stdout %s", err, e.out.String())
	}
	if p := e.profile("default"); !p.LoggedIn() || !p.SigExpiresAt.IsZero() {
		t.Errorf("profile %+v", p)
	}
}
