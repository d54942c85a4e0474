package cmd

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

// What a signal makes of a run, without a process (the built binary's
// signal runs are in TestExitCodeTable): the run's failure becomes the
// interruption, an answer it had keeps its code, an input that never ends
// does not hold it, and what a server had answered is still saved.

// stopped is a context a signal ended.
func stopped(sig syscall.Signal) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&interruptedError{sig: sig})
	return ctx
}

func TestInterrupted(t *testing.T) {
	unreachable := withData(describeErr("ws://127.0.0.1:9", client.ErrTimeout), profileRef{Profile: "p", User: "alice"})
	kicked := &client.KickedError{Type: client.KickedMultipleAccount}
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		code int
		kind string
	}{
		{"a wait stopped by SIGTERM", stopped(syscall.SIGTERM), unreachable, 143, KindInterrupted},
		{"a wait stopped by SIGINT", stopped(syscall.SIGINT), context.Canceled, 130, KindInterrupted},
		{"a wait stopped by SIGHUP", stopped(syscall.SIGHUP), unreachable, 129, KindInterrupted},
		{"an answer the server gave", stopped(syscall.SIGTERM), kicked, ExitKicked, KindKicked},
		{"a usage error", stopped(syscall.SIGINT), exitf(ExitUsage, "bad"), ExitUsage, KindUsage},
		{"no signal: --timeout", timedOut(), unreachable, ExitUnreachable, KindUnreachable},
		{"finished anyway", stopped(syscall.SIGTERM), nil, 0, ""},
	} {
		err := interrupted(c.ctx, c.err)
		o := classify(err)
		if o.Code != c.code || o.Kind != c.kind {
			t.Errorf("%s: exit %d kind %q, want %d %q (%v)", c.name, o.Code, o.Kind, c.code, c.kind, err)
		}
		if c.kind != KindInterrupted {
			if err != c.err {
				t.Errorf("%s: the error changed to %v", c.name, err)
			}
			continue
		}
		want := map[int]string{129: "SIGHUP", 130: "SIGINT", 143: "SIGTERM"}[c.code]
		want = "interrupted by " + want + " before it finished"
		if err.Error() != want {
			t.Errorf("%s: message %q, want %q", c.name, err, want)
		}
	}
	// The document keeps what the command knew besides the error.
	var ee *ExitError
	if err := interrupted(stopped(syscall.SIGTERM), unreachable); !errors.As(err, &ee) || ee.Data != (profileRef{Profile: "p", User: "alice"}) {
		t.Errorf("data lost: %#v", err)
	}
}

func timedOut() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	return ctx
}

// An input that never ends (a terminal, a hung producer) does not hold a
// run that a signal stopped.
func TestReadInputStops(t *testing.T) {
	checkLeaks(t)
	r, w := io.Pipe()
	defer w.Close() // ends the read left behind, as the process's exit would
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	app := &App{In: r}
	go func() {
		_, err := readSecret(ctx, app, "-", "the UserSig")
		done <- err
	}()
	cancel(&interruptedError{sig: syscall.SIGINT})
	select {
	case err := <-done:
		if o := classify(interrupted(ctx, err)); o.Code != 130 || o.Kind != KindInterrupted {
			t.Errorf("readSecret stopped: %v: exit %d kind %q", err, o.Code, o.Kind)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("readSecret still reading 30 s after its context ended")
	}
	// Without a signal it reads to the end, as before.
	got, err := readSecret(context.Background(), &App{In: strings.NewReader(" sig\n")}, "-", "the UserSig")
	if got != "sig" || err != nil {
		t.Errorf("readSecret: %q %v", got, err)
	}
}

// What the server answered before the signal is saved: a check it
// confirmed, an end it reported.
func TestBookkeepingAfterAnswer(t *testing.T) {
	e := newRunEnv(t)
	e.server()
	p := e.login("p", "alice")
	lo := e.lifecycle("p", "")
	e.now = e.now.Add(time.Minute)
	lo.markChecked(stopped(syscall.SIGTERM), "p", p, e.ts.WSURL)
	if got := e.profile("p").CheckedAt; !got.Equal(e.now) {
		t.Errorf("checked_at %v after a stopped run's check, want %v", got, e.now)
	}
	lo.recordEnd(stopped(syscall.SIGTERM), "p", p, e.ts.WSURL, outcome{State: session.StateKicked, KickType: client.KickedMultipleAccount})
	if got := e.profile("p"); got.State != session.StateKicked || got.KickType != client.KickedMultipleAccount {
		t.Errorf("state %q %q after a stopped run saw a kick", got.State, got.KickType)
	}
	if e.err.String() != "" {
		t.Errorf("stderr: %s", e.err.String())
	}
}

// --timeout bounds the wait for a server: a run that asks none refuses it
// (exit 2) instead of accepting a flag that does nothing; a run that asks
// one takes it.
func TestTimeoutOnlyWhereItBounds(t *testing.T) {
	whoami := timeoutParser(t, newWhoamiCmd, func(o *WhoamiOptions) serverWait { return o.serverWait })
	serverTime := timeoutParser(t, newServerTimeCmd, func(o *ServerTimeOptions) serverWait { return o.serverWait })
	status := timeoutParser(t, newStatusCmd, func(o *StatusOptions) serverWait { return o.serverWait })
	logout := timeoutParser(t, newLogoutCmd, func(o *LogoutOptions) serverWait { return o.serverWait })
	login := timeoutParser(t, newLoginCmd, func(o *LoginOptions) serverWait { return o.serverWait })
	for _, c := range []struct {
		parse func(...string) parsed
		args  []string
		why   string // the refusal's reason; "" when the run takes it
	}{
		{whoami, []string{"whoami", "--check", "--timeout", "3s"}, ""},
		{whoami, []string{"whoami", "--timeout", "3s"}, "whoami asks one only with --check"},
		{whoami, []string{"whoami", "--timeout", "0"}, "whoami asks one only with --check"},
		{serverTime, []string{"server-time", "--timeout", "3s"}, ""},
		{serverTime, []string{"server-time", "--cached", "--timeout", "3s"}, "server-time --cached asks none"},
		{status, []string{"status", "--check", "--timeout", "3s"}, ""},
		{status, []string{"status", "--timeout", "3s"}, "status asks the servers only with --check"},
		{logout, []string{"logout", "--timeout", "3s"}, ""},
		{logout, []string{"logout", "--all", "--timeout", "3s"}, ""},
		{logout, []string{"logout", "--local", "--timeout", "3s"}, "logout --local asks none"},
		{login, []string{"login", "alice", "--timeout", "3s"}, ""},
	} {
		got := c.parse(c.args...)
		if c.why == "" {
			if !got.ran || got.timeout != 3*time.Second || got.code != 0 {
				t.Errorf("%q: %+v, want a run with a 3s timeout", c.args, got)
			}
			continue
		}
		cmd := c.args[0]
		want := "chatctl: --timeout bounds the wait for a server, and " + c.why + " (see 'chatctl " + cmd + " --help')\n"
		if got.ran || got.code != ExitUsage || got.stderr != want {
			t.Errorf("%q: %+v\nwant exit 2 with %q", c.args, got, want)
		}
	}
}

// parsed is what parseArgs made of a command line with --timeout.
type parsed struct {
	ran     bool // the run function was reached
	timeout time.Duration
	code    int
	stderr  string
}

// timeoutParser parses command lines of newCmd (parseArgs), wait giving
// the options' --timeout.
func timeoutParser[T any](t *testing.T, newCmd func(*App, func(*T) error) *cobra.Command, wait func(*T) serverWait) func(...string) parsed {
	return func(args ...string) parsed {
		o, code, _, stderr := parseArgs(t, newCmd, args...)
		if o == nil {
			return parsed{code: code, stderr: stderr}
		}
		return parsed{true, wait(o).Timeout, code, stderr}
	}
}
