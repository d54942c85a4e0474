package cmd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatctl/cmd"
	"chatctl/pkg/config"
	"chatctl/pkg/sig"
)

// Helpers of the lifecycle tests: a real `chatctl serve` process, CLI runs
// of the built binary with a private config dir, background watches, golden
// transcripts, and a scan of every output for secrets.

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/cli")

// serveProc is one `chatctl serve` process.
type serveProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	code   int
	stderr *lockedBuffer
	WS     string `json:"ws"`
	REST   string `json:"rest"`
	Addr   string `json:"-"`
	App    uint64 `json:"sdkappid"`
	Admin  string `json:"admin"`
	Ready  string `json:"-"` // the ready line as printed
}

// serveOpts say how to start a server.
type serveOpts struct {
	listen  string // default 127.0.0.1:0
	dataDir string // default <cfg>/data
	args    []string
}

// startServe starts `chatctl serve` with the config dir cfg and waits for
// its ready line; t.Cleanup kills it if it still runs.
func startServe(t *testing.T, cfg string, o serveOpts) *serveProc {
	t.Helper()
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	args := append([]string{"serve", "--listen", o.listen, "-o", "json", "--log-level", "warn"}, o.args...)
	if o.dataDir != "" {
		args = append(args, "--data-dir", o.dataDir)
	}
	cmd := exec.Command(builtBinary(t), args...)
	cmd.Env = cliEnv(cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		lines <- l
		io.Copy(io.Discard, out)
	}()
	go func() {
		err := cmd.Wait()
		p.code = exitCodeOf(err)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case l := <-lines:
		p.Ready = l
		if err := json.Unmarshal([]byte(l), p); err != nil || p.WS == "" {
			t.Fatalf("serve's ready line %q: %v; stderr:\n%s", l, err, p.stderr.String())
		}
	case <-p.done:
		t.Fatalf("serve exited %d before it was ready; stderr:\n%s", p.code, p.stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("serve not ready after 15 s; stderr:\n%s", p.stderr.String())
	}
	p.Addr = strings.TrimPrefix(p.WS, "ws://")
	return p
}

// stop sends SIGTERM and waits for the exit code.
func (p *serveProc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("serve still running 15 s after SIGTERM; stderr:\n%s", p.stderr.String())
	}
	return p.code
}

func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// cliEnv is the environment of a chatctl process (cmd.ChildEnv).
var cliEnv = cmd.ChildEnv

// cli runs the built chatctl with one config dir against one server, and
// keeps every output for the secret scan done at the end of the test.
type cli struct {
	t        *testing.T
	bin      string
	cfg      string
	endpoint string // CHATCTL_ENDPOINT; "" leaves it unset

	mu      sync.Mutex
	outputs []string            // every stdout and stderr seen
	secrets map[string]string   // secret → what it is
	allowed map[string]struct{} // outputs that may show the A2Key (whoami --show-token)
}

// newCLI makes a cli with a fresh config dir; the secret scan runs in
// t.Cleanup (before the temp dirs go).
func newCLI(t *testing.T, endpoint string) *cli {
	c := &cli{t: t, bin: builtBinary(t), cfg: filepath.Join(t.TempDir(), "config"), endpoint: endpoint,
		secrets: map[string]string{}, allowed: map[string]struct{}{}}
	t.Cleanup(c.checkNoSecrets)
	return c
}

// withServer starts a server on c's config dir (so the CLI finds its dev
// app) and points c at it.
func (c *cli) withServer(o serveOpts) *serveProc {
	c.t.Helper()
	s := startServe(c.t, c.cfg, o)
	c.endpoint = s.WS
	dev, err := config.LoadDevApp(c.cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.secret(dev.SecretKey, "the dev app's secret key")
	return s
}

func (c *cli) secret(s, what string) {
	if s == "" {
		return
	}
	c.mu.Lock()
	c.secrets[s] = what
	c.mu.Unlock()
}

// result is one finished chatctl process.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("chatctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runOpts tune one run.
type runOpts struct {
	stdin      string
	env        []string
	showsToken bool // the output may hold the A2Key (--show-token)
	// sig, when not 0, is sent to the process once it waits for
	// something (a server's answer, its input): see waiter.
	sig     syscall.Signal
	waiting waiter
	// echo sends sig a second time 5 ms after the first, as timeout(1)
	// does (to chatctl, then to its process group): the same stop.
	echo bool
	// noWrites runs the process with RLIMIT_FSIZE 0 (sh's `ulimit -f 0`):
	// every write to a regular file fails, as on a full disk, while its
	// stdout and stderr (pipes) work.
	noWrites bool
}

// waiter is called before the process starts; the func it returns blocks
// until the process waits for something, and returns what to do once the
// process has ended (nil: nothing).
type waiter func() (wait func() (release func(), err error))

func (c *cli) run(args ...string) result { return c.runWith(runOpts{}, args...) }

func (c *cli) runWith(o runOpts, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	if o.noWrites {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `ulimit -f 0 && exec "$0" "$@"`, c.bin}, args...)...)
	}
	cmd.Env = c.env(o.env...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	var wait func() (func(), error)
	if o.sig != 0 {
		wait = o.waiting()
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	if o.sig != 0 {
		release, err := wait()
		if err != nil {
			cmd.Process.Kill()
			<-done
			c.t.Fatalf("chatctl %s: %v", strings.Join(args, " "), err)
		}
		cmd.Process.Signal(o.sig)
		if o.echo {
			time.Sleep(5 * time.Millisecond)
			cmd.Process.Signal(o.sig)
		}
		if release != nil {
			defer release()
		}
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		c.t.Fatalf("chatctl %s: still running after 30 s", strings.Join(args, " "))
	}
	r := result{args: args, code: exitCodeOf(err), stdout: out.String(), stderr: errb.String()}
	if r.code < 0 {
		c.t.Fatalf("chatctl %s: %v", strings.Join(args, " "), err)
	}
	c.record(r.stdout, o.showsToken)
	c.record(r.stderr, false)
	c.learnA2Keys()
	return r
}

func (c *cli) env(extra ...string) []string {
	env := cliEnv(c.cfg)
	if c.endpoint != "" {
		env = append(env, "CHATCTL_ENDPOINT="+c.endpoint)
	}
	return append(env, extra...)
}

func (c *cli) record(s string, allowed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outputs = append(c.outputs, s)
	if allowed {
		c.allowed[s] = struct{}{}
	}
}

// learnA2Keys adds every a2_key of the session file to the secrets.
func (c *cli) learnA2Keys() {
	b, err := os.ReadFile(c.sessionPath())
	if err != nil {
		return
	}
	var f struct {
		Profiles map[string]struct {
			A2Key string `json:"a2_key"`
		} `json:"profiles"`
	}
	if json.Unmarshal(b, &f) != nil {
		return
	}
	for name, p := range f.Profiles {
		c.secret(p.A2Key, "the A2Key of profile "+name)
	}
}

func (c *cli) sessionPath() string { return filepath.Join(c.cfg, "sessions.json") }

// sessionBytes is the session file's content ("" when there is none).
func (c *cli) sessionBytes() string {
	b, err := os.ReadFile(c.sessionPath())
	if err != nil && !os.IsNotExist(err) {
		c.t.Fatal(err)
	}
	return string(b)
}

// sigToken matches words that could be a UserSig (base64url with * and -).
var sigToken = regexp.MustCompile(`[A-Za-z0-9*_\-]{40,}`)

// checkNoSecrets fails the test when an output holds a secret (see leaks);
// outputs of --show-token runs are exempt.
func (c *cli) checkNoSecrets() {
	for _, l := range c.leaks(false) {
		c.t.Error(l)
	}
}

// leaks lists the outputs that hold a secret: the app key, a UserSig or an
// A2Key the test knows of, or any word that decodes as a UserSig.
func (c *cli) leaks(includeAllowed bool) []string {
	c.learnA2Keys()
	c.mu.Lock()
	defer c.mu.Unlock()
	var found []string
	for _, out := range c.outputs {
		if _, ok := c.allowed[out]; ok && !includeAllowed {
			continue
		}
		for s, what := range c.secrets {
			if strings.Contains(out, s) {
				found = append(found, fmt.Sprintf("%s appears in a command's output:\n%s", what, out))
			}
		}
		for _, w := range sigToken.FindAllString(out, -1) {
			if _, err := sig.Decode(w); err == nil {
				found = append(found, fmt.Sprintf("a UserSig appears in a command's output:\n%s", out))
			}
		}
	}
	return found
}

// countSecrets says how many secrets of each kind the scan looks for.
func (c *cli) countSecrets() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := map[string]int{}
	for _, what := range c.secrets {
		n[strings.Fields(what)[1]]++ // "the A2Key ...", "a UserSig ...", "the dev app's ..."
	}
	return n
}

// mint makes a UserSig with the dev app's key (or key, when not empty),
// issued at now, and writes it to a file; it is a secret of the test.
func (c *cli) mintFile(user, key string, now time.Time, expire time.Duration) string {
	c.t.Helper()
	dev, err := config.LoadDevApp(c.cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if key == "" {
		key = dev.SecretKey
	}
	s := sig.Gen(sig.Params{SDKAppID: dev.SDKAppID, Key: key, UserID: user, Expire: int64(expire / time.Second)}, now)
	c.secret(s, "a UserSig minted for "+user)
	path := filepath.Join(c.t.TempDir(), user+".sig")
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// bgProc is a chatctl process in the background (watch), its stdout read
// line by line.
type bgProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	code  int

	mu     sync.Mutex
	all    []string
	stderr lockedBuffer
}

// start runs chatctl ARGS in the background; t.Cleanup kills it if needed.
func (c *cli) start(args ...string) *bgProc {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env()
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	p := &bgProc{t: c.t, cmd: cmd, lines: make(chan string, 1000), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.all = append(p.all, sc.Text())
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
	}()
	go func() {
		<-readDone
		p.code = exitCodeOf(cmd.Wait())
		c.record(strings.Join(p.output(), "\n"), false)
		c.record(p.stderr.String(), false)
		close(p.done)
	}()
	c.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *bgProc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.all...)
}

// event is one line of watch.
type event struct {
	Event   string    `json:"event"`
	State   string    `json:"state"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Profile string    `json:"profile"`
	User    string    `json:"user"`
}

func (e event) String() string {
	s := e.Event
	if e.State != "" {
		s += " " + e.State
	}
	if e.Type != "" {
		s += " " + e.Type
	}
	return s
}

// next returns the next event line, failing after d.
func (p *bgProc) next(d time.Duration) event {
	p.t.Helper()
	select {
	case l := <-p.lines:
		var e event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			p.t.Fatalf("watch printed a line that is not JSON: %q", l)
		}
		return e
	case <-time.After(d):
		p.t.Fatalf("no event after %s; output so far:\n%s\nstderr:\n%s", d, strings.Join(p.output(), "\n"), p.stderr.String())
	}
	return event{}
}

// expect reads events until one whose String() is want, failing on any
// event that is not allowed on the way.
func (p *bgProc) expect(want string, allowed ...string) event {
	p.t.Helper()
	for {
		e := p.next(15 * time.Second)
		if e.String() == want {
			return e
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == e.String()
		}
		if !ok {
			p.t.Fatalf("event %q while waiting for %q; output:\n%s", e, want, strings.Join(p.output(), "\n"))
		}
	}
}

// wait returns the exit code, failing after d.
func (p *bgProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		p.t.Fatalf("still running after %s; output:\n%s\nstderr:\n%s", d, strings.Join(p.output(), "\n"), p.stderr.String())
	}
	return -1
}

func (p *bgProc) signal(s os.Signal) { p.cmd.Process.Signal(s) }

// checkEvents checks that every line is a JSON event with a time, the
// profile and the user, in time order.
func checkEvents(t *testing.T, lines []string, profile, user string) []event {
	t.Helper()
	var evs []event
	var last time.Time
	for _, l := range lines {
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("watch line is not JSON: %q", l)
		}
		for _, k := range []string{"event", "time", "profile", "user"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("watch line %q has no %q", l, k)
			}
		}
		var e event
		json.Unmarshal([]byte(l), &e)
		if e.Profile != profile || e.User != user {
			t.Errorf("watch line %q: want profile %q, user %q", l, profile, user)
		}
		if e.Time.Before(last) {
			t.Errorf("watch line %q is earlier than the one before", l)
		}
		last = e.Time
		evs = append(evs, e)
	}
	return evs
}

// freePort is a loopback address nothing listens on (as far as one can
// tell: it was free a moment ago).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer is a WebSocket server on loopback that takes every
// connection and frame and never answers one: a hung server, for
// --timeout. It returns its ws:// URL.
func silentServer(t *testing.T) string { return hungWS(t).URL }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// transcript records runs in a golden-file form:
//
//	$ chatctl ARGS
//	> a stdout line
//	! a stderr line
//	= exit N
type transcript struct {
	bytes.Buffer
	norm []func(string) string
}

func (tr *transcript) add(r result) {
	fmt.Fprintf(&tr.Buffer, "$ chatctl %s\n", strings.Join(r.args, " "))
	for _, l := range splitLines(r.stdout) {
		fmt.Fprintf(&tr.Buffer, "> %s\n", tr.normalize(l))
	}
	for _, l := range splitLines(r.stderr) {
		fmt.Fprintf(&tr.Buffer, "! %s\n", tr.normalize(l))
	}
	fmt.Fprintf(&tr.Buffer, "= exit %d\n", r.code)
}

func (tr *transcript) note(format string, a ...any) {
	fmt.Fprintf(&tr.Buffer, "# "+format+"\n", a...)
}

func (tr *transcript) normalize(s string) string {
	for _, f := range tr.norm {
		s = f(s)
	}
	return s
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// replacer returns a normalizer replacing re's matches with repl.
func replacer(re, repl string) func(string) string {
	r := regexp.MustCompile(re)
	return func(s string) string { return r.ReplaceAllString(s, repl) }
}

// goldenNormalizers replace what changes from run to run: ports, app ids,
// instance ids, TinyIds, times, clock offsets and round trips, paths.
func goldenNormalizers(app uint64, cfg string) []func(string) string {
	return []func(string) string{
		func(s string) string { return strings.ReplaceAll(s, cfg, "$CONFIG") },
		func(s string) string { return strings.ReplaceAll(s, fmt.Sprint(app), "$SDKAPPID") },
		replacer(`(ws|http)://127\.0\.0\.1:\d+`, "$1://127.0.0.1:$$PORT"),
		replacer(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`, "$$TIME"),
		replacer(`"(tiny_id)":"\d+"`, `"$1":"$$TINYID"`),
		replacer(`"(instance|inst_id)":\d+`, `"$1":$$INST`),
		replacer(`\binstance \d+`, `instance $$INST`),
		replacer(`"(offset_ms|rtt_ms)":-?\d+`, `"$1":$$N`),
		replacer(`"(server_time_ms)":\d+`, `"$1":$$MS`),
		replacer(`^\d{13}$`, `$$MS`),
		replacer(`^\d{10}$`, `$$SECONDS`),
	}
}

// checkGolden compares got with testdata/cli/name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "testdata", "cli", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./cmd -run %s -update` to create it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("output differs from %s (rerun with -update if the change is intended):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the lines that differ, "-" want and "+" got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}
