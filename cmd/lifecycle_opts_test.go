package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server/rest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/session"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// The lifecycle commands without a process, in two layers: their flags
// (argv through the command tree to the options their run function would
// get, or to a usage error), and their run functions (options in; stdout,
// stderr, the returned error's exit code and kind, and the session file
// out), against a real server on loopback and real session files in a temp
// dir. The built binary's tests (package cmd_test) keep what needs a
// process: exit codes as a shell sees them, signals, pipes.

// parseArgs runs args through a command tree of newRoot and the one
// command newCmd builds, its run function replaced by one that keeps the
// options; it returns them (nil when the run function was not reached),
// the exit code and the outputs, as a process would have them.
func parseArgs[T any](t *testing.T, newCmd func(*App, func(*T) error) *cobra.Command, args ...string) (got *T, code int, stdout, stderr string) {
	t.Helper()
	return parseArgsUnder(t, "", newCmd, args...)
}

// parseArgsUnder is parseArgs for a subcommand of the group parent (admin).
func parseArgsUnder[T any](t *testing.T, parent string, newCmd func(*App, func(*T) error) *cobra.Command, args ...string) (got *T, code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("CHATCTL_CONFIG_DIR", t.TempDir())
	for _, k := range []string{"CHATCTL_OUTPUT", "CHATCTL_PROFILE", "CHATCTL_ENDPOINT", "CHATCTL_SDKAPPID", "CHATCTL_SECRET_KEY", "CHATCTL_USER_SIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	var out, errb bytes.Buffer
	app := NewApp(strings.NewReader(""), &out, &errb)
	root := newRoot(app)
	c := newCmd(app, func(o *T) error { got = o; return nil })
	if parent != "" {
		group := &cobra.Command{Use: parent}
		group.AddCommand(c)
		c = group
	}
	root.AddCommand(c)
	code = execute(app, root, args)
	return got, code, out.String(), errb.String()
}

// runEnv is the world of a run function: in-memory streams, a config dir
// in a temp dir, and an App configured as the flags would (no
// environment).
type runEnv struct {
	t        *testing.T
	dir      string
	out, err bytes.Buffer
	app      *App
	ts       *servertest.Server // nil until server
	now      time.Time          // every run's clock (Now), to the second
	// leaksChecked: the test's parent checks for leaks (checkLeaks).
	leaksChecked bool
}

func newRunEnv(t *testing.T) *runEnv {
	e := &runEnv{t: t, dir: t.TempDir(), now: time.Now().UTC().Truncate(time.Second)}
	e.app = &App{In: strings.NewReader(""), Out: &e.out, Err: &e.err, V: viper.New(), configDir: e.dir, loaded: true}
	e.app.V.Set("output", "text")
	return e
}

// server starts a real server on loopback whose key the runs use to mint
// UserSigs; servertest.NoLeaks checks that nothing of the runs or the
// server is left running at the end.
func (e *runEnv) server(opts ...servertest.Option) *servertest.Server {
	e.t.Helper()
	if !e.leaksChecked {
		checkLeaks(e.t)
	}
	e.ts = servertest.Start(e.t, opts...)
	e.app.V.Set("sdkappid", e.ts.App.SDKAppID)
	e.app.V.Set("secret_key", e.ts.App.Key)
	return e.ts
}

// newSubEnv is newRunEnv for a subtest whose parent called checkLeaks.
func newSubEnv(t *testing.T) *runEnv {
	e := newRunEnv(t)
	e.leaksChecked = true
	return e
}

// checkLeaks is servertest.NoLeaks for t and its subtests. One check for
// several subtests that each start a server waits once, not once each,
// for the server's idle frame workers to go (a second after their last
// frame).
func checkLeaks(t *testing.T) {
	t.Helper()
	startSignalLoop()
	servertest.NoLeaks(t)
}

var signalLoop sync.Once

// startSignalLoop starts os/signal's goroutine, which the first
// signal.Notify of a process starts and which then runs for good (a watch
// run through RunE asks for SIGINT): started before NoLeaks counts, it is
// not taken for a leak.
func startSignalLoop() {
	signalLoop.Do(func() {
		_, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		stop()
	})
}

// json makes the runs print -o json.
func (e *runEnv) json() { e.app.V.Set("output", "json") }

// reset empties the streams between runs.
func (e *runEnv) reset() { e.out.Reset(); e.err.Reset() }

// lifecycle is the options a run gets for profile, at the server (or at
// endpoint when not "").
func (e *runEnv) lifecycle(profile, endpoint string) lifecycleOptions {
	if endpoint == "" && e.ts != nil {
		endpoint = e.ts.WSURL
	}
	if endpoint != "" {
		n, err := client.NormalizeEndpoint(endpoint)
		if err != nil {
			e.t.Fatal(err)
		}
		endpoint = n
	}
	return lifecycleOptions{IO: e.app, Sessions: session.Open(e.dir), Client: pkgClient, Profile: profile,
		Endpoint: endpoint, Now: func() time.Time { return e.now }}
}

// login logs user in on profile with a UserSig minted for an hour; it
// fails the test unless that works.
func (e *runEnv) login(profile, user string) session.Profile {
	e.t.Helper()
	return e.loginAs(profile, user, 0)
}

// loginAs is login as a platform (0: the default, Web).
func (e *runEnv) loginAs(profile, user string, platform int) session.Profile {
	e.t.Helper()
	err := loginRun(context.Background(), &LoginOptions{lifecycleOptions: e.lifecycle(profile, ""), UserID: user, Expire: "1h", Platform: platform})
	if err != nil {
		e.t.Fatalf("login %s on %s: %v", user, profile, err)
	}
	e.reset()
	return e.profile(profile)
}

// profile reads a profile of the session file; the test fails if it is
// not there.
func (e *runEnv) profile(name string) session.Profile {
	e.t.Helper()
	p, ok, err := session.Open(e.dir).Get(context.Background(), name)
	if err != nil || !ok {
		e.t.Fatalf("profile %q: %v, found %v", name, err, ok)
	}
	return p
}

// sessionFile is the session file's bytes; "" when there is none.
func (e *runEnv) sessionFile() string {
	b, err := os.ReadFile(filepath.Join(e.dir, session.FileName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	return string(b)
}

// setState records an end of profile's session as a command that saw it
// would.
func (e *runEnv) setState(profile string, state session.State, kick string) session.Profile {
	e.t.Helper()
	err := session.Open(e.dir).Update(context.Background(), func(f *session.File) error {
		p := f.Profiles[profile]
		p.State, p.KickType, p.StateAt = state, kick, e.now
		f.Profiles[profile] = p
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.profile(profile)
}

// want checks a run's outcome: its error's exit code, kind and message
// (classify, as the process would exit and print), and both streams.
func (e *runEnv) want(err error, code int, kind, msg, stdout, stderr string) {
	e.t.Helper()
	o := classify(err)
	got := ""
	if err != nil {
		got = oneLine(err.Error())
	}
	if o.Code != code || code != 0 && o.Kind != kind || got != msg {
		e.t.Errorf("error %q: exit %d kind %q\nwant %q: exit %d kind %q", got, o.Code, o.Kind, msg, code, kind)
	}
	if e.out.String() != stdout {
		e.t.Errorf("stdout:\n%s\nwant:\n%s", e.out.String(), stdout)
	}
	if e.err.String() != stderr {
		e.t.Errorf("stderr:\n%s\nwant:\n%s", e.err.String(), stderr)
	}
	e.reset()
}

// corrupt writes content, not a session file, where the session file goes.
func (e *runEnv) corrupt(content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, session.FileName), []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// wantCorrupt checks a run on the session file corrupt wrote content to:
// exit 1, kind session_file, a message naming the file, which is left as
// it was, and nothing printed.
func (e *runEnv) wantCorrupt(what string, err error, content string) {
	e.t.Helper()
	path := filepath.Join(e.dir, session.FileName)
	if c := classify(err); c.Code != ExitFailure || c.Kind != KindSessionFile || !strings.Contains(err.Error(), path) {
		e.t.Errorf("%s: exit %d kind %q: %v", what, c.Code, c.Kind, err)
	}
	if f := e.sessionFile(); f != content {
		e.t.Errorf("%s: the corrupt file changed to %q", what, f)
	}
	e.want(nil, 0, "", "", "", "")
}

// deadEndpoint is a loopback address where nothing listens.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr
}

// unreachable is the message for the dead loopback endpoint ep: the
// client's reason is the system's, so only what is around it is checked.
func wantUnreachable(t *testing.T, err error, ep string) {
	t.Helper()
	o := classify(err)
	msg := err.Error()
	host := strings.TrimPrefix(ep, "ws://")
	if o.Code != ExitUnreachable || o.Kind != KindUnreachable || !strings.HasPrefix(msg, "cannot reach "+ep+": no server there (") ||
		!strings.HasSuffix(msg, "); start one with `chatctl serve --listen "+host+"`") {
		t.Errorf("want unreachable at %s: exit %d kind %q: %s", ep, o.Code, o.Kind, msg)
	}
}

func jsonDoc(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(versioned(b)) + "\n"
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// lockedWriter is a stdout that a test reads while a run writes it.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestRun holds the run functions' tests: each has its own server, config
// dir and streams, so they run in parallel, under one leak check (which
// waits a second for the server's idle frame workers: once, not once each).
func TestRun(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"whoami", whoamiRunTest},
		{"login", loginRunOK},
		{"login/failures", loginRunFailures},
		{"logout", logoutRunTest},
		{"server-time", serverTimeRunOK},
		{"server-time/kicked", serverTimeRunKicked},
		{"status", statusRunTest},
		{"watch", watchRunOK},
		{"watch/kicked", watchRunKicked},
		{"admin", adminRunTest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t)
		})
	}
}

func TestWhoamiFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newWhoamiCmd, "--profile", "work", "-o", "json", "whoami", "--check", "--show-token")
	if code != 0 || o == nil || !o.Check || !o.ShowToken || o.Profile != "work" || !o.IO.JSON() || o.Endpoint != "" || o.Sessions == nil {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, _ = parseArgs(t, newWhoamiCmd, "whoami", "--endpoint", "http://127.0.0.1:9")
	if code != 0 || o.Check || o.ShowToken || o.Profile != "default" || o.IO.JSON() || o.Endpoint != "ws://127.0.0.1:9" {
		t.Fatalf("defaults: exit %d %+v", code, o)
	}
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"whoami", "alice"}, "chatctl: unknown command \"alice\" for \"chatctl whoami\" (see 'chatctl whoami --help')\n"},
		{[]string{"--profile", "../x", "whoami"}, "chatctl: --profile: " + oneLine(session.ValidateName("../x").Error()) + "\n"},
		{[]string{"-o", "yaml", "whoami"}, "chatctl: --output must be text or json, not \"yaml\"\n"},
		{[]string{"whoami", "--check=maybe"}, "chatctl: invalid argument \"maybe\" for \"--check\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax (see 'chatctl whoami --help')\n"},
	} {
		o, code, stdout, stderr := parseArgs(t, newWhoamiCmd, c.args...)
		if o != nil || code != ExitUsage || stdout != "" || stderr != c.stderr {
			t.Errorf("%v: exit %d, ran %v\nstdout %q\nstderr %q\nwant   %q", c.args, code, o != nil, stdout, stderr, c.stderr)
		}
	}
	// A usage error with -o json is one document on stdout, as well.
	_, code, stdout, _ := parseArgs(t, newWhoamiCmd, "-o", "json", "whoami", "--nope")
	want := `{"schema_version":1,"error":{"code":2,"kind":"usage","message":"unknown flag: --nope (see 'chatctl whoami --help')"}}` + "\n"
	if code != ExitUsage || stdout != want {
		t.Errorf("-o json usage error: exit %d\n%s\nwant\n%s", code, stdout, want)
	}
}

func whoamiRunTest(t *testing.T) {
	e := newSubEnv(t)
	ctx := context.Background()
	whoami := func(o WhoamiOptions) error {
		o.lifecycleOptions = e.lifecycle("default", o.Endpoint)
		return whoamiRun(ctx, &o)
	}

	// Not logged in: exit 3, nothing printed, no file made.
	e.want(whoami(WhoamiOptions{}), ExitNotLoggedIn, KindNotLoggedIn,
		"not logged in (profile \"default\"): run `chatctl login USER`", "", "")
	if f := e.sessionFile(); f != "" {
		t.Errorf("whoami wrote the session file: %s", f)
	}

	ts := e.server()
	p := e.login("default", "alice")
	if p.UserID != "alice" || p.State != session.StateReady || !p.LoginAt.Equal(e.now) || !p.SigExpiresAt.Equal(e.now.Add(time.Hour)) {
		t.Fatalf("login saved %+v", p)
	}
	e.want(whoami(WhoamiOptions{}), 0, "", "", "alice\n", "")
	e.want(whoami(WhoamiOptions{ShowToken: true}), 0, "", "", "alice\t"+p.A2Key+"\n", "")

	e.json()
	loginAt := e.now
	doc := func(state string, checked bool, checkedAt time.Time) string {
		return `{"schema_version":1,"profile":"default","user":"alice","sdkappid":` + u64(ts.App.SDKAppID) +
			`,"endpoint":"` + ts.WSURL + `","instance":` + u64(p.InstID) + `,"platform":"Web","state":"` + state +
			`","checked":` + strconv.FormatBool(checked) + `,"checked_at":"` + stamp(checkedAt) + `","login_at":"` + stamp(loginAt) +
			`","usersig_expires":"` + stamp(loginAt.Add(time.Hour)) + `"}` + "\n"
	}
	e.want(whoami(WhoamiOptions{}), 0, "", "", doc("unchecked", false, e.now), "")
	// --check asks the server and records when it answered.
	e.now = e.now.Add(time.Minute)
	e.want(whoami(WhoamiOptions{Check: true}), 0, "", "", doc("ready", true, e.now), "")
	if got := e.profile("default").CheckedAt; !got.Equal(e.now) {
		t.Errorf("checked_at saved %v, want %v", got, e.now)
	}

	// The UserSig's known expiry: exit 5 with no network.
	e.app.V.Set("output", "text")
	saved := e.sessionFile()
	e.now = e.now.Add(2 * time.Hour)
	e.want(whoami(WhoamiOptions{}), ExitSigRejected, KindUserSigRejected,
		"alice's UserSig expired (userSigExpired) at "+stamp(p.SigExpiresAt)+" (profile \"default\"): log in again with a new UserSig", "", "")
	e.now = e.now.Add(-2 * time.Hour)

	// Unreachable: exit 6, the session file as it was.
	dead := deadEndpoint(t)
	err := whoami(WhoamiOptions{Check: true, lifecycleOptions: lifecycleOptions{Endpoint: dead}})
	wantUnreachable(t, err, dead)
	e.want(err, ExitUnreachable, KindUnreachable, oneLine(err.Error()), "", "")
	if f := e.sessionFile(); f != saved {
		t.Errorf("an unreachable check changed the session file:\n%s\nwas\n%s", f, saved)
	}

	// Another login of alice (the Web allows one instance) kicks this
	// one: --check says so with exit 4 and records it.
	e.login("tab", "alice")
	e.now = e.now.Add(time.Minute)
	kicked := "alice was kicked out (multipleAccount) at " + stamp(e.now) + " (profile \"default\"): run `chatctl login alice` again"
	e.want(whoami(WhoamiOptions{Check: true}), ExitKicked, KindKicked, kicked, "", "")
	if got := e.profile("default"); got.State != session.StateKicked || got.KickType != client.KickedMultipleAccount || !got.StateAt.Equal(e.now) {
		t.Errorf("the kick was not recorded: %+v", got)
	}
	// From then on the file says so, with no network.
	e.ts.Close()
	e.want(whoami(WhoamiOptions{}), ExitKicked, KindKicked, kicked, "", "")
	if o := classify(whoami(WhoamiOptions{})); o.KickType != client.KickedMultipleAccount {
		t.Errorf("kick type %q", o.KickType)
	}
}

// A corrupt session file: exit 1, kind session_file, the file untouched.
func TestWhoamiCorruptFile(t *testing.T) {
	e := newRunEnv(t)
	e.corrupt("garbage\n")
	for _, check := range []bool{false, true} {
		o := WhoamiOptions{lifecycleOptions: e.lifecycle("default", deadEndpoint(t)), Check: check}
		e.wantCorrupt(fmt.Sprintf("--check=%v", check), whoamiRun(context.Background(), &o), "garbage\n")
	}
}

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
		TinyID: p.TinyID, RepeatLogin: true, Expires: stamp(e.now.Add(-time.Minute).Add(time.Hour)),
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
	noFile("a login without a UserSig")

	// Unreachable: exit 6, nothing saved.
	dead := deadEndpoint(t)
	err = login(LoginOptions{UserID: "alice", lifecycleOptions: lifecycleOptions{Endpoint: dead}})
	wantUnreachable(t, err, dead)
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

	// A corrupt session file: exit 1, left as it was.
	e.corrupt(`{"version":1,"profiles":{"a":`)
	e.wantCorrupt("login", login(LoginOptions{UserID: "alice"}), `{"version":1,"profiles":{"a":`)
}

func TestLogoutFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newLogoutCmd, "logout")
	if code != 0 || o == nil || o.All || o.Local || o.Profile != "default" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	// --all works on every profile: --profile is not looked at.
	o, code, _, stderr = parseArgs(t, newLogoutCmd, "--profile", "../x", "logout", "--all", "--local", "-o", "json")
	if code != 0 || o == nil || !o.All || !o.Local || o.Profile != "" || !o.IO.JSON() {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--profile", "../x", "logout"}, "--profile: " + oneLine(session.ValidateName("../x").Error())},
		{[]string{"logout", "alice"}, `unknown command "alice" for "chatctl logout" (see 'chatctl logout --help')`},
	} {
		o, code, stdout, stderr := parseArgs(t, newLogoutCmd, c.args...)
		if o != nil || code != ExitUsage || stdout != "" || stderr != "chatctl: "+c.msg+"\n" {
			t.Errorf("%q: exit %d, ran %v\nstdout %q\nstderr %q\nwant   %q", c.args, code, o != nil, stdout, stderr, "chatctl: "+c.msg+"\n")
		}
	}
}

func logoutRunTest(t *testing.T) {
	e := newSubEnv(t)
	ts := e.server()
	ctx := context.Background()
	logout := func(profile string, o LogoutOptions) error {
		o.lifecycleOptions = e.lifecycle(profile, o.Endpoint)
		return logoutRun(ctx, &o)
	}
	gone := func(profile string) {
		t.Helper()
		if _, ok, err := session.Open(e.dir).Get(ctx, profile); ok || err != nil {
			t.Errorf("profile %q still there (%v)", profile, err)
		}
	}

	e.want(logout("default", LogoutOptions{}), ExitNotLoggedIn, KindNotLoggedIn,
		"not logged in (profile \"default\"): run `chatctl login USER`", "", "")

	// Logged in: the server logs the instance out, the profile goes.
	p := e.login("default", "alice")
	e.want(logout("default", LogoutOptions{}), 0, "", "", "", "logged out alice (profile \"default\")\n")
	gone("default")
	cfg := clientConfig(ts.WSURL, p.SDKAppID, p.Platform)
	if _, err := client.Probe(ctx, cfg, sessionOf(p)); classify(a2(err)).Kind != KindLoggedOut {
		t.Errorf("the logged-out session still answers: %v", err)
	}

	// -o json.
	e.login("default", "alice")
	e.json()
	e.want(logout("default", LogoutOptions{}), 0, "", "",
		`{"schema_version":1,"profile":"default","user":"alice","logged_out":true,"server":true,"removed":true}`+"\n", "")
	e.app.V.Set("output", "text")

	// A session the file records as kicked: removed, exit 3, with why.
	e.login("default", "alice")
	e.setState("default", session.StateKicked, client.KickedMultipleAccount)
	ended := "profile \"default\" was not logged in: the session had already ended (kicked: multipleAccount); removed it"
	e.want(logout("default", LogoutOptions{}), ExitNotLoggedIn, KindNotLoggedIn, ended, "", "")
	gone("default")
	// One the server says was kicked (another login took the Web's one
	// instance): the same.
	e.login("default", "alice")
	e.login("tab", "alice")
	e.want(logout("default", LogoutOptions{}), ExitNotLoggedIn, KindNotLoggedIn, ended, "", "")
	gone("default")

	// Unreachable: exit 6, the session kept; --local removes it anyway.
	e.login("default", "bob")
	saved := e.sessionFile()
	dead := deadEndpoint(t)
	err := logout("default", LogoutOptions{lifecycleOptions: lifecycleOptions{Endpoint: dead}})
	e.want(err, ExitUnreachable, KindUnreachable,
		"cannot reach "+dead+"; the session is kept (use --local to remove it anyway)", "", "")
	if e.sessionFile() != saved {
		t.Errorf("an unreachable logout changed the session file")
	}
	e.want(logout("default", LogoutOptions{Local: true, lifecycleOptions: lifecycleOptions{Endpoint: dead}}), 0, "", "", "",
		"removed the session of bob (profile \"default\") without telling the server\n")
	gone("default")

	// --all: every profile, by name; an ended one is removed with a note.
	e.login("a", "carol")
	e.login("b", "dave")
	e.setState("b", session.StateExpired, client.KickedUserSigExpired)
	e.want(logout("", LogoutOptions{All: true}), 0, "", "", "",
		"logged out carol (profile \"a\")\n"+
			"profile \"b\" was not logged in: the session had already ended (expired: userSigExpired); removed it\n"+
			"logged out alice (profile \"tab\")\n")
	gone("a")
	gone("b")
	gone("tab")
	e.want(logout("", LogoutOptions{All: true}), ExitNotLoggedIn, KindNotLoggedIn, "no profile was logged in", "", "")
	e.login("a", "carol")
	e.json()
	e.want(logout("", LogoutOptions{All: true}), 0, "", "",
		`{"schema_version":1,"profiles":[{"profile":"a","user":"carol","logged_out":true,"server":true,"removed":true}]}`+"\n", "")
	e.app.V.Set("output", "text")

	// A corrupt session file: exit 1, left as it was.
	e.corrupt("garbage\n")
	for _, o := range []LogoutOptions{{}, {All: true}, {Local: true}} {
		e.wantCorrupt(fmt.Sprintf("%+v", o), logout("default", o), "garbage\n")
	}
}

func TestServerTimeFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newServerTimeCmd, "server-time")
	if code != 0 || o == nil || o.Cached || o.MS || o.Profile != "default" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, stderr = parseArgs(t, newServerTimeCmd, "server-time", "--cached", "--ms", "--profile", "p")
	if code != 0 || o == nil || !o.Cached || !o.MS || o.Profile != "p" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, stderr = parseArgs(t, newServerTimeCmd, "server-time", "--ms=2")
	if o != nil || code != ExitUsage || stderr != "chatctl: invalid argument \"2\" for \"--ms\" flag: strconv.ParseBool: parsing \"2\": invalid syntax (see 'chatctl server-time --help')\n" {
		t.Errorf("--ms=2: exit %d %q", code, stderr)
	}
}

func serverTimeRunOK(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	ctx := context.Background()
	serverTime := func(o ServerTimeOptions) error {
		o.lifecycleOptions = e.lifecycle("default", o.Endpoint)
		return serverTimeRun(ctx, &o)
	}
	e.want(serverTime(ServerTimeOptions{Cached: true}), ExitNotLoggedIn, KindNotLoggedIn,
		"not logged in (profile \"default\"): run `chatctl login USER`", "", "")

	p := e.login("default", "alice")
	// Live: an a2 re-login measures the clock again and saves it.
	if err := serverTime(ServerTimeOptions{MS: true}); err != nil {
		t.Fatal(err)
	}
	q := e.profile("default")
	if !q.ClockMeasuredAt.After(p.ClockMeasuredAt) {
		t.Errorf("the offset was not measured again: %v, login's %v", q.ClockMeasuredAt, p.ClockMeasuredAt)
	}
	now := session.ServerNow(q, e.now)
	e.want(nil, 0, "", "", strconv.FormatInt(now.UnixMilli(), 10)+"\n", "")
	// --cached: the saved offset, no network.
	e.ts.Close()
	e.want(serverTime(ServerTimeOptions{Cached: true}), 0, "", "", strconv.FormatInt(now.Unix(), 10)+"\n", "")
	e.json()
	e.want(serverTime(ServerTimeOptions{Cached: true}), 0, "", "", jsonDoc(t, serverTimeResult{
		ServerTimeMS: now.UnixMilli(), ServerTime: stamp(now), OffsetMS: q.ClockOffsetMS, RTTMS: q.ClockRTTMS,
		MeasuredAt: stamp(q.ClockMeasuredAt), Cached: true}), "")
	e.app.V.Set("output", "text")

	// Live with the server gone: exit 6, the file as it was.
	saved := e.sessionFile()
	err := serverTime(ServerTimeOptions{})
	wantUnreachable(t, err, e.lifecycle("", "").Endpoint)
	e.reset()
	if e.sessionFile() != saved {
		t.Errorf("an unreachable server-time changed the session file")
	}

	// No offset saved (a profile from before it was): exit 1.
	q.ClockMeasuredAt = time.Time{}
	if err := session.Open(e.dir).Put(ctx, "default", q); err != nil {
		t.Fatal(err)
	}
	e.want(serverTime(ServerTimeOptions{Cached: true}), ExitFailure, KindError,
		"no saved clock offset for profile \"default\": run `chatctl server-time` without --cached once", "", "")

	// A session recorded as expired: exit 5.
	e.setState("default", session.StateExpired, client.KickedUserSigExpired)
	e.want(serverTime(ServerTimeOptions{}), ExitSigRejected, KindUserSigExpired,
		"alice's UserSig expired (userSigExpired) at "+stamp(e.now)+" (profile \"default\"): log in again with a new UserSig", "", "")
}

// server-time sees a kick by another login: exit 4, recorded.
func serverTimeRunKicked(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	e.login("default", "alice")
	e.login("tab", "alice")
	o := ServerTimeOptions{lifecycleOptions: e.lifecycle("default", "")}
	e.want(serverTimeRun(context.Background(), &o), ExitKicked, KindKicked,
		"alice was kicked out (multipleAccount) at "+stamp(e.now)+" (profile \"default\"): run `chatctl login alice` again", "", "")
	if p := e.profile("default"); p.State != session.StateKicked || p.KickType != client.KickedMultipleAccount {
		t.Errorf("the kick was not recorded: %+v", p)
	}
}

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
			Instance: p.InstID, State: state, CheckedAt: stamp(checked), Expires: stamp(p.SigExpiresAt), OK: ok}
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
	if err := session.Open(e.dir).Update(ctx, func(f *session.File) error {
		p := f.Profiles["d"]
		p.Endpoint = dead
		f.Profiles["d"] = p
		return nil
	}); err != nil {
		t.Fatal(err)
	}
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
			p.Error.Message != p.User+"'s UserSig expired at "+stamp(e.profile(p.Profile).SigExpiresAt)+" (profile \""+p.Profile+"\")" {
			t.Errorf("past the UserSig's expiry: %+v %+v", p, p.Error)
		}
	}
}

func reflectEqual(a, b statusProfile) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestWatchFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newWatchCmd, "watch")
	if code != 0 || o == nil || o.Until != "" || o.Timeout != 0 || o.Signals == nil || o.Profile != "default" || !o.IO.streaming {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, stderr = parseArgs(t, newWatchCmd, "watch", "--until", "KICKED_OUT", "--timeout", "1m30s", "--profile", "p")
	if code != 0 || o == nil || o.Until != "KICKED_OUT" || o.Timeout != 90*time.Second || o.Profile != "p" {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"watch", "--until", "READY"}, `--until must be one of [SDK_READY SDK_NOT_READY NET_STATE_CHANGE KICKED_OUT], not "READY" (see 'chatctl watch --help')`},
		{[]string{"watch", "--timeout", "-1s"}, "--timeout must be positive (see 'chatctl watch --help')"},
		{[]string{"watch", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag: time: invalid duration "soon" (see 'chatctl watch --help')`},
		{[]string{"--profile", "", "watch"}, "--profile: " + oneLine(session.ValidateName("").Error())},
	} {
		o, code, stdout, stderr := parseArgs(t, newWatchCmd, c.args...)
		if o != nil || code != ExitUsage || stdout != "" || stderr != "chatctl: "+c.msg+"\n" {
			t.Errorf("%q: exit %d, ran %v\nstdout %q\nstderr %q\nwant   %q", c.args, code, o != nil, stdout, stderr, "chatctl: "+c.msg+"\n")
		}
	}
}

// watchLines parses a watch's output, checking that every line names the
// profile and user; it returns the events.
func watchLines(t *testing.T, out, profile, user string) []watchLine {
	t.Helper()
	var lines []watchLine
	for _, l := range strings.SplitAfter(out, "\n") {
		if l == "" {
			continue
		}
		var w watchLine
		if err := json.Unmarshal([]byte(l), &w); err != nil || !strings.HasPrefix(l, `{"schema_version":1,"event":`) || !strings.HasSuffix(l, "}\n") {
			t.Fatalf("line %q: %v", l, err)
		}
		if w.Profile != profile || w.User != user || w.Time == "" {
			t.Errorf("line %q", l)
		}
		lines = append(lines, w)
	}
	return lines
}

func watchRunOK(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	ctx := context.Background()
	watch := func(o WatchOptions) error {
		o.lifecycleOptions = e.lifecycle("default", o.Endpoint)
		return watchRun(ctx, &o)
	}
	e.want(watch(WatchOptions{}), ExitNotLoggedIn, KindNotLoggedIn,
		"not logged in (profile \"default\"): run `chatctl login USER`", "", "")

	// --until SDK_READY: exit 0 once it is printed; the check recorded.
	e.login("default", "alice")
	e.now = e.now.Add(time.Minute)
	if err := watch(WatchOptions{Until: client.EventSDKReady}); err != nil {
		t.Fatal(err)
	}
	lines := watchLines(t, e.out.String(), "default", "alice")
	if len(lines) == 0 || lines[len(lines)-1].Event != client.EventSDKReady {
		t.Errorf("want the lines to end with SDK_READY: %+v", lines)
	}
	e.want(nil, 0, "", "", e.out.String(), "")
	if p := e.profile("default"); !p.CheckedAt.Equal(e.now) {
		t.Errorf("SDK_READY not recorded as a check: %v", p.CheckedAt)
	}

	// --timeout with --until's event not come: exit 1, kind timeout;
	// without --until: exit 0.
	err := watch(WatchOptions{Until: client.EventKickedOut, Timeout: 300 * time.Millisecond})
	e.want(err, ExitFailure, KindTimeout, "timed out after 300ms waiting for KICKED_OUT", e.out.String(), "")
	e.want(watch(WatchOptions{Timeout: 300 * time.Millisecond}), 0, "", "", e.out.String(), "")

	// Unreachable: exit 6, the file as it was.
	saved := e.sessionFile()
	dead := deadEndpoint(t)
	err = watch(WatchOptions{lifecycleOptions: lifecycleOptions{Endpoint: dead}})
	wantUnreachable(t, err, dead)
	e.reset()
	if e.sessionFile() != saved {
		t.Errorf("an unreachable watch changed the session file")
	}
}

// A watch sees the kick of another login: KICKED_OUT then SDK_NOT_READY,
// exit 4, the end recorded; a later watch replays it from the file.
func watchRunKicked(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	e.login("default", "alice")
	var out, errw lockedWriter
	app := &App{In: strings.NewReader(""), Out: &out, Err: &errw, V: viper.New(), configDir: e.dir, loaded: true}
	o := WatchOptions{lifecycleOptions: e.lifecycle("default", "")}
	o.IO = app
	done := make(chan error, 1)
	go func() { done <- watchRun(context.Background(), &o) }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), `"event":"SDK_READY"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no SDK_READY after 15 s: %q %q", out.String(), errw.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.login("tab", "alice")
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("watch still running 15 s after the kick: %q", out.String())
	}
	kicked := "alice was kicked out (multipleAccount) at " + stamp(e.now) + " (profile \"default\"): run `chatctl login alice` again"
	if c := classify(err); c.Code != ExitKicked || c.Kind != KindKicked || c.KickType != client.KickedMultipleAccount || err.Error() != kicked {
		t.Errorf("exit %d kind %q kick %q: %v", c.Code, c.Kind, c.KickType, err)
	}
	lines := watchLines(t, out.String(), "default", "alice")
	if n := len(lines); n < 3 || lines[n-2].Event != client.EventKickedOut || lines[n-2].Type != client.KickedMultipleAccount ||
		lines[n-1].Event != client.EventSDKNotReady || errw.String() != "" {
		t.Errorf("lines %+v, stderr %q", lines, errw.String())
	}
	if p := e.profile("default"); p.State != session.StateKicked || p.KickType != client.KickedMultipleAccount || !p.StateAt.Equal(e.now) {
		t.Errorf("the kick was not recorded: %+v", p)
	}

	// Replayed from the file, marked recorded, with no network.
	e.ts.Close()
	o.IO = e.app
	at := stamp(e.now)
	e.want(watchRun(context.Background(), &o), ExitKicked, KindKicked, kicked,
		`{"schema_version":1,"event":"KICKED_OUT","type":"multipleAccount","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n"+
			`{"schema_version":1,"event":"SDK_NOT_READY","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n", "")
}

// cliRun is a run of chatctl in-process (Run: what Execute does, without
// the process) with a config dir, an app's credentials and an endpoint in
// its environment.
type cliRun struct {
	dir      string
	endpoint string // "": a loopback address where nothing listens
	key      string // "": a key of no server's
	sdkappid uint64 // 0: servertest.SDKAppID
	stdin    string
	env      []string // more KEY=VALUE
}

// run runs args; it checks that the key is not in the output.
func (c cliRun) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if c.key == "" {
		c.key = strings.Repeat("0123456789abcdef", 4)
	}
	if c.endpoint == "" {
		c.endpoint = deadEndpoint(t)
	}
	if c.sdkappid == 0 {
		c.sdkappid = servertest.SDKAppID
	}
	t.Setenv("CHATCTL_CONFIG_DIR", c.dir)
	t.Setenv("CHATCTL_SECRET_KEY", c.key)
	t.Setenv("CHATCTL_SDKAPPID", u64(c.sdkappid))
	t.Setenv("CHATCTL_ENDPOINT", c.endpoint)
	for _, k := range []string{"CHATCTL_OUTPUT", "CHATCTL_PROFILE", "CHATCTL_USER_SIG", "CHATCTL_ADMIN", "CHATCTL_REST_URL"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code = Run(args, strings.NewReader(c.stdin), &out, &errb)
	noSecrets(t, c.key, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// runCLI runs args with the config dir dir and nothing listening at the
// endpoint: no run here may reach the network.
func runCLI(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return cliRun{dir: dir}.run(t, args...)
}

// checkOneLine checks a failed run: the exit code, nothing on stdout, and
// one line `chatctl: ` on stderr holding every want.
func checkOneLine(t *testing.T, args []string, code int, stdout, stderr string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode || stdout != "" || !strings.HasPrefix(stderr, "chatctl: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("%q: exit %d, want %d and one line\nstdout %q\nstderr %q", args, code, wantCode, stdout, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%q: the message should have %q: %q", args, w, stderr)
		}
	}
}

// A corrupt session file: every lifecycle command fails with exit 1 and a
// message naming the file, which stays as it was.
func TestCorruptSessionFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, session.FileName)
	good := filepath.Join(t.TempDir(), "alice.sig")
	s := sig.Gen(sig.Params{SDKAppID: 1400000001, Key: strings.Repeat("k", 64), UserID: "alice", Expire: 3600}, time.Now())
	if err := os.WriteFile(good, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"garbage\n", `{"version":1,"profiles":{"a":`, `{"version":99,"profiles":{}}`, "\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"whoami"}, {"whoami", "--check"}, {"login", "alice"}, {"login", "alice", "--user-sig-file", good},
			{"server-time"}, {"server-time", "--cached"}, {"watch"}, {"logout"}, {"logout", "--all"}, {"logout", "--local"},
			{"status"}, {"status", "--check"},
		} {
			code, stdout, stderr := runCLI(t, dir, args...)
			checkOneLine(t, args, code, stdout, stderr, ExitFailure, path)
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Errorf("%v: the corrupt file changed to %q", args, b)
			}
		}
	}
}

// A config dir that is a regular file: a clear message, not a panic or a
// silent success; the file is untouched.
func TestConfigDirNotADirectory(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(blocker, []byte("not a dir\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "alice.sig")
	s := sig.Gen(sig.Params{SDKAppID: 1400000001, Key: strings.Repeat("k", 64), UserID: "alice", Expire: 3600}, time.Now())
	if err := os.WriteFile(good, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"login", "alice", "--user-sig-file", good}, {"login", "alice"}, {"whoami"}, {"server-time", "--cached"},
		{"watch"}, {"logout"}, {"logout", "--all"}, {"status"},
	} {
		code, stdout, stderr := runCLI(t, blocker, args...)
		if code == 0 {
			t.Errorf("%q: exit 0", args)
		}
		checkOneLine(t, args, code, stdout, stderr, code, blocker, "not a directory")
		if b, _ := os.ReadFile(blocker); string(b) != "not a dir\n" {
			t.Errorf("%v changed the file to %q", args, b)
		}
	}
}

// With nobody watching, the commands that ask the server learn of a kick
// (or an expired UserSig) themselves, say so, and save it for the ones that
// do not ask; login then logs in afresh. The server's clock is moved past
// the UserSig's expiry instead of waiting for it.
func TestCheckFindsEnd(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct {
		name, kickType string
		code           int
		end            func(e *runEnv, skew *atomic.Int64)
		ask            func(e *runEnv) error
	}{
		{name: "multipleAccount/whoami --check", kickType: "multipleAccount", code: 4, ask: whoamiCheck,
			end: func(e *runEnv, _ *atomic.Int64) { e.login("second", "alice") }},
		{name: "multipleAccount/server-time", kickType: "multipleAccount", code: 4,
			ask: func(e *runEnv) error {
				return serverTimeRun(context.Background(), &ServerTimeOptions{lifecycleOptions: e.lifecycle("default", "")})
			},
			end: func(e *runEnv, _ *atomic.Int64) { e.login("second", "alice") }},
		{name: "REST_API_Kick/whoami --check", kickType: "REST_API_Kick", code: 4, ask: whoamiCheck,
			end: func(e *runEnv, _ *atomic.Int64) {
				cli := &rest.Client{BaseURL: e.ts.RESTURL, SDKAppID: e.ts.App.SDKAppID, Admin: servertest.Admin, Key: e.ts.App.Key}
				if err := adminKickRun(context.Background(), &AdminKickOptions{AdminOptions: AdminOptions{IO: e.app, REST: cli}, User: "alice"}); err != nil {
					e.t.Fatal(err)
				}
				e.reset()
				// The kick refuses UserSigs minted in the seconds before
				// it: the runs' clock moves to now, at or after the kick.
				e.now = time.Now().UTC().Truncate(time.Second)
			}},
		{name: "userSigExpired/whoami --check", kickType: "userSigExpired", code: 5, ask: whoamiCheck,
			end: func(e *runEnv, skew *atomic.Int64) {
				skew.Store(int64(2 * time.Hour))
				e.now = e.now.Add(2 * time.Hour)
			}},
		// whoami knows the UserSig's expiry without asking.
		{name: "userSigExpired/whoami", kickType: "userSigExpired", code: 5,
			ask: func(e *runEnv) error {
				return whoamiRun(context.Background(), &WhoamiOptions{lifecycleOptions: e.lifecycle("default", "")})
			},
			end: func(e *runEnv, skew *atomic.Int64) {
				skew.Store(int64(2 * time.Hour))
				e.now = e.now.Add(2 * time.Hour)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSubEnv(t)
			var skew atomic.Int64
			e.server(servertest.Clock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
			first := e.login("default", "alice")
			tc.end(e, &skew)
			for i, err := range []error{tc.ask(e), whoamiRun(context.Background(), &WhoamiOptions{lifecycleOptions: e.lifecycle("default", "")})} {
				if o := classify(err); o.Code != tc.code || !strings.Contains(err.Error(), tc.kickType) {
					t.Errorf("run %d: want exit %d naming %s: exit %d: %v", i, tc.code, tc.kickType, o.Code, err)
				}
				e.want(nil, 0, "", "", "", "")
			}
			// login alice again is a fresh login, not a repeatLogin.
			if again := e.login("default", "alice"); again.InstID == first.InstID {
				t.Errorf("login after the end kept instance %d", first.InstID)
			}
			if err := whoamiCheck(e); err != nil {
				t.Error(err)
			}
		})
	}
}

func whoamiCheck(e *runEnv) error {
	return whoamiRun(context.Background(), &WhoamiOptions{lifecycleOptions: e.lifecycle("default", ""), Check: true})
}

// Bad input gets the right exit code and a one-line message, and leaves the
// session file byte for byte as it was.
func TestLifecycleBadInput(t *testing.T) {
	e := newRunEnv(t)
	ts := e.server()
	c := cliRun{dir: e.dir, endpoint: ts.WSURL, key: ts.App.Key}
	// A logged-in profile, so that there is a file to keep unchanged.
	if code, stdout, stderr := c.run(t, "--profile", "keeper", "login", "keeper"); code != 0 {
		t.Fatalf("login: exit %d %q %q", code, stdout, stderr)
	}
	mint := func(user, key string, now time.Time) string {
		if key == "" {
			key = ts.App.Key
		}
		f := filepath.Join(t.TempDir(), user+".sig")
		s := sig.Gen(sig.Params{SDKAppID: ts.App.SDKAppID, Key: key, UserID: user, Expire: 3600}, now)
		if err := os.WriteFile(f, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	wrongKey := mint("bob", strings.Repeat("0", 64), time.Now())
	expired := mint("carol", "", time.Now().Add(-2*time.Hour))
	expiredSig, _ := os.ReadFile(expired)
	good := mint("dave", "", time.Now())
	unreachable := deadEndpoint(t)

	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		stdin  string
		code   int
		stderr []string
	}{
		{name: "empty user", args: []string{"login", ""}, code: 2, stderr: []string{"UserID", "empty"}},
		{name: "no user", args: []string{"login"}, code: 2, stderr: []string{"USER"}},
		{name: "empty --user-id", args: []string{"login", "--user-id", ""}, code: 2, stderr: []string{"UserID", "empty"}},
		{name: "oversized user", args: []string{"login", strings.Repeat("u", 33)}, code: 2, stderr: []string{"33 bytes", "32"}},
		{name: "user with a control character", args: []string{"login", "a\tb"}, code: 2, stderr: []string{"control character"}},
		{name: "user of 131,000 bytes", args: []string{"login", strings.Repeat("u", 131000)}, code: 2, stderr: []string{"131000 bytes"}},
		{name: "two users", args: []string{"login", "a", "--user-id", "b"}, code: 2, stderr: []string{"differ"}},
		{name: "UserSig with a wrong key", args: []string{"--profile", "b", "login", "bob", "--user-sig-file", wrongKey},
			code: 5, stderr: []string{"70009", "UserSig"}},
		{name: "UserSig of another user", args: []string{"--profile", "b", "login", "bob", "--user-sig-file", good},
			code: 5, stderr: []string{"UserSig"}},
		{name: "expired UserSig", args: []string{"--profile", "c", "login", "carol", "--user-sig-file", expired},
			code: 5, stderr: []string{"expired", "70001"}},
		{name: "expired UserSig on stdin", args: []string{"--profile", "c", "login", "carol", "--user-sig", "-"},
			stdin: string(expiredSig), code: 5, stderr: []string{"expired"}},
		{name: "expired UserSig in the environment", args: []string{"--profile", "c", "login", "carol"},
			env: []string{"CHATCTL_USER_SIG=" + strings.TrimSpace(string(expiredSig))}, code: 5, stderr: []string{"expired"}},
		{name: "garbage UserSig", args: []string{"--profile", "c", "login", "carol", "--user-sig", "-"},
			stdin: "not-a-usersig", code: 5},
		{name: "empty UserSig file", args: []string{"--profile", "c", "login", "carol", "--user-sig-file", os.DevNull},
			code: 2, stderr: []string{"empty"}},
		{name: "UserSig in argv", args: []string{"login", "carol", "--user-sig", "eJyrVg"}, code: 2, stderr: []string{"--user-sig-file"}},
		{name: "unreachable endpoint", args: []string{"--profile", "e", "login", "erin", "--endpoint", unreachable},
			code: 6, stderr: []string{"cannot reach " + unreachable, "chatctl serve --listen " + strings.TrimPrefix(unreachable, "ws://")}},
		{name: "unreachable endpoint, whoami --check", args: []string{"--profile", "keeper", "whoami", "--check", "--endpoint", unreachable},
			code: 6, stderr: []string{"cannot reach"}},
		{name: "unreachable endpoint, server-time", args: []string{"--profile", "keeper", "server-time", "--endpoint", unreachable},
			code: 6, stderr: []string{"cannot reach"}},
		{name: "unreachable endpoint, watch", args: []string{"--profile", "keeper", "watch", "--endpoint", unreachable},
			code: 6, stderr: []string{"cannot reach"}},
		{name: "unreachable endpoint, logout", args: []string{"--profile", "keeper", "logout", "--endpoint", unreachable},
			code: 6, stderr: []string{"kept", "--local"}},
		{name: "unknown profile", args: []string{"--profile", "nobody", "whoami"}, code: 3, stderr: []string{`"nobody"`, "login"}},
		{name: "unknown profile, server-time", args: []string{"--profile", "nobody", "server-time"}, code: 3},
		{name: "unknown profile, logout", args: []string{"--profile", "nobody", "logout"}, code: 3},
		{name: "invalid profile name", args: []string{"--profile", "bad name", "whoami"}, code: 2, stderr: []string{"--profile", "bad name"}},
		{name: "invalid profile name, login", args: []string{"--profile", "../x", "login", "alice"}, code: 2, stderr: []string{"--profile"}},
		{name: "invalid profile name in the environment", args: []string{"whoami"}, env: []string{"CHATCTL_PROFILE=" + strings.Repeat("p", 65)},
			code: 2, stderr: []string{"profile"}},
		{name: "another user on a profile", args: []string{"--profile", "keeper", "login", "zoe"}, code: 1,
			stderr: []string{"logged in as keeper", "logout", "--profile"}},
		{name: "watch --until nonsense", args: []string{"--profile", "keeper", "watch", "--until", "READY"}, code: 2, stderr: []string{"--until"}},
		{name: "bad --platform", args: []string{"--profile", "x", "login", "xavier", "--platform", "toaster"}, code: 2, stderr: []string{"--platform"}},
		{name: "bad --expire", args: []string{"--profile", "x", "login", "xavier", "--expire", "soon"}, code: 2, stderr: []string{"--expire"}},
		{name: "bad -o", args: []string{"--profile", "keeper", "whoami", "-o", "yaml"}, code: 2, stderr: []string{"--output"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.sessionFile()
			run := c
			run.stdin, run.env = tc.stdin, tc.env
			code, stdout, stderr := run.run(t, tc.args...)
			checkOneLine(t, tc.args, code, stdout, stderr, tc.code, tc.stderr...)
			if after := e.sessionFile(); after != before {
				t.Errorf("the session file changed:\nbefore: %s\nafter: %s", before, after)
			}
		})
	}
	// Still logged in as before.
	if code, stdout, stderr := c.run(t, "--profile", "keeper", "whoami", "--check"); code != 0 {
		t.Errorf("whoami --check: exit %d %q %q", code, stdout, stderr)
	}
}

// Every spelling of the server's endpoint is the same server: a login at
// one is a repeatLogin at the others, and the profile holds it normalized.
func TestEndpointSpellings(t *testing.T) {
	e := newRunEnv(t)
	ts := e.server()
	c := cliRun{dir: e.dir, endpoint: deadEndpoint(t), key: ts.App.Key}
	if code, stdout, stderr := c.run(t, "login", "alice", "--endpoint", ts.WSURL+"/"); code != 0 {
		t.Fatalf("login: exit %d %q %q", code, stdout, stderr)
	}
	for _, ep := range []string{ts.WSURL, "http" + strings.TrimPrefix(ts.WSURL, "ws") + "/", strings.ToUpper(ts.WSURL[:2]) + ts.WSURL[2:]} {
		if code, stdout, stderr := c.run(t, "login", "alice", "--endpoint", ep); code != 0 || !strings.Contains(stdout, "repeatLogin") {
			t.Errorf("--endpoint %s: want repeatLogin: exit %d %q %q", ep, code, stdout, stderr)
		}
	}
	if p := e.profile("default"); p.Endpoint != ts.WSURL {
		t.Errorf("the profile's endpoint is not normalized: %q", p.Endpoint)
	}
}

// A bad value in config.yaml is named by its file and key, not by a flag.
func TestConfigErrorNamesFileAndKey(t *testing.T) {
	dir := t.TempDir()
	for key, val := range map[string]string{"output": "xml", "endpoint": "foo"} {
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(key+": "+val+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("CHATCTL_ENDPOINT", "")
		os.Unsetenv("CHATCTL_ENDPOINT")
		var out, errb bytes.Buffer
		t.Setenv("CHATCTL_CONFIG_DIR", dir)
		code := Run([]string{"whoami"}, strings.NewReader(""), &out, &errb)
		want := filepath.Join(dir, "config.yaml") + ": " + key
		checkOneLine(t, []string{"whoami"}, code, out.String(), errb.String(), ExitUsage, want)
		if strings.Contains(errb.String(), "--"+key) {
			t.Errorf("config %s: %s names the flag: %q", key, val, errb.String())
		}
	}
}

// Shell completion offers the profiles, the -o, --until and --platform
// values, and no files for USER arguments.
func TestCompletionValues(t *testing.T) {
	c := cliRun{dir: t.TempDir()}
	p := session.Profile{Endpoint: "ws://127.0.0.1:7468", SDKAppID: servertest.SDKAppID, UserID: "alice", InstID: 1, State: session.StateReady}
	if err := session.Open(c.dir).Put(context.Background(), "phone", p); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "--profile", ""}, []string{"phone"}},
		{[]string{"__complete", "-o", ""}, []string{"text", "json"}},
		{[]string{"__complete", "watch", "--until", ""}, []string{"SDK_READY", "KICKED_OUT"}},
		{[]string{"__complete", "login", "alice", "--platform", ""}, []string{"iPhone", "Android", "PC", "iPad", "Mac", "Web"}},
		{[]string{"__complete", "login", ""}, []string{":4"}},
		{[]string{"__complete", "admin", "kick", ""}, []string{":4"}},
	} {
		code, stdout, stderr := c.run(t, tc.args...)
		for _, w := range tc.want {
			if code != 0 || !strings.Contains(stdout, w) {
				t.Errorf("%v: want %q in: exit %d %q %q", tc.args[1:], w, code, stdout, stderr)
			}
		}
	}
}

// server-time, status and watch on a corrupt session file: exit 1, the
// file left as it was (whoami, login and logout check it in their tests).
func TestRunCorruptSessionFile(t *testing.T) {
	e := newRunEnv(t)
	e.corrupt(`{"version":99,"profiles":{}}`)
	ctx := context.Background()
	lo := func() lifecycleOptions { return e.lifecycle("default", deadEndpoint(t)) }
	for _, r := range []struct {
		what string
		run  func() error
	}{
		{"server-time", func() error { return serverTimeRun(ctx, &ServerTimeOptions{lifecycleOptions: lo()}) }},
		{"server-time --cached", func() error { return serverTimeRun(ctx, &ServerTimeOptions{lifecycleOptions: lo(), Cached: true}) }},
		{"status", func() error { return statusRun(ctx, &StatusOptions{lifecycleOptions: lo()}) }},
		{"status --check", func() error { return statusRun(ctx, &StatusOptions{lifecycleOptions: lo(), Check: true}) }},
		{"watch", func() error { return watchRun(ctx, &WatchOptions{lifecycleOptions: lo()}) }},
	} {
		e.wantCorrupt(r.what, r.run(), `{"version":99,"profiles":{}}`)
	}
}
