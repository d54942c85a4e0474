// Package benchcmp runs `chatctl bench` against several servers in one
// run and prints their figures side by side, with the ratios that
// docs/BENCHMARKS.md's goals are stated in (make bench-floor, make
// bench-peer). Every server is a process of its own, started fresh for
// each measurement; the generator is `chatctl bench` (pkg/loadgen) with
// the protocol of the server (--protocol) and the same close for all
// (--close reset, the cheapest, unless a system says otherwise), and it
// reads the server's CPU time and resident set itself (--server-pid).
// Measurements of the systems are interleaved, round after round, so that
// the load of a shared machine falls on all of them alike; the figures
// are medians over the rounds, with their ranges.
package benchcmp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"chatctl/pkg/loadgen"
)

// Config is one comparison run.
type Config struct {
	Chatctl    string // the chatctl binary (serve, and bench as the generator)
	Floor      string // the benchfloor binary (internal/benchfloor/cmd)
	Centrifugo string // the centrifugo binary
	Systems    []System
	Rounds     int
	Users      int           // new users per logins run
	Sessions   int           // sessions per hold
	Hold       time.Duration // how long each hold lasts
	Conc       int           // logins in flight
	// KeepAlive: the holds are long enough (two 10 s cycles after the
	// memory sample) for the server's CPU per keep-alive; without it
	// that column is left out.
	KeepAlive bool
	Log       io.Writer // progress

	dir string // the run's temporary directory
}

// System is one column of the comparison.
type System struct {
	Name  string
	Kind  string   // serve, centrifugo, ws, tcp: the server and the generator's --protocol; serve-simple: serve, driven by SimpleLogins
	Close string   // the generator's --close (default reset)
	Hold  bool     // also hold sessions: RSS per session, CPU per keep-alive
	Env   []string // added to the server's environment (e.g. GODEBUG)
}

// Sample is one system's figures of one round (0: not measured).
type Sample struct {
	LoginsPerSec  float64
	CPUPerLogin   float64 // µs
	RSSPerSession float64 // bytes
	CPUPerKeep    float64 // µs per keep-alive round trip
}

// Result holds every round's samples, by system name.
type Result struct {
	Config  Config
	Samples map[string][]Sample
}

// creds is the app of the run: chatctl serve's app, and
// Centrifugo's HMAC secret, so that one generator logs into both.
type creds struct {
	sdkappid string
	key      string
}

// Run measures every system Rounds times, interleaved, the order turning
// each round.
func Run(ctx context.Context, c Config) (*Result, error) {
	// The servers inherit it: thousands of held sockets each.
	loadgen.RaiseNoFile()
	for _, p := range []*string{&c.Chatctl, &c.Floor, &c.Centrifugo} {
		if *p != "" {
			abs, err := filepath.Abs(*p) // servers run in their own directories
			if err != nil {
				return nil, err
			}
			*p = abs
		}
	}
	dir, err := os.MkdirTemp("", "benchcmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c.dir = dir
	cr := creds{sdkappid: "1400000001", key: randomKey()}
	res := &Result{Config: c, Samples: map[string][]Sample{}}
	for r := range c.Rounds {
		n := len(c.Systems)
		order := make([]System, n)
		for i := range c.Systems {
			order[i] = c.Systems[(i+r)%n]
		}
		samples := map[string]*Sample{}
		for _, s := range order {
			samples[s.Name] = &Sample{}
		}
		for _, s := range order {
			if err := c.logins(ctx, dir, cr, r, s, samples[s.Name]); err != nil {
				return res, fmt.Errorf("%s logins: %w", s.Name, err)
			}
		}
		for _, s := range order {
			if !s.Hold {
				continue
			}
			if err := c.hold(ctx, dir, cr, r, s, samples[s.Name]); err != nil {
				return res, fmt.Errorf("%s hold: %w", s.Name, err)
			}
		}
		for _, s := range c.Systems {
			res.Samples[s.Name] = append(res.Samples[s.Name], *samples[s.Name])
		}
	}
	return res, nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// server is one started server process.
type server struct {
	cmd      *exec.Cmd
	endpoint string
	stderr   *bytes.Buffer
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// start starts a fresh server of kind in its own directory under dir.
func (c *Config) start(ctx context.Context, dir string, cr creds, sys System) (*server, error) {
	kind := sys.Kind
	d, err := os.MkdirTemp(dir, kind+"-")
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	readyLine := true
	endpoint := ""
	switch kind {
	case "serve", "serve-simple":
		// The SDK's keep-alive cadence: a wshello every 10 s.
		cmd = exec.CommandContext(ctx, c.Chatctl, "serve", "--listen", "127.0.0.1:0", "-o", "json",
			"--log-level", "warn", "--hello-interval", "10s", "--data-dir", filepath.Join(d, "data"))
		cmd.Env = append(os.Environ(), "CHATCTL_CONFIG_DIR="+d, "CHATCTL_SDKAPPID="+cr.sdkappid, "CHATCTL_SECRET_KEY="+cr.key)
	case "ws", "tcp":
		cmd = exec.CommandContext(ctx, c.Floor, kind)
	case "centrifugo":
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg := filepath.Join(d, "config.json")
		if err := os.WriteFile(cfg, CentrifugoConfig(port, cr.key), 0o600); err != nil {
			return nil, err
		}
		cmd = exec.CommandContext(ctx, c.Centrifugo, "--config", cfg)
		cmd.Dir = d
		readyLine = false
		endpoint = fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", port)
	default:
		return nil, fmt.Errorf("unknown system kind %q", kind)
	}
	if len(sys.Env) > 0 {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, sys.Env...)
	}
	s := &server{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() { // drain: a server blocked on a full pipe would stall
			if first {
				lines <- sc.Text()
				first = false
			}
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	if readyLine {
		select {
		case l, ok := <-lines:
			if !ok {
				s.stop()
				return nil, fmt.Errorf("%s gave no ready line: %s", kind, tail(s.stderr))
			}
			endpoint = strings.TrimSpace(l)
			if strings.HasPrefix(kind, "serve") {
				var r struct {
					WS string `json:"ws"`
				}
				if json.Unmarshal([]byte(l), &r) != nil || r.WS == "" {
					s.stop()
					return nil, fmt.Errorf("serve: bad ready line %q", l)
				}
				endpoint = r.WS
			}
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("%s: no ready line in 30 s: %s", kind, tail(s.stderr))
		}
	} else if err := waitListening(endpoint, deadline); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %v: %s", kind, err, tail(s.stderr))
	}
	s.endpoint = endpoint
	return s, nil
}

// CentrifugoConfig is the Centrifugo v6 configuration of the comparison:
// loopback, connection JWTs verified with the HMAC secret, a server ping
// every 10 s (the SDK's cadence; the default is 25 s) with 8 s for the
// pong, no HTTP API, no usage statistics, logs of errors only.
func CentrifugoConfig(port int, secret string) []byte {
	b, _ := json.MarshalIndent(map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"client": map[string]any{
			"token":         map[string]any{"hmac_secret_key": secret},
			"ping_interval": "10s",
			"pong_timeout":  "8s",
		},
		"http_api":    map[string]any{"disabled": true},
		"usage_stats": map[string]any{"disabled": true},
	}, "", "  ")
	return b
}

func (c *Config) bench(ctx context.Context, cr creds, s System, srv *server, args ...string) ([]byte, error) {
	proto := s.Kind
	if proto == "serve" {
		proto = "sdk"
	}
	closeMode := s.Close
	if closeMode == "" {
		closeMode = "reset"
	}
	args = append(args, "--protocol", proto, "--close", closeMode, "--endpoint", srv.endpoint,
		"--server-pid", strconv.Itoa(srv.cmd.Process.Pid), "-o", "json")
	cmd := exec.CommandContext(ctx, c.Chatctl, append([]string{"bench"}, args...)...)
	// The key reaches the generator by its environment, never argv.
	cmd.Env = append(os.Environ(), "CHATCTL_SDKAPPID="+cr.sdkappid, "CHATCTL_SECRET_KEY="+cr.key, "CHATCTL_CONFIG_DIR="+c.dir)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("chatctl bench %s: %v: %s%s", strings.Join(args, " "), err, out, tail(&errb))
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(out, &env); err != nil {
		return nil, fmt.Errorf("chatctl bench: %v: %q", err, out)
	}
	return env.Result, nil
}

func (c *Config) logins(ctx context.Context, dir string, cr creds, round int, s System, smp *Sample) error {
	srv, err := c.start(ctx, dir, cr, s)
	if err != nil {
		return err
	}
	defer srv.stop()
	if s.Kind == "serve-simple" {
		return c.simple(ctx, cr, round, s, srv, smp)
	}
	raw, err := c.bench(ctx, cr, s, srv, "logins", "--users", strconv.Itoa(c.Users),
		"--concurrency", strconv.Itoa(c.Conc), "--user-prefix", fmt.Sprintf("r%d-", round))
	if err != nil {
		return err
	}
	var r struct {
		OK        int            `json:"ok"`
		Failed    int            `json:"failed"`
		Errors    map[string]int `json:"errors"`
		PerSecond float64        `json:"logins_per_second"`
		CPU       float64        `json:"server_cpu_us_per_login"`
		CPUError  string         `json:"server_cpu_error"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.Failed > 0 || r.CPU <= 0 {
		return fmt.Errorf("%d of %d failed (%v), server CPU %q", r.Failed, c.Users, r.Errors, r.CPUError)
	}
	smp.LoginsPerSec, smp.CPUPerLogin = r.PerSecond, r.CPU
	c.logf("round %d  %-34s logins/s %6.0f  server CPU/login %4.0f µs", round+1, s.Name, r.PerSecond, r.CPU)
	return nil
}

// simple measures serve driven by SimpleLogins, in this process.
func (c *Config) simple(ctx context.Context, cr creds, round int, s System, srv *server, smp *Sample) error {
	app, _ := strconv.ParseUint(cr.sdkappid, 10, 64)
	users := loadgen.Users(fmt.Sprintf("s%d-", round), c.Users)
	sigs := loadgen.MintSigs(app, cr.key, users, time.Hour, time.Now())
	pid := srv.cmd.Process.Pid
	cpu0, err := loadgen.ProcessCPU(pid)
	if err != nil {
		return err
	}
	rate, err := SimpleLogins(ctx, srv.endpoint, app, users, sigs, c.Conc)
	if err != nil {
		return err
	}
	cpu1, err := loadgen.QuietCPU(ctx, pid)
	if err != nil {
		return err
	}
	smp.LoginsPerSec = rate
	smp.CPUPerLogin = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(c.Users)
	c.logf("round %d  %-34s logins/s %6.0f  server CPU/login %4.0f µs", round+1, s.Name, rate, smp.CPUPerLogin)
	return nil
}

func (c *Config) hold(ctx context.Context, dir string, cr creds, round int, s System, smp *Sample) error {
	srv, err := c.start(ctx, dir, cr, s)
	if err != nil {
		return err
	}
	defer srv.stop()
	raw, err := c.bench(ctx, cr, s, srv, "hold", "--sessions", strconv.Itoa(c.Sessions),
		"--duration", c.Hold.String(), "--concurrency", strconv.Itoa(c.Conc), "--user-prefix", fmt.Sprintf("h%d-", round))
	if err != nil {
		return err
	}
	var r struct {
		LoggedIn    int `json:"logged_in"`
		Disconnects int `json:"unexpected_disconnects"`
		Mem         *struct {
			RSS  uint64 `json:"rss_bytes_per_session"`
			Used uint64 `json:"bytes_per_session"`
			Src  string `json:"source"`
		} `json:"server_memory"`
		MemError string  `json:"server_memory_error"`
		CPU      float64 `json:"server_cpu_us_per_keepalive"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.LoggedIn != c.Sessions || r.Disconnects != 0 || r.Mem == nil {
		return fmt.Errorf("%d of %d held, %d unexpected disconnects, memory %q", r.LoggedIn, c.Sessions, r.Disconnects, r.MemError)
	}
	rss := r.Mem.RSS
	if rss == 0 && strings.HasPrefix(r.Mem.Src, "/proc/") {
		rss = r.Mem.Used // without /debug/stats the figure is the RSS already
	}
	smp.RSSPerSession = float64(rss)
	if !c.KeepAlive {
		c.logf("round %d  %-34s RSS/held session %5.1f KiB", round+1, s.Name, float64(rss)/1024)
		return nil
	}
	smp.CPUPerKeep = r.CPU
	c.logf("round %d  %-34s RSS/held session %5.1f KiB  server CPU/keep-alive %.0f µs", round+1, s.Name, float64(rss)/1024, r.CPU)
	return nil
}

// Stat is a median and its range.
type Stat struct{ Med, Min, Max float64 }

// Summarize is the median (the mean of the middle two for an even count)
// and range of the non-zero values; zero when there are none.
func Summarize(vs []float64) Stat {
	var xs []float64
	for _, v := range vs {
		if v != 0 && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return Stat{}
	}
	slices.Sort(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return Stat{Med: m, Min: xs[0], Max: xs[len(xs)-1]}
}

// field picks one figure of a sample.
type field func(Sample) float64

var (
	fLogins = func(s Sample) float64 { return s.LoginsPerSec }
	fCPU    = func(s Sample) float64 { return s.CPUPerLogin }
	fRSS    = func(s Sample) float64 { return s.RSSPerSession }
	fKeep   = func(s Sample) float64 { return s.CPUPerKeep }
)

// Stat summarizes one figure of one system over the rounds.
func (r *Result) Stat(name string, f field) Stat {
	var vs []float64
	for _, s := range r.Samples[name] {
		vs = append(vs, f(s))
	}
	return Summarize(vs)
}

// Ratio summarizes a/b of one figure, round by round: both were measured
// in the same round, under the same load.
func (r *Result) Ratio(a, b string, f field) Stat {
	var vs []float64
	sa, sb := r.Samples[a], r.Samples[b]
	for i := range min(len(sa), len(sb)) {
		if x, y := f(sa[i]), f(sb[i]); x != 0 && y != 0 {
			vs = append(vs, x/y)
		}
	}
	return Summarize(vs)
}

func fmtStat(s Stat, scale float64, prec int) string {
	if s.Med == 0 {
		return "—"
	}
	f := "%." + strconv.Itoa(prec) + "f"
	return fmt.Sprintf(f+" ("+f+"–"+f+")", s.Med/scale, s.Min/scale, s.Max/scale)
}

// Goal is one line of the ratios printed under the table.
type Goal struct {
	Label string
	A, B  string // systems: A/B
	Field string // logins, cpu, rss, keep
	Goal  string // e.g. "≥ 1.25", "≤ 1.3"; "" for a ratio without a goal
}

var fields = map[string]field{"logins": fLogins, "cpu": fCPU, "rss": fRSS, "keep": fKeep}

// met says whether ratio v meets goal ("≥ x" or "≤ x").
func met(goal string, v float64) string {
	op, num, ok := strings.Cut(goal, " ")
	x, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || v == 0 {
		return ""
	}
	if (op == "≥" && v >= x) || (op == "≤" && v <= x) {
		return "met"
	}
	return "NOT met"
}

// Print writes the markdown table of the figures and the ratios.
func (r *Result) Print(w io.Writer, goals []Goal) {
	c := r.Config
	fmt.Fprintf(w, "\n%d rounds, interleaved; %d new users per logins run (%d in flight), %d sessions held %s; medians (min–max)\n\n",
		c.Rounds, c.Users, c.Conc, c.Sessions, c.Hold)
	head, sep := "| system | logins/s | server CPU per login (µs) | RSS per held session (KiB) |", "|---|---|---|---|"
	if c.KeepAlive {
		head, sep = head+" server CPU per keep-alive at 10 s (µs) |", sep+"---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	for _, s := range c.Systems {
		fmt.Fprintf(w, "| %s | %s | %s | %s |", s.Name,
			fmtStat(r.Stat(s.Name, fLogins), 1, 0), fmtStat(r.Stat(s.Name, fCPU), 1, 0), fmtStat(r.Stat(s.Name, fRSS), 1024, 1))
		if c.KeepAlive {
			fmt.Fprintf(w, " %s |", fmtStat(r.Stat(s.Name, fKeep), 1, 0))
		}
		fmt.Fprintln(w)
	}
	if len(goals) == 0 {
		return
	}
	fmt.Fprintln(w, "\n| ratio (median of the rounds' ratios, min–max) | value | goal | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, g := range goals {
		st := r.Ratio(g.A, g.B, fields[g.Field])
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Label, fmtStat(st, 1, 2), g.Goal, met(g.Goal, st.Med))
	}
}

func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until the endpoint's port accepts connections.
func waitListening(endpoint string, deadline <-chan time.Time) error {
	host := strings.TrimPrefix(endpoint, "ws://")
	host, _, _ = strings.Cut(host, "/")
	for {
		if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-deadline:
			return errors.New("not listening after 30 s")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(b *bytes.Buffer) string {
	s := b.String()
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
