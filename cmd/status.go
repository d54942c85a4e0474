package cmd

import (
	"context"
	"fmt"
	"sync"
	"text/tabwriter"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

func init() {
	register("status", func(app *App) *cobra.Command { return newStatusCmd(app, nil) })
}

// statusProfile is one profile in status's output.
type statusProfile struct {
	Profile   string   `json:"profile"`
	User      string   `json:"user"`
	SDKAppID  uint64   `json:"sdkappid"`
	Endpoint  string   `json:"endpoint"`
	Platform  string   `json:"platform"`
	Instance  uint64   `json:"instance"`
	State     string   `json:"state"` // ready, unchecked, kicked (kick_type revoked too), expired, logged_out, unreachable, error
	KickType  string   `json:"kick_type,omitempty"`
	CheckedAt jsonTime `json:"checked_at"`
	Expires   jsonTime `json:"usersig_expires"`
	OK        bool     `json:"ok"`
	// Error is why the profile is not OK: the error object of
	// docs/OUTPUT.md, also for a state read from the file.
	Error *errorDoc `json:"error,omitempty"`
}

// statusResult is status's -o json document.
type statusResult struct {
	Checked  bool            `json:"checked"`
	Profiles []statusProfile `json:"profiles"`
}

// statusParallel bounds the probes of status --check in flight at once.
const statusParallel = 8

// StatusOptions is what status needs: the lifecycle dependencies and its
// flags.
type StatusOptions struct {
	lifecycleOptions
	serverWait
	Check bool // ask each profile's server (--check)
}

// newStatusCmd builds status; runF, when not nil, runs instead of
// statusRun (tests of the flags).
func newStatusCmd(app *App, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{}
	c := &cobra.Command{
		Use:   "status",
		Short: "Show every profile: user, app, endpoint, state, last check, UserSig expiry",
		Long: `Show every profile of the session file: its user, SDKAppID, endpoint, state,
when the server last confirmed it, and when its UserSig expires. Without
--check this reads the file only: a ready session shows as "unchecked".
--check asks each profile's server (an a2 re-login, as whoami --check), up
to 8 at a time, and records what it learns.

Exit 0 when every profile is fine (unchecked or ready, UserSig not expired;
with --check, ready); 3 when there is no profile; otherwise the code of the
first profile, by name, that is not (4 kicked or revoked, 5 expired,
6 unreachable, 3 logged out, 1 other).`,
		Example: `  chatctl status
  chatctl status --check -o json | jq -r '.profiles[] | select(.ok | not) | .profile'`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.lifecycleOptions = app.lifecycle("")
			return runAsking(c, opts.serverWait, when(!opts.Check, "asks the servers only with --check"), opts, runF, statusRun)
		},
	}
	c.Flags().BoolVar(&opts.Check, "check", false, "ask each profile's server whether its session is ready")
	opts.serverWait.flag(c, sdkBounds)
	return c
}

func statusRun(ctx context.Context, o *StatusOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	app, check := o.IO, o.Check
	names, profiles, err := o.allProfiles(ctx)
	if err != nil {
		// The document's shape whatever happened: no profile could be read.
		return withData(err, statusResult{Checked: check, Profiles: []statusProfile{}})
	}
	out := statusResult{Checked: check, Profiles: make([]statusProfile, len(names))}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statusParallel)
	for i, n := range names {
		p := profiles[n]
		if !check || !p.LoggedIn() {
			out.Profiles[i], errs[i] = o.profileStatus(ctx, n, p, false)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out.Profiles[i], errs[i] = o.profileStatus(ctx, n, p, true)
		}()
	}
	wg.Wait()

	var first error
	for _, err := range errs {
		if err != nil {
			first = err
			break
		}
	}
	switch {
	case len(names) == 0:
		return withData(exitf(ExitNotLoggedIn, "no profile: run `chatctl login USER`"), out)
	case first != nil:
		if !app.JSON() {
			_ = printStatusTable(app, out) // the profile's failure is the one to report
		}
		return withData(first, out)
	case app.JSON():
		return app.printJSON(out)
	}
	return printStatusTable(app, out)
}

// profileStatus is one profile's line, and the error that makes it not
// fine (nil when it is). probe asks its server.
func (o *StatusOptions) profileStatus(ctx context.Context, name string, p session.Profile, probe bool) (statusProfile, error) {
	sp := statusProfile{Profile: name, User: p.UserID, SDKAppID: p.SDKAppID, Endpoint: p.Endpoint,
		Platform: platformName(p.Platform), Instance: p.InstID, State: string(p.State), KickType: p.KickType}
	sp.Expires = jsonTime(p.SigExpiresAt)
	var err error
	switch {
	case !p.LoggedIn():
		err = notReadyErr(name, p)
	case probe:
		endpoint := o.endpointFor(p)
		sp.Endpoint = endpoint // the server asked (--endpoint may name another)
		if _, perr := client.Probe(ctx, clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p)); perr != nil {
			// A probe a signal stopped says nothing of the profile.
			err = interrupted(ctx, o.sessionErrMsg(ctx, name, p, endpoint, perr))
		} else {
			p.CheckedAt = o.markChecked(ctx, name, p, endpoint)
		}
	case sigExpired(p, o.Now()):
		err = sigExpiredErr(name, p)
	default:
		sp.State = stateUnchecked
	}
	sp.CheckedAt = jsonTime(checkedAt(p))
	if err == nil {
		sp.OK = true
		return sp, nil
	}
	oc := classify(err)
	sp.State = stateOf(oc)
	sp.KickType = oc.KickType
	sp.Error = &errorDoc{Code: oc.Code, Kind: oc.Kind, Message: oneLine(err.Error()), KickType: oc.KickType, TencentCode: oc.TencentCode, Tried: oc.Tried}
	return sp, err
}

// stateOf is the status state of a profile that is not fine.
func stateOf(o outcome) string {
	switch o.Kind {
	case KindKicked, KindRevoked, KindUserSigExpired, KindLoggedOut:
		if o.State != "" {
			return string(o.State)
		}
	case KindUnreachable:
		return "unreachable"
	}
	return "error"
}

// printStatusTable prints out as a table; the error is the write's.
func printStatusTable(app *App, out statusResult) error {
	tw := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tUSER\tSDKAPPID\tENDPOINT\tSTATE\tCHECKED\tUSERSIG EXPIRES")
	for _, p := range out.Profiles {
		state := p.State
		if p.KickType != "" && p.KickType != p.State {
			state += " (" + p.KickType + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Profile, printable(p.User, maxField), p.SDKAppID,
			printable(p.Endpoint, maxMessage), printable(state, maxField), stamp(time.Time(p.CheckedAt)), stamp(time.Time(p.Expires)))
	}
	return tw.Flush()
}
