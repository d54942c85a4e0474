package cmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"chatctl/pkg/client"

	"github.com/spf13/cobra"
)

func init() { register("watch", newWatchCmd) }

// watchLine is one line of watch's output.
type watchLine struct {
	client.Event
	Profile string `json:"profile"`
	User    string `json:"user"`
}

var watchEvents = []string{client.EventSDKReady, client.EventSDKNotReady, client.EventNetStateChange, client.EventKickedOut}

func newWatchCmd(app *App) *cobra.Command {
	var until string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "watch",
		Short: "Attach to the session and stream its lifecycle events as JSON lines",
		Long: `Attach to the profile's session (a2 re-login) and print one JSON object per
line, flushed at once: SDK_READY, NET_STATE_CHANGE (state connecting,
connected, disconnected), KICKED_OUT (type multipleAccount, multipleDevice,
REST_API_Kick, userSigExpired), SDK_NOT_READY. Every line has the time,
profile and user.

watch answers kicks as the SDK does, keeps heartbeats and hellos, and
reconnects with backoff after a network loss or a server restart. It exits 4
after KICKED_OUT (5 for userSigExpired), 0 on SIGINT/SIGTERM.

For CI: --until EVENT exits 0 once EVENT is printed; --timeout D gives up
after D (exit 1 if --until's event did not come, else 0).`,
		Example: `  chatctl watch | jq -c 'select(.event=="KICKED_OUT")'
  chatctl watch --until SDK_READY --timeout 10s`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if until != "" && !contains(watchEvents, until) {
				return usageErr(c, fmt.Errorf("--until must be one of %v, not %q", watchEvents, until))
			}
			if timeout < 0 {
				return usageErr(c, fmt.Errorf("--timeout must be positive"))
			}
			return runWatch(c.Context(), app, until, timeout)
		},
	}
	c.Flags().StringVar(&until, "until", "", "exit 0 once this event is printed (e.g. SDK_READY)")
	c.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (e.g. 10s)")
	return c
}

func runWatch(ctx context.Context, app *App, until string, timeout time.Duration) error {
	if ctx == nil {
		ctx = context.Background()
	}
	name, p, err := app.readyProfile(ctx)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var timedOut <-chan struct{}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
		timedOut = ctx.Done()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	seen := false
	var writeErr error
	emit := func(e client.Event) {
		if writeErr != nil {
			return
		}
		e.Time = e.Time.UTC()
		writeErr = app.printJSON(watchLine{Event: e, Profile: name, User: p.UserID})
		if writeErr != nil {
			cancel() // stdout is gone (a closed pipe): stop watching
		}
		if until != "" && e.Name == until {
			seen = true
			cancel()
		}
	}
	endpoint := app.endpointFor(p)
	err = client.Watch(ctx, app.clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p), emit)
	if seen {
		if err != nil {
			app.recordEnd(context.Background(), name, p, endpoint, err)
		}
		return nil
	}
	if err != nil {
		return app.sessionErr(context.Background(), name, p, endpoint, err)
	}
	if writeErr != nil {
		return exitf(ExitFailure, "writing events: %v", writeErr)
	}
	select {
	case <-timedOut:
		if until != "" {
			return exitf(ExitFailure, "timed out after %s waiting for %s", timeout, until)
		}
	default:
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
