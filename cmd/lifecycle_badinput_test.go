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
