package cmd

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/viper"
)

// watch without a process: its flags and watchRun (lifecycle_opts_test.go).

func TestWatchFlags(t *testing.T) {
	o, code, _, stderr := parseArgs(t, newWatchCmd, "watch")
	if code != 0 || o == nil || o.Until != "" || o.Timeout != 0 || o.Profile != "default" || !o.IO.streaming {
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
		{[]string{"watch", "--timeout", "-1s"}, "--timeout must not be negative (see 'chatctl watch --help')"},
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
		if w.Profile != profile || w.User != user || time.Time(w.Time).IsZero() {
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
	// readyOnly checks that stdout is the lines of a watch that saw its
	// session ready and nothing after.
	readyOnly := func(what string) {
		t.Helper()
		lines := watchLines(t, e.out.String(), "default", "alice")
		if len(lines) == 0 || lines[len(lines)-1].Event != client.EventSDKReady {
			t.Errorf("%s: want the lines to end with SDK_READY: %+v", what, lines)
		}
	}
	readyOnly("--until SDK_READY")
	e.want(nil, 0, "", "", e.out.String(), "")
	if p := e.profile("default"); !p.CheckedAt.Equal(e.now) {
		t.Errorf("SDK_READY not recorded as a check: %v", p.CheckedAt)
	}

	// --timeout with --until's event not come: exit 1, kind timeout;
	// without --until, once attached: exit 0 (2 s: SDK_READY must come
	// first, on a loaded machine too).
	err := watch(WatchOptions{Until: client.EventKickedOut, Timeout: 300 * time.Millisecond})
	readyOnly("--until KICKED_OUT --timeout")
	e.want(err, ExitFailure, KindTimeout, "timed out after 300ms waiting for KICKED_OUT", e.out.String(), "")
	err = watch(WatchOptions{Timeout: 2 * time.Second})
	readyOnly("--timeout")
	e.want(err, 0, "", "", e.out.String(), "")

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

// watching starts a watch of e's "default" profile in the background,
// with streams of its own, and returns once it printed SDK_READY.
func watching(t *testing.T, e *runEnv) (o *WatchOptions, out, errw *lockedWriter, done chan error) {
	t.Helper()
	out, errw = new(lockedWriter), new(lockedWriter)
	app := &App{In: strings.NewReader(""), Out: out, Err: errw, V: viper.New(), configDir: e.dir, loaded: true}
	o = &WatchOptions{lifecycleOptions: e.lifecycle("default", "")}
	o.IO = app
	done = make(chan error, 1)
	go func() { done <- watchRun(context.Background(), o) }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), `"event":"SDK_READY"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no SDK_READY after 15 s: %q %q", out.String(), errw.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return o, out, errw, done
}

// A logout of the profile elsewhere ends its watch: SDK_NOT_READY, exit 3
// (the server closes the watch's socket of the instance it logged out).
func watchRunLoggedOut(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	e.login("default", "alice")
	_, out, errw, done := watching(t, e)
	if err := logoutRun(context.Background(), &LogoutOptions{lifecycleOptions: e.lifecycle("default", "")}); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("watch still running 15 s after the logout: %q", out.String())
	}
	if c := classify(err); c.Code != ExitNotLoggedIn || c.Kind != KindLoggedOut {
		t.Errorf("exit %d kind %q: %v", c.Code, c.Kind, err)
	}
	lines := watchLines(t, out.String(), "default", "alice")
	if n := len(lines); lines[n-1].Event != client.EventSDKNotReady {
		t.Errorf("lines %+v, stderr %q", lines, errw.String())
	}
}

// A watch sees the kick of another login: KICKED_OUT then SDK_NOT_READY,
// exit 4, the end recorded; a later watch replays it from the file.
func watchRunKicked(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	e.login("default", "alice")
	o, out, errw, done := watching(t, e)
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
	e.want(watchRun(context.Background(), o), ExitKicked, KindKicked, kicked,
		`{"schema_version":1,"event":"KICKED_OUT","type":"multipleAccount","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n"+
			`{"schema_version":1,"event":"SDK_NOT_READY","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n", "")
	// --until a recorded line: it stops there, exit 0, as a live one would.
	o.Until = client.EventKickedOut
	e.want(watchRun(context.Background(), o), 0, "", "",
		`{"schema_version":1,"event":"KICKED_OUT","type":"multipleAccount","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n", "")
	o.Until = client.EventSDKNotReady
	e.want(watchRun(context.Background(), o), 0, "", "",
		`{"schema_version":1,"event":"KICKED_OUT","type":"multipleAccount","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n"+
			`{"schema_version":1,"event":"SDK_NOT_READY","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n", "")
	o.Until = client.EventSDKReady
	e.want(watchRun(context.Background(), o), ExitKicked, KindKicked, kicked,
		`{"schema_version":1,"event":"KICKED_OUT","type":"multipleAccount","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n"+
			`{"schema_version":1,"event":"SDK_NOT_READY","time":"`+at+`","profile":"default","user":"alice","recorded":true}`+"\n", "")
}

// fullWriter is a stdout on a full disk.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// --until's event that could not be written was not printed: a full disk
// is exit 1, not the 0 of an event seen.
func watchRunFullDisk(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	e.login("default", "alice")
	e.app.Out = fullWriter{}
	o := &WatchOptions{lifecycleOptions: e.lifecycle("default", ""), Until: client.EventSDKReady, Timeout: 10 * time.Second}
	err := watchRun(context.Background(), o)
	if c := classify(err); c.Code != ExitFailure || err == nil || !strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		t.Errorf("watch --until SDK_READY > /dev/full: exit %d: %v", c.Code, err)
	}
	// The replay of a recorded end too: it was exit 4, as if its
	// KICKED_OUT had been written; a reader gone before --until's line is
	// exit 1, as for a live watch: nobody read the line waited for.
	e.setState("default", session.StateKicked, client.KickedMultipleAccount)
	o.Until = client.EventKickedOut
	err = watchRun(context.Background(), o)
	if c := classify(err); c.Code != ExitFailure || err == nil || !strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		t.Errorf("watch --until KICKED_OUT of a recorded kick > /dev/full: exit %d: %v", c.Code, err)
	}
	e.app.Out = goneWriter{}
	if err := watchRun(context.Background(), o); exitCode(err) != ExitFailure || !strings.Contains(err.Error(), "went away before the KICKED_OUT line") {
		t.Errorf("watch --until KICKED_OUT of a recorded kick | (reader gone): %v", err)
	}
}

// goneWriter is a stdout whose reader went away.
type goneWriter struct{}

func (goneWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// pipeAfter is a stdout whose reader goes away after n writes.
type pipeAfter struct{ n int }

func (w *pipeAfter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, syscall.EPIPE
	}
	w.n--
	return len(p), nil
}

// A watch that has written the end's first line exits with the end's code
// whatever becomes of its reader afterwards (`| grep -q KICKED_OUT` may
// leave before SDK_NOT_READY or not: it gave 4 or 0 by timing); one whose
// reader left before that line exits 0, or 1 when it waited for --until's
// event (its line not read).
func TestWatchReplayEndInAPipe(t *testing.T) {
	p := session.Profile{UserID: "alice", State: session.StateKicked, KickType: "multipleAccount", StateAt: time.Now()}
	for _, tc := range []struct {
		writes int
		until  string
		code   int
	}{{0, "", 0}, {1, "", ExitKicked}, {2, "", ExitKicked}, {0, client.EventKickedOut, ExitFailure}, {1, client.EventKickedOut, 0}, {1, client.EventSDKNotReady, ExitKicked}} {
		app := NewApp(nil, &pipeAfter{tc.writes}, io.Discard)
		o := &WatchOptions{lifecycleOptions: lifecycleOptions{IO: app, Profile: "default"}, Until: tc.until}
		if got := exitCode(o.replayEnd(context.Background(), p)); got != tc.code {
			t.Errorf("reader gone after %d lines (--until %q): exit %d, want %d", tc.writes, tc.until, got, tc.code)
		}
	}
}

// A recorded kick reads as watch saw it: a KickType this version does not
// know ("unknown") is a kick (exit 4, kicked) in whoami too, not revoked;
// a refusal recorded as revoked stays revoked.
func TestRecordedKickKinds(t *testing.T) {
	for _, c := range []struct {
		kick, kind string
	}{{"multipleAccount", KindKicked}, {"unknown", KindKicked}, {revokedType, KindRevoked}, {"deleted", KindRevoked}} {
		o := classify(&endedError{state: session.StateKicked, kick: c.kick})
		if o.Kind != c.kind || o.Code != ExitKicked {
			t.Errorf("recorded kick %q: kind %q, exit %d; want %q, 4", c.kick, o.Kind, o.Code, c.kind)
		}
		if w := classify(&client.KickedError{Type: c.kick}); o.Kind == KindKicked && w.Kind != o.Kind {
			t.Errorf("kick %q: watch says %q, whoami %q", c.kick, w.Kind, o.Kind)
		}
	}
}

// A server's info is cut to maxInfo bytes, the "…" included (OUTPUT.md:
// "info at most 200 bytes"), and stays valid UTF-8.
func TestWatchLineInfoBound(t *testing.T) {
	for _, info := range []string{
		strings.Repeat("x", 1000),
		strings.Repeat("é", 500), // a cut inside a rune
		strings.Repeat("x", maxInfo+1),
	} {
		got := newWatchLine(client.Event{Name: client.EventSDKNotReady, Info: info}, "p", "u").Info
		if len(got) > maxInfo || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
			t.Errorf("info of %d bytes became %d bytes %q", len(info), len(got), got)
		}
	}
	if got := newWatchLine(client.Event{Info: strings.Repeat("x", maxInfo)}, "p", "u").Info; len(got) != maxInfo {
		t.Errorf("an info of exactly %d bytes was cut: %q", maxInfo, got)
	}
}
