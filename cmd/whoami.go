package cmd

import (
	"context"
	"fmt"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

func init() { register("whoami", newWhoamiCmd) }

// whoamiResult is whoami's -o json output.
type whoamiResult struct {
	Profile  string `json:"profile"`
	User     string `json:"user"`
	SDKAppID uint64 `json:"sdkappid"`
	Endpoint string `json:"endpoint"`
	Instance uint64 `json:"instance"`
	State    string `json:"state"`
	KickType string `json:"kick_type,omitempty"`
	LoginAt  string `json:"login_at"`
	Expires  string `json:"usersig_expires,omitempty"`
	Checked  bool   `json:"checked"`
	A2Key    string `json:"a2_key,omitempty"`
}

func newWhoamiCmd(app *App) *cobra.Command {
	var check, showToken bool
	c := &cobra.Command{
		Use:   "whoami",
		Short: "Print the logged-in user of the profile",
		Long: `Print the profile's logged-in user (the SDK's getLoginUser), read from the
session file with no network. Exit 3 and nothing on stdout when not logged in.

--check asks the server too (the SDK's isReady): exit 0 ready, 4 kicked out or
revoked (with the type), 5 UserSig expired, 6 server unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runWhoami(c.Context(), app, check, showToken)
		},
	}
	c.Flags().BoolVar(&check, "check", false, "ask the server whether the session is still ready")
	c.Flags().BoolVar(&showToken, "show-token", false, "also print the session's A2Key (a secret)")
	return c
}

// sigExpired says whether the session's UserSig has expired by the
// server's clock (the saved offset): the server refuses it after the whole
// second it expires in.
func sigExpired(p session.Profile, now time.Time) bool {
	return !p.SigExpiresAt.IsZero() && session.ServerNow(p, now).Unix() > p.SigExpiresAt.Unix()
}

func runWhoami(ctx context.Context, app *App, check, showToken bool) error {
	name, p, err := app.readyProfile(ctx)
	if err != nil {
		return err
	}
	if !check && sigExpired(p, time.Now()) {
		// The UserSig's expiry is known: past it the server refuses the
		// session (userSigExpired), so it is not logged in any more.
		return exitf(ExitSigRejected, "%s's UserSig expired (userSigExpired) at %s (profile %q): log in again with a new UserSig",
			p.UserID, stamp(p.SigExpiresAt), name)
	}
	if check {
		endpoint := app.endpointFor(p)
		if _, err := client.Probe(ctx, app.clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p)); err != nil {
			return app.sessionErr(ctx, name, p, endpoint, err)
		}
	}
	if app.JSON() {
		out := whoamiResult{Profile: name, User: p.UserID, SDKAppID: p.SDKAppID, Endpoint: p.Endpoint,
			Instance: p.InstID, State: string(p.State), KickType: p.KickType, LoginAt: stamp(p.LoginAt), Checked: check}
		if !p.SigExpiresAt.IsZero() {
			out.Expires = stamp(p.SigExpiresAt)
		}
		if showToken {
			out.A2Key = p.A2Key
		}
		return app.printJSON(out)
	}
	if showToken {
		_, err = fmt.Fprintf(app.Out, "%s\t%s\n", p.UserID, p.A2Key)
		return err
	}
	_, err = fmt.Fprintln(app.Out, p.UserID)
	return err
}
