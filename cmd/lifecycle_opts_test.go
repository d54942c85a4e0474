package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/client"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/session"

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
	isolateEnv(t, t.TempDir())
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
// UserSigs; leaktest.Check checks that nothing of the runs or the
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

// checkLeaks is leaktest.Check for t and its subtests. One check for
// several subtests that each start a server waits once, not once each,
// for the server's idle frame workers to go (a second after their last
// frame).
func checkLeaks(t *testing.T) {
	t.Helper()
	startSignalLoop()
	leaktest.Check(t)
}

var signalLoop sync.Once

// startSignalLoop starts os/signal's goroutine, which the first
// signal.Notify of a process starts and which then runs for good (a watch
// run through RunE asks for SIGINT): started before Check counts, it is
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
	return lifecycleOptions{IO: e.app, Sessions: session.Open(e.dir), Profile: profile,
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
	return e.edit(profile, func(p *session.Profile) { p.State, p.KickType, p.StateAt = state, kick, e.now })
}

// edit changes profile in the session file with fn, as another process
// would, and returns it as saved.
func (e *runEnv) edit(profile string, fn func(p *session.Profile)) session.Profile {
	e.t.Helper()
	err := session.Open(e.dir).Update(context.Background(), func(f *session.File) error {
		p := f.Profiles[profile]
		fn(&p)
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

// HalfOpenServer takes TCP connections on loopback and never says a word
// (no HTTP, no upgrade): a hung host, for --timeout. It returns a ws:// URL.
func HalfOpenServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	return "ws://" + l.Addr().String()
}

// closingServer takes TCP connections on loopback and closes each at once:
// something is there, but no server of ours. It returns a ws:// URL.
func closingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return "ws://" + l.Addr().String()
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
		{"login/replaces", loginReplaces},
		{"login/far-expiry", loginFarExpiry},
		{"logout", logoutRunTest},
		{"logout/all-stopped", logoutAllStopped},
		{"server-time", serverTimeRunOK},
		{"server-time/kicked", serverTimeRunKicked},
		{"status", statusRunTest},
		{"watch", watchRunOK},
		{"watch/kicked", watchRunKicked},
		{"watch/full-disk", watchRunFullDisk},
		{"watch/logged-out", watchRunLoggedOut},
		{"admin", adminRunTest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t)
		})
	}
}
