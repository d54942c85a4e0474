package cmd_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatctl/cmd"
	"chatctl/pkg/config"
	"chatctl/pkg/sig"
)

// With no endpoint configured and nothing at the default address, the
// message says how to start a server.
func TestUnreachableDefaultEndpoint(t *testing.T) {
	t.Parallel()
	if conn, err := net.DialTimeout("tcp", cmd.DefaultListen, time.Second); err == nil {
		conn.Close()
		t.Skipf("something listens on %s (a chatctl serve?): cannot test the message for an empty default address", cmd.DefaultListen)
	}
	c := newCLI(t, "")
	// With no dev app, login needs a UserSig: any well-formed one.
	s := sig.Gen(sig.Params{SDKAppID: 1400000001, Key: strings.Repeat("k", 64), UserID: "alice", Expire: 3600}, time.Now())
	c.secret(s, "a UserSig minted for alice")
	r := c.runWith(runOpts{stdin: s}, "login", "alice", "--user-sig", "-")
	checkFailure(t, r, 6, "ws://"+cmd.DefaultListen, "start one with `chatctl serve`")
	if c.sessionBytes() != "" {
		t.Errorf("a failed login wrote the session file: %s", c.sessionBytes())
	}
}

// checkFailure checks the exit code, an empty stdout and a one-line
// `chatctl: ` message holding every want.
func checkFailure(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("want exit %d:\n%v", code, r)
	}
	if r.stdout != "" {
		t.Errorf("want nothing on stdout:\n%v", r)
	}
	lines := splitLines(r.stderr)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "chatctl: ") {
		t.Errorf("want one line `chatctl: ...` on stderr:\n%v", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("the message should have %q:\n%v", w, r)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A login or logout whose answer from the server cannot be saved (a full
// disk: RLIMIT_FSIZE 0) fails with exit 1 and says what happened on the
// server: the file is left as it was, and the server's side matches it.
func TestSaveFailsAfterTheServerAnswered(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	full := runOpts{noWrites: true}

	mustRun(t, c, 0, "login", "alice")
	before := c.sessionBytes()
	r := c.runWith(full, "logout", "-o", "json")
	if r.code != 1 || !strings.Contains(r.stderr, "logged alice out on the server, but could not remove profile") ||
		strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stdout, `"server":true,"removed":false`) {
		t.Fatalf("logout with writes failing: want exit 1 saying the server logged alice out, %q in JSON:\n%v", `"server":true`, r)
	}
	if after := c.sessionBytes(); after != before {
		t.Fatalf("the failed logout changed the session file:\n%s\n->\n%s", before, after)
	}
	// As it said: the server has logged the instance out.
	mustRun(t, c, 3, "whoami", "--check")

	r = c.runWith(full, "--profile", "p2", "login", "bob")
	if r.code != 1 || !strings.Contains(r.stderr, "logged in, but could not save the session (logged out again)") {
		t.Fatalf("login with writes failing: want exit 1 saying it logged out again:\n%v", r)
	}
	if r := mustRun(t, c, 0, "admin", "online", "bob"); r.stdout != "bob\tOffline\n" {
		t.Fatalf("bob after the unsaved login: %v", r)
	}
}

// --timeout running out while another chatctl holds the session file's
// lock, or the profile's login lock, is exit 6 unreachable, as the docs
// say of a --timeout that ran out before the server was asked: it was exit
// 1 session_file ("timed out waiting for the session file lock"), the
// login lock's blaming sessions.json. The lock's own bound, with no
// --timeout, stays a session_file error (TestGaveUp).
func TestTimeoutWaitingForALock(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "ivan")
	hold := func(path string) (release func()) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o700)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		return func() { f.Close() }
	}
	check := func(r result, lockFile string) {
		t.Helper()
		if r.code != 6 || !strings.Contains(r.stdout, `"kind":"unreachable"`) || !strings.Contains(r.stderr, "--timeout 300ms ran out while ") ||
			!strings.Contains(r.stderr, lockFile) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("want exit 6 unreachable naming %s:\n%v", lockFile, r)
		}
	}
	release := hold(c.sessionPath() + ".lock")
	for _, args := range [][]string{
		{"whoami", "--check"}, {"server-time"}, {"logout"}, {"status", "--check"}, {"--profile", "other", "login", "olga"},
	} {
		check(c.run(append(args, "--timeout", "300ms", "-o", "json")...), "sessions.json.lock")
	}
	release()

	defer hold(filepath.Join(c.cfg, "login-locks", "ll.lock"))()
	r := c.run("--profile", "ll", "login", "lou", "--timeout", "300ms", "-o", "json")
	check(r, "ll.lock")
	if !strings.Contains(r.stderr, "the profile's login is held by another chatctl login") {
		t.Errorf("the login lock's wait blames %q", r.stderr)
	}
}

// logout --all -o json names, in the failed profile's own entry, why it
// failed: the entry used to say only logged_out false, and the top-level
// error was the first failure's, so a script could not tell which
// profile failed or why.
func TestLogoutAllSaysWhichFailed(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "--profile", "a-here", "login", "alice")
	gone := startServe(t, c.cfg, serveOpts{dataDir: filepath.Join(t.TempDir(), "data2")})
	mustRun(t, c, 0, "--profile", "b-gone", "login", "bob", "--endpoint", gone.WS)
	gone.stop(t)

	c.endpoint = "" // each profile's own server
	r := c.run("logout", "--all", "-o", "json")
	var doc struct {
		Profiles []struct {
			Profile   string
			LoggedOut bool `json:"logged_out"`
			Error     *struct {
				Code int
				Kind string
			}
		}
		Error struct{ Code int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 6 || len(doc.Profiles) != 2 {
		t.Fatalf("logout --all with one server gone: %v\n%v", err, r)
	}
	a, b := doc.Profiles[0], doc.Profiles[1]
	if a.Profile != "a-here" || !a.LoggedOut || a.Error != nil {
		t.Errorf("the profile logged out: %+v", a)
	}
	if b.Profile != "b-gone" || b.LoggedOut || b.Error == nil || b.Error.Code != 6 || b.Error.Kind != "unreachable" || doc.Error.Code != 6 {
		t.Errorf("the profile whose server is gone: %+v (top-level error %+v)\n%s", b, doc.Error, r.stdout)
	}
}

// A secret key or UserSig from the environment is read as from a file:
// without the spaces and line ends around it (a CRLF file through $(cat),
// a YAML block). With them the key minted other UserSigs (login exit 5,
// 70009) and the UserSig was refused (70003).
func TestSecretsFromEnvAreTrimmed(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	dev, err := config.LoadDevApp(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	gen := []string{"sig", "gen", "--user", "alice", "--now", "2026-01-02T03:04:05Z", "--expire", "1h", "-o", "json"}
	app := fmt.Sprint("CHATCTL_SDKAPPID=", dev.SDKAppID)
	// (showsToken: sig gen prints the UserSig it was asked for.)
	plain := c.runWith(runOpts{env: []string{app, "CHATCTL_SECRET_KEY=" + dev.SecretKey}, showsToken: true}, gen...)
	padded := c.runWith(runOpts{env: []string{app, "CHATCTL_SECRET_KEY= " + dev.SecretKey + "\r\n"}, showsToken: true}, gen...)
	if plain.code != 0 || padded.stdout != plain.stdout {
		t.Fatalf("the same key with spaces around it minted another UserSig:\n%v\n%v", plain, padded)
	}
	var s struct{ Sig string }
	json.Unmarshal([]byte(c.runWith(runOpts{showsToken: true}, "sig", "gen", "--user", "alice", "-o", "json").stdout), &s)
	if r := c.runWith(runOpts{env: []string{"CHATCTL_USER_SIG= " + s.Sig + "\r\n"}}, "login", "alice"); r.code != 0 {
		t.Fatalf("login with CHATCTL_USER_SIG padded: %v", r)
	}
}

// whoami --check and status --check report the check time they record:
// the document and the session file said times a few ms apart.
func TestCheckedAtIsTheRecordedTime(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	for _, args := range [][]string{{"whoami", "--check", "-o", "json"}, {"status", "--check", "-o", "json"}} {
		r := mustRun(t, c, 0, args...)
		var file struct {
			Profiles map[string]struct {
				CheckedAt string `json:"checked_at"`
			}
		}
		if err := json.Unmarshal([]byte(c.sessionBytes()), &file); err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339Nano, file.Profiles["default"].CheckedAt)
		if err != nil {
			t.Fatalf("the file's checked_at: %v", err)
		}
		if want := `"checked_at":"` + at.UTC().Format("2006-01-02T15:04:05.000Z") + `"`; !strings.Contains(r.stdout, want) {
			t.Errorf("%v: %s; the file says %s", args, r.stdout, want)
		}
	}
}

// Only the profile's own server can say its session ended. Another
// server (same app, its own store) refuses the A2Key as revoked: logout
// and logout --all through it removed the profile, the only copy of a
// session still live on its own server, with exit 3; whoami --check
// through it records no check either way and is exit 1, server_refused.
func TestAnotherServerDoesNotEndTheSession(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	mustRun(t, c, 0, "--profile", "p2", "login", "bob")
	other := startServe(t, c.cfg, serveOpts{dataDir: filepath.Join(t.TempDir(), "data2")})
	before := c.sessionBytes()

	r := c.run("logout", "--endpoint", other.WS, "-o", "json")
	var doc struct {
		Removed bool
		Error   struct {
			Code    int
			Kind    string
			Message string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 || doc.Error.Kind != "server_refused" || doc.Removed ||
		!strings.Contains(doc.Error.Message, "the session is kept") {
		t.Fatalf("logout through another server: %v\n%v", err, r)
	}
	if r := c.run("logout", "--all", "--endpoint", other.WS); r.code != 1 {
		t.Fatalf("logout --all through another server: %v", r)
	}
	if r := c.run("whoami", "--check", "--endpoint", other.WS); r.code != 1 {
		t.Fatalf("whoami --check through another server: %v", r)
	}
	if after := c.sessionBytes(); after != before {
		t.Fatalf("another server's answers changed the session file:\n%s\nwas\n%s", after, before)
	}
	// Both sessions are live on their own server, and log out there.
	mustRun(t, c, 0, "whoami", "--check")
	mustRun(t, c, 0, "logout", "--all")
}

// A user ID with a bidi override is escaped in login's text and in the
// message lines on stderr (logout's), as whoami and admin escape it: the
// terminal must not show a user other than the one the profile holds.
func TestBidiUserEscapedInText(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	user := "\u202eevil\u202c"
	for _, r := range []result{mustRun(t, c, 0, "login", user), mustRun(t, c, 0, "logout")} {
		out := r.stdout + r.stderr
		if strings.ContainsRune(out, '\u202e') || !strings.Contains(out, `\u202eevil\u202c`) {
			t.Errorf("%v", r)
		}
	}
}

// whoami --check -o json names the server it asked, as status --check
// does: the same server under another name here (localhost for
// 127.0.0.1), whose OK the profile's own endpoint did not give.
func TestWhoamiCheckNamesTheServerAsked(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	s := c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	other := strings.Replace(s.WS, "127.0.0.1", "localhost", 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"whoami", "-o", "json"}, s.WS},
		{[]string{"whoami", "--check", "-o", "json"}, s.WS},
		{[]string{"whoami", "--check", "--endpoint", other, "-o", "json"}, other},
	} {
		var doc struct{ Endpoint string }
		if r := mustRun(t, c, 0, tc.args...); json.Unmarshal([]byte(r.stdout), &doc) != nil || doc.Endpoint != tc.want {
			t.Errorf("%q: endpoint %q, want %q\n%v", tc.args, doc.Endpoint, tc.want, r)
		}
	}
}
