package cmd

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

func init() { register("logout", newLogoutCmd) }

// logoutResult is one line of logout's -o json output.
type logoutResult struct {
	Profile   string `json:"profile"`
	User      string `json:"user"`
	LoggedOut bool   `json:"logged_out"` // it was logged in and is not any more
	Server    bool   `json:"server"`     // the server answered the wslogout
	Removed   bool   `json:"removed"`    // the profile was removed
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
			if ctx == nil {
				ctx = context.Background()
			}
			if !all {
				name, err := app.profileName()
				if err != nil {
					return err
				}
				return logoutOne(ctx, app, name, local)
			}
			return logoutAll(ctx, app, local)
		},
	}
	c.Flags().BoolVar(&all, "all", false, "log out every profile")
	c.Flags().BoolVar(&local, "local", false, "remove the session without telling the server")
	return c
}

// logoutAll logs out every profile (the SDK's destroy). Profiles whose
// session had already ended are removed with a note. Exit 3 when no profile
// was logged in; otherwise the first failure's code, after trying them all.
func logoutAll(ctx context.Context, app *App, local bool) error {
	if err := app.checkConfigDir(); err != nil {
		return err
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
	loggedOut := 0
	for _, n := range names {
		err := logoutOne(ctx, app, n, local)
		var ee *ExitError
		switch {
		case err == nil:
			loggedOut++
		case errors.As(err, &ee) && ee.Code == ExitNotLoggedIn:
			// A stale profile (kicked, expired), removed: not a failure
			// of --all.
			if !app.JSON() {
				app.infof("%s", err)
			}
		default:
			fmt.Fprintln(app.Err, "chatctl: "+oneLine(err.Error()))
			if first == nil {
				first = exitWith(exitCode(err), nil)
			}
		}
	}
	if first != nil {
		return first
	}
	if loggedOut == 0 {
		return exitf(ExitNotLoggedIn, "no profile was logged in")
	}
	return nil
}

// logoutOne logs out one profile. A profile whose session had already
// ended (the file says kicked or expired, or the server refuses the a2
// re-login as revoked) is removed with exit 3, "not logged in", and a note
// of why.
func logoutOne(ctx context.Context, app *App, name string, local bool) error {
	p, err := app.loadProfile(ctx, name)
	if err != nil {
		return err
	}
	res := logoutResult{Profile: name, User: p.UserID}
	state, kick := p.State, p.KickType
	if p.LoggedIn() && !local {
		endpoint := app.endpointFor(p)
		err := client.LogoutSession(ctx, app.clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p))
		switch state, kick = sessionEnd(err); {
		case err == nil:
			res.Server = true
			state = session.StateReady
		case state != "":
			// The server had already ended this session: nothing to log out.
		case errors.Is(err, client.ErrUnreachable):
			return exitf(ExitUnreachable, "cannot reach %s; the session is kept (use --local to remove it anyway)", endpoint)
		default:
			return app.sessionErr(ctx, name, p, endpoint, err)
		}
	}
	if err := removeProfile(ctx, app, name, p); err != nil {
		if res.Server {
			return fmt.Errorf("logged %s out on the server, but could not remove profile %q: %w", p.UserID, name, err)
		}
		return err
	}
	res.Removed = true
	if state != session.StateReady {
		res.Note = "the session had already ended (" + string(state) + ifNot(kick, ": "+kick) + ")"
		if app.JSON() {
			if err := app.printJSON(res); err != nil {
				return err
			}
		}
		return exitf(ExitNotLoggedIn, "profile %q was not logged in: %s; removed it", name, res.Note)
	}
	res.LoggedOut = true
	if app.JSON() {
		return app.printJSON(res)
	}
	if local {
		app.infof("removed the session of %s (profile %q) without telling the server", p.UserID, name)
		return nil
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
