package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"

	"github.com/spf13/cobra"
)

func init() {
	register("login", func(app *App) *cobra.Command { return newLoginCmd(app, nil) })
}

// LoginOptions is what login needs: the lifecycle dependencies and its
// flags and argument.
type LoginOptions struct {
	lifecycleOptions
	serverWait
	UserID   string // USER or --user-id, checked
	SigFile  string // --user-sig-file
	SigArg   string // --user-sig: only "-" (stdin) is taken
	Expire   string // --expire, for a minted UserSig
	Platform int    // --platform's number; 0 when not given (Web, or the profile's)
	Keys     keyFlags

	platform string // --platform as given
}

// loginResult is login's -o json output.
type loginResult struct {
	Profile       string   `json:"profile"`
	User          string   `json:"user"`
	SDKAppID      uint64   `json:"sdkappid"`
	Endpoint      string   `json:"endpoint"`
	Instance      uint64   `json:"instance"`
	TinyID        string   `json:"tiny_id"`
	RepeatLogin   bool     `json:"repeatLogin"`
	Expires       jsonTime `json:"usersig_expires"`
	ServerTimeMS  int64    `json:"server_time_ms,omitempty"`
	OffsetMS      int64    `json:"offset_ms"`
	RTTMS         int64    `json:"rtt_ms"`
	HelloInterval int      `json:"hello_interval_s,omitempty"`
}

// newLoginCmd builds login; runF, when not nil, runs instead of loginRun
// (tests of the flags).
func newLoginCmd(app *App, runF func(*LoginOptions) error) *cobra.Command {
	o := &LoginOptions{}
	c := &cobra.Command{
		Use:   "login [USER]",
		Short: "Log a user in and keep the session in the profile",
		Long: `Log USER in over the wire (wslogin), save the session in the profile and leave
the instance logged in. The UserSig comes from --user-sig-file, --user-sig -
(stdin), CHATCTL_USER_SIG, or is minted from the configured secret key (by
default the dev app of ` + "`chatctl serve`" + `).

Logging in again as the same live user does not log in twice: it reports
repeatLogin, like the SDK. Another user on the same profile is an error: log
out first, or use --profile. The same user on another platform, app or
server replaces the profile's session: once the new one is saved, the old
one is logged out on its own server (a warning if that fails).`,
		Example: `  chatctl login alice
  chatctl --profile phone login alice -o json
  chatctl login bob --user-sig-file bob.sig`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				if o.UserID != "" && o.UserID != args[0] {
					return usageErr(c, fmt.Errorf("USER %q and --user-id %q differ", args[0], o.UserID))
				}
				o.UserID = args[0]
			}
			if o.UserID == "" && len(args) == 0 && !c.Flags().Changed("user-id") {
				return usageErr(c, fmt.Errorf("which user? give USER or --user-id"))
			}
			name, err := app.profileName()
			if err != nil {
				return err
			}
			if err := checkUserID(o.UserID); err != nil {
				return err
			}
			if c.Flags().Changed("platform") {
				pl, ok := wire.ParsePlatform(o.platform)
				if !ok {
					return exitf(ExitUsage, "--platform %.40q: want %s, or its number (1-5, 7)", o.platform, platformList())
				}
				o.Platform = int(pl)
			}
			o.lifecycleOptions = app.lifecycle(name)
			return runAsking(c, o.serverWait, "", o, runF, loginRun)
		},
	}
	f := c.Flags()
	o.serverWait.flag(c, sdkBounds)
	f.StringVar(&o.UserID, "user-id", "", "the user to log in (same as USER)")
	f.StringVar(&o.SigFile, "user-sig-file", "", "file holding the UserSig")
	f.StringVar(&o.SigArg, "user-sig", "", "`-` to read the UserSig from stdin")
	f.StringVar(&o.Expire, "expire", "180d", "validity of a minted UserSig, positive (e.g. 3s, 24h, 180d)")
	// The terminal kind to log in as, saved in the profile. The Web SDK is
	// always Web (7); the others let scripts and tests reach the
	// multi-device kicks (multipleDevice) with one command.
	f.StringVar(&o.platform, "platform", "", "log in as this platform: "+platformList()+" (default: the profile's, else Web)")
	_ = c.RegisterFlagCompletionFunc("platform", cobra.FixedCompletions(platformNames(), cobra.ShellCompDirectiveNoFileComp))
	c.ValidArgsFunction = cobra.NoFileCompletions
	o.Keys.add(c, app)
	return c
}

// platformNames lists the --platform values.
func platformNames() []string {
	names := make([]string, len(wire.Platforms))
	for i, p := range wire.Platforms {
		names[i] = p.String()
	}
	return names
}

func platformList() string { return strings.Join(platformNames(), ", ") }

func loginRun(ctx context.Context, o *LoginOptions) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	defer func() {
		if err != nil {
			// Its JSON document names the profile and user, as every
			// lifecycle command's does.
			err = withData(err, profileRef{o.Profile, o.UserID})
		}
	}()
	app, name := o.IO, o.Profile
	platform := client.DefaultPlatform
	if o.Platform != 0 {
		platform = o.Platform
	}
	userSig, sdkappid, err := loginSig(ctx, o)
	if err != nil {
		return err
	}
	claims, err := sig.Decode(userSig)
	if err != nil {
		return err // exit 5 with the decode code
	}
	if sdkappid == 0 {
		sdkappid = claims.SDKAppID
	}

	// One login of a profile at a time, from reading it to saving the
	// new session: a second login then finds the first's session and
	// answers repeatLogin, instead of both logging in (each kicking the
	// other) and one saving a session the other had kicked.
	store := o.Sessions
	unlock, err := store.LockLogin(ctx, name)
	if err != nil {
		return err
	}
	unlock = sync.OnceFunc(unlock) // released early before logoutReplaced
	defer unlock()
	prev, had, err := store.Get(ctx, name)
	if err != nil {
		return err
	}
	endpoint := o.endpoint()
	// replaced: the profile's live session is of another server, app or
	// platform, which this login puts another in place of.
	replaced := false
	if had && prev.LoggedIn() {
		if prev.UserID != o.UserID {
			return &ExitError{Code: ExitFailure, Kind: KindConflict, Err: fmt.Errorf(
				"profile %q is logged in as %s: run `chatctl logout` first, or use --profile NAME for %s", name, prev.UserID, o.UserID)}
		}
		if o.Endpoint == "" {
			endpoint = o.endpointFor(prev)
		}
		if o.Platform == 0 && prev.Platform != 0 {
			platform = prev.Platform
		}
		if sameEndpoint(prev.Endpoint, endpoint) && prev.SDKAppID == sdkappid && samePlatform(prev.Platform, platform) {
			// Like the SDK: a live session is not logged in twice. Check it
			// is live with an a2 re-login of the same instance.
			cfg := clientConfig(endpoint, sdkappid, platform)
			res, perr := client.Probe(ctx, cfg, sessionOf(prev))
			if perr == nil {
				o.markChecked(ctx, name, prev, endpoint)
				return printLogin(app, name, prev, res, true)
			}
			end := classify(a2(perr))
			if end.State == "" {
				return describeErr(endpoint, perr)
			}
			o.recordEnd(ctx, name, prev, endpoint, end)
			// The old session is over (kicked, expired): log in afresh.
		} else {
			replaced = true
		}
	}

	cfg := clientConfig(endpoint, sdkappid, platform)
	conn, err := client.Dial(ctx, cfg)
	if err != nil {
		return describeErr(endpoint, err)
	}
	defer conn.Close()
	res, err := conn.Login(ctx, o.UserID, userSig)
	if err != nil {
		return describeErr(endpoint, err)
	}
	expires, ok := claims.ExpiresAt()
	if !ok || !printableTime(expires) {
		expires = time.Time{} // unknown: the file (RFC 3339) cannot hold it
	}
	now := o.Now().UTC()
	p := session.Profile{
		Endpoint: endpoint, SDKAppID: sdkappid, UserID: o.UserID,
		A2Key: res.A2Key, TinyID: res.TinyID, InstID: res.InstID, Platform: platform,
		ClockOffsetMS: res.Offset.Milliseconds(), ClockRTTMS: res.RTT.Milliseconds(), ClockMeasuredAt: res.LocalTime.UTC(),
		LoginAt: now, SigExpiresAt: expires.UTC(), HelloIntervalSec: int(res.HelloInterval / time.Second),
		State: session.StateReady, StateAt: now, CheckedAt: now,
	}
	// The server has logged the instance in: save it (or log it out again)
	// even if --timeout runs out or a signal comes meanwhile; both have
	// their own bounds.
	runCtx := ctx
	ctx = afterAnswer(ctx)
	err = store.Update(ctx, func(f *session.File) error {
		// The login lock keeps other logins out; a chatctl without it
		// (an older version) may still have saved a session meanwhile.
		// (A logout may have removed the profile meanwhile: no conflict.)
		if cur, ok := f.Profiles[name]; ok && (!had || !cur.SameSession(prev)) {
			return errLoginRace
		}
		f.Profiles[name] = p
		return nil
	})
	if err != nil {
		// Logged in on the server but not saved: say so, and log the
		// instance out again so nothing is left behind.
		_ = conn.Logout(ctx, 0)
		if errors.Is(err, errLoginRace) {
			return &ExitError{Code: ExitFailure, Kind: KindConflict, Err: fmt.Errorf(
				"another login saved a session in profile %q meanwhile; this login was logged out again: run `chatctl whoami --check`", name)}
		}
		return fmt.Errorf("logged in, but could not save the session (logged out again): %w", err)
	}
	err = printLogin(app, name, p, res, false)
	if replaced {
		// After the result, which a script waits for, not after up to
		// logoutReplaced's 10 s; and without the login lock.
		unlock()
		o.logoutReplaced(runCtx, name, prev)
	}
	return err
}

// logoutReplaced logs out, on its own server, the session a login has
// just replaced in the profile (another platform, app or server), which
// no profile would name any more: left alone it stayed online there (a
// mobile platform's PushOnline until its UserSig expired). Only once the
// new session is saved, so that a failed login keeps the old one; and
// best effort, within 10 s: the new session is the command's outcome.
func (o *LoginOptions) logoutReplaced(ctx context.Context, name string, prev session.Profile) {
	ctx, cancel := context.WithTimeout(ctx, replacedLogoutBound)
	defer cancel()
	// Its own server, whatever --endpoint says; one an older version
	// saved without its endpoint, where whoami would look.
	endpoint := o.endpointFor(prev)
	if prev.Endpoint != "" {
		endpoint = savedEndpoint(prev)
	}
	err := a2(client.LogoutSession(ctx, clientConfig(endpoint, prev.SDKAppID, prev.Platform), sessionOf(prev)))
	if err != nil && classify(err).State == "" { // not one that had ended anyway
		o.IO.warnf("the session profile %q held before (%s on %s, instance %d) was not logged out: %s; it stays on that server until its UserSig expires",
			name, platformName(prev.Platform), printable(endpoint, maxMessage), prev.InstID, oneLine(err.Error()))
	}
}

// replacedLogoutBound bounds logoutReplaced.
const replacedLogoutBound = 10 * time.Second

// errLoginRace: the profile changed between login's read and its save.
var errLoginRace = errors.New("profile changed during login")

// loginSig finds the UserSig: --user-sig-file, --user-sig -, CHATCTL_USER_SIG,
// else minted from the configured key. It returns the SDKAppID to use (0:
// take the UserSig's).
func loginSig(ctx context.Context, o *LoginOptions) (string, uint64, error) {
	app := o.IO
	sdkappid, err := app.sdkAppID()
	if err != nil {
		return "", 0, err
	}
	switch {
	case o.SigFile != "" && o.SigArg != "":
		return "", 0, exitf(ExitUsage, "give --user-sig-file or --user-sig -, not both")
	case o.SigFile != "":
		s, err := readSecret(ctx, app, o.SigFile, "the UserSig")
		return s, sdkappid, err
	case o.SigArg == "-":
		s, err := readSecret(ctx, app, "-", "the UserSig")
		return s, sdkappid, err
	case o.SigArg != "":
		return "", 0, exitf(ExitUsage, "--user-sig takes only - (stdin): a UserSig in argv is visible to other users; use --user-sig-file or CHATCTL_USER_SIG")
	}
	// Only when no flag gives one: an empty CHATCTL_USER_SIG must not
	// fail a login whose UserSig comes from --user-sig-file.
	if envSig, err := app.configSecret("user_sig"); err != nil || envSig != "" {
		return envSig, sdkappid, err
	}
	creds, err := o.Keys.resolve(ctx, app)
	if err != nil {
		return "", 0, err
	}
	expire, err := parseSigDuration(o.Expire)
	if err != nil {
		return "", 0, exitf(ExitUsage, "--expire: %v", err)
	}
	if expire <= 0 {
		// sig gen mints expired UserSigs on purpose (test fixtures); a
		// login with one could only be refused by the server, as exit 5.
		return "", 0, exitf(ExitUsage, "--expire %s: a UserSig minted to log in must not be expired at birth; give a positive duration", o.Expire)
	}
	s := sig.Gen(sig.Params{SDKAppID: creds.SDKAppID, Key: creds.Key, UserID: o.UserID, Expire: expire}, o.Now())
	return s, creds.SDKAppID, nil
}

// samePlatform compares saved platforms, 0 (older files) meaning Web.
func samePlatform(a, b int) bool {
	if a == 0 {
		a = client.DefaultPlatform
	}
	if b == 0 {
		b = client.DefaultPlatform
	}
	return a == b
}

func sessionOf(p session.Profile) client.Session {
	return client.Session{UserID: p.UserID, A2Key: p.A2Key, TinyID: p.TinyID, InstID: p.InstID}
}

func printLogin(app *App, name string, p session.Profile, res client.LoginResult, repeat bool) error {
	out := loginResult{
		Profile: name, User: p.UserID, SDKAppID: p.SDKAppID, Endpoint: p.Endpoint,
		Instance: p.InstID, TinyID: p.TinyID, RepeatLogin: repeat,
		OffsetMS: res.Offset.Milliseconds(), RTTMS: res.RTT.Milliseconds(),
		HelloInterval: int(res.HelloInterval / time.Second),
	}
	out.Expires = jsonTime(p.SigExpiresAt)
	if !res.ServerTime.IsZero() {
		out.ServerTimeMS = res.ServerTime.UnixMilli()
	}
	if app.JSON() {
		return app.printJSON(out)
	}
	note := ""
	if repeat {
		note = " (repeatLogin: already logged in)"
	}
	_, err := fmt.Fprintf(app.Out, "%s\tinstance %d\texpires %s%s\n", printable(p.UserID, maxField), p.InstID, stamp(p.SigExpiresAt), note)
	return err
}
