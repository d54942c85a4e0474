package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

func init() {
	register("watch", func(app *App) *cobra.Command { return newWatchCmd(app, nil) })
}

// watchLine is one line of watch's output.
type watchLine struct {
	Event   string   `json:"event"`
	State   string   `json:"state,omitempty"` // NET_STATE_CHANGE
	Type    string   `json:"type,omitempty"`  // KICKED_OUT
	Code    int      `json:"code,omitempty"`  // SDK_NOT_READY after a refused a2 re-login
	Info    string   `json:"info,omitempty"`  // the server's ErrorInfo with Code
	Time    jsonTime `json:"time"`
	Profile string   `json:"profile"`
	User    string   `json:"user"`
	// Recorded: the line is the profile's record of how its session had
	// ended before this watch began, not an event seen now.
	Recorded bool `json:"recorded,omitempty"`
}

// maxInfo bounds the server's ErrorInfo in a line, in bytes, the "…" of
// a cut one included: it comes from the network.
const maxInfo = 200

func newWatchLine(e client.Event, profile, user string) watchLine {
	info := e.Info
	if len(info) > maxInfo {
		info = strings.ToValidUTF8(info[:maxInfo-len("…")], "") + "…"
	}
	return watchLine{Event: e.Name, State: e.State, Type: e.Type, Code: e.Code, Info: info,
		Time: jsonTime(e.Time), Profile: profile, User: user}
}

var watchEvents = []string{client.EventSDKReady, client.EventSDKNotReady, client.EventNetStateChange, client.EventKickedOut}

// WatchOptions is what watch needs: the lifecycle dependencies and its
// flags. SIGINT, SIGTERM and SIGHUP end its context (withSignals): that is how a
// watch without --until ends, exit 0.
type WatchOptions struct {
	lifecycleOptions
	Until   string        // exit 0 once this event is printed (--until)
	Timeout time.Duration // give up after this long; 0: never (--timeout)
}

// newWatchCmd builds watch; runF, when not nil, runs instead of watchRun
// (tests of the flags).
func newWatchCmd(app *App, runF func(*WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{}
	c := &cobra.Command{
		Use:   "watch",
		Short: "Attach to the session and stream its lifecycle events as JSON lines",
		Long: `Attach to the profile's session (a2 re-login) and print one JSON object per
line, flushed at once: SDK_READY, NET_STATE_CHANGE (state connecting,
connected, disconnected), KICKED_OUT (type multipleAccount, multipleDevice,
REST_API_Kick, userSigExpired, or unknown for a type this version does not
know), SDK_NOT_READY. Every line has the time,
profile and user.

watch answers kicks as the SDK does, keeps heartbeats and hellos, and
reconnects with backoff after a network loss or a server restart. It exits 4
after KICKED_OUT (5 for userSigExpired), 0 on SIGINT/SIGTERM/SIGHUP
(130/143/129 with --until, whose event had not come), 0 within
about a second when the reader of its output goes away (| head -1; 1 with
--until before its event's line), and 1 when the reader of its stderr does.

A profile whose session had already ended prints the recorded KICKED_OUT
(or SDK_NOT_READY) line first, marked "recorded":true, then exits 4 or 5
(0 once --until's event is printed).

For CI: --until EVENT exits 0 once EVENT is printed; --timeout D gives up
after D (exit 1 if --until's event did not come, 6 if the session never
attached, else 0). With -o json a
failure adds one last line, the error document (docs/OUTPUT.md).`,
		Example: `  chatctl watch | jq -c 'select(.event=="KICKED_OUT")'
  chatctl watch --until SDK_READY --timeout 10s`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Until != "" && !contains(watchEvents, opts.Until) {
				return usageErr(c, fmt.Errorf("--until must be one of %v, not %q", watchEvents, opts.Until))
			}
			if err := checkTimeout(c, opts.Timeout); err != nil {
				return err
			}
			// A watch prints lines as they come: its error document,
			// if any, comes last (run).
			app.streaming = true
			lo, err := app.profileOptions()
			if err != nil {
				return err
			}
			opts.lifecycleOptions = lo
			return runCmd(c.Context(), opts, runF, watchRun)
		},
	}
	c.Flags().StringVar(&opts.Until, "until", "", "exit 0 once this event is printed (e.g. SDK_READY)")
	_ = c.RegisterFlagCompletionFunc("until", cobra.FixedCompletions(watchEvents, cobra.ShellCompDirectiveNoFileComp))
	c.Flags().DurationVar(&opts.Timeout, "timeout", 0, "give up after this long (e.g. 10s)")
	return c
}

func watchRun(ctx context.Context, o *WatchOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	app, name, until, timeout := o.IO, o.Profile, o.Until, o.Timeout
	p, err := o.loadProfile(ctx, name)
	if err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeoutRanOut)
		defer cancel()
	}
	if !p.LoggedIn() {
		return o.replayEnd(ctx, p)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readerGone, stderrGone atomic.Bool
	if app.hangups {
		watchHangup(ctx, func(stderr bool) {
			readerGone.Store(!stderr)
			stderrGone.Store(stderr)
			cancel()
		})
	}

	endpoint := o.endpointFor(p)
	seen, ready, told := false, false, false
	var writeErr error
	emit := func(e client.Event) {
		if e.Name == client.EventSDKReady && !ready {
			ready = true
			// After the line, whether or not it was written: a session
			// file another process holds locked must not hold it back.
			defer o.markChecked(context.Background(), name, p, endpoint)
		}
		if writeErr != nil || seen {
			return // nothing after --until's event, or a failed write
		}
		writeErr = app.printJSONWithin(ctx, newWatchLine(e, name, p.UserID))
		if errors.Is(writeErr, errStdoutStuck) {
			return // ctx has ended (a signal, --timeout): told as such below
		}
		if writeErr != nil {
			cancel() // stdout is gone (a closed pipe, a full disk): stop watching
			return   // and --until's event was not printed
		}
		told = told || isEndEvent(e.Name)
		if until != "" && e.Name == until {
			seen = true
			cancel()
		}
	}
	err = client.Watch(ctx, clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p), emit)
	timedOut := context.Cause(ctx) == errTimeoutRanOut // not a signal's end, nor ours (cancel)
	if errors.Is(writeErr, errStdoutStuck) {
		writeErr = nil // not the reader's going: it is still there, not reading
	}
	var end outcome
	if err != nil {
		end = classify(a2(err))
	}
	switch {
	case timedOut && !ready:
		// Never attached: the server took no login in all that time (a
		// watch that never watched is not a quiet one), whether the
		// client's own read or --timeout ran out first.
		return o.sessionErr(context.Background(), name, p, endpoint, fmt.Errorf("wslogin: %w (--timeout %s)", client.ErrTimeout, timeout))
	case seen:
		if err != nil {
			o.recordEnd(context.Background(), name, p, endpoint, end)
		}
		return nil
	case err != nil && !told && readerLeft(readerGone.Load(), writeErr) && end.State != "":
		// The session ended after the reader went away, before its line:
		// as when nothing ends (done, or 1 with --until); the end is
		// recorded for the next command. (Once the end's line is written,
		// its code is the exit.)
		o.recordEnd(context.Background(), name, p, endpoint, end)
		return o.readerWentAway(p)
	case err != nil:
		return o.sessionErr(context.Background(), name, p, endpoint, err)
	case readerLeft(readerGone.Load(), writeErr):
		return o.readerWentAway(p)
	case stderrGone.Load():
		// Nowhere left to report a problem: a failure, so that a
		// supervisor restarts a watch whose log pipe went away.
		return exitf(ExitFailure, "the reader of stderr went away")
	case writeErr != nil:
		return exitf(ExitFailure, "writing events: %v", writeErr)
	}
	return o.stopped(timedOut, p)
}

// readerWentAway is the end of a watch whose stdout's reader went away
// before a line of the session's end: done (0), the reader has what it
// wanted; but not when it waited for --until's event, whose line nobody
// read: exit 1, or `watch --until KICKED_OUT | logger && echo kicked`
// said kicked when logger died first.
func (o *WatchOptions) readerWentAway(p session.Profile) error {
	if o.Until == "" {
		return nil
	}
	return &ExitError{Code: ExitFailure, Kind: KindError, Err: fmt.Errorf("the reader of stdout went away before the %s line", o.Until),
		Data: profileRef{o.Profile, p.UserID}}
}

// stopped is the end of a watch that a signal or --timeout stopped (or
// its stdout's reader, which stopped reading): done (0), unless it was
// waiting for --until's event.
func (o *WatchOptions) stopped(timedOut bool, p session.Profile) error {
	switch {
	case o.Until == "":
		return nil
	case timedOut:
		return &ExitError{Code: ExitFailure, Kind: KindTimeout, Err: fmt.Errorf("timed out after %s waiting for %s", o.Timeout, o.Until),
			Data: profileRef{o.Profile, p.UserID}}
	}
	// Stopped (a signal) before --until's event: a wait cut short, not
	// done (execute: 129, 130 or 143, interrupted).
	return withData(fmt.Errorf("stopped before %s came", o.Until), profileRef{o.Profile, p.UserID})
}

// replayEnd prints, for a profile whose session had already ended, the
// lines a watch would have printed then (KICKED_OUT with its type, then
// SDK_NOT_READY), marked recorded, and returns the state's error; or, once
// the line of --until's event is printed, nil: the event a script waits
// for has come, if before the watch. A line its stdout's reader does not
// take by the end of ctx (a signal, --timeout) stops it, as a live watch.
func (o *WatchOptions) replayEnd(ctx context.Context, p session.Profile) error {
	app, name, until := o.IO, o.Profile, o.Until
	var lines []client.Event
	switch p.State {
	case session.StateKicked, session.StateExpired:
		kick := p.KickType
		if p.State == session.StateExpired {
			kick = client.KickedUserSigExpired
		}
		if kick != "" && kick != revokedType {
			lines = append(lines, client.Event{Name: client.EventKickedOut, Type: kick, Time: p.StateAt})
		}
		lines = append(lines, client.Event{Name: client.EventSDKNotReady, Time: p.StateAt})
	case session.StateLoggedOut:
		lines = append(lines, client.Event{Name: client.EventSDKNotReady, Time: p.StateAt})
	}
	for i, e := range lines {
		l := newWatchLine(e, name, p.UserID)
		l.Recorded = true
		if err := app.printJSONWithin(ctx, l); errors.Is(err, errStdoutStuck) {
			return o.stopped(context.Cause(ctx) == errTimeoutRanOut, p)
		} else if isPipeGone(err) && i == 0 {
			return o.readerWentAway(p) // before the end's line, as a live watch's
		} else if isPipeGone(err) {
			break // it has the end's first line: the end's code
		} else if err != nil {
			return exitf(ExitFailure, "writing events: %v", err)
		}
		if e.Name == until {
			return nil
		}
	}
	return withData(notReadyErr(name, p), profileRef{name, p.UserID})
}

// isEndEvent reports whether a watch line of event tells the session's
// end: watch's exit is then the end's code, whatever becomes of the reader
// afterwards (`| grep -q KICKED_OUT` leaves before SDK_NOT_READY or not).
func isEndEvent(event string) bool {
	return event == client.EventKickedOut || event == client.EventSDKNotReady
}

// readerLeft reports whether the reader of stdout went away: the hang-up
// was seen, or a write failed for it.
func readerLeft(hungUp bool, writeErr error) bool {
	return hungUp || isPipeGone(writeErr)
}

// isPipeGone reports whether a write failed because its reader went away.
func isPipeGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
