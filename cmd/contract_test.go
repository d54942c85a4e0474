package cmd_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatctl/cmd"
)

// The scripting contract (README "Exit codes", docs/OUTPUT.md), through the
// built binary: every documented exit code of every command, each run twice,
// as text (one line `chatctl: …` on stderr on failure) and with -o json
// (exactly one JSON document on stdout, with "error" whose code is the exit
// code and whose kind is the documented one for it).

// contractCase is one run of the table.
type contractCase struct {
	args  []string
	code  int
	kind  string   // error.kind with -o json ("" for code 0)
	env   []string // more environment
	stdin string
	// stdout the text run must print (a substring); "" checks nothing
	stdout string
	// textOnly: the case is about -o itself, so no -o json run
	textOnly bool
	// mints: the output is a UserSig, as asked (exempt from the secret scan)
	mints bool
	// message: what error.message (and the text run's stderr) must hold
	message string
	// sig is sent once the run waits (waiting), as Ctrl-C or timeout(1) would
	sig     syscall.Signal
	waiting waiter
	echo    bool // sig twice, as timeout(1) sends it (runOpts.echo)
}

// lifecycleCmds are the commands whose error document names the profile
// (docs/OUTPUT.md, "On failure") once past their flags (logout --all:
// "profiles").
var lifecycleCmds = []string{"login", "logout", "whoami", "server-time", "watch"}

func TestExitCodeTable(t *testing.T) {
	t.Parallel()
	kindCodes := readOutputDoc(t).kinds // error kind → its codes
	kindsSeen := map[string]bool{}
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	dead := "ws://" + freePort(t)
	deadREST := "http" + strings.TrimPrefix(dead, "ws")
	silent := silentServer(t)
	halfOpen := cmd.HalfOpenServer(t)
	silentREST := hungHTTP(t).URL
	// a web server, not a chat server, whose 404 is JSON of its own (kept
	// out of chatctl's document)
	notChat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"nope","schema_version":99,"UserIDs":["x"]}`, http.StatusNotFound)
	}))
	t.Cleanup(notChat.Close)
	hungs := map[string]*hung{}
	hungAt := func(name string) *hung {
		if hungs[name] == nil {
			hungs[name] = hungWS(t)
			if name == "rest" {
				hungs[name] = hungHTTP(t)
			}
		}
		return hungs[name]
	}
	hungURL := func(name string) string { return hungAt(name).URL }
	hungWaiting := func(name string) waiter { return hungAt(name).waiting }
	sigFIFO := fifo(t)

	// Profiles in every state: ready (a-ready), kicked by another login
	// (b-kicked, kicked by b-kicker), ended with an expired UserSig as
	// recorded (c-expired), logged out elsewhere as recorded (d-out).
	mustRun(t, c, 0, "--profile", "a-ready", "login", "alice")
	mustRun(t, c, 0, "--profile", "b-kicked", "login", "bob")
	mustRun(t, c, 0, "--profile", "b-kicker", "login", "bob")
	mustRun(t, c, 0, "--profile", "c-expired", "login", "carol")
	mustRun(t, c, 0, "--profile", "d-out", "login", "dave")
	c.setState(t, "c-expired", "expired", "userSigExpired")
	c.setState(t, "d-out", "logged_out", "")
	// A server that forgot the sessions it issued (a new data dir on the
	// address of r-revoked's server) refuses an A2Key naming no kick: the
	// profile's session was revoked; another profile's, asked of it with
	// --endpoint, is refused by a server that is not its own.
	old := startServe(t, c.cfg, serveOpts{dataDir: t.TempDir()})
	mustRun(t, c, 0, "--profile", "r-revoked", "login", "rita", "--endpoint", old.WS)
	old.stop(t)
	forgot := startServe(t, c.cfg, serveOpts{listen: old.Addr, dataDir: t.TempDir()}).WS
	corruptSess := filepath.Join(t.TempDir(), "corruptsess")
	os.MkdirAll(corruptSess, 0o700)
	os.WriteFile(filepath.Join(corruptSess, "sessions.json"), []byte("garbage"), 0o600)

	expired := c.mintFile("erin", "", time.Now().Add(-2*time.Hour), time.Hour)
	wrongKey := c.mintFile("erin", "not-the-key", time.Now(), time.Hour)
	sigOf := func(path string) string { return strings.TrimSpace(readFile(t, path)) }
	badCfg := filepath.Join(t.TempDir(), "badcfg")
	os.MkdirAll(badCfg, 0o700)
	os.WriteFile(filepath.Join(badCfg, "config.yaml"), []byte("output: xml\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	keyFIFO, idleFIFO := fifo(t), fifo(t) // idleFIFO: no writer ever
	jsonCfg := filepath.Join(t.TempDir(), "jsoncfg")
	os.MkdirAll(jsonCfg, 0o700)
	os.WriteFile(filepath.Join(jsonCfg, "config.yaml"), []byte("output: json\n"), 0o600)
	fifoCfg := filepath.Join(t.TempDir(), "fifocfg")
	os.MkdirAll(fifoCfg, 0o700)
	syscall.Mkfifo(filepath.Join(fifoCfg, "config.yaml"), 0o600)
	corruptDev := filepath.Join(t.TempDir(), "corruptdev")
	os.MkdirAll(corruptDev, 0o700)
	os.WriteFile(filepath.Join(corruptDev, "devapp.json"), []byte("{"), 0o600)

	cases := []contractCase{
		// 0
		{args: []string{"version"}},
		{args: []string{"help", "login"}, stdout: "chatctl login", textOnly: true},
		{args: []string{"--help"}, stdout: "Exit codes", textOnly: true},
		{args: []string{"sig", "gen", "--user", "alice"}, mints: true},
		{args: []string{"sig", "gen", "--user", "张三.bot@ci"}, mints: true},
		{args: []string{"sig", "decode", "-"}, stdin: sigOf(wrongKey)},
		{args: []string{"--profile", "a-ready", "login", "alice"}, stdout: "repeatLogin"},
		{args: []string{"--profile", "a-ready", "whoami"}, stdout: "alice"},
		{args: []string{"--profile", "a-ready", "whoami", "--check"}, stdout: "alice"},
		{args: []string{"--profile", "a-ready", "server-time"}},
		{args: []string{"--profile", "a-ready", "watch", "--until", "SDK_READY", "--timeout", "20s"}, stdout: "SDK_READY"},
		{args: []string{"admin", "online", "alice"}, stdout: "alice\t"},
		{args: []string{"completion", "bash"}},
		// 1
		{args: []string{"--profile", "a-ready", "login", "bob"}, code: 1, kind: "conflict"},
		{args: []string{"--profile", "a-ready", "watch", "--until", "KICKED_OUT", "--timeout", "1s"}, code: 1, kind: "timeout"},
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--endpoint", forgot}, code: 1, kind: "server_refused", message: "not the server of profile"},
		{args: []string{"whoami"}, env: []string{"CHATCTL_CONFIG_DIR=" + corruptSess}, code: 1, kind: "session_file", message: "is corrupt"},
		// 2
		{args: []string{"--endpoint", "foo", "whoami"}, code: 2, kind: "usage"},
		// an unknown flag before the command: said as such, not as the
		// next word taken for the command ("unknown command json")
		{args: []string{"--bogus"}, code: 2, kind: "usage", message: "unknown flag: --bogus"},
		{args: []string{"--bogus", "-o", "json"}, code: 2, kind: "usage", textOnly: true, stdout: "unknown flag: --bogus"},
		{args: []string{"-o", "xml", "whoami"}, code: 2, kind: "usage", textOnly: true},
		{args: []string{"whoami"}, env: []string{"CHATCTL_CONFIG_DIR=" + badCfg}, code: 2, kind: "usage", textOnly: true},
		// a bad flag fails before config.yaml is loaded: its output still counts
		{args: []string{"whoami", "--bogus"}, env: []string{"CHATCTL_CONFIG_DIR=" + jsonCfg}, code: 2, kind: "usage", textOnly: true, stdout: `"kind":"usage"`},
		{args: []string{"whoami", "--bogus", "--", "x"}, env: []string{"CHATCTL_CONFIG_DIR=" + jsonCfg}, code: 2, kind: "usage", textOnly: true, stdout: `"kind":"usage"`},
		// a config.yaml or key file that never ends, or is endless
		{args: []string{"whoami"}, env: []string{"CHATCTL_CONFIG_DIR=" + fifoCfg}, code: 2, kind: "usage", message: "is not a regular file"},
		{args: []string{"sig", "gen", "--user", "alice", "--key-file", "/dev/zero"}, code: 2, kind: "usage", message: "input over 65536 bytes"},
		// the dev app's file, read when no key is given, is bookkeeping
		{args: []string{"sig", "gen", "--user", "alice"}, env: []string{"CHATCTL_CONFIG_DIR=" + corruptDev}, code: 1, kind: "error", message: "devapp.json is corrupt"},
		{args: []string{"whoami", "extra"}, code: 2, kind: "usage"},
		{args: []string{"whoami", "--bogus"}, code: 2, kind: "usage"},
		{args: []string{"bogus"}, code: 2, kind: "usage"},
		{args: []string{}, code: 2, kind: "usage", message: "missing subcommand"},
		{args: []string{"help", "bogus"}, code: 2, kind: "usage"},
		{args: []string{"sig"}, code: 2, kind: "usage"},
		{args: []string{"sig", "bogus"}, code: 2, kind: "usage"},
		{args: []string{"admin"}, code: 2, kind: "usage"},
		{args: []string{"admin", "bogus"}, code: 2, kind: "usage"},
		{args: []string{"completion", "tcsh"}, code: 2, kind: "usage"},
		{args: []string{"serve", "--listen", "nonsense"}, code: 2, kind: "usage"},
		{args: []string{"login", ""}, code: 2, kind: "usage"},
		{args: []string{"login", "tab\tuser"}, code: 2, kind: "usage"},
		{args: []string{"login", "alice", "--platform", "Nokia"}, code: 2, kind: "usage"},
		{args: []string{"login", "alice", "--platform", ""}, code: 2, kind: "usage", message: "--platform \"\""}, // given empty is no platform
		{args: []string{"sig", "gen", "--user", ""}, code: 2, kind: "usage"},
		// an SDKAppID that is set but no number is not the dev app's
		{args: []string{"sig", "gen", "--user", "alice"}, env: []string{"CHATCTL_SDKAPPID=abc"}, code: 2, kind: "usage", message: "CHATCTL_SDKAPPID must be an SDKAppID"},
		{args: []string{"--profile", "h", "login", "alice"}, env: []string{"CHATCTL_SDKAPPID=-5"}, code: 2, kind: "usage", message: "CHATCTL_SDKAPPID must be an SDKAppID"},
		{args: []string{"--profile", "a-ready", "whoami"}, env: []string{"CHATCTL_SDKAPPID=abc"}, stdout: "alice"}, // whoami reads no SDKAppID
		// a bad value is named by where it came from
		{args: []string{"admin", "kick", "alice"}, env: []string{"CHATCTL_REST_URL=junk"}, code: 2, kind: "usage", message: `CHATCTL_REST_URL "junk"`},
		{args: []string{"whoami"}, env: []string{"CHATCTL_PROFILE=../x"}, code: 2, kind: "usage", message: "CHATCTL_PROFILE: invalid profile name"},
		{args: []string{"admin", "kick", "alice"}, env: []string{"CHATCTL_ADMIN=a\tb"}, code: 2, kind: "usage", message: "CHATCTL_ADMIN: invalid UserID"},
		{args: []string{"sig", "gen", "--user", "alice"}, env: []string{"CHATCTL_ADMIN=a\tb"}, mints: true}, // the admin is admin's only
		{args: []string{"sig", "gen", "--user", strings.Repeat("x", 131000)}, code: 2, kind: "usage"},
		{args: []string{"watch", "--until", "FOO"}, code: 2, kind: "usage"},
		{args: []string{"--profile", "../x", "whoami"}, code: 2, kind: "usage"},
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--timeout", "-1s"}, code: 2, kind: "usage"},
		// --timeout where the run asks no server would bound nothing
		{args: []string{"--profile", "a-ready", "whoami", "--timeout", "5s"}, code: 2, kind: "usage", message: "only with --check"},
		{args: []string{"--profile", "a-ready", "server-time", "--cached", "--timeout", "5s"}, code: 2, kind: "usage", message: "--cached asks none"},
		{args: []string{"status", "--timeout", "5s"}, code: 2, kind: "usage", message: "only with --check"},
		{args: []string{"--profile", "a-ready", "logout", "--local", "--timeout", "5s"}, code: 2, kind: "usage", message: "--local asks none"},
		// 3
		{args: []string{"--profile", "nobody", "whoami"}, code: 3, kind: "not_logged_in"},
		{args: []string{"--profile", "nobody", "logout"}, code: 3, kind: "not_logged_in"},
		{args: []string{"--profile", "nobody", "watch"}, code: 3, kind: "not_logged_in"},
		{args: []string{"--profile", "nobody", "server-time"}, code: 3, kind: "not_logged_in"},
		{args: []string{"--profile", "d-out", "whoami"}, code: 3, kind: "logged_out"},
		{args: []string{"status"}, env: []string{"CHATCTL_CONFIG_DIR=" + empty}, code: 3, kind: "not_logged_in"},
		{args: []string{"logout", "--all"}, env: []string{"CHATCTL_CONFIG_DIR=" + empty}, code: 3, kind: "not_logged_in"},
		// 4
		{args: []string{"--profile", "b-kicked", "whoami", "--check"}, code: 4, kind: "kicked"},
		{args: []string{"--profile", "b-kicked", "whoami"}, code: 4, kind: "kicked"},
		{args: []string{"--profile", "b-kicked", "watch"}, code: 4, kind: "kicked", stdout: `"recorded":true`},
		{args: []string{"--profile", "b-kicked", "server-time"}, code: 4, kind: "kicked"},
		{args: []string{"--profile", "r-revoked", "whoami", "--check", "--endpoint", forgot}, code: 4, kind: "revoked"},
		{args: []string{"--profile", "r-revoked", "whoami"}, code: 4, kind: "revoked"}, // as recorded
		{args: []string{"status"}, code: 4, kind: "kicked"},
		// 5
		{args: []string{"--profile", "c-expired", "whoami"}, code: 5, kind: "usersig_expired"},
		{args: []string{"--profile", "c-expired", "watch"}, code: 5, kind: "usersig_expired", stdout: "userSigExpired"},
		{args: []string{"--profile", "e", "login", "erin", "--user-sig-file", expired}, code: 5, kind: "usersig_expired"},
		{args: []string{"--profile", "e", "login", "erin", "--user-sig-file", wrongKey}, code: 5, kind: "usersig_rejected"},
		{args: []string{"sig", "verify", "--user", "erin", "-"}, stdin: sigOf(wrongKey), code: 5, kind: "usersig_rejected"},
		{args: []string{"sig", "verify", "--user", "bob", "-"}, stdin: sigOf(expired), code: 5, kind: "usersig_rejected"},
		{args: []string{"sig", "decode", "-"}, stdin: "not a UserSig", code: 5, kind: "usersig_rejected"},
		// 6
		{args: []string{"--profile", "f", "login", "alice", "--endpoint", dead}, code: 6, kind: "unreachable"},
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--endpoint", dead}, code: 6, kind: "unreachable"},
		{args: []string{"--profile", "a-ready", "logout", "--endpoint", dead}, code: 6, kind: "unreachable"},
		{args: []string{"admin", "online", "alice", "--rest-url", deadREST}, code: 6, kind: "unreachable"},
		{args: []string{"admin", "online", "alice", "--rest-url", notChat.URL}, code: 6, kind: "unreachable", message: "is not a chat server"},
		{args: []string{"--endpoint", dead, "status", "--check"}, code: 6, kind: "unreachable", stdout: dead}, // a-ready comes first, by name; the endpoint shown is the one asked
		// a server that never answers, with --timeout
		{args: []string{"--profile", "f", "login", "alice", "--endpoint", silent, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--endpoint", silent, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		// a --timeout that runs out before the server is asked (the lock wait)
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--timeout", "1ns"}, code: 6, kind: "unreachable"},
		{args: []string{"--profile", "a-ready", "server-time", "--endpoint", silent, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"--profile", "a-ready", "logout", "--endpoint", silent, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "the session is kept"},
		{args: []string{"--endpoint", silent, "status", "--check", "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"--profile", "a-ready", "watch", "--endpoint", silent, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"--profile", "a-ready", "watch", "--until", "SDK_READY", "--endpoint", silent, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"--profile", "a-ready", "watch", "--endpoint", halfOpen, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"admin", "online", "alice", "--rest-url", silentREST, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"admin", "online", "alice", "--key-file", idleFIFO, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "ran out before the server was asked"},
		{args: []string{"admin", "kick", "alice", "--timeout", "-1s"}, code: 2, kind: "usage", message: "--timeout must not be negative"},
		// one that takes the connection and never upgrades it
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--endpoint", halfOpen, "--timeout", "1s"}, code: 6, kind: "unreachable", message: "did not answer in time"},
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--endpoint", dead}, code: 6, kind: "unreachable", message: "no server there"},
		// 129, 130, 143: SIGHUP, SIGINT, SIGTERM while the command waits for a server
		// or its input; the session file is left as it was (checked below)
		{args: []string{"--profile", "g", "login", "alice", "--endpoint", hungURL("login")}, sig: syscall.SIGTERM, waiting: hungWaiting("login"), code: 143, kind: "interrupted", message: "interrupted by SIGTERM"},
		{args: []string{"--profile", "g", "login", "alice", "--endpoint", hungURL("login")}, sig: syscall.SIGINT, waiting: hungWaiting("login"), code: 130, kind: "interrupted", message: "interrupted by SIGINT"},
		{args: []string{"--profile", "g", "login", "alice", "--endpoint", hungURL("login")}, sig: syscall.SIGTERM, echo: true, waiting: hungWaiting("login"), code: 143, kind: "interrupted", message: "interrupted by SIGTERM"},
		{args: []string{"--profile", "g", "login", "alice", "--endpoint", hungURL("login")}, sig: syscall.SIGHUP, waiting: hungWaiting("login"), code: 129, kind: "interrupted", message: "interrupted by SIGHUP"},
		{args: []string{"--profile", "g", "login", "alice", "--user-sig-file", sigFIFO}, sig: syscall.SIGTERM, waiting: fifoWaiting(sigFIFO), code: 143, kind: "interrupted"},
		{args: []string{"sig", "gen", "--user", "alice", "--key-file", keyFIFO}, sig: syscall.SIGINT, waiting: fifoWaiting(keyFIFO), code: 130, kind: "interrupted"},
		{args: []string{"--profile", "a-ready", "whoami", "--check", "--endpoint", hungURL("whoami")}, sig: syscall.SIGTERM, waiting: hungWaiting("whoami"), code: 143, kind: "interrupted"},
		{args: []string{"--profile", "a-ready", "server-time", "--endpoint", hungURL("server-time")}, sig: syscall.SIGINT, waiting: hungWaiting("server-time"), code: 130, kind: "interrupted"},
		{args: []string{"--profile", "a-ready", "logout", "--endpoint", hungURL("logout")}, sig: syscall.SIGTERM, waiting: hungWaiting("logout"), code: 143, kind: "interrupted"},
		{args: []string{"status", "--check", "--endpoint", hungURL("status")}, sig: syscall.SIGTERM, waiting: hungWaiting("status"), code: 143, kind: "interrupted"},
		{args: []string{"admin", "online", "alice", "--rest-url", hungURL("rest")}, sig: syscall.SIGTERM, waiting: hungWaiting("rest"), code: 143, kind: "interrupted"},
		// a signal is how watch ends: exit 0; but --until's event had
		// not come
		{args: []string{"--profile", "a-ready", "watch", "--endpoint", hungURL("watch")}, sig: syscall.SIGTERM, waiting: hungWaiting("watch"), textOnly: true},
		{args: []string{"--profile", "a-ready", "watch", "--endpoint", hungURL("watch")}, sig: syscall.SIGHUP, waiting: hungWaiting("watch"), textOnly: true},
		{args: []string{"--profile", "a-ready", "watch", "--until", "SDK_READY", "--endpoint", hungURL("watch")}, sig: syscall.SIGINT, waiting: hungWaiting("watch"), code: 130, kind: "interrupted"},
		// --timeout does not turn a signal into its own end
		{args: []string{"--profile", "a-ready", "watch", "--timeout", "30s", "--endpoint", hungURL("watch")}, sig: syscall.SIGTERM, waiting: hungWaiting("watch"), textOnly: true},
		{args: []string{"--profile", "a-ready", "watch", "--until", "SDK_READY", "--timeout", "30s", "--endpoint", hungURL("watch")}, sig: syscall.SIGTERM, waiting: hungWaiting("watch"), code: 143, kind: "interrupted"},
	}
	for _, tc := range cases {
		for _, mode := range []string{"text", "json"} {
			if mode == "json" && tc.textOnly {
				continue
			}
			args := tc.args
			if mode == "json" {
				args = append(append([]string(nil), args...), "-o", "json")
			}
			before := c.sessionBytes()
			r := c.runWith(runOpts{env: tc.env, stdin: tc.stdin, showsToken: tc.mints, sig: tc.sig, waiting: tc.waiting, echo: tc.echo}, args...)
			if tc.sig != 0 && c.sessionBytes() != before {
				t.Errorf("the session file changed:\n%v", r)
			}
			if r.code != tc.code {
				t.Errorf("want exit %d:\n%v", tc.code, r)
				continue
			}
			if mode == "text" {
				if tc.code != 0 && (strings.Count(r.stderr, "\n") < 1 || !strings.HasPrefix(lastLine(r.stderr), "chatctl: ")) {
					t.Errorf("want a last line `chatctl: …` on stderr:\n%v", r)
				}
				if !strings.Contains(r.stdout, tc.stdout) {
					t.Errorf("stdout should have %q:\n%v", tc.stdout, r)
				}
				if !strings.Contains(r.stderr, tc.message) {
					t.Errorf("stderr should have %q:\n%v", tc.message, r)
				}
				continue
			}
			if len(tc.args) > 0 && tc.args[0] == "completion" {
				continue // a script, not JSON, on success
			}
			checkOneDoc(t, r)
			if tc.code == 0 {
				continue
			}
			var doc struct {
				Profile string `json:"profile"`
				Error   struct {
					Code    int    `json:"code"`
					Kind    string `json:"kind"`
					Message string `json:"message"`
				} `json:"error"`
			}
			json.Unmarshal([]byte(lastLine(r.stdout)), &doc)
			kindsSeen[doc.Error.Kind] = true
			if doc.Error.Kind != tc.kind || !slices.Contains(kindCodes[doc.Error.Kind], tc.code) {
				t.Errorf("error.kind %q, want %q (exit %d):\n%v", doc.Error.Kind, tc.kind, tc.code, r)
			}
			if !strings.Contains(doc.Error.Message, tc.message) {
				t.Errorf("error.message should have %q:\n%v", tc.message, r)
			}
			if tc.code != 2 && !slices.Contains(tc.args, "--all") && slices.ContainsFunc(tc.args, func(a string) bool { return slices.Contains(lifecycleCmds, a) }) && doc.Profile == "" {
				t.Errorf("the error document names no profile:\n%v", r)
			}
		}
	}
	for k := range kindCodes {
		if !kindsSeen[k] {
			t.Errorf("no case gives the documented error kind %q", k)
		}
	}
}

func lastLine(s string) string {
	lines := splitLines(s)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// setState rewrites a profile's recorded state in the session file, as a
// command that saw its end would have.
func (c *cli) setState(t *testing.T, profile, state, kick string) {
	t.Helper()
	var f map[string]any
	if err := json.Unmarshal([]byte(c.sessionBytes()), &f); err != nil {
		t.Fatal(err)
	}
	p := f["profiles"].(map[string]any)[profile].(map[string]any)
	p["state"], p["kick_type"] = state, kick
	b, _ := json.Marshal(f)
	if err := os.WriteFile(c.sessionPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// `watch | head -1`: once head has its line and exits, watch ends by
// itself (exit 0) without waiting for another event; likewise when the
// reader of its stderr goes away (exit 1). Without the hang-up check it would run
// until the next event (none comes here) and die of SIGPIPE; the test's
// 30 s bound would fail it. (A stdout closed with >&- is /dev/null to a Go
// program: the runtime opens it in place of a closed 0, 1 or 2.)
func TestWatchReaderGone(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	for _, tc := range []struct{ name, script, codes string }{
		{"stdout", `set -o pipefail; "$BIN" watch | head -1; echo "codes ${PIPESTATUS[*]}"`, "codes 0 0"},
		{"stdout --until SDK_READY", `"$BIN" watch --until SDK_READY | head -1; echo "codes ${PIPESTATUS[*]}"`, "codes 0 0"},
		// --until's event not come when the reader went away: nobody
		// will read its line; 1, not a "kicked" to `&& echo kicked`.
		{"stdout --until KICKED_OUT", `"$BIN" watch --until KICKED_OUT | head -1; echo "codes ${PIPESTATUS[*]}"`, "codes 1 0"},
		// stderr's reader gone: nowhere to report a problem, exit 1.
		{"stderr", `"$BIN" watch 2>&1 >/dev/null | head -c 0; echo "codes ${PIPESTATUS[*]}"`, "codes 1 0"},
	} {
		cmd := exec.Command("bash", "-c", tc.script)
		cmd.Env = append(c.env(), "BIN="+c.bin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to kill watch too on failure
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Fatalf("%s: watch still running 30 s after its reader went away", tc.name)
		}
		c.record(out.String(), false)
		if err != nil || !strings.Contains(out.String(), tc.codes) {
			t.Errorf("%s: %v\n%s", tc.name, err, out.String())
		}
		if strings.HasPrefix(tc.name, "stdout") && !strings.Contains(out.String(), `"SDK_READY"`) {
			t.Errorf("%s: head printed no SDK_READY:\n%s", tc.name, out.String())
		}
	}
}

// `watch | grep -q KICKED_OUT` under pipefail: watch has written the
// kick's line, so it exits with the kick's code, 4, whether grep left
// before the SDK_NOT_READY line or after (the README's promise).
func TestWatchGrepKick(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	loggedIn := c.sessionBytes()
	cmd := exec.Command("bash", "-c", `set -o pipefail; "$BIN" watch | grep -q KICKED_OUT; echo "codes ${PIPESTATUS[*]}"`)
	cmd.Env = append(c.env(), "BIN="+c.bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	// Attached: its SDK_READY recorded the check.
	for deadline := time.Now().Add(30 * time.Second); c.sessionBytes() == loggedIn; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watch never attached")
		}
	}
	mustRun(t, c, 0, "--profile", "other", "login", "alice")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		c.record(out.String(), false)
		if err != nil || !strings.Contains(out.String(), "codes 4 0") {
			t.Fatalf("%v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watch | grep -q KICKED_OUT still running 30 s after the kick:\n%s", out.String())
	}
}

// 30 logins of one user on ONE profile at once (a script run twice, a CI
// retry): the login lock makes them one login and 29 repeatLogins, so the
// profile ends up holding a live session and the server one instance.
// Before the lock about one round in five saved a session another login
// had already kicked.
func TestConcurrentLoginsOneProfile(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	const n = 30
	var wg sync.WaitGroup
	rs := make([]result, n)
	for i := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); rs[i] = c.run("login", "alice", "-o", "json") }()
	}
	wg.Wait()
	fresh := 0
	for _, r := range rs {
		if r.code != 0 {
			t.Errorf("%v", r)
			continue
		}
		if strings.Contains(r.stdout, `"repeatLogin":false`) {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d logins were fresh, want 1 (the others repeatLogin)", fresh)
	}
	// The saved session is the one login's, and it is live.
	mustRun(t, c, 0, "whoami", "--check")
}

// --endpoint cloud from a machine with no route to Tencent: exit 6, and the
// JSON error lists the URLs tried in the SDK's order (interop/cloud.test.cjs
// checks that order against the official SDK itself). Run in a network
// namespace without network (unshare -rn), so no DNS query leaves.
func TestCloudUnreachable(t *testing.T) {
	t.Parallel()
	if exec.Command("unshare", "-rn", "true").Run() != nil {
		t.Skip("unshare -rn is not allowed here")
	}
	c := newCLI(t, "")
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("a-key\n"), 0o600)
	cmd := exec.Command("unshare", "-rn", c.bin, "login", "alice", "--endpoint", "cloud", "--sdkappid", "1400000000", "--key-file", key, "-o", "json")
	cmd.Env = c.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: cmd.Args, code: exitCodeOf(err), stdout: out.String(), stderr: errb.String()}
	c.record(r.stdout, false)
	c.record(r.stderr, false)
	var doc struct {
		Error struct {
			Code  int      `json:"code"`
			Kind  string   `json:"kind"`
			Tried []string `json:"tried"`
		} `json:"error"`
	}
	json.Unmarshal(out.Bytes(), &doc)
	if r.code != 6 || doc.Error.Kind != "unreachable" || len(doc.Error.Tried) != 5 ||
		!strings.HasPrefix(doc.Error.Tried[0], "wss://1400000000w4c.my-imcloud.com/binfo?sdkappid=1400000000&") ||
		!strings.Contains(r.stderr, "wss.im.qcloud.com") {
		t.Errorf("want exit 6 with the 5 China hosts tried:\n%v", r)
	}
}

// Output that cannot be written (a full disk here; a closed pipe fails the
// same write) is exit 1 with the write's error on stderr, for the
// commands that print text line by line as for the others (OUTPUT.md:
// "its output going to a closed pipe"). status and admin used to ignore
// those writes and exit 0, and help, which cobra writes, did too.
func TestOutputUnwritable(t *testing.T) {
	t.Parallel()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	for _, args := range [][]string{
		{"status"}, {"status", "--check"}, {"admin", "online", "alice"}, {"admin", "check", "alice"},
		{"whoami"}, {"version"}, {"status", "-o", "json"},
		{"help"}, {"--help"}, {"login", "--help"}, // cobra's own writes
	} {
		cmd := exec.Command(c.bin, args...)
		cmd.Env = c.env()
		var errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = full, &errb
		err := cmd.Run()
		c.record(errb.String(), false)
		if code := exitCodeOf(err); code != 1 || !strings.Contains(lastLine(errb.String()), "no space left on device") {
			t.Errorf("chatctl %s > /dev/full: exit %d, stderr %q; want 1 and the write's error", strings.Join(args, " "), code, errb.String())
		}
	}
}
