package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
)

// whoami without a process: its flags and whoamiRun (lifecycle_opts_test.go).

func TestWhoamiFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newWhoamiCmd, "--profile", "work", "-o", "json", "whoami", "--check", "--show-token", "--timeout", "3s")
	if code != 0 || o == nil || !o.Check || !o.ShowToken || o.Timeout != 3*time.Second || o.Profile != "work" || !o.IO.JSON() || o.Endpoint != "" || o.Sessions == nil {
		t.Fatalf("exit %d %s: %+v", code, stderr, o)
	}
	o, code, _, _ = parseArgs(t, newWhoamiCmd, "whoami", "--endpoint", "http://127.0.0.1:9")
	if code != 0 || o.Check || o.ShowToken || o.Timeout != 0 || o.Profile != "default" || o.IO.JSON() || o.Endpoint != "ws://127.0.0.1:9" {
		t.Fatalf("defaults: exit %d %+v", code, o)
	}
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"whoami", "alice"}, "chatctl: unknown command \"alice\" for \"chatctl whoami\" (see 'chatctl whoami --help')\n"},
		{[]string{"--profile", "../x", "whoami"}, "chatctl: --profile: " + oneLine(session.ValidateName("../x").Error()) + "\n"},
		{[]string{"-o", "yaml", "whoami"}, "chatctl: --output must be text or json, not \"yaml\"\n"},
		{[]string{"whoami", "--timeout", "-1s"}, "chatctl: --timeout must not be negative (see 'chatctl whoami --help')\n"},
		{[]string{"whoami", "--timeout", "soon"}, "chatctl: invalid argument \"soon\" for \"--timeout\" flag: time: invalid duration \"soon\" (see 'chatctl whoami --help')\n"},
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
	serverTime := func(o ServerTimeOptions) error {
		o.lifecycleOptions = e.lifecycle("default", "")
		return serverTimeRun(ctx, &o)
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
	expired := "alice's UserSig expired (userSigExpired) at " + stamp(p.SigExpiresAt) + " (profile \"default\"): log in again with a new UserSig"
	e.want(whoami(WhoamiOptions{}), ExitSigRejected, KindUserSigExpired, expired, "", "")
	// server-time --cached knows it too; and the error document has the
	// profile, the user and the kick type, as when the server says so.
	e.want(serverTime(ServerTimeOptions{Cached: true}), ExitSigRejected, KindUserSigExpired, expired, "", "")
	e.json()
	e.want(whoami(WhoamiOptions{}), ExitSigRejected, KindUserSigExpired, expired, "", "")
	if o := classify(whoami(WhoamiOptions{})); o.KickType != client.KickedUserSigExpired {
		t.Errorf("expired: kick type %q", o.KickType)
	}
	var ee *ExitError
	if err := whoami(WhoamiOptions{}); !errors.As(err, &ee) || ee.Data != (profileRef{"default", "alice"}) {
		t.Errorf("expired: the error's data %+v", ee)
	}
	e.app.V.Set("output", "text")
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
	// The time the report gives is the one recorded, which later reports
	// read, even when the clock moves between them.
	e.login("default", "alice")
	e.login("tab", "alice")
	tick := e.now
	lo := e.lifecycle("default", "")
	lo.Now = func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	werr := whoamiRun(ctx, &WhoamiOptions{lifecycleOptions: lo, Check: true})
	if at := e.profile("default").StateAt; at.IsZero() || !strings.Contains(werr.Error(), " at "+stamp(at)+" ") {
		t.Errorf("kick reported as %q, recorded at %s", werr, stamp(at))
	}
	e.setState("default", session.StateKicked, client.KickedMultipleAccount)

	// From then on the file says so, with no network.
	e.ts.Close()
	e.want(whoami(WhoamiOptions{}), ExitKicked, KindKicked, kicked, "", "")
	if o := classify(whoami(WhoamiOptions{})); o.KickType != client.KickedMultipleAccount {
		t.Errorf("kick type %q", o.KickType)
	}
}

// An A2Key from a hand-edited session file is shown escaped by
// --show-token, as every text output shows a value: its terminal escapes
// went to the terminal as they were. (A user ID with one makes the file
// corrupt: TestCorruptSessionFile.)
func TestWhoamiShowTokenEscapes(t *testing.T) {
	e := newRunEnv(t)
	raw := `{"version":1,"profiles":{"p":{"user_id":"alice","sdkappid":1,"a2_key":"k\u001b[2J","state":"ready"}}}`
	if err := os.WriteFile(filepath.Join(e.dir, session.FileName), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := whoamiRun(context.Background(), &WhoamiOptions{lifecycleOptions: e.lifecycle("p", ""), ShowToken: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := e.out.String(), "alice\t"+`k\x1b[2J`+"\n"; got != want {
		t.Errorf("whoami --show-token: %q, want %q", got, want)
	}
}

// An ended session the file records without its time or kick type
// (hand-edited, an older version) is said without them, not as "kicked
// out () at -".
func TestEndedWithoutTimeOrType(t *testing.T) {
	e := newRunEnv(t)
	raw := `{"version":1,"profiles":{"k":{"user_id":"bob","sdkappid":1,"state":"kicked"},"x":{"user_id":"eve","sdkappid":1,"state":"expired"}}}`
	if err := os.WriteFile(filepath.Join(e.dir, session.FileName), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"k": "bob was kicked out (profile \"k\"): run `chatctl login bob` again",
		"x": "eve's UserSig expired (userSigExpired) (profile \"x\"): log in again with a new UserSig",
	} {
		err := whoamiRun(context.Background(), &WhoamiOptions{lifecycleOptions: e.lifecycle(name, "")})
		if err == nil || err.Error() != want {
			t.Errorf("profile %s: %v, want %q", name, err, want)
		}
	}
}

// TestUnknownTimesAreNull: a profile whose file holds no login, check or
// expiry time (hand-edited, or written by an older version) gives null in the
// JSON documents, never stamp's "-", which no date parser reads.
func TestUnknownTimesAreNull(t *testing.T) {
	e := newRunEnv(t)
	raw := `{"version":1,"profiles":{"p":{"user_id":"alice","sdkappid":1,"state":"ready"},"k":{"user_id":"bob","sdkappid":1,"state":"kicked","kick_type":"multipleAccount"}}}`
	if err := os.WriteFile(filepath.Join(e.dir, session.FileName), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	e.json()
	lo := e.lifecycle("p", "")
	if err := whoamiRun(context.Background(), &WhoamiOptions{lifecycleOptions: lo}); err != nil {
		t.Fatal(err)
	}
	if got := e.out.String(); !strings.Contains(got, `"checked_at":null,"login_at":null,"usersig_expires":null`) {
		t.Errorf("whoami: %s", got)
	}
	e.reset()
	// status's document rides on its error (bob's kick: exit 4).
	var ee *ExitError
	if err := statusRun(context.Background(), &StatusOptions{lifecycleOptions: e.lifecycle("", "")}); !errors.As(err, &ee) {
		t.Fatalf("status: %v", err)
	}
	if got, _ := json.Marshal(ee.Data); strings.Count(string(got), `"checked_at":null`) != 2 || strings.Count(string(got), `"usersig_expires":null`) != 2 || strings.Contains(string(got), `"-"`) {
		t.Errorf("status: %s", got)
	}
	e.reset()
	_ = watchRun(context.Background(), &WatchOptions{lifecycleOptions: e.lifecycle("k", "")})
	if got := e.out.String(); strings.Count(got, `"time":null`) != 2 || strings.Contains(got, `"-"`) {
		t.Errorf("watch of a recorded end: %s", got)
	}
}
