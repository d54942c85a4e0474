package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/rest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/session"
	"chatctl/pkg/sig"
)

// Whole runs of chatctl without a process (Run, the path Execute takes), for
// what needs argv, the environment and the command tree together: bad
// input, corrupt or misplaced config, endpoints, completion; and the checks
// that find a session's end with the run functions.

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
	isolateEnv(t, c.dir)
	t.Setenv("CHATCTL_SECRET_KEY", c.key)
	t.Setenv("CHATCTL_SDKAPPID", u64(c.sdkappid))
	t.Setenv("CHATCTL_ENDPOINT", c.endpoint)
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

// A corrupt session file: every lifecycle command fails with exit 1, a
// message naming the file (with -o json, kind session_file, and the
// profile of a one-profile command), and the file stays as it was. A
// profile without its user, or with terminal escapes in it, is corrupt:
// whoami printed an empty line with exit 0, or the escapes.
func TestCorruptSessionFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, session.FileName)
	good := filepath.Join(t.TempDir(), "alice.sig")
	s := sig.Gen(sig.Params{SDKAppID: 1400000001, Key: strings.Repeat("k", 64), UserID: "alice", Expire: 3600}, time.Now())
	if err := os.WriteFile(good, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"garbage\n", `{"version":1,"profiles":{"a":`, `{"version":99,"profiles":{}}`, "\n",
		`{"version":1,"profiles":{"default":{"sdkappid":1,"a2_key":"k","state":"ready"}}}`,
		`{"version":1,"profiles":{"default":{"user_id":"a\u001b]0;pwned\u0007","sdkappid":1,"a2_key":"k","state":"ready"}}}`,
	} {
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
			if strings.ContainsAny(stderr, "\x1b\a") {
				t.Errorf("%v: a terminal escape on stderr: %q", args, stderr)
			}
			// With -o json: one document, kind session_file.
			code, stdout, _ = runCLI(t, dir, append(append([]string(nil), args...), "-o", "json")...)
			var doc struct {
				Profile *string
				Error   struct{ Kind string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != ExitFailure || doc.Error.Kind != KindSessionFile {
				t.Errorf("%v -o json: exit %d, %q", args, code, stdout)
			}
			if one := args[0] != "status" && !slices.Contains(args, "--all"); one && (doc.Profile == nil || *doc.Profile != "default") {
				t.Errorf("%v -o json: no profile in %q", args, stdout)
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Errorf("%v: the corrupt file changed to %q", args, b)
			}
		}
	}
}

// A session file that is a symlink loop is there but unusable: as a
// corrupt one, exit 1 kind session_file naming it, and the link stays.
func TestSessionFileSymlinkLoop(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, session.FileName)
	if err := os.Symlink(session.FileName, path); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"whoami"}, {"login", "alice"}, {"logout", "--all"}, {"status"}, {"watch"}} {
		code, stdout, _ := runCLI(t, dir, append(args, "-o", "json")...)
		var doc struct {
			Error struct{ Kind, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != ExitFailure || doc.Error.Kind != KindSessionFile || !strings.Contains(doc.Error.Message, path) {
			t.Errorf("%v -o json: exit %d, %q", args, code, stdout)
		}
		if target, err := os.Readlink(path); err != nil || target != session.FileName {
			t.Errorf("%v: the link changed: %q %v", args, target, err)
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
		if code != ExitFailure {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
		checkOneLine(t, args, code, stdout, stderr, code, blocker, "is not a directory: remove it")
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
		isolateEnv(t, dir)
		var out, errb bytes.Buffer
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
