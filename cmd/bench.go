package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"chatctl/pkg/loadgen"
	"chatctl/pkg/rest"
	"chatctl/pkg/wire"

	"github.com/spf13/cobra"
)

func init() { register("bench", newBenchCmd) }

// benchOpts are the flags every bench subcommand shares.
type benchOpts struct {
	app         *App
	keys        keyFlags
	prefix      string
	concurrency int
	retries     int
	sources     []string
	dialTimeout time.Duration
	platform    int
	protocol    string
	closeMode   string
}

func newBenchCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a chat server: logins/s, sessions held, kick latency",
		Long: `Load-test any server that speaks the Web SDK 3.6.6 protocol (by default the
local "chatctl serve"; --endpoint for another). Users are PREFIX0..PREFIXn-1
(--user-prefix, default "bench-"); one UserSig per user is minted from the
app's secret key before the clock starts.

  logins  a new connection + wslogin per user: logins/s, latency percentiles,
          errors by code (with --server-pid: the server's CPU per login)
  hold    N sessions kept online with the SDK's heartbeat (after 10 s idle)
          and hello (the server's HelloInterval) cadence: unexpected
          disconnects, the server's memory per session (its /debug/stats, or
          /proc/PID/status with --server-pid)
  kick    N sessions held, K of them kicked through the REST API:
          kick-to-KICKED_OUT latency percentiles, how many were delivered

--protocol drives other servers with the same generator, for side-by-side
figures: centrifugo (Centrifugo's connect with a JWT), ws and tcp (the
floors of internal/benchfloor). --close reset ends sockets with a TCP reset
instead of the SDK's close frame; the output says which close was used.

RLIMIT_NOFILE is raised to its hard limit; past ~28k connections per source
address (net.ipv4.ip_local_port_range) connections to a loopback endpoint
come from 127.0.0.1, 127.0.0.2, ... The output says when a limit stopped it.
Progress goes to stderr each second; the table (or -o json) to stdout.
docs/BENCHMARKS.md ("Load") has the measured figures and how to reproduce them.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return usageErr(c, errors.New("missing subcommand")) },
	}
	c.AddCommand(newBenchLoginsCmd(app), newBenchHoldCmd(app), newBenchKickCmd(app))
	return c
}

func (o *benchOpts) addFlags(c *cobra.Command, conc int) {
	o.keys.add(c, o.app)
	f := c.Flags()
	f.StringVar(&o.prefix, "user-prefix", "bench-", "user IDs are PREFIX0, PREFIX1, ...")
	f.IntVar(&o.concurrency, "concurrency", conc, "logins in flight at once")
	f.IntVar(&o.retries, "retries", 0, "how many more times a login that timed out or got 70169 is tried, 1 s, 2 s, ... after (counted as retried, not failed)")
	f.StringSliceVar(&o.sources, "source-addr", nil, "local IP address(es) to connect from, used in turn (default: 127.0.0.x as needed for a loopback endpoint)")
	f.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "bound of each connect + handshake, and of each login reply")
	f.IntVar(&o.platform, "platform", 7, "platform number in the URL and head (7 = Web)")
	f.StringVar(&o.protocol, "protocol", string(loadgen.ProtoSDK), "what to speak: sdk (the Web SDK's wslogin), centrifugo (connect with an HS256 JWT signed with the secret key, pong to pings), ws (one frame each way: a bare WebSocket floor), tcp (300 B each way: the TCP floor)")
	f.StringVar(&o.closeMode, "close", string(loadgen.CloseSDK), "how each socket ends: sdk (close frame 4000, then FIN, as the SDK) or reset (a TCP reset, no close frame: the cheapest close)")
}

// maxBenchUsers bounds --users and --sessions: each user's UserSig is
// minted before the clock starts, some 500 bytes apiece, and 2,000,000,000
// of them crashed the runtime out of memory (the second CLI pass). The
// largest run measured holds 100,000 sessions over six processes.
const maxBenchUsers = 1_000_000

// prepare resolves the app, mints the UserSigs and builds the options.
func (o *benchOpts) prepare(c *cobra.Command, n int) (loadgen.Options, appCreds, error) {
	o.app.bind(c.Flags().Lookup("sdkappid"), "sdkappid")
	var lo loadgen.Options
	if n < 1 || n > maxBenchUsers {
		return lo, appCreds{}, usageErr(c, fmt.Errorf("users/sessions must be between 1 and %d", maxBenchUsers))
	}
	if o.concurrency < 1 {
		return lo, appCreds{}, usageErr(c, errors.New("--concurrency must be at least 1"))
	}
	if o.retries < 0 {
		return lo, appCreds{}, usageErr(c, errors.New("--retries must not be negative"))
	}
	if o.dialTimeout <= 0 {
		return lo, appCreds{}, usageErr(c, errors.New("--dial-timeout must be positive"))
	}
	if !wire.Platform(o.platform).Known() {
		return lo, appCreds{}, usageErr(c, fmt.Errorf("--platform %d is not a platform number of the protocol", o.platform))
	}
	// The longest ID the run makes: past the UserID rule every login
	// would be refused (70402).
	if err := wire.ValidateUserID(o.prefix + strconv.Itoa(n-1)); err != nil {
		return lo, appCreds{}, usageErr(c, fmt.Errorf("--user-prefix %.40q: its user IDs break the UserID rule: %v", o.prefix, err))
	}
	proto, err := loadgen.ParseProtocol(o.protocol)
	if err != nil {
		return lo, appCreds{}, usageErr(c, fmt.Errorf("--protocol: %w", err))
	}
	closeMode, err := loadgen.ParseCloseMode(o.closeMode)
	if err != nil {
		return lo, appCreds{}, usageErr(c, fmt.Errorf("--close: %w", err))
	}
	var creds appCreds
	if proto.NeedsSigs() { // the floors log in with nothing
		if creds, err = o.keys.resolve(c.Context(), o.app); err != nil {
			return lo, creds, err
		}
	}
	t := loadgen.Target{Endpoint: o.app.Endpoint(), SDKAppID: creds.SDKAppID, Platform: o.platform, DialTimeout: o.dialTimeout,
		Protocol: proto, Close: closeMode}
	for _, s := range o.sources {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return lo, creds, usageErr(c, fmt.Errorf("--source-addr %q is not an IP address", s))
		}
		// One this machine has: else every dial failed "no free local
		// port" and the run was exit 6, as if no server were there.
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return lo, creds, usageErr(c, fmt.Errorf("--source-addr %s: not an address of this machine (%v)", ip, err))
		}
		ln.Close()
		t.SourceIPs = append(t.SourceIPs, ip)
	}
	users := loadgen.Users(o.prefix, n)
	sigs := make([]string, n)
	switch proto {
	case loadgen.ProtoSDK:
		o.app.infof("bench: minting %d UserSigs for %s...", n, creds)
		sigs = loadgen.MintSigs(creds.SDKAppID, creds.Key, users, 24*time.Hour, time.Now())
	case loadgen.ProtoCentrifugo:
		// The app's secret key is the HMAC secret: the server under test
		// is configured with it (mk/benchcmp.mk writes Centrifugo's).
		o.app.infof("bench: minting %d connection JWTs (HS256 with the secret key of %s)...", n, creds)
		sigs = loadgen.MintJWTs(creds.Key, users, 24*time.Hour, time.Now())
	}
	return loadgen.Options{Target: t, Users: users, Sigs: sigs, Concurrency: o.concurrency, Retries: o.retries, Progress: o.app.Err}, creds, nil
}

// checkServerPID refuses a negative --server-pid (exit 2).
func checkServerPID(c *cobra.Command, pid int) error {
	if pid < 0 {
		return usageErr(c, errors.New("--server-pid must not be negative"))
	}
	return nil
}

func newBenchLoginsCmd(app *App) *cobra.Command {
	o := &benchOpts{app: app}
	var users, pid int
	c := &cobra.Command{
		Use:   "logins",
		Short: "Log N users in, each on a new connection: logins/s and latency",
		Example: `  chatctl bench logins --users 20000 --concurrency 64
  chatctl bench logins --users 1000 --endpoint ws://10.0.0.5:7468 --key-file app.key --sdkappid 1400000001 -o json
  chatctl bench logins --users 20000 --close reset --server-pid $(pgrep -f 'chatctl serve')`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkServerPID(c, pid); err != nil {
				return err
			}
			lo, _, err := o.prepare(c, users)
			if err != nil {
				return err
			}
			lo.ServerPID = pid
			ctx := c.Context() // a signal ends it: the run stops and still reports
			r, err := loadgen.Logins(ctx, lo)
			return printBench(app, "logins", r, func(w io.Writer) { loginsTable(w, r) }, benchExit(err, r.OK, r.Errors))
		},
	}
	o.addFlags(c, 64)
	c.Flags().IntVar(&users, "users", 1000, "how many users log in")
	c.Flags().IntVar(&pid, "server-pid", 0, "server process on this machine: report its CPU time per login (read before the first dial and once it is quiet after the last close)")
	return c
}

func newBenchHoldCmd(app *App) *cobra.Command {
	o := &benchOpts{app: app}
	var (
		sessions int
		duration time.Duration
		hello    time.Duration
		pid      int
	)
	c := &cobra.Command{
		Use:   "hold",
		Short: "Keep N sessions online for a duration: disconnects, server memory per session",
		Example: `  chatctl bench hold --sessions 10000 --duration 30s
  chatctl bench hold --sessions 100000 --duration 5m --server-pid $(pgrep -f 'chatctl serve')`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if duration <= 0 {
				return usageErr(c, errors.New("--duration must be positive"))
			}
			if err := checkServerPID(c, pid); err != nil {
				return err
			}
			lo, _, err := o.prepare(c, sessions)
			if err != nil {
				return err
			}
			ctx := c.Context() // a signal ends it: the run stops and still reports
			mem := loadgen.NewMemProbe(lo.Target.Endpoint, pid)
			if lo.Target.Protocol != loadgen.ProtoSDK {
				mem.StatsURL = "" // another server's /debug/stats is not chatctl's
			}
			r, err := loadgen.Hold(ctx, loadgen.HoldOptions{Options: lo, Duration: duration, Hello: hello, Mem: mem})
			return printBench(app, "hold", r, func(w io.Writer) { holdTable(w, r, pid) }, benchExit(err, r.LoggedIn, r.LoginErrors))
		},
	}
	o.addFlags(c, 64)
	f := c.Flags()
	f.IntVar(&sessions, "sessions", 1000, "how many sessions to hold")
	f.DurationVar(&duration, "duration", 30*time.Second, "how long to hold them once all logged in")
	f.DurationVar(&hello, "hello-interval", 0, "wshello period (default: the server's HelloInterval, as the SDK)")
	f.IntVar(&pid, "server-pid", 0, "server process on this machine: its RSS per session (/proc/PID/status) and CPU time per keep-alive round trip")
	return c
}

func newBenchKickCmd(app *App) *cobra.Command {
	o := &benchOpts{app: app}
	var (
		sessions, kicks, kickConc int
		wait                      time.Duration
	)
	c := &cobra.Command{
		Use:   "kick",
		Short: "Hold N sessions and kick K of them through the REST API: kick-to-KICKED_OUT latency",
		Example: `  chatctl bench kick --sessions 10000 --kicks 1000
  chatctl bench kick --sessions 10000 --kicks 10000 --kick-concurrency 256`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if kicks < 1 || kicks > sessions {
				return usageErr(c, fmt.Errorf("--kicks must be between 1 and --sessions (%d)", sessions))
			}
			if kickConc < 1 {
				return usageErr(c, errors.New("--kick-concurrency must be at least 1"))
			}
			if p, _ := loadgen.ParseProtocol(o.protocol); p != loadgen.ProtoSDK {
				return usageErr(c, errors.New("kick speaks the SDK protocol only (--protocol sdk)"))
			}
			o.app.bind(c.Flags().Lookup("rest-url"), "rest_url")
			lo, creds, err := o.prepare(c, sessions)
			if err != nil {
				return err
			}
			base, err := restBaseURL(app.V.GetString("rest_url"), app.source("rest_url"), lo.Target.Endpoint)
			if err != nil {
				return usageErr(c, err)
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = kickConc
			cli := &rest.Client{BaseURL: base, SDKAppID: creds.SDKAppID, Admin: creds.Admin, Key: creds.Key,
				HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
			defer tr.CloseIdleConnections()
			ctx := c.Context() // a signal ends it: the run stops and still reports
			r, err := loadgen.Kick(ctx, loadgen.KickOptions{
				Options: lo, Kicks: kicks, KickConcurrency: kickConc, Wait: wait,
				Kick: func(ctx context.Context, user string) error {
					_, err := cli.Do(ctx, rest.CmdKick, rest.KickRequest{UserID: user}, nil)
					return err
				},
				KeyOf: restErrKey,
			})
			return printBench(app, "kick", r, func(w io.Writer) { kickTable(w, r) }, kickExit(benchExit(err, r.LoggedIn, r.LoginErrors), r))
		},
	}
	o.addFlags(c, 64)
	f := c.Flags()
	f.IntVar(&sessions, "sessions", 1000, "how many sessions to hold")
	f.IntVar(&kicks, "kicks", 100, "how many of them to kick (one REST kick per user)")
	f.IntVar(&kickConc, "kick-concurrency", 32, "REST kicks in flight at once")
	f.DurationVar(&wait, "wait", 5*time.Second, "how long to wait for the KICKED_OUT pushes after the last kick answered")
	f.String("rest-url", "", "base URL of the REST API, http(s)://HOST[:PORT][/PREFIX] (default: derived from --endpoint)")
	return c
}

// restErrKey names a REST kick failure for the errors table.
func restErrKey(err error) string {
	var re *rest.Error
	if errors.As(err, &re) {
		return strconv.Itoa(re.Code)
	}
	var ue *rest.UnreachableError
	if errors.As(err, &ue) {
		switch msg := err.Error(); {
		case strings.Contains(msg, "too many open files"):
			return "unreachable: " + loadgen.KeyFiles
		case strings.Contains(msg, "cannot assign requested address"):
			return "unreachable: " + loadgen.KeyPorts
		case strings.Contains(msg, "Timeout"), strings.Contains(msg, "timeout"):
			return "unreachable: timeout"
		}
		return "unreachable"
	}
	return "other"
}

// benchExit: a run in which no login succeeded failed (6 when the server
// could not be reached); a run stopped early fails after its report (a
// signal's 129, 130 or 143: interrupted).
func benchExit(err error, ok int, errs map[string]int) error {
	if ok == 0 {
		for k := range errs {
			if strings.HasPrefix(k, "dial") || k == loadgen.KeyHandshake {
				return exitf(ExitUnreachable, "no login succeeded: %s", errsLine(errs))
			}
		}
		return exitf(ExitFailure, "no login succeeded: %s", errsLine(errs))
	}
	if err != nil {
		return exitf(ExitFailure, "interrupted: %v", err)
	}
	return nil
}

// kickExit: a kick run whose sessions logged in but none of whose kicks
// was delivered failed, 6 when every kick found the REST API unreachable:
// a smoke check against a dead REST API passed with 0 (the second CLI
// pass).
func kickExit(err error, r loadgen.KickResult) error {
	if err != nil || r.Kicks == 0 || r.Delivered > 0 {
		return err
	}
	unreachable := 0
	for k, v := range r.KickErrors {
		if strings.HasPrefix(k, "unreachable") {
			unreachable += v
		}
	}
	code := ExitFailure
	if unreachable == r.Kicks {
		code = ExitUnreachable
	}
	return exitf(code, "no kick was delivered: kick errors: %s; undelivered %d", errsLine(r.KickErrors), r.Undelivered)
}

func errsLine(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range loadgen.SortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// benchJSON is -o json: the result with the subcommand's name.
type benchJSON[T any] struct {
	Bench  string `json:"bench"`
	Result T      `json:"result"`
}

// printBench reports a run, and returns failed, the run's failure (nil
// when it went well): with -o json the report is the failure's document,
// its "error" beside "bench" and "result", as for every command.
func printBench[T any](app *App, name string, r T, table func(io.Writer), failed error) error {
	if app.JSON() {
		if failed != nil {
			return withData(failed, benchJSON[T]{Bench: name, Result: r})
		}
		return app.printJSON(benchJSON[T]{Bench: name, Result: r})
	}
	tw := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
	table(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	return failed
}

func latRow(w io.Writer, name string, l loadgen.Latency) {
	fmt.Fprintf(w, "%s\tp50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (n=%d)\n", name, l.P50, l.P90, l.P99, l.Max, l.N)
}

func limitsRows(w io.Writer, l loadgen.Limits) {
	src := "system default"
	if len(l.SourceAddrs) > 0 {
		src = strings.Join(l.SourceAddrs, ", ")
	}
	fmt.Fprintf(w, "open files limit\t%d (hard %d)\n", l.NoFileSoft, l.NoFileHard)
	fmt.Fprintf(w, "source addresses\t%s\n", src)
	if l.Stopped != "" {
		fmt.Fprintf(w, "LIMIT\t%s\n", l.Stopped)
	}
}

// closeNames says what each close mode sends.
var closeNames = map[loadgen.CloseMode]string{
	loadgen.CloseSDK:   "sdk (close frame 4000, then FIN)",
	loadgen.CloseReset: "reset (TCP RST, no close frame)",
}

func protoRows(w io.Writer, p loadgen.Protocol, c loadgen.CloseMode) {
	fmt.Fprintf(w, "protocol\t%s\n", p)
	fmt.Fprintf(w, "close\t%s\n", closeNames[c])
}

func loginsTable(w io.Writer, r loadgen.LoginsResult) {
	protoRows(w, r.Protocol, r.Close)
	fmt.Fprintf(w, "users\t%d\n", r.Users)
	fmt.Fprintf(w, "concurrency\t%d\n", r.Concurrency)
	fmt.Fprintf(w, "ok\t%d\n", r.OK)
	fmt.Fprintf(w, "failed\t%d\n", r.Failed)
	fmt.Fprintf(w, "errors\t%s\n", errsLine(r.Errors))
	fmt.Fprintf(w, "retried\t%s\n", errsLine(r.Retried))
	fmt.Fprintf(w, "seconds\t%.3f\n", r.Seconds)
	fmt.Fprintf(w, "logins/s\t%.0f\n", r.PerSecond)
	latRow(w, "latency", r.Latency)
	switch {
	case r.ServerCPUPerLogin > 0:
		fmt.Fprintf(w, "server CPU / login\t%.0f µs\n", r.ServerCPUPerLogin)
	case r.ServerCPUError != "":
		fmt.Fprintf(w, "server CPU / login\tunknown: %s\n", r.ServerCPUError)
	}
	limitsRows(w, r.Limits)
}

func holdTable(w io.Writer, r loadgen.HoldResult, pid int) {
	protoRows(w, r.Protocol, r.Close)
	fmt.Fprintf(w, "sessions\t%d\n", r.Sessions)
	fmt.Fprintf(w, "logged in\t%d\n", r.LoggedIn)
	fmt.Fprintf(w, "login errors\t%s\n", errsLine(r.LoginErrors))
	fmt.Fprintf(w, "login retried\t%s\n", errsLine(r.LoginRetried))
	fmt.Fprintf(w, "ramp seconds\t%.3f\n", r.RampSeconds)
	latRow(w, "login latency", r.LoginLatency)
	fmt.Fprintf(w, "held seconds\t%.1f\n", r.HeldSeconds)
	fmt.Fprintf(w, "online at end\t%d\n", r.OnlineAtEnd)
	fmt.Fprintf(w, "unexpected disconnects\t%d\n", r.Disconnects)
	fmt.Fprintf(w, "hello interval\t%gs\n", r.HelloInterval)
	fmt.Fprintf(w, "hellos / heartbeats\t%d / %d\n", r.Hellos, r.Heartbeats)
	if r.Protocol == loadgen.ProtoCentrifugo {
		fmt.Fprintf(w, "pings answered\t%d\n", r.Pongs)
	}
	fmt.Fprintf(w, "hello+heartbeat errors\t%d\n", r.HelloFails)
	fmt.Fprintf(w, "heartbeat timeouts\t%d\n", r.HeartbeatTimeouts)
	switch m := r.ServerMem; {
	case m != nil:
		fmt.Fprintf(w, "server memory / session\t%.1f KiB (%s, %d sessions)\n", float64(m.BytesPerSession)/1024, m.Source, m.MeasuredOnSessions)
		if m.RSSPerSession > 0 {
			fmt.Fprintf(w, "server RSS / session\t%.1f KiB (/proc/%d/status)\n", float64(m.RSSPerSession)/1024, pid)
		}
		if m.GoroutinesPerSess > 0 {
			fmt.Fprintf(w, "server goroutines / session\t%.2f\n", m.GoroutinesPerSess)
		}
	case r.ServerMemError != "":
		fmt.Fprintf(w, "server memory / session\tunknown: %s\n", r.ServerMemError)
	}
	switch {
	case r.ServerCPUPerKeepAlive > 0:
		fmt.Fprintf(w, "server CPU / keep-alive\t%.0f µs (%d round trips)\n", r.ServerCPUPerKeepAlive, r.KeepAlivesMeasured)
	case r.ServerCPUError != "":
		fmt.Fprintf(w, "server CPU / keep-alive\tunknown: %s\n", r.ServerCPUError)
	}
	fmt.Fprintf(w, "loadgen memory / session\t%.1f KiB\n", float64(r.SelfBytesPerSess)/1024)
	limitsRows(w, r.Limits)
}

func kickTable(w io.Writer, r loadgen.KickResult) {
	fmt.Fprintf(w, "sessions\t%d\n", r.Sessions)
	fmt.Fprintf(w, "logged in\t%d\n", r.LoggedIn)
	fmt.Fprintf(w, "login errors\t%s\n", errsLine(r.LoginErrors))
	fmt.Fprintf(w, "login retried\t%s\n", errsLine(r.LoginRetried))
	fmt.Fprintf(w, "kicks\t%d (concurrency %d)\n", r.Kicks, r.KickConcurrent)
	fmt.Fprintf(w, "kick errors\t%s\n", errsLine(r.KickErrors))
	fmt.Fprintf(w, "delivered\t%d\n", r.Delivered)
	fmt.Fprintf(w, "undelivered\t%d\n", r.Undelivered)
	fmt.Fprintf(w, "wrong kick type\t%d\n", r.WrongType)
	latRow(w, "kick → KICKED_OUT", r.Latency)
	latRow(w, "REST call", r.RESTLatency)
	fmt.Fprintf(w, "all delivered after\t%.3f s\n", r.SpanSeconds)
	fmt.Fprintf(w, "unexpected disconnects\t%d\n", r.Disconnects)
	limitsRows(w, r.Limits)
}
