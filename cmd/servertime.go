package cmd

import (
	"context"
	"fmt"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

func init() { register("server-time", newServerTimeCmd) }

// serverTimeResult is server-time's -o json output.
type serverTimeResult struct {
	ServerTimeMS int64  `json:"server_time_ms"`
	ServerTime   string `json:"server_time"`
	OffsetMS     int64  `json:"offset_ms"`
	RTTMS        int64  `json:"rtt_ms"`
	MeasuredAt   string `json:"measured_at"`
	Cached       bool   `json:"cached"`
}

func newServerTimeCmd(app *App) *cobra.Command {
	var cached, ms bool
	c := &cobra.Command{
		Use:   "server-time",
		Short: "Print the chat server's clock",
		Long: `Print the server's clock (the SDK's getServerTime), measured live: an a2
re-login whose reply carries the server's TimeStamp, corrected by half the
round trip; the offset is saved in the profile. --cached uses the saved offset
with no network, as the SDK does. Unix seconds by default, --ms for
milliseconds.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runServerTime(c.Context(), app, cached, ms)
		},
	}
	c.Flags().BoolVar(&cached, "cached", false, "use the saved clock offset, no network")
	c.Flags().BoolVar(&ms, "ms", false, "print milliseconds instead of seconds")
	return c
}

func runServerTime(ctx context.Context, app *App, cached, ms bool) error {
	name, p, err := app.readyProfile(ctx)
	if err != nil {
		return err
	}
	if !cached {
		endpoint := app.endpointFor(p)
		res, err := client.Probe(ctx, app.clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p))
		if err != nil {
			return app.sessionErr(ctx, name, p, endpoint, err)
		}
		if res.ServerTime.IsZero() {
			return exitf(ExitFailure, "the server's login reply carries no TimeStamp")
		}
		p.ClockOffsetMS, p.ClockRTTMS, p.ClockMeasuredAt = res.Offset.Milliseconds(), res.RTT.Milliseconds(), res.LocalTime.UTC()
		err = app.sessions().Update(ctx, func(f *session.File) error {
			cur, ok := f.Profiles[name]
			if ok && cur.InstID == p.InstID {
				cur.ClockOffsetMS, cur.ClockRTTMS, cur.ClockMeasuredAt = p.ClockOffsetMS, p.ClockRTTMS, p.ClockMeasuredAt
				f.Profiles[name] = cur
			}
			return nil
		})
		if err != nil {
			app.warnf("could not save the clock offset: %v", err)
		}
	} else if p.ClockMeasuredAt.IsZero() {
		return exitf(ExitFailure, "no saved clock offset for profile %q: run `chatctl server-time` without --cached once", name)
	}
	now := session.ServerNow(p, time.Now())
	if app.JSON() {
		return app.printJSON(serverTimeResult{
			ServerTimeMS: now.UnixMilli(), ServerTime: stamp(now),
			OffsetMS: p.ClockOffsetMS, RTTMS: p.ClockRTTMS, MeasuredAt: stamp(p.ClockMeasuredAt), Cached: cached,
		})
	}
	if ms {
		_, err = fmt.Fprintln(app.Out, now.UnixMilli())
	} else {
		_, err = fmt.Fprintln(app.Out, now.Unix())
	}
	return err
}
