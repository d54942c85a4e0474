package fault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatctl/internal/testbin"
	"chatctl/pkg/config"
	"chatctl/pkg/sig"
)

// The tests run the real chatctl binary, built once per test run.
func TestMain(m *testing.M) { testbin.Main(m) }

func builtBinary(t testing.TB) string { return testbin.Path(t) }

// Documented exit codes (chatctl --help, cmd/exit.go).
var documentedCodes = map[int]string{0: "ok", 1: "error", 2: "usage", 3: "not logged in",
	4: "kicked out", 5: "UserSig rejected", 6: "unreachable"}

// cleanEnv is the test's environment without CHATCTL_ or XDG settings, with
// config dir cfg.
func cleanEnv(cfg string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CHATCTL_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "CHATCTL_CONFIG_DIR="+cfg), extra...)
}

// lockedBuffer is an io.Writer safe for a process and a reader at once.
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

// serveProc is one `chatctl serve` process.
type serveProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	code   int
	stdout *lockedBuffer
	stderr *lockedBuffer
	WS     string `json:"ws"`
	REST   string `json:"rest"`
	App    uint64 `json:"sdkappid"`
	Admin  string `json:"admin"`
	Addr   string `json:"-"`
	dev    config.DevApp
}

// startServe starts `chatctl serve -o json` with config dir cfg and the
// extra args, and waits for its ready line; t.Cleanup kills it.
func startServe(t testing.TB, cfg string, args ...string) *serveProc {
	t.Helper()
	all := append([]string{"serve", "-o", "json"}, args...)
	if !hasFlag(args, "--listen") {
		all = append(all, "--listen", "127.0.0.1:0")
	}
	if !hasFlag(args, "--log-level") {
		all = append(all, "--log-level", "warn")
	}
	cmd := exec.Command(builtBinary(t), all...)
	cmd.Env = cleanEnv(cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{}), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		l, _ := r.ReadString('\n')
		p.stdout.Write([]byte(l))
		lines <- l
		io.Copy(p.stdout, r)
	}()
	go func() {
		p.code = exitCode(cmd.Wait())
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case l := <-lines:
		if err := json.Unmarshal([]byte(l), p); err != nil || p.WS == "" {
			p.kill()
			t.Fatalf("serve's ready line %q: %v; stderr:\n%s", l, err, p.stderr.String())
		}
	case <-p.done:
		t.Fatalf("serve exited %d before it was ready; stderr:\n%s", p.code, p.stderr.String())
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatalf("serve not ready after 20 s; stderr:\n%s", p.stderr.String())
	}
	p.Addr = strings.TrimPrefix(p.WS, "ws://")
	dev, err := config.LoadDevApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.dev = dev
	return p
}

func hasFlag(args []string, f string) bool {
	for _, a := range args {
		if a == f || strings.HasPrefix(a, f+"=") {
			return true
		}
	}
	return false
}

// kill sends SIGKILL (if still running) and waits.
func (p *serveProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for the exit code.
func (p *serveProc) stop(t testing.TB) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("serve still running 20 s after SIGTERM; stderr:\n%s", p.stderr.String())
	}
	return p.code
}

// sig mints a UserSig of the dev app.
func (p *serveProc) sig(user string, expire time.Duration) string {
	return sig.Gen(sig.Params{SDKAppID: p.dev.SDKAppID, Key: p.dev.SecretKey, UserID: user,
		Expire: int64(expire / time.Second)}, time.Now())
}

func exitCode(err error) int {
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

// result is one finished chatctl process.
type result struct {
	args           []string
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("chatctl %s: exit %d after %v\nstdout: %s\nstderr: %s",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// run runs chatctl with env and args, killing it after limit; a kill is
// reported as code -2.
func run(t testing.TB, env []string, limit time.Duration, args ...string) result {
	t.Helper()
	return runWithStdin(t, env, nil, limit, args...)
}

// runWithStdin is run with stdin (nil: none).
func runWithStdin(t testing.TB, env []string, stdin io.Reader, limit time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, builtBinary(t), args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, code: exitCode(err), stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		r.code = -2
	}
	return r
}

// ctxT is a context that ends after 20 s or with the test.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
