package e2e

// The client core's side of the comparison with the official Web SDK
// (docs/BENCHMARKS.md, measured in one run): the same login as
// interop/bench/sdk-login.cjs drives through the SDK, measured the same way.
// `make bench-sdk` runs both against one `chatctl serve` and prints them
// side by side; it points this benchmark at that server with
//
//	SDKCMP_WS          ws://127.0.0.1:PORT of the running server
//	SDKCMP_CONFIG_DIR  its CHATCTL_CONFIG_DIR (devapp.json: app id and key)
//	SDKCMP_SERVER_PID  optional: its pid, for the server's CPU per login
//	SDKCMP_USER        optional: the user (default sdkcmp-user)
//	SDKCMP_WARMUP      optional: untimed iterations first (default 20)
//
// Without SDKCMP_WS it runs against an in-process server (servertest), so
// that `go test -bench . ./e2e` works alone.
//
// Two modes, each one login → ready → logout per iteration:
//
//   - warm: one socket for the whole run (the SDK keeps its socket across
//     logout and login): Login (wslogin, usersig form) until its reply,
//     which is the client core's "ready", then Logout (wslogout type 0).
//   - cold: a new socket per iteration, like a new SDK instance: Dial +
//     Login is the time to ready, then Logout and Close (code 4000).
//
// Reported per mode: p50/p90/p99/max of the time to ready, the wslogin
// round trip inside it (rtt-p50-ms), this process's CPU (utime+stime, so
// the socket's reader and writer included) over the time to ready
// (cpu-ready-p50-us) and per iteration (cpu-us/op: logout included), and
// the server's per iteration (srv-cpu-us/op, with SDKCMP_SERVER_PID: its
// CPU-time clock, in nanoseconds; benchtest.ProcessCPU).
// Any failed login, or one the server did not give a new InstId, fails the
// benchmark (b.Fatal: non-zero exit).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"chatctl/internal/benchtest"
	"chatctl/internal/leaktest"
	"chatctl/pkg/client"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// sdkcmpTarget is the server the comparison runs against.
type sdkcmpTarget struct {
	ws      string
	app     uint64
	userSig string
	user    string
	srvPID  int
	warmup  int
}

func sdkcmpSetup(b *testing.B) sdkcmpTarget {
	b.Helper()
	t := sdkcmpTarget{user: "sdkcmp-user", warmup: 20}
	if u := os.Getenv("SDKCMP_USER"); u != "" {
		t.user = u
	}
	if w := os.Getenv("SDKCMP_WARMUP"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			b.Fatalf("SDKCMP_WARMUP=%q: want a count", w)
		}
		t.warmup = n
	}
	ws := os.Getenv("SDKCMP_WS")
	if ws == "" {
		ts := servertest.Start(b, servertest.HelloInterval(time.Minute))
		t.ws, t.app = ts.WSURL, ts.App.SDKAppID
		t.userSig = ts.Sig(t.user, time.Hour)
		return t
	}
	dir := os.Getenv("SDKCMP_CONFIG_DIR")
	raw, err := os.ReadFile(filepath.Join(dir, "devapp.json"))
	if err != nil {
		b.Fatalf("SDKCMP_WS needs SDKCMP_CONFIG_DIR with the server's devapp.json: %v", err)
	}
	var app struct {
		SDKAppID  uint64 `json:"sdkappid"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal(raw, &app); err != nil || app.SDKAppID == 0 || app.SecretKey == "" {
		b.Fatalf("%s/devapp.json: no sdkappid/secret_key (%v)", dir, err)
	}
	t.ws, t.app = ws, app.SDKAppID
	// One UserSig for the run, as the SDK side mints one: the server
	// verifies it on every login either way.
	t.userSig = sig.Gen(sig.Params{SDKAppID: app.SDKAppID, Key: app.SecretKey, UserID: t.user, Expire: 3600}, time.Now())
	if p := os.Getenv("SDKCMP_SERVER_PID"); p != "" {
		if t.srvPID, err = strconv.Atoi(p); err != nil {
			b.Fatalf("SDKCMP_SERVER_PID=%q: %v", p, err)
		}
	}
	return t
}

func (t sdkcmpTarget) config() client.Config {
	// Default (SDK-like) timers; Conn runs none of them by itself.
	return client.Config{Endpoint: t.ws, SDKAppID: t.app}
}

// login is one Login whose reply must be a complete first login.
func (t sdkcmpTarget) login(ctx context.Context, c *client.Conn) (client.LoginResult, error) {
	res, err := c.Login(ctx, t.user, t.userSig)
	if err != nil {
		return res, fmt.Errorf("login %s: %w", t.user, err)
	}
	if res.A2Key == "" || res.TinyID == "" || res.InstID == 0 || res.ServerTime.IsZero() {
		return res, fmt.Errorf("login %s: incomplete reply (A2Key %t, TinyId %q, InstId %d, TimeStamp %v)",
			t.user, res.A2Key != "", res.TinyID, res.InstID, res.ServerTime)
	}
	return res, nil
}

// BenchmarkSDKCmpLogin: the client core's login → ready (see the top of
// this file); `make bench-sdk` prints it beside the official SDK's.
func BenchmarkSDKCmpLogin(b *testing.B) {
	b.Run("warm", func(b *testing.B) { sdkcmpWarm(b, sdkcmpSetup(b)) })
	b.Run("cold", func(b *testing.B) { sdkcmpCold(b, sdkcmpSetup(b)) })
}

// sdkcmpWarm: one socket, Login then Logout on it per iteration.
func sdkcmpWarm(b *testing.B, t sdkcmpTarget) {
	ctx := context.Background()
	c, err := client.Dial(ctx, t.config())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sdkcmpRun(b, t, func() (m sdkcmpIter, err error) {
		cpu0, start := benchtest.CPU(b), time.Now()
		res, err := t.login(ctx, c)
		m.ready, m.cpu = time.Since(start), benchtest.CPU(b)-cpu0
		if err != nil {
			return m, err
		}
		if err := c.Logout(ctx, wire.LogoutUser); err != nil {
			return m, fmt.Errorf("logout: %w", err)
		}
		m.rtt, m.inst = res.RTT, res.InstID
		return m, nil
	})
}

// sdkcmpCold: Dial, Login, Logout, Close per iteration.
func sdkcmpCold(b *testing.B, t sdkcmpTarget) {
	ctx := context.Background()
	cfg := t.config()
	sdkcmpRun(b, t, func() (m sdkcmpIter, err error) {
		cpu0, start := benchtest.CPU(b), time.Now()
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			return m, err
		}
		defer c.Close()
		res, err := t.login(ctx, c)
		m.ready, m.cpu = time.Since(start), benchtest.CPU(b)-cpu0
		if err != nil {
			return m, err
		}
		if err := c.Logout(ctx, wire.LogoutUser); err != nil {
			return m, fmt.Errorf("logout: %w", err)
		}
		m.rtt, m.inst = res.RTT, res.InstID
		return m, nil
	})
}

// TestSDKCmpFailsLoudly: a refused login fails the comparison benchmark
// (no figures, non-zero exit under `go test -bench`) instead of being timed.
func TestSDKCmpFailsLoudly(t *testing.T) {
	leaktest.Check(t)
	ts := start(t)
	bad := sdkcmpTarget{ws: ts.WSURL, app: ts.App.SDKAppID, user: "sdkcmp-bad", userSig: otherKeySig(ts, "sdkcmp-bad"), warmup: 1}
	for name, run := range map[string]func(*testing.B, sdkcmpTarget){"warm": sdkcmpWarm, "cold": sdkcmpCold} {
		if r := testing.Benchmark(func(b *testing.B) { run(b, bad) }); r.N != 0 {
			t.Errorf("%s: a benchmark whose logins are refused reported %d iterations", name, r.N)
		}
	}
	// The same target with a good UserSig logs in: the failure above was
	// the refusal.
	good := bad
	good.userSig = ts.Sig(good.user, time.Hour)
	ctx := context.Background()
	c, err := client.Dial(ctx, good.config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := good.login(ctx, c); err != nil {
		t.Fatalf("good UserSig: %v", err)
	}
	if _, err := bad.login(ctx, c); err == nil {
		t.Fatal("bad UserSig: login succeeded")
	}
}

// sdkcmpIter is one iteration's figures: time and CPU (this process) to
// ready, the wslogin round trip, the InstId the server gave.
type sdkcmpIter struct {
	ready, cpu, rtt time.Duration
	inst            uint64
}

// sdkcmpRun runs iter warmup times untimed, then once per b.Loop, and
// reports the percentiles and CPU figures. Every login must get an InstId
// not seen before in the run: a fresh login on the server, as the SDK side
// checks too.
func sdkcmpRun(b *testing.B, t sdkcmpTarget, iter func() (sdkcmpIter, error)) {
	seen := map[uint64]bool{}
	one := func(what string, i int) sdkcmpIter {
		m, err := iter()
		if err != nil {
			b.Fatalf("%s %d: %v", what, i, err)
		}
		if seen[m.inst] {
			b.Fatalf("%s %d: InstId %d given twice", what, i, m.inst)
		}
		seen[m.inst] = true
		return m
	}
	for i := range t.warmup {
		one("warmup", i)
	}
	var ready, cpu, rtt []time.Duration
	cpu0, srv0 := benchtest.CPU(b), t.serverCPU(b)
	for b.Loop() {
		m := one("iteration", len(ready))
		ready, cpu, rtt = append(ready, m.ready), append(cpu, m.cpu), append(rtt, m.rtt)
	}
	cpu1, srv1 := benchtest.CPU(b), t.serverCPU(b)
	n := float64(len(ready))
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for _, d := range [][]time.Duration{ready, cpu, rtt} {
		slices.Sort(d)
	}
	b.ReportMetric(ms(pct(ready, 50)), "p50-ms")
	b.ReportMetric(ms(pct(ready, 90)), "p90-ms")
	b.ReportMetric(ms(pct(ready, 99)), "p99-ms")
	b.ReportMetric(ms(ready[len(ready)-1]), "max-ms")
	b.ReportMetric(ms(pct(rtt, 50)), "rtt-p50-ms")
	b.ReportMetric(float64(pct(cpu, 50))/1e3, "cpu-ready-p50-us")
	b.ReportMetric(float64(cpu1-cpu0)/1e3/n, "cpu-us/op")
	if t.srvPID != 0 {
		b.ReportMetric(float64(srv1-srv0)/1e3/n, "srv-cpu-us/op")
	}
}

// serverCPU is the server's CPU time (benchtest.ProcessCPU: nanoseconds on
// Linux), or 0 without SDKCMP_SERVER_PID.
func (t sdkcmpTarget) serverCPU(b *testing.B) time.Duration {
	if t.srvPID == 0 {
		return 0
	}
	return benchtest.ProcessCPU(b, t.srvPID)
}

// pct is the nearest-rank percentile of sorted d (the SDK side uses the
// same rank: ceil(p/100*n)).
func pct(d []time.Duration, p int) time.Duration {
	k := (p*len(d) + 99) / 100
	return d[max(k, 1)-1]
}
