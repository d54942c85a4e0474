package cmd

import (
	"context"
	"fmt"
	"math"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
	"chatctl/pkg/wire"

	"github.com/spf13/cobra"
)

func init() {
	register("whoami", func(app *App) *cobra.Command { return newWhoamiCmd(app, nil) })
}

// whoamiResult is whoami's -o json output.
type whoamiResult struct {
	Profile  string `json:"profile"`
	User     string `json:"user"`
	SDKAppID uint64 `json:"sdkappid"`
	Endpoint string `json:"endpoint"`
	Instance uint64 `json:"instance"`
	Platform string `json:"platform"`
	// State is "ready" when --check has just confirmed the session with
	// the server, else "unchecked": the session file says ready, as of
	// CheckedAt.
	State     string   `json:"state"`
	Checked   bool     `json:"checked"`
	CheckedAt jsonTime `json:"checked_at"` // when the server last confirmed the session
	LoginAt   jsonTime `json:"login_at"`
	Expires   jsonTime `json:"usersig_expires"`
	A2Key     string   `json:"a2_key,omitempty"`
}

// stateUnchecked is a ready session that this run did not confirm with the
// server.
const stateUnchecked = "unchecked"

// platformName is the saved platform's name (0, older files: Web).
func platformName(n int) string {
	if n == 0 {
		n = client.DefaultPlatform
	}
	return wire.Platform(n).String()
}

// WhoamiOptions is what whoami needs: the lifecycle dependencies and its
// flags.
type WhoamiOptions struct {
	lifecycleOptions
	serverWait
	Check     bool // ask the server (--check)
	ShowToken bool // also print the A2Key (--show-token)
}

// newWhoamiCmd builds whoami; runF, when not nil, runs instead of
// whoamiRun (tests of the flags).
func newWhoamiCmd(app *App, runF func(*WhoamiOptions) error) *cobra.Command {
	opts := &WhoamiOptions{}
	c := &cobra.Command{
		Use:   "whoami",
		Short: "Print the logged-in user of the profile",
		Long: `Print the profile's logged-in user (the SDK's getLoginUser), read from the
session file with no network. Exit 3 and nothing on stdout when not logged in.

Without --check this is what the profile last knew: a kick by another login
is not seen until something asks the server, so -o json says "state":
"unchecked" and "checked_at" (when the server last confirmed the session).
--check asks the server (the SDK's isReady): exit 0 ready, 4 kicked out or
revoked (with the type), 5 UserSig expired, 6 server unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			lo, err := app.profileOptions()
			if err != nil {
				return err
			}
			opts.lifecycleOptions = lo
			return runAsking(c, opts.serverWait, when(!opts.Check, "asks one only with --check"), opts, runF, whoamiRun)
		},
	}
	c.Flags().BoolVar(&opts.Check, "check", false, "ask the server whether the session is still ready")
	opts.serverWait.flag(c, sdkBounds)
	c.Flags().BoolVar(&opts.ShowToken, "show-token", false, "also print the session's A2Key (a secret)")
	return c
}

// sigExpired says whether the session's UserSig has expired by the
// server's clock (the saved offset): the server refuses it after the whole
// second it expires in.
func sigExpired(p session.Profile, now time.Time) bool {
	return !p.SigExpiresAt.IsZero() && session.ServerNow(p, now).Unix() > p.SigExpiresAt.Unix()
}

// sigExpiredErr is the answer, without asking the server, for a profile
// whose UserSig has expired (sigExpired): past its expiry the server
// refuses the session (userSigExpired), so it is the same error as a
// session the server ended that way: exit 5, usersig_expired, kick_type.
func sigExpiredErr(name string, p session.Profile) error {
	p.State, p.KickType, p.StateAt = session.StateExpired, client.KickedUserSigExpired, p.SigExpiresAt
	return withData(notReadyErr(name, p), profileRef{name, p.UserID})
}

// checkedAt is when the server last confirmed p's session: CheckedAt, or
// for profiles saved before it existed, the login.
func checkedAt(p session.Profile) time.Time {
	if p.CheckedAt.IsZero() {
		return p.LoginAt
	}
	return p.CheckedAt
}

func whoamiRun(ctx context.Context, o *WhoamiOptions) error {
	name, p, err := o.readyProfile(ctx)
	if err != nil {
		return err
	}
	if !o.Check && sigExpired(p, o.Now()) {
		return sigExpiredErr(name, p)
	}
	state, asked := stateUnchecked, p.Endpoint
	if o.Check {
		endpoint := o.endpointFor(p)
		asked = endpoint // the server asked, as status --check reports it
		if _, err := client.Probe(ctx, clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p)); err != nil {
			return o.sessionErr(ctx, name, p, endpoint, err)
		}
		p.CheckedAt, state = o.markChecked(ctx, name, p, endpoint), string(session.StateReady)
	}
	if o.IO.JSON() {
		out := whoamiResult{Profile: name, User: p.UserID, SDKAppID: p.SDKAppID, Endpoint: asked,
			Instance: p.InstID, Platform: platformName(p.Platform), State: state, Checked: o.Check,
			CheckedAt: jsonTime(checkedAt(p)), LoginAt: jsonTime(p.LoginAt)}
		out.Expires = jsonTime(p.SigExpiresAt)
		if o.ShowToken {
			out.A2Key = p.A2Key
		}
		return o.IO.printJSON(out)
	}
	if o.ShowToken {
		// The token whole (a cut one would be a broken secret), escaped
		// only if the file's is not printable: then it is corrupt anyway.
		_, err = fmt.Fprintf(o.IO.Out, "%s\t%s\n", printable(p.UserID, maxField), printable(p.A2Key, math.MaxInt))
		return err
	}
	_, err = fmt.Fprintln(o.IO.Out, printable(p.UserID, maxField))
	return err
}
