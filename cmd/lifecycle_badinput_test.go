package cmd_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"chatctl/cmd"
	"chatctl/pkg/sig"
)

// Bad input gets the right exit code and a one-line message, and leaves the
// session file byte for byte as it was.
func TestLifecycleBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	// A logged-in profile, so that there is a file to keep unchanged.
	mustRun(t, c, 0, "--profile", "keeper", "login", "keeper")

	wrongKey := c.mintFile("bob", strings.Repeat("0", 64), time.Now(), time.Hour)
	expired := c.mintFile("carol", "", time.Now().Add(-2*time.Hour), time.Hour)
	good := c.mintFile("dave", "", time.Now(), time.Hour)
	unreachable := "ws://" + freePort(t)

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
			stdin: readFile(t, expired), code: 5, stderr: []string{"expired"}},
		{name: "expired UserSig in the environment", args: []string{"--profile", "c", "login", "carol"},
			env: []string{"CHATCTL_USER_SIG=" + strings.TrimSpace(readFile(t, expired))}, code: 5, stderr: []string{"expired"}},
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
			before := c.sessionBytes()
			r := c.runWith(runOpts{stdin: tc.stdin, env: tc.env}, tc.args...)
			checkFailure(t, r, tc.code, tc.stderr...)
			if after := c.sessionBytes(); after != before {
				t.Errorf("the session file changed:\nbefore: %s\nafter: %s", before, after)
			}
		})
	}
	// Still logged in as before.
	mustRun(t, c, 0, "--profile", "keeper", "whoami", "--check")
}

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
