package cmd

import (
	"context"
	"fmt"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

func init() {
	register("logout", func(app *App) *cobra.Command { return newLogoutCmd(app, nil) })
}

// logoutResult is one line of logout's -o json output.
type logoutResult struct {
	Profile   string `json:"profile"`
	User      string `json:"user"`
	LoggedOut bool   `json:"logged_out"` // it was logged in and is not any more
	Server    bool   `json:"server"`     // the server answered the wslogout
	Removed   bool   `json:"removed"`    // the profile was removed
	Note      string `json:"note,omitempty"`
	// Error is why this profile failed, in logout --all's list (a single
	// logout's document has it at the top, as every command's).
	Error *errorDoc `json:"error,omitempty"`
}

// LogoutOptions is what logout needs: the lifecycle dependencies and its
// flags.
type LogoutOptions struct {
	lifecycleOptions
	serverWait
	All   bool // every profile (--all)
	Local bool // without telling the server (--local)

	// answered, when set, runs once the server has answered a profile's
	// logout (tests: a signal at that moment).
	answered func()
}

// newLogoutCmd builds logout; runF, when not nil, runs instead of
// logoutRun (tests of the flags).
func newLogoutCmd(app *App, runF func(*LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{}
	c := &cobra.Command{
		Use:   "logout",
		Short: "Log the profile's instance out on the server and remove the profile",
		Long: `Log the profile's instance out on the server (wslogout), then remove the
profile. Not logged in: exit 3. Server unreachable: the session is kept and the
exit code is 6, unless --local, which removes it without asking the server.
--all does this for every profile (the SDK's destroy).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			name := ""
			if !opts.All {
				var err error
				if name, err = app.profileName(); err != nil {
					return err
				}
			}
			opts.lifecycleOptions = app.lifecycle(name)
			return runAsking(c, opts.serverWait, when(opts.Local, "--local asks none"), opts, runF, logoutRun)
		},
	}
	c.Flags().BoolVar(&opts.All, "all", false, "log out every profile")
	c.Flags().BoolVar(&opts.Local, "local", false, "remove the session without telling the server")
	opts.serverWait.flag(c, sdkBounds)
	return c
}

func logoutRun(ctx context.Context, o *LogoutOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.All {
		return logoutAll(ctx, o)
	}
	res, err := logoutOne(ctx, o, o.Profile)
	if err != nil {
		if res.Profile != "" {
			return withData(err, res)
		}
		return err
	}
	return printLogout(o.IO, res, o.Local)
}

// logoutAllResult is logout --all's -o json document.
type logoutAllResult struct {
	Profiles []logoutResult `json:"profiles"`
}

// logoutAll logs out every profile (the SDK's destroy). Profiles whose
// session had already ended are removed with a note. Exit 3 when no profile
// was logged in; otherwise the first failure's code, after trying them all.
func logoutAll(ctx context.Context, o *LogoutOptions) error {
	app := o.IO
	all := logoutAllResult{Profiles: []logoutResult{}}
	names, profiles, err := o.allProfiles(ctx)
	if err != nil {
		return withData(err, all) // none could be read, so none logged out
	}
	var first error
	loggedOut := 0
	// stopped lists the profiles from i on as kept, when a signal or
	// --timeout ended the run: the run fails with its end (interrupted,
	// or gaveUp's exit 6), once.
	// notDone counts the one it cut short, if any, with those not tried.
	stopped := func(i, notDone int) {
		for _, m := range names[i:] {
			all.Profiles = append(all.Profiles, logoutResult{Profile: m, User: profiles[m].UserID, Note: "not tried: the run was stopped first"})
		}
		if first == nil {
			first = &stoppedErr{fmt.Sprintf("before logging out %d of %d profiles", notDone, len(names)), ctx.Err()}
		}
	}
	for i, n := range names {
		if runEnded(ctx) {
			stopped(i, len(names)-i)
			break
		}
		res, err := logoutOne(ctx, o, n)
		if err != nil && runEnded(ctx) && !res.Server && exitCode(err) != ExitNotLoggedIn {
			// The run's end cut this one short: not its server's fault
			// ("cannot reach" a server that was there).
			res.Note = "not finished: the run was stopped during it; the session is kept"
			if res.Profile != "" {
				all.Profiles = append(all.Profiles, res)
			}
			stopped(i+1, len(names)-i)
			break
		}
		if oc := classify(err); err != nil && oc.Code != ExitNotLoggedIn {
			doc := docOf(oc, oneLine(err.Error()))
			res.Error = &doc
		}
		if res.Profile != "" {
			all.Profiles = append(all.Profiles, res)
		}
		switch code := exitCode(err); {
		case err == nil:
			loggedOut++
			if !app.JSON() {
				_ = printLogout(app, res, o.Local)
			}
		case code == ExitNotLoggedIn:
			// A stale profile (kicked, expired), removed: not a failure
			// of --all.
			if !app.JSON() {
				app.infof("%s", err)
			}
		default:
			if first == nil {
				first = err
			} else {
				fmt.Fprintln(app.Err, "chatctl: "+oneLine(err.Error()))
			}
		}
	}
	switch {
	case first != nil:
		return withData(first, all)
	case loggedOut == 0:
		return withData(exitf(ExitNotLoggedIn, "no profile was logged in"), all)
	case app.JSON():
		return app.printJSON(all)
	}
	return nil
}

// logoutOne logs out one profile. A profile whose session had already
// ended (the file says kicked or expired, or the server refuses the a2
// re-login as revoked) is removed with exit 3, "not logged in", and a note
// of why. res names the profile when it was found.
func logoutOne(ctx context.Context, o *LogoutOptions, name string) (res logoutResult, err error) {
	p, err := o.loadProfile(ctx, name)
	if err != nil {
		return res, err
	}
	res = logoutResult{Profile: name, User: p.UserID}
	end := outcome{State: p.State, KickType: p.KickType}
	save := ctx
	if p.LoggedIn() && !o.Local {
		endpoint := o.endpointFor(p)
		err := a2(client.LogoutSession(ctx, clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p)))
		switch end = classify(err); {
		case err == nil:
			res.Server = true
			end.State = session.StateReady
		case end.State != "" && !ownServer(p, endpoint):
			// Another's refusal is no reason to drop
			// the only copy of the A2Key.
			return res, &ExitError{Code: ExitFailure, Kind: KindServerRefused, Data: res,
				Err: because(err, "%s refused the session of %s, but it is not the server of profile %q (%s): nothing was logged out; the session is kept (use --local to remove it anyway)",
					endpoint, p.UserID, name, p.Endpoint)}
		case end.State != "":
			// The server had already ended this session: nothing to log out.
		case end.Kind == KindUnreachable:
			return res, because(err, "cannot reach %s; the session is kept (use --local to remove it anyway)", endpoint)
		default:
			return res, o.sessionErr(ctx, name, p, endpoint, err)
		}
		// The server's answer is recorded even if a signal comes now
		// (docs/OUTPUT.md, "Signals"): a profile left "ready" would name
		// an instance the server has logged out.
		save = afterAnswer(ctx)
		if o.answered != nil {
			o.answered()
		}
	}
	if err := removeProfile(save, o.Sessions, name, p); err != nil {
		if res.Server {
			return res, fmt.Errorf("logged %s out on the server, but could not remove profile %q: %w", p.UserID, name, err)
		}
		return res, err
	}
	res.Removed = true
	if end.State != session.StateReady {
		res.Note = "the session had already ended"
		if end.State != "" {
			res.Note += " (" + end.ended() + ")"
		}
		return res, exitf(ExitNotLoggedIn, "profile %q was not logged in: %s; removed it", name, res.Note)
	}
	res.LoggedOut = true
	return res, nil
}

// printLogout prints one profile's logout.
func printLogout(app *App, res logoutResult, local bool) error {
	switch {
	case app.JSON():
		return app.printJSON(res)
	case local:
		app.infof("removed the session of %s (profile %q) without telling the server", res.User, res.Profile)
	default:
		app.infof("logged out %s (profile %q)", res.User, res.Profile)
	}
	return nil
}

// removeProfile deletes the profile unless someone logged it in again since
// it was read.
func removeProfile(ctx context.Context, store *session.Store, name string, p session.Profile) error {
	return store.Update(ctx, func(f *session.File) error {
		if cur, ok := f.Profiles[name]; ok && cur.SameSession(p) {
			delete(f.Profiles, name)
		}
		return nil
	})
}
