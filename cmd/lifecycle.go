package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
	"chatctl/pkg/wire"
)

// The lifecycle commands (login, logout, whoami, server-time, watch) share a
// profile in the session file and the client core. This file holds what
// they share: opening the session file, building a client config, turning
// client errors into the exit-code table, and the one-line messages.

func init() {
	exitMappers = append(exitMappers, lifecycleExitCode)
}

// lifecycleExitCode maps pkg/client and pkg/session errors to exit codes.
func lifecycleExitCode(err error) (int, bool) {
	var ke *client.KickedError
	if errors.As(err, &ke) {
		if ke.Type == client.KickedUserSigExpired {
			return ExitSigRejected, true
		}
		return ExitKicked, true
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		switch {
		case se.SigExpired() || se.KickedType() == client.KickedUserSigExpired:
			return ExitSigRejected, true
		case se.KickedType() != "" || se.RevokedReason() != "":
			return ExitKicked, true
		case se.Code >= 70001 && se.Code <= 70020, se.Code == 70050, se.Code == 70051:
			return ExitSigRejected, true
		}
		return ExitFailure, true
	}
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return ExitUnreachable, true
	case errors.Is(err, session.ErrInvalidName):
		return ExitUsage, true
	}
	return 0, false
}

// sessions opens the session file of the config dir.
func (a *App) sessions() *session.Store { return session.Open(a.ConfigDir()) }

// profileName is the --profile value, checked. Every lifecycle command
// starts with it, so it also checks that the config dir, when it exists, is
// a directory (a clear message instead of "not a directory" from deep down).
func (a *App) profileName() (string, error) {
	p := a.Profile()
	if err := session.ValidateName(p); err != nil {
		return "", exitf(ExitUsage, "--profile: %v", err)
	}
	return p, a.checkConfigDir()
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
func (a *App) clientConfig(endpoint string, sdkappid uint64, platform int) client.Config {
	return client.Config{Endpoint: endpoint, SDKAppID: sdkappid, Platform: platform}
}

// endpointFor is the endpoint a saved profile talks to: --endpoint (or
// CHATCTL_ENDPOINT, config) when given, else the one it logged in at.
func (a *App) endpointFor(p session.Profile) string {
	if a.V.IsSet("endpoint") && a.V.GetString("endpoint") != "" || p.Endpoint == "" {
		return a.Endpoint()
	}
	return p.Endpoint
}

// loadProfile reads the profile; a missing one is "not logged in" (exit 3).
func (a *App) loadProfile(ctx context.Context, name string) (session.Profile, error) {
	p, ok, err := a.sessions().Get(ctx, name)
	if err != nil {
		return p, err
	}
	if !ok {
		return p, exitf(ExitNotLoggedIn, "not logged in (profile %q): run `chatctl login USER`", name)
	}
	return p, nil
}

// readyProfile is the prologue of the commands that need a logged-in
// profile: the --profile name, checked, and its session, which must be
// ready (else the exit code of its state, see notReadyErr).
func (a *App) readyProfile(ctx context.Context) (string, session.Profile, error) {
	name, err := a.profileName()
	if err != nil {
		return "", session.Profile{}, err
	}
	p, err := a.loadProfile(ctx, name)
	if err != nil {
		return name, p, err
	}
	if !p.LoggedIn() {
		return name, p, notReadyErr(name, p)
	}
	return name, p, nil
}

// notReadyErr explains a profile that is saved but not logged in, with the
// exit code of its state: 4 kicked, 5 expired, 3 otherwise.
func notReadyErr(name string, p session.Profile) error {
	switch p.State {
	case session.StateKicked:
		if p.KickType == revokedType {
			return exitf(ExitKicked, "%s's session was revoked by the server at %s (profile %q): run `chatctl login %s` again",
				p.UserID, stamp(p.StateAt), name, p.UserID)
		}
		return exitf(ExitKicked, "%s was kicked out (%s) at %s (profile %q): run `chatctl login %s` again",
			p.UserID, p.KickType, stamp(p.StateAt), name, p.UserID)
	case session.StateExpired:
		return exitf(ExitSigRejected, "%s's UserSig expired (userSigExpired) at %s (profile %q): log in again with a new UserSig",
			p.UserID, stamp(p.StateAt), name)
	}
	return exitf(ExitNotLoggedIn, "not logged in (profile %q): run `chatctl login USER`", name)
}

// recordEnd saves why a session ended (kicked, expired, logged out
// elsewhere) so later commands can say so. Only what the profile's own
// server said is saved: an answer from another --endpoint says nothing
// about the session. Failures to save are reported as warnings: the
// command's own outcome matters more.
func (a *App) recordEnd(ctx context.Context, name string, p session.Profile, endpoint string, err error) {
	state, kick := sessionEnd(err)
	if state == "" || p.Endpoint != "" && strings.TrimSuffix(endpoint, "/") != strings.TrimSuffix(p.Endpoint, "/") {
		return
	}
	uerr := a.sessions().Update(ctx, func(f *session.File) error {
		cur, ok := f.Profiles[name]
		if !ok || cur.InstID != p.InstID || cur.UserID != p.UserID {
			return nil // someone logged in again meanwhile: keep theirs
		}
		cur.State, cur.KickType, cur.StateAt = state, kick, time.Now().UTC()
		f.Profiles[name] = cur
		return nil
	})
	if uerr != nil {
		a.warnf("could not record the session's end in %s: %v", a.sessions().Path(), uerr)
	}
}

// sessionErr records why the session ended, when err says it did, and
// returns the message for it (naming the user, the kick type and the
// profile); other errors get describeErr's.
func (a *App) sessionErr(ctx context.Context, name string, p session.Profile, endpoint string, err error) error {
	state, kick := sessionEnd(err)
	var se *client.ServerError
	if state == "" && errors.As(err, &se) && !errors.As(err, new(*client.KickedError)) {
		// A refusal of the a2 re-login that does not end the session
		// (another app, a store failure): not a UserSig matter.
		return exitWith(exitCodeOf(err), fmt.Errorf("%s refused the session of %s (profile %q): %s (code %d)",
			endpoint, p.UserID, name, strings.TrimSpace(se.Info), se.Code))
	}
	if state == "" {
		return describeErr(endpoint, err)
	}
	a.recordEnd(ctx, name, p, endpoint, err)
	p.State, p.KickType, p.StateAt = state, kick, time.Now().UTC()
	switch {
	case state == session.StateLoggedOut:
		return exitf(ExitNotLoggedIn, "%s's session was logged out elsewhere (profile %q): run `chatctl login %s` again", p.UserID, name, p.UserID)
	case kick == revokedType && errors.As(err, &se):
		return exitf(ExitKicked, "%s's session was revoked by the server (%s, code %d) (profile %q): run `chatctl login %s` again",
			p.UserID, strings.TrimSpace(se.Info), se.Code, name, p.UserID)
	}
	return notReadyErr(name, p)
}

// revokedType is the kick type saved when the server refuses a session's
// a2 re-login without naming a kick or a reason (its A2Key is from another
// server, or was refused for a reason this chatctl does not know).
const revokedType = "revoked"

// sessionEnd is endState for the errors of an a2 re-login (Probe,
// LogoutSession, Watch): there, any refusal (70002, wire.CodeA2Rejected)
// ends the session, even one that names no kick: it is "revoked". (On a
// first login 70002 means an empty UserSig instead, hence two functions.)
func sessionEnd(err error) (session.State, string) {
	if state, kick := endState(err); state != "" {
		return state, kick
	}
	var se *client.ServerError
	if errors.As(err, &se) && se.Code == wire.CodeA2Rejected {
		return session.StateKicked, revokedType
	}
	return "", ""
}

// endState is the session state an error from the client core stands for.
func endState(err error) (session.State, string) {
	var ke *client.KickedError
	if errors.As(err, &ke) {
		if ke.Type == client.KickedUserSigExpired {
			return session.StateExpired, ke.Type
		}
		return session.StateKicked, ke.Type
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		switch t := se.KickedType(); {
		case t == client.KickedUserSigExpired:
			return session.StateExpired, t
		case t != "":
			return session.StateKicked, t
		case se.RevokedReason() == "logout":
			return session.StateLoggedOut, ""
		case se.RevokedReason() != "":
			return session.StateKicked, se.RevokedReason()
		}
	}
	return "", ""
}

// describeErr turns a client error into the one-line message a user needs.
func describeErr(endpoint string, err error) error {
	if errors.Is(err, client.ErrUnreachable) {
		return exitWith(ExitUnreachable, errors.New(unreachableMsg(endpoint, err)))
	}
	if errors.Is(err, client.ErrHandshake) {
		return exitf(ExitUnreachable, "%s answered but is not a chat server (websocket handshake refused): check --endpoint", endpoint)
	}
	var ke *client.KickedError
	if errors.As(err, &ke) {
		return exitWith(exitCodeOf(err), fmt.Errorf("kicked out (%s)", ke.Type))
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		info := strings.TrimSpace(se.Info)
		switch t, kick := endState(err); {
		case t == session.StateExpired:
			return exitWith(ExitSigRejected, fmt.Errorf("UserSig expired (userSigExpired, code %d): log in again with a new UserSig", se.Code))
		case t == session.StateKicked:
			return exitWith(ExitKicked, fmt.Errorf("session revoked: kicked out (%s)", kick))
		case t == session.StateLoggedOut:
			return exitWith(ExitNotLoggedIn, errors.New("session revoked: logged out elsewhere"))
		}
		if code := exitCodeOf(err); code == ExitSigRejected {
			return exitWith(code, fmt.Errorf("UserSig rejected by the server: %s (code %d)", info, se.Code))
		}
		return exitWith(exitCodeOf(err), fmt.Errorf("server refused: %s (code %d)", info, se.Code))
	}
	return err
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

func exitCodeOf(err error) int {
	if code, ok := lifecycleExitCode(err); ok {
		return code
	}
	return ExitFailure
}

func isDefaultEndpoint(e string) bool {
	return strings.TrimSuffix(e, "/") == "ws://"+DefaultListen
}

// stamp formats an instant for messages and text output.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// checkUserID validates a userID like Tencent does: 1–32 bytes, printable
// ASCII, no spaces.
func checkUserID(u string) error {
	if u == "" {
		return exitf(ExitUsage, "empty user ID")
	}
	if len(u) > 32 {
		return exitf(ExitUsage, "user ID is %d bytes; at most 32", len(u))
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] > '~' {
			return exitf(ExitUsage, "user ID %q has a character outside printable ASCII", u)
		}
	}
	return nil
}

// readSecretFile reads a one-line secret (a UserSig) from a file or stdin.
func readSecret(app *App, name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = readAllLimit(app.In, 64<<10)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", exitf(ExitUsage, "reading the UserSig: %v", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", exitf(ExitUsage, "the UserSig from %s is empty", map[bool]string{true: "stdin", false: name}[name == "-"])
	}
	return s, nil
}

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
