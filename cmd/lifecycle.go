package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
	"chatctl/pkg/wire"

	"github.com/spf13/cobra"
)

// The lifecycle commands (login, logout, whoami, server-time, status, watch)
// share a profile in the session file and the client core. This file holds
// what they share: their options (lifecycleOptions), reading and recording
// profiles, building a client config, turning client errors into the
// command's message (classify gives its code), and the one-line messages.

// lifecycleOptions are the dependencies every lifecycle command's options
// embed: where it prints, the session file, the clock,
// and the profile and endpoint it was given. RunE fills them from the
// loaded configuration (App.lifecycle); a test fills them with in-memory
// streams, a temp config dir and a server on loopback, and calls the
// command's run function without a process.
type lifecycleOptions struct {
	IO       *App           // stdout, stderr, -o; messages and documents go only through it
	Sessions *session.Store // the profiles
	Profile  string         // --profile, checked by RunE (profileName)
	Endpoint string         // the configured endpoint, normalized; "" when none was (the default)
	Now      func() time.Time
}

// lifecycle is the lifecycle options of this run (valid after load), for
// the profile name (checked by the caller, or "" when the command works on
// every profile).
func (a *App) lifecycle(profile string) lifecycleOptions {
	return lifecycleOptions{IO: a, Sessions: session.Open(a.ConfigDir()),
		Profile: profile, Endpoint: a.endpoint, Now: time.Now}
}

// profileOptions is lifecycle's options for the --profile value, checked
// (profileName).
func (a *App) profileOptions() (lifecycleOptions, error) {
	name, err := a.profileName()
	if err != nil {
		return lifecycleOptions{}, err
	}
	return a.lifecycle(name), nil
}

// serverWait is --timeout of a lifecycle command that asks a server: how
// long it waits for the server's answers (0: the client's own bounds, 10 s
// to connect and 90 s for a login reply).
type serverWait struct {
	Timeout time.Duration
}

// sdkBounds is what bounds a lifecycle command's wait without --timeout.
const sdkBounds = "the SDK's bounds, 10s to connect and 90s for a login reply"

// flag adds --timeout to c; bounds says what bounds the wait without it.
func (w *serverWait) flag(c *cobra.Command, bounds string) {
	c.Flags().DurationVar(&w.Timeout, "timeout", 0, "give up when the server has not answered within this long, exit 6 (default: "+bounds+")")
}

// runAsking ends the RunE of a command with serverWait's --timeout: it
// runs runF or run (runCmd) with a context that ends after the timeout. A
// server that has not answered by then is no reply in time: the client's
// ErrTimeout, exit 6 (unreachable). offline says why this run asks no
// server ("" when it asks one): --timeout would bound nothing there, and a
// flag that does nothing is refused (exit 2) rather than trusted.
func runAsking[T any](c *cobra.Command, w serverWait, offline string, opts *T, runF func(*T) error, run func(context.Context, *T) error) error {
	return runAskingWith(c, w, offline, func(context.Context) (*T, error) { return opts, nil }, runF, run)
}

// runAskingWith is runAsking for options that take work to build (reading
// a key file): build runs within --timeout too.
func runAskingWith[T any](c *cobra.Command, w serverWait, offline string, build func(context.Context) (*T, error), runF func(*T) error, run func(context.Context, *T) error) error {
	if err := checkTimeout(c, w.Timeout); err != nil {
		return err
	}
	if offline != "" && c.Flags().Changed("timeout") {
		return usageErr(c, fmt.Errorf("--timeout bounds the wait for a server, and %s %s", c.Name(), offline))
	}
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if w.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, w.Timeout, errTimeoutRanOut)
		defer cancel()
	}
	opts, err := build(ctx)
	if err != nil {
		return gaveUp(ctx, err, w.Timeout)
	}
	return gaveUp(ctx, runCmd(ctx, opts, runF, run), w.Timeout)
}

// runEnded reports whether the run's context has ended. A deadline that
// has passed ends it any moment: a wait that saw it first (the client's,
// with the same deadline) is waited out, so that the context's error and
// cause (errTimeoutRanOut, for gaveUp) are there to read.
func runEnded(ctx context.Context) bool {
	if d, ok := ctx.Deadline(); ok && ctx.Err() == nil && !time.Now().Before(d) {
		<-ctx.Done()
	}
	return ctx.Err() != nil
}

// stoppedErr is a run's end (err, the context's) that stopped it with
// work left, what ("before logging out 2 of 5 profiles"): gaveUp says
// that, not that the server was never asked.
type stoppedErr struct {
	what string
	err  error
}

func (e *stoppedErr) Error() string { return "stopped " + e.what + ": " + e.err.Error() }
func (e *stoppedErr) Unwrap() error { return e.err }

// errTimeoutRanOut is the cause of a run's context that --timeout ended.
var errTimeoutRanOut = errors.New("--timeout ran out")

// ranOut reports whether err is a context's deadline: net/http gives the
// context's cause (errTimeoutRanOut) where others give DeadlineExceeded.
func ranOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeoutRanOut)
}

// gaveUp is err as --timeout's end when it is only the end of the run's
// context (a wait for the session file's lock or the profile's login lock,
// the read of a key file, the profiles logout --all did not get to): exit
// 6, "no answer in time", as when the client's wait for the server runs
// out, not 1 with a bare "context deadline exceeded".
func gaveUp(ctx context.Context, err error, d time.Duration) error {
	if err == nil || !ranOut(err) {
		return err
	}
	if context.Cause(ctx) != errTimeoutRanOut {
		return err
	}
	// A lock wait that --timeout ended is its end too, not a problem of
	// the session file (one that outlived the lock's own bound is).
	if k := classify(err).Kind; k != KindError && (k != KindSessionFile || !errors.Is(err, session.ErrLockTimeout)) {
		return err
	}
	var data any
	var ee *ExitError
	if errors.As(err, &ee) {
		data = ee.Data
	}
	msg := fmt.Sprintf("--timeout %s ran out before the server was asked", d)
	var lw *session.LockWaitError
	var se *stoppedErr
	switch {
	case errors.As(err, &lw):
		msg = fmt.Sprintf("--timeout %s ran out while %s (lock file %s)", d, lw.Held, lw.Path)
	case errors.As(err, &se):
		msg = fmt.Sprintf("--timeout %s ran out %s", d, se.what)
	}
	return &ExitError{Code: ExitUnreachable, Kind: KindUnreachable, Err: because(err, "%s", msg), Data: data}
}

// checkTimeout refuses a negative --timeout d (exit 2).
func checkTimeout(c *cobra.Command, d time.Duration) error {
	if d < 0 {
		return usageErr(c, fmt.Errorf("--timeout must not be negative"))
	}
	return nil
}

// when is s when cond holds, else "".
func when(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// runCmd ends a RunE built the cli/cli way: it calls runF with opts when a
// test passed one, else run, the command's work.
func runCmd[T any](ctx context.Context, opts *T, runF func(*T) error, run func(context.Context, *T) error) error {
	if runF != nil {
		return runF(opts)
	}
	return run(ctx, opts)
}

// profileName is the --profile value, checked. Every lifecycle command
// starts with it, so it also checks that the config dir, when it exists, is
// a directory (a clear message instead of "not a directory" from deep down).
func (a *App) profileName() (string, error) {
	p := a.Profile()
	if err := session.ValidateName(p); err != nil {
		return "", exitf(ExitUsage, "%s: %v", a.source("profile"), err)
	}
	if err := a.checkConfigDir(); err != nil {
		return p, withData(err, profileRef{Profile: p})
	}
	return p, nil
}

// checkConfigDir fails clearly when the config dir exists but is not a
// directory.
func (a *App) checkConfigDir() error {
	if fi, err := os.Stat(a.ConfigDir()); err == nil && !fi.IsDir() {
		return exitf(ExitFailure, "config dir %s is not a directory: remove it or set CHATCTL_CONFIG_DIR", a.ConfigDir())
	}
	return nil
}

// clientConfig is the client core's config for endpoint, app and platform
// (0: the Web SDK's 7).
func clientConfig(endpoint string, sdkappid uint64, platform int) client.Config {
	return client.Config{Endpoint: endpoint, SDKAppID: sdkappid, Platform: platform}
}

// endpoint is the chat server's WebSocket URL: the configured one, else
// the default (App.Endpoint).
func (o *lifecycleOptions) endpoint() string { return endpointOrDefault(o.Endpoint) }

// endpointFor is the endpoint a saved profile talks to: --endpoint (or
// CHATCTL_ENDPOINT, config) when given, else the one it logged in at.
func (o *lifecycleOptions) endpointFor(p session.Profile) string {
	if o.Endpoint != "" || p.Endpoint == "" {
		return o.endpoint()
	}
	return savedEndpoint(p)
}

// savedEndpoint is the endpoint p logged in at, as NormalizeEndpoint
// spells it (older versions saved it as typed).
func savedEndpoint(p session.Profile) string {
	if n, err := client.NormalizeEndpoint(p.Endpoint); err == nil {
		return n
	}
	return p.Endpoint
}

// allProfiles reads every profile, and their names in order (status,
// logout --all).
func (o *lifecycleOptions) allProfiles(ctx context.Context) ([]string, map[string]session.Profile, error) {
	if err := o.IO.checkConfigDir(); err != nil {
		return nil, nil, err
	}
	profiles, err := o.Sessions.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	return slices.Sorted(maps.Keys(profiles)), profiles, nil
}

// loadProfile reads the profile; a missing one is "not logged in" (exit 3).
func (o *lifecycleOptions) loadProfile(ctx context.Context, name string) (session.Profile, error) {
	p, ok, err := o.Sessions.Get(ctx, name)
	if err != nil {
		return p, withData(err, profileRef{Profile: name}) // a bad file, a lock wait stopped
	}
	if !ok {
		return p, withData(exitf(ExitNotLoggedIn, "not logged in (profile %q): run `chatctl login USER`", name), profileRef{Profile: name})
	}
	return p, nil
}

// profileRef names the profile (and its user) in a failed lifecycle
// command's JSON document.
type profileRef struct {
	Profile string `json:"profile"`
	User    string `json:"user,omitempty"`
}

// readyProfile is the prologue of the commands that need a logged-in
// profile: the profile's session, which must be ready (else the exit code
// of its state, see notReadyErr).
func (o *lifecycleOptions) readyProfile(ctx context.Context) (string, session.Profile, error) {
	name := o.Profile
	p, err := o.loadProfile(ctx, name)
	if err != nil {
		return name, p, err
	}
	if !p.LoggedIn() {
		return name, p, withData(notReadyErr(name, p), profileRef{name, p.UserID})
	}
	return name, p, nil
}

// endedError is a session that the profile records as ended: classify
// gives it the kind and kick type of its state.
type endedError struct {
	state session.State
	kick  string
}

func (e *endedError) Error() string { return "session ended: " + string(e.state) + " " + e.kick }

// notReadyErr explains a profile that is saved but not logged in, with the
// exit code of its state: 4 kicked, 5 expired, 3 otherwise.
func notReadyErr(name string, p session.Profile) error {
	ended := &endedError{state: p.State, kick: p.KickType}
	// A hand-edited or older file may hold no time or kick type: said
	// as nothing, not "at -" or "()".
	at, kick := "", ""
	if printableTime(p.StateAt) {
		at = " at " + stamp(p.StateAt)
	}
	if p.KickType != "" {
		kick = " (" + printable(p.KickType, maxField) + ")"
	}
	switch p.State {
	case session.StateKicked:
		if p.KickType == revokedType {
			return because(ended, "%s's session was revoked by the server%s (profile %q): run `chatctl login %s` again",
				p.UserID, at, name, p.UserID)
		}
		return because(ended, "%s was kicked out%s%s (profile %q): run `chatctl login %s` again",
			p.UserID, kick, at, name, p.UserID)
	case session.StateExpired:
		return because(ended, "%s's UserSig expired (userSigExpired)%s (profile %q): log in again with a new UserSig",
			p.UserID, at, name)
	case session.StateLoggedOut:
		return because(ended, "%s's session was logged out elsewhere%s (profile %q): run `chatctl login %s` again",
			p.UserID, at, name, p.UserID)
	}
	return exitf(ExitNotLoggedIn, "not logged in (profile %q): run `chatctl login USER`", name)
}

// recordEnd saves why a session ended (kicked, expired, logged out
// elsewhere) so later commands can say so. Only what the profile's own
// server said is saved: an answer from another --endpoint says nothing
// about the session. Failures to save are reported as warnings: the
// command's own outcome matters more. It is saved even when ctx has ended
// meanwhile (afterAnswer). It returns the time it records, so that the
// command's own report says the time later ones will.
func (o *lifecycleOptions) recordEnd(ctx context.Context, name string, p session.Profile, endpoint string, end outcome) time.Time {
	now := o.Now().UTC()
	if end.State == "" || !ownServer(p, endpoint) {
		return now
	}
	uerr := o.Sessions.Update(afterAnswer(ctx), func(f *session.File) error {
		cur, ok := f.Profiles[name]
		if !ok || !cur.SameSession(p) {
			return nil // someone logged in again meanwhile: keep theirs
		}
		cur.State, cur.KickType, cur.StateAt = end.State, end.KickType, now
		f.Profiles[name] = cur
		return nil
	})
	if uerr != nil {
		o.IO.warnf("could not record the session's end in %s: %v", o.Sessions.Path(), uerr)
	}
	return now
}

// markChecked records that endpoint has just confirmed the profile's
// session (an a2 re-login answered), even when ctx has ended meanwhile
// (afterAnswer); only the profile's own server's word is recorded, as
// recordEnd's. A failure to save is only a warning. It returns the time
// of the check, for the command's own report.
func (o *lifecycleOptions) markChecked(ctx context.Context, name string, p session.Profile, endpoint string) time.Time {
	now := o.Now().UTC()
	if !ownServer(p, endpoint) {
		return now
	}
	err := o.Sessions.Update(afterAnswer(ctx), func(f *session.File) error {
		cur, ok := f.Profiles[name]
		if !ok || !cur.SameSession(p) || !cur.LoggedIn() {
			return nil
		}
		cur.CheckedAt = now
		f.Profiles[name] = cur
		return nil
	})
	if err != nil {
		o.IO.warnf("could not record the check in %s: %v", o.Sessions.Path(), err)
	}
	return now
}

// afterAnswer is the context for saving what a server has answered: ctx
// without its end. A signal or --timeout that comes after the answer stops
// the command, not the bookkeeping of what it learnt (the session file's
// lock wait has its own bound, and its write is atomic).
func afterAnswer(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// ownServer says whether endpoint is profile p's own server, the only one
// whose word on p's session ending is recorded or acted on (a profile from
// an older version names none: any is taken as its own).
func ownServer(p session.Profile, endpoint string) bool {
	return p.Endpoint == "" || sameEndpoint(endpoint, p.Endpoint)
}

// sameEndpoint compares two endpoints as NormalizeEndpoint spells them
// (profiles saved by older versions hold them as typed).
func sameEndpoint(x, y string) bool {
	nx, errx := client.NormalizeEndpoint(x)
	ny, erry := client.NormalizeEndpoint(y)
	if errx != nil || erry != nil {
		return x == y
	}
	return nx == ny
}

// sessionErr turns the error of an a2 re-login (Probe, LogoutSession,
// Watch) into the command's: when it says the session ended, that is
// recorded in the profile and the message names the user, the kick type
// and the profile; other errors get describeErr's.
func (o *lifecycleOptions) sessionErr(ctx context.Context, name string, p session.Profile, endpoint string, err error) error {
	return withData(o.sessionErrMsg(ctx, name, p, endpoint, err), profileRef{name, p.UserID})
}

func (o *lifecycleOptions) sessionErrMsg(ctx context.Context, name string, p session.Profile, endpoint string, err error) error {
	err = a2(err)
	end := classify(err)
	if end.State == "" {
		var se *client.ServerError
		if errors.As(err, &se) {
			// A refusal that does not end the session (another app, a
			// store failure): name the server that said it.
			return because(err, "%s refused the session of %s (profile %q): %s (code %d)",
				endpoint, p.UserID, name, strings.TrimSpace(se.Info), se.Code)
		}
		return describeErr(endpoint, err)
	}
	var se *client.ServerError
	said := end.ended()
	if end.KickType == revokedType {
		said = revokedType // not "kicked: revoked": no kick was named
	}
	if errors.As(err, &se) {
		said += fmt.Sprintf("; %s, code %d", strings.TrimSpace(se.Info), se.Code)
	}
	if !ownServer(p, endpoint) {
		// Not recorded (recordEnd): the message names whose word it is.
		err := because(err, "%s says the session of %s has ended (%s), but it is not the server of profile %q (%s): the profile is left as it was",
			endpoint, p.UserID, said, name, p.Endpoint)
		if end.KickType == revokedType {
			// A refusal of the A2Key naming no kick is what any server
			// that never issued it says (another server, its own store):
			// no news of the session, so a refusal, as logout tells it.
			// A kick or an expiry it names (a proxy, another node of the
			// profile's cluster) keeps its code.
			return &ExitError{Code: ExitFailure, Kind: KindServerRefused, Err: err}
		}
		return err
	}
	at := o.recordEnd(ctx, name, p, endpoint, end)
	if end.Kind == KindRevoked && se != nil {
		return because(err, "%s's session was revoked by the server (%s, code %d) (profile %q): run `chatctl login %s` again",
			p.UserID, strings.TrimSpace(se.Info), se.Code, name, p.UserID)
	}
	p.State, p.KickType, p.StateAt = end.State, end.KickType, at
	return because(err, "%s", notReadyErr(name, p).Error())
}

// describeErr turns a client error into the one-line message a user needs;
// classify still sees err.
func describeErr(endpoint string, err error) error {
	o := classify(err)
	var se *client.ServerError
	errors.As(err, &se)
	switch {
	case errors.Is(err, client.ErrHandshake):
		return because(err, "%s answered but is not a chat server (websocket handshake refused): check --endpoint", endpoint)
	case o.Kind == KindUnreachable:
		return because(err, "%s", unreachableMsg(endpoint, err))
	case se == nil:
		if o.KickType != "" {
			return because(err, "kicked out (%s)", o.KickType)
		}
		return err
	case o.Kind == KindUserSigExpired:
		return because(err, "UserSig expired (userSigExpired, code %d): log in again with a new UserSig", se.Code)
	case o.Kind == KindKicked, o.Kind == KindRevoked:
		return because(err, "session revoked: kicked out (%s)", o.KickType)
	case o.Kind == KindLoggedOut:
		return because(err, "session revoked: logged out elsewhere")
	case o.Kind == KindUserSigRejected:
		return because(err, "UserSig rejected by the server: %s (code %d)", strings.TrimSpace(se.Info), se.Code)
	}
	return because(err, "server refused: %s (code %d)", strings.TrimSpace(se.Info), se.Code)
}

// unreachableMsg says that endpoint cannot be reached and, when it is a
// loopback address (where `chatctl serve` listens), how to start a server
// there.
func unreachableMsg(endpoint string, err error) string {
	why := err.Error()
	// The client's errors start with the URL; say it once.
	if i := strings.LastIndex(why, "server unreachable: "); i >= 0 {
		why = why[i+len("server unreachable: "):]
	}
	if errors.Is(err, client.ErrTimeout) {
		// Something is there, but it did not answer: "CMD (BOUND)".
		return fmt.Sprintf("%s did not answer in time: %s", endpoint, strings.Replace(why, ": "+client.ErrTimeout.Error(), "", 1))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || ranOut(err) {
		// The connection or its handshake timed out: a host that took the
		// connection and never upgraded it, or dropped the SYN. Not "no
		// server there", which a refused connection says.
		return fmt.Sprintf("%s did not answer in time: %s", endpoint, why)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// Something took the connection (and closed it, or answered with
		// what no chat server sends): not "no server there".
		return fmt.Sprintf("cannot reach %s: %s", endpoint, why)
	}
	if isDefaultEndpoint(endpoint) {
		return fmt.Sprintf("cannot reach %s: no server there; start one with `chatctl serve` (or set --endpoint)", endpoint)
	}
	if u, perr := url.Parse(endpoint); perr == nil && u.Port() != "" {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
			return fmt.Sprintf("cannot reach %s: no server there (%s); start one with `chatctl serve --listen %s`", endpoint, why, u.Host)
		}
	}
	return fmt.Sprintf("cannot reach %s: %s", endpoint, why)
}

func isDefaultEndpoint(e string) bool { return e == "ws://"+DefaultListen }

// timeLayout is every time chatctl prints: RFC 3339 in UTC with exactly
// three fraction digits (docs/OUTPUT.md).
const timeLayout = "2006-01-02T15:04:05.000Z"

// stamp formats an instant for messages and outputs; "-" for none, or
// for one RFC 3339 cannot write (before year 0 or after 9999: a hostile
// UserSig's time can be any int64).
func stamp(t time.Time) string {
	if !printableTime(t) {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

// printableTime reports whether t is set and RFC 3339 can write it.
func printableTime(t time.Time) bool {
	y := t.UTC().Year()
	return !t.IsZero() && y >= 0 && y <= 9999
}

// jsonTime is an instant in a JSON document: stamp's string, or null when
// the session file does not hold it (a hand-edited or older profile) or
// RFC 3339 cannot write it, so that a script's date parser never meets
// stamp's "-".
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	if !printableTime(time.Time(t)) {
		return []byte("null"), nil
	}
	return []byte(`"` + stamp(time.Time(t)) + `"`), nil
}

// checkUserID applies the one UserID rule (wire.ValidateUserID): exit 2.
func checkUserID(u string) error {
	if err := wire.ValidateUserID(u); err != nil {
		return exitWith(ExitUsage, err)
	}
	return nil
}

// isStdin reports whether the file name names stdin: "-", or one of the
// system's names of fd 0 (--key-file /dev/stdin read the UserSig's input
// as the key, and said the key was empty).
func isStdin(name string) bool {
	switch name {
	case "-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0":
		return true
	}
	return false
}

// readSecret reads a one-line secret, what ("the UserSig", "the secret
// key"), from the file name, or from stdin when name is "-": at most 64
// KiB, and until ctx ends (a FIFO, <(cmd) or a terminal may never end).
func readSecret(ctx context.Context, app *App, name, what string) (string, error) {
	b, err := readInput(ctx, func() ([]byte, error) {
		if name == "-" {
			return readAllLimit(app.In, 64<<10)
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readAllLimit(f, 64<<10)
	})
	if err != nil {
		if ctx != nil && ctx.Err() != nil {
			return "", err // stopped, not a bad input
		}
		return "", exitf(ExitUsage, "reading %s: %v", what, err)
	}
	return givenSecret(b, what+" from "+map[bool]string{true: "stdin", false: name}[name == "-"])
}

// givenSecret is the secret in b, read from a file or stdin the user
// named (from says which, in errors): as secretValue gives it, and exit 2
// when it is empty, as a file that was meant to hold one.
func givenSecret(b []byte, from string) (string, error) {
	s, err := secretValue(string(b), from)
	if err == nil && s == "" {
		err = exitf(ExitUsage, "%s is empty", from)
	}
	return s, err
}

// readInput runs read, which reads an input the user gives (stdin, a
// file), until it returns or ctx ends (a signal): a terminal, a pipe or a
// FIFO may never send its end, and neither open(2) nor read(2) on them
// can be cancelled. When ctx ends first, the read is left to the
// process's exit, and the error is ctx's cause.
func readInput(ctx context.Context, read func() ([]byte, error)) ([]byte, error) {
	if ctx == nil || ctx.Done() == nil {
		return read()
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := read()
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// readAllLimit reads r to its end; more than max bytes is an error.
func readAllLimit(r io.Reader, max int64) ([]byte, error) {
	var buf strings.Builder
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		buf.Write(b[:n])
		if int64(buf.Len()) > max {
			return nil, fmt.Errorf("input over %d bytes", max)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return []byte(buf.String()), nil
			}
			return nil, err
		}
	}
}
