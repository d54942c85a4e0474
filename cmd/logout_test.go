package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
)

// logout without a process: its flags and logoutRun (lifecycle_opts_test.go).

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
}

// A signal after the server has answered the logout still removes the
// profile: the file must not keep "ready" for an instance the server has
// logged out (docs/OUTPUT.md, "Signals").
func TestLogoutSignalAfterAnswer(t *testing.T) {
	e := newRunEnv(t)
	ts := e.server()
	p := e.login("p", "alice")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	o := &LogoutOptions{lifecycleOptions: e.lifecycle("p", ""),
		answered: func() { cancel(&interruptedError{sig: syscall.SIGINT}) }}
	res, err := logoutOne(ctx, o, "p")
	if err != nil || !res.Removed || !res.LoggedOut {
		t.Fatalf("logout interrupted after the answer: %v, %+v", err, res)
	}
	if _, ok, err := session.Open(e.dir).Get(context.Background(), "p"); ok || err != nil {
		t.Fatalf("profile kept (%v)", err)
	}
	if _, err := client.Probe(context.Background(), clientConfig(ts.WSURL, p.SDKAppID, p.Platform), sessionOf(p)); classify(a2(err)).Kind != KindLoggedOut {
		t.Fatalf("server still has the instance: %v", err)
	}
}

// logout --all that --timeout stops: the profiles it did not get to are
// listed and kept, with no bare "context deadline exceeded" per profile.
// (Its exit 6 is profile a's own timeout; TestGaveUp holds gaveUp.)
func logoutAllStopped(t *testing.T) {
	e := newSubEnv(t)
	e.server()
	for _, n := range []string{"a", "b", "c"} {
		e.login(n, "user-"+n)
	}
	silent := HalfOpenServer(t) // a host that takes connections and never says a word
	e.edit("a", func(p *session.Profile) { p.Endpoint = silent })
	lo := e.lifecycle("", "")
	lo.Endpoint = "" // each profile's own
	ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, errTimeoutRanOut)
	defer cancel()
	err := gaveUp(ctx, logoutRun(ctx, &LogoutOptions{lifecycleOptions: lo, All: true}), time.Second)
	var ee *ExitError
	if c := classify(err); c.Code != ExitUnreachable || !errors.As(err, &ee) {
		t.Fatalf("exit %d: %v", c.Code, err)
	}
	all, _ := ee.Data.(logoutAllResult)
	// a (its server silent): cut short by the run's end, said as that,
	// or, when the client's own bound beat the context's by a hair, its
	// own "did not answer" (6). The one the run's end cut short, if any,
	// is "not finished", never blamed on its server; the rest "not
	// tried"; all listed and kept.
	if len(all.Profiles) != 3 || all.Profiles[1].User != "user-b" || all.Profiles[2].User != "user-c" {
		t.Fatalf("document %+v", all)
	}
	cut := func(r logoutResult) bool {
		return strings.HasPrefix(r.Note, "not finished: the run was stopped during it") && r.Error == nil
	}
	notTried := func(r logoutResult) bool { return r.Note == "not tried: the run was stopped first" && r.Error == nil }
	a, b, c := all.Profiles[0], all.Profiles[1], all.Profiles[2]
	aOwn := a.Error != nil && a.Error.Code == ExitUnreachable
	if !(cut(a) && notTried(b) || aOwn && (cut(b) || notTried(b))) || !notTried(c) {
		t.Errorf("document %+v", all)
	}
	for _, r := range all.Profiles {
		if r.Removed || r.LoggedOut {
			t.Errorf("document %+v", all)
		}
	}
	if strings.Contains(e.err.String(), "context deadline exceeded") {
		t.Errorf("stderr: %s", e.err.String())
	}
	// The run asked a's server: not "before the server was asked" (when
	// a failed on its own, its failure is the run's).
	if msg := err.Error(); !aOwn && !strings.Contains(msg, "--timeout 1s ran out before logging out ") || !strings.HasSuffix(msg, " of 3 profiles") {
		t.Errorf("message %q", msg)
	}
	for _, n := range []string{"a", "b", "c"} {
		if p := e.profile(n); !p.LoggedIn() {
			t.Errorf("profile %s: %+v", n, p)
		}
	}
}

// gaveUp turns only a bare end of --timeout's context into exit 6: not a
// signal's end, not an error already classified, and it keeps the data.
func TestGaveUp(t *testing.T) {
	timedOut, cancel := context.WithTimeoutCause(context.Background(), time.Nanosecond, errTimeoutRanOut)
	defer cancel()
	<-timedOut.Done()
	signalled, stop := context.WithCancelCause(context.Background())
	stop(&interruptedError{sig: syscall.SIGINT})
	// As session.Store's lock wait says it (waitErr): ended by the run's
	// context, or by its own bound.
	lockWait := withData(fmt.Errorf("%w: still locked: %w", session.ErrLockTimeout, context.DeadlineExceeded), profileRef{Profile: "p"})
	lockBound := fmt.Errorf("%w: still locked", session.ErrLockTimeout)
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		code int
	}{
		{"a lock wait --timeout ended", timedOut, lockWait, ExitUnreachable},
		{"net/http's cause", timedOut, fmt.Errorf("get: %w", errTimeoutRanOut), ExitUnreachable},
		{"a signal's end", signalled, lockWait, ExitFailure},
		{"the lock's own bound", timedOut, lockBound, ExitFailure},
		{"a plain wait --timeout ended", timedOut, fmt.Errorf("waiting: %w", context.DeadlineExceeded), ExitUnreachable},
		{"already classified", timedOut, exitf(ExitUsage, "bad: %w", context.DeadlineExceeded), ExitUsage},
		{"another error", timedOut, errors.New("disk full"), ExitFailure},
		{"none", timedOut, nil, ExitOK},
	} {
		err := gaveUp(c.ctx, c.err, time.Second)
		if got := exitCode(err); got != c.code {
			t.Errorf("%s: exit %d, want %d (%v)", c.name, got, c.code, err)
		}
		var ee *ExitError
		if c.code == ExitUnreachable && (!errors.As(err, &ee) || ee.Data != (profileRef{Profile: "p"}) && c.err == lockWait) {
			t.Errorf("%s: data lost: %+v", c.name, ee)
		}
	}
}
