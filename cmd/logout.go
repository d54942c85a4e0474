package cmd

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"chatctl/pkg/client"
	"chatctl/pkg/session"
	"chatctl/pkg/wire"

	"github.com/spf13/cobra"
)

func init() { register(newLogoutCmd) }

// logoutResult is one line of logout's -o json output.
type logoutResult struct {
	Profile   string `json:"profile"`
	User      string `json:"user"`
	LoggedOut bool   `json:"logged_out"`
	Server    bool   `json:"server"` // the server answered the wslogout
	Note      string `json:"note,omitempty"`
}

func newLogoutCmd(app *App) *cobra.Command {
	var all, local bool
	c := &cobra.Command{
		Use:   "logout",
		Short: "Log the profile's instance out on the server and remove the profile",
		Long: `Log the profile's instance out on the server (wslogout), then remove the
profile. Not logged in: exit 3. Server unreachable: the session is kept and the
exit code is 6, unless --local, which removes it without asking the server.
--all does this for every profile (the SDK's destroy).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if !all {
				name, err := app.profileName()
				if err != nil {
					return err
				}
				return logoutOne(ctx, app, name, local)
			}
			profiles, err := app.sessions().List(ctx)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(profiles))
			for n := range profiles {
				names = append(names, n)
			}
			sort.Strings(names)
			var first error
			for _, n := range names {
				if err := logoutOne(ctx, app, n, local); err != nil {
					var ee *ExitError
					if errors.As(err, &ee) && ee.Code == ExitNotLoggedIn {
						continue // a stale profile, removed: not a failure of --all
					}
					fmt.Fprintln(app.Err, "chatctl: "+oneLine(err.Error()))
					if first == nil {
						first = exitWith(exitCode(err), nil)
					}
				}
			}
			return first
		},
	}
	c.Flags().BoolVar(&all, "all", false, "log out every profile")
	c.Flags().BoolVar(&local, "local", false, "remove the session without telling the server")
	return c
}

func logoutOne(ctx context.Context, app *App, name string, local bool) error {
	p, err := app.loadProfile(ctx, name)
	if err != nil {
		return err
	}
	res := logoutResult{Profile: name, User: p.UserID}
	if !p.LoggedIn() {
		if err := removeProfile(ctx, app, name, p); err != nil {
			return err
		}
		why := notReadyErr(name, p).Error()
		return exitf(ExitNotLoggedIn, "not logged in: %s; removed the stale profile", why)
	}
	if !local {
		endpoint := app.endpointFor(p)
		err := serverLogout(ctx, app.clientConfig(endpoint, p.SDKAppID), p)
		switch state, kick := endState(err); {
		case err == nil:
			res.Server = true
		case state != "":
			// The server had already ended this session: nothing to log out.
			res.Note = "the server had already ended the session (" + string(state) + ifNot(kick, ": "+kick) + ")"
		default:
			if errors.Is(err, client.ErrUnreachable) {
				return exitf(ExitUnreachable, "cannot reach %s; the session is kept (use --local to remove it anyway)", endpoint)
			}
			return describeErr(endpoint, err)
		}
	}
	if err := removeProfile(ctx, app, name, p); err != nil {
		return err
	}
	res.LoggedOut = true
	if app.JSON() {
		return app.printJSON(res)
	}
	if res.Note != "" {
		app.infof("%s: %s", name, res.Note)
	}
	app.infof("logged out %s (profile %q)", p.UserID, name)
	return nil
}

func ifNot(s, v string) string {
	if s == "" {
		return ""
	}
	return v
}

// serverLogout attaches the saved instance (a2 re-login) and logs it out.
func serverLogout(ctx context.Context, cfg client.Config, p session.Profile) error {
	conn, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Relogin(ctx, sessionOf(p)); err != nil {
		return err
	}
	return conn.Logout(ctx, wire.LogoutUser)
}

// removeProfile deletes the profile unless someone logged it in again since
// it was read.
func removeProfile(ctx context.Context, app *App, name string, p session.Profile) error {
	return app.sessions().Update(ctx, func(f *session.File) error {
		if cur, ok := f.Profiles[name]; ok && cur.InstID == p.InstID && cur.UserID == p.UserID {
			delete(f.Profiles, name)
		}
		return nil
	})
}
