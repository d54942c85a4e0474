package cmd

import (
	"context"
	"fmt"

	"chatctl/pkg/client"
	"chatctl/pkg/session"

	"github.com/spf13/cobra"
)

func init() {
	register("server-time", func(app *App) *cobra.Command { return newServerTimeCmd(app, nil) })
}

// serverTimeResult is server-time's -o json output.
type serverTimeResult struct {
	ServerTimeMS int64  `json:"server_time_ms"`
	ServerTime   string `json:"server_time"`
	OffsetMS     int64  `json:"offset_ms"`
	RTTMS        int64  `json:"rtt_ms"`
	MeasuredAt   string `json:"measured_at"`
	Cached       bool   `json:"cached"`
}

// ServerTimeOptions is what server-time needs: the lifecycle dependencies
// and its flags.
type ServerTimeOptions struct {
	lifecycleOptions
	serverWait
	Cached bool // use the saved offset, no network (--cached)
	MS     bool // milliseconds (--ms)
}

// newServerTimeCmd builds server-time; runF, when not nil, runs instead of
// serverTimeRun (tests of the flags).
func newServerTimeCmd(app *App, runF func(*ServerTimeOptions) error) *cobra.Command {
	opts := &ServerTimeOptions{}
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
			lo, err := app.profileOptions()
			if err != nil {
				return err
			}
			opts.lifecycleOptions = lo
			return runAsking(c, opts.serverWait, when(opts.Cached, "--cached asks none"), opts, runF, serverTimeRun)
		},
	}
	c.Flags().BoolVar(&opts.Cached, "cached", false, "use the saved clock offset, no network")
	c.Flags().BoolVar(&opts.MS, "ms", false, "print milliseconds instead of seconds")
	opts.serverWait.flag(c, sdkBounds)
	return c
}

func serverTimeRun(ctx context.Context, o *ServerTimeOptions) error {
	name, p, err := o.readyProfile(ctx)
	if err != nil {
		return err
	}
	if !o.Cached {
		endpoint := o.endpointFor(p)
		res, err := client.Probe(ctx, clientConfig(endpoint, p.SDKAppID, p.Platform), sessionOf(p))
		if err != nil {
			return o.sessionErr(ctx, name, p, endpoint, err)
		}
		if res.ServerTime.IsZero() {
			return withData(exitf(ExitFailure, "the server's login reply carries no TimeStamp"), profileRef{name, p.UserID})
		}
		p.ClockOffsetMS, p.ClockRTTMS, p.ClockMeasuredAt = res.Offset.Milliseconds(), res.RTT.Milliseconds(), res.LocalTime.UTC()
		// Another endpoint's clock is not the profile's server's (--cached
		// reads it as that one's): not saved.
		if ownServer(p, endpoint) {
			err = o.Sessions.Update(afterAnswer(ctx), func(f *session.File) error {
				if cur, ok := f.Profiles[name]; ok && cur.SameSession(p) {
					cur.ClockOffsetMS, cur.ClockRTTMS, cur.ClockMeasuredAt = p.ClockOffsetMS, p.ClockRTTMS, p.ClockMeasuredAt
					f.Profiles[name] = cur
				}
				return nil
			})
			if err != nil {
				o.IO.warnf("could not save the clock offset: %v", err)
			}
		}
	} else if sigExpired(p, o.Now()) {
		return sigExpiredErr(name, p) // as whoami: the server would say so, offset or not
	} else if p.ClockMeasuredAt.IsZero() {
		return withData(exitf(ExitFailure, "no saved clock offset for profile %q: run `chatctl server-time` without --cached once", name), profileRef{name, p.UserID})
	}
	now := session.ServerNow(p, o.Now())
	if o.IO.JSON() {
		return o.IO.printJSON(serverTimeResult{
			ServerTimeMS: now.UnixMilli(), ServerTime: stamp(now),
			OffsetMS: p.ClockOffsetMS, RTTMS: p.ClockRTTMS, MeasuredAt: stamp(p.ClockMeasuredAt), Cached: o.Cached,
		})
	}
	if o.MS {
		_, err = fmt.Fprintln(o.IO.Out, now.UnixMilli())
	} else {
		_, err = fmt.Fprintln(o.IO.Out, now.Unix())
	}
	return err
}
