package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/loadgen"
	"chatctl/pkg/server/servertest"
)

// benchEnv is a real server and the key of its app in a file.
type benchEnv struct {
	t       *testing.T
	ts      *servertest.Server
	keyFile string
}

func newBenchEnv(t *testing.T) *benchEnv {
	t.Helper()
	ts := servertest.Start(t)
	dir := t.TempDir()
	isolateEnv(t, dir)
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(ts.App.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &benchEnv{t: t, ts: ts, keyFile: keyFile}
}

func (e *benchEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	args = append(args, "--endpoint", e.ts.WSURL, "--sdkappid", strconv.FormatUint(e.ts.App.SDKAppID, 10), "--key-file", e.keyFile)
	var out, errb bytes.Buffer
	code = Run(args, strings.NewReader(""), &out, &errb)
	if strings.Contains(out.String()+errb.String(), e.ts.App.Key) {
		e.t.Fatalf("output holds the secret key")
	}
	return code, out.String(), errb.String()
}

// runJSON runs a bench with -o json and decodes its result into v.
func (e *benchEnv) runJSON(name string, v any, args ...string) {
	e.t.Helper()
	code, out, errs := e.run(append([]string{"bench", name, "-o", "json"}, args...)...)
	if code != 0 {
		e.t.Fatalf("bench %s: exit %d\n%s%s", name, code, out, errs)
	}
	if strings.Count(out, "\n") != 1 {
		e.t.Fatalf("bench %s -o json: want one line, got %q", name, out)
	}
	var env struct {
		Bench  string          `json:"bench"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || env.Bench != name {
		e.t.Fatalf("bench %s -o json: %v %q", name, err, out)
	}
	if err := json.Unmarshal(env.Result, v); err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(errs, "minting") {
		e.t.Errorf("bench %s: no progress on stderr: %q", name, errs)
	}
}

// baseGoroutines is the goroutine count before a bench runs, once
// os/signal's own goroutine (started by the first Notify, for good) runs,
// and once the count has held for 100 ms: the test server's store starts
// a goroutine of its purge loop a moment after it opens, and a base taken
// before it (a loaded run under -race) failed the test by one.
func baseGoroutines() int {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	signal.Stop(c)
	n, since := runtime.NumGoroutine(), time.Now()
	for deadline := since.Add(5 * time.Second); time.Since(since) < 100*time.Millisecond && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := runtime.NumGoroutine(); m != n {
			n, since = m, time.Now()
		}
	}
	return n
}

// settleGoroutines waits for the goroutine count to come back to base.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, want at most %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBenchLogins(t *testing.T) {
	e := newBenchEnv(t)
	base := baseGoroutines()
	var r loadgen.LoginsResult
	e.runJSON("logins", &r, "--users", "30", "--concurrency", "4", "--user-prefix", "bl-")
	if r.Users != 30 || r.OK != 30 || r.Failed != 0 || len(r.Errors) != 0 || r.Retried == nil || len(r.Retried) != 0 || r.Latency.N != 30 || r.Concurrency != 4 {
		t.Fatalf("logins: %+v", r)
	}
	if r.PerSecond <= 0 || r.Latency.Max < r.Latency.P50 || r.Limits.NoFileSoft == 0 {
		t.Fatalf("logins figures: %+v", r)
	}
	if r.Protocol != loadgen.ProtoSDK || r.Close != loadgen.CloseSDK || r.ServerCPUPerLogin != 0 {
		t.Fatalf("logins: protocol %q, close %q, server CPU %v without --server-pid", r.Protocol, r.Close, r.ServerCPUPerLogin)
	}
	// The simple generator's close, on a server whose process is known
	// (this one: servertest runs in the test's process).
	var rr loadgen.LoginsResult
	e.runJSON("logins", &rr, "--users", "10", "--close", "reset", "--server-pid", strconv.Itoa(os.Getpid()), "--user-prefix", "blr-")
	if rr.OK != 10 || rr.Close != loadgen.CloseReset || rr.ServerCPUPerLogin <= 0 || rr.ServerCPUError != "" {
		t.Fatalf("--close reset --server-pid: %+v", rr)
	}

	code, out, _ := e.run("bench", "logins", "--users", "5", "--user-prefix", "bl-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, row := range []string{"users  ", "ok  ", "failed  ", "errors  ", "retried  ", "logins/s  ", "latency  ", "open files limit  "} {
		if !strings.Contains(out, "\n"+row) && !strings.HasPrefix(out, row) {
			t.Errorf("table lacks %q:\n%s", row, out)
		}
	}
	if !strings.Contains(out, "ok                5\n") || !strings.Contains(out, "close             sdk (close frame 4000, then FIN)\n") {
		t.Errorf("table: want 5 ok and the SDK's close:\n%s", out)
	}
	if _, out, _ = e.run("bench", "logins", "--users", "2", "--close", "reset", "--user-prefix", "bl-"); !strings.Contains(out, "close             reset (TCP RST, no close frame)\n") {
		t.Errorf("--close reset: table does not say so:\n%s", out)
	}
	settleGoroutines(t, base)
}

func TestBenchHold(t *testing.T) {
	e := newBenchEnv(t)
	base := baseGoroutines()
	var r loadgen.HoldResult
	e.runJSON("hold", &r, "--sessions", "12", "--duration", "1500ms", "--hello-interval", "400ms", "--user-prefix", "bh-",
		"--server-pid", strconv.Itoa(os.Getpid()))
	if r.Sessions != 12 || r.LoggedIn != 12 || r.OnlineAtEnd != 12 || r.Disconnects != 0 || len(r.LoginErrors) != 0 {
		t.Fatalf("hold: %+v", r)
	}
	// Every session said hello at least twice in 1.5 s, and the server
	// answered every one.
	if r.Hellos < 24 || r.HelloFails != 0 || r.HeartbeatTimeouts != 0 || r.HelloInterval != 0.4 {
		t.Fatalf("hold cadence: %+v", r)
	}
	if r.ServerMem == nil || r.ServerMem.Source != "debug/stats" || r.ServerMem.Held.Sessions < 12 || r.ServerMem.MeasuredOnSessions != 12 {
		t.Fatalf("hold server memory: %+v %q", r.ServerMem, r.ServerMemError)
	}
	// --server-pid: the server's CPU over the hellos after the memory sample.
	if r.ServerCPUPerKeepAlive <= 0 || r.KeepAlivesMeasured <= 0 || r.KeepAlivesMeasured > r.Hellos+r.Heartbeats || r.ServerCPUError != "" {
		t.Fatalf("hold server CPU: %v µs over %d round trips (%q)", r.ServerCPUPerKeepAlive, r.KeepAlivesMeasured, r.ServerCPUError)
	}

	code, out, errs := e.run("bench", "hold", "--sessions", "3", "--duration", "1100ms", "--user-prefix", "bh-")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	for _, want := range []string{"logged in  ", "unexpected disconnects  ", "server memory / session  ", "hello interval  "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "hold: 1s/1.1s  online 3/3") {
		t.Errorf("progress: %q", errs)
	}
	settleGoroutines(t, base)
}

func TestBenchKick(t *testing.T) {
	e := newBenchEnv(t)
	base := baseGoroutines()
	var r loadgen.KickResult
	e.runJSON("kick", &r, "--sessions", "10", "--kicks", "6", "--kick-concurrency", "3", "--user-prefix", "bk-")
	if r.Sessions != 10 || r.LoggedIn != 10 || r.Kicks != 6 || r.Delivered != 6 || r.Undelivered != 0 ||
		r.WrongType != 0 || len(r.KickErrors) != 0 || r.Latency.N != 6 || r.RESTLatency.N != 6 || r.Disconnects != 0 {
		t.Fatalf("kick: %+v", r)
	}
	code, out, _ := e.run("bench", "kick", "--sessions", "4", "--kicks", "2", "--user-prefix", "bk2-")
	if code != 0 || !strings.Contains(out, "delivered  ") || !strings.Contains(out, "kick → KICKED_OUT") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	settleGoroutines(t, base)
}

func TestBenchUsageAndUnreachable(t *testing.T) {
	e := newBenchEnv(t)
	if code, _, errs := e.run("bench", "kick", "--sessions", "2", "--kicks", "3"); code != ExitUsage || !strings.Contains(errs, "--kicks") {
		t.Fatalf("kicks > sessions: exit %d %q", code, errs)
	}
	for _, args := range [][]string{
		{"bench", "logins", "--users", "0"},
		{"bench", "logins", "--users", "2000000000"}, // ran out of memory minting
		{"bench", "hold", "--sessions", "1000001"},
	} {
		if code, _, errs := e.run(args...); code != ExitUsage || !strings.Contains(errs, "between 1 and 1000000") {
			t.Errorf("%q: exit %d %q", args, code, errs)
		}
	}
	if code, _, _ := e.run("bench"); code != ExitUsage {
		t.Fatalf("bare bench: exit %d", code)
	}
	for _, args := range [][]string{
		{"bench", "logins", "--close", "fin"},
		{"bench", "logins", "--retries", "-1"},
		{"bench", "logins", "--dial-timeout", "-1s"},
		{"bench", "hold", "--protocol", "mqtt"},
		{"bench", "kick", "--protocol", "centrifugo"},
		{"bench", "logins", "--platform", "99"},
		{"bench", "hold", "--platform", "-1"},
		{"bench", "logins", "--user-prefix", strings.Repeat("p", 30)}, // p…p999: 33 bytes
		{"bench", "logins", "--server-pid", "-1"},
		{"bench", "hold", "--server-pid", "-1"},
		{"bench", "logins", "--source-addr", "192.0.2.77"}, // TEST-NET-1: no machine's
	} {
		if code, _, errs := e.run(args...); code != ExitUsage || !strings.Contains(errs, args[2]) {
			t.Errorf("%q: exit %d %q", args, code, errs)
		}
	}
	// Sessions held, but no kick delivered: the REST API is not there.
	if code, out, errs := e.run("bench", "kick", "--sessions", "2", "--kicks", "2", "--wait", "1s", "--user-prefix", "bk3-",
		"--rest-url", "http://127.0.0.1:1", "-o", "json"); code != ExitUnreachable || !strings.Contains(errs, "no kick was delivered") ||
		!strings.Contains(out, `"delivered":0`) || !strings.Contains(out, `"kind":"unreachable"`) {
		t.Errorf("kicks to a REST API that is not there: exit %d\n%s%s", code, out, errs)
	}
	// Nothing listens on the port of a closed server.
	ws := e.ts.WSURL
	e.ts.Close()
	var out, errb bytes.Buffer
	code := Run([]string{"bench", "logins", "--users", "3", "--endpoint", ws, "--sdkappid", strconv.FormatUint(e.ts.App.SDKAppID, 10), "--key-file", e.keyFile, "-o", "json"},
		strings.NewReader(""), &out, &errb)
	if code != ExitUnreachable || !strings.Contains(out.String(), `"dial: connection refused":3`) ||
		!strings.Contains(out.String(), `"error":{"code":6,"kind":"unreachable"`) || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("unreachable: exit %d\n%s%s", code, out.String(), errb.String())
	}
}
