package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatctl/internal/testbin"
	"chatctl/pkg/client"
	"chatctl/pkg/config"
	"chatctl/pkg/rest"
	"chatctl/pkg/server/store/redis/redistest"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// serveProc is one `chatctl serve` process.
type serveProc struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *syncBuffer
	done   chan error
}

func startServe(t *testing.T, bin, configDir string, args ...string) *serveProc {
	t.Helper()
	return startServeEnv(t, bin, configDir, nil, args...)
}

// startServeEnv is startServe with env added to the environment.
func startServeEnv(t *testing.T, bin, configDir string, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = ChildEnv(configDir, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, stdout: bufio.NewReader(out), stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// line reads one stdout line, failing after 10 s.
func (p *serveProc) line(t *testing.T) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		l, _ := p.stdout.ReadString('\n')
		ch <- l
	}()
	select {
	case l := <-ch:
		if l == "" {
			t.Fatalf("serve printed nothing; stderr:\n%s", p.stderr.String())
		}
		return strings.TrimSuffix(l, "\n")
	case <-time.After(10 * time.Second):
		t.Fatalf("serve not ready after 10 s; stderr:\n%s", p.stderr.String())
	}
	return ""
}

// wait returns the exit code, failing after 5 s.
func (p *serveProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(5 * time.Second):
		t.Fatalf("serve did not exit within 5 s; stderr:\n%s", p.stderr.String())
	}
	return -1
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Path(t)
	cfgDir := filepath.Join(t.TempDir(), "cfg")

	var ready serveReady
	t.Run("json", func(t *testing.T) {
		p := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "-o", "json")
		line := p.line(t)
		if err := json.Unmarshal([]byte(line), &ready); err != nil {
			t.Fatalf("ready line %q: %v", line, err)
		}
		if !strings.HasPrefix(ready.WS, "ws://127.0.0.1:") || ready.REST != "http://"+strings.TrimPrefix(ready.WS, "ws://") ||
			ready.SDKAppID < 1400000000 || ready.SDKAppID >= 1500000000 || ready.Admin != "administrator" ||
			ready.DataDir != filepath.Join(cfgDir, "data") || ready.Store != "bolt" || ready.Node != "" {
			t.Fatalf("ready line: %s", line)
		}
		st, err := os.Stat(filepath.Join(cfgDir, config.DevAppFile))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("devapp.json: %v %v", st, err)
		}
		dev, err := config.LoadDevApp(cfgDir)
		if err != nil || dev.SDKAppID != ready.SDKAppID || len(dev.SecretKey) != 64 {
			t.Fatalf("dev app %+v: %v", dev, err)
		}

		resp, err := http.Get(ready.REST + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
			t.Fatalf("healthz: %d %q", resp.StatusCode, body)
		}

		// A login with a UserSig of the dev app, then SIGTERM: the socket
		// gets 1001 and the process exits 0.
		ws, _, err := websocket.DefaultDialer.Dial(ready.WS+"/binfo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		us := sig.Gen(sig.Params{SDKAppID: dev.SDKAppID, Key: dev.SecretKey, UserID: "alice", Expire: 3600}, time.Now())
		req, _ := json.Marshal(map[string]any{"head": map[string]any{"servcmd": wire.CmdLogin, "seq": 1,
			"sdkappid": dev.SDKAppID, "identifier": "alice", "usersig": us}, "body": map[string]any{}})
		ws.WriteMessage(websocket.BinaryMessage, req)
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(msg), `"ErrorCode":0`) || !strings.Contains(string(msg), `"A2Key"`) {
			t.Fatalf("login: %s %v", msg, err)
		}
		if strings.Contains(p.stderr.String(), us) || strings.Contains(p.stderr.String(), dev.SecretKey) {
			t.Fatalf("a secret reached the log:\n%s", p.stderr.String())
		}

		p.cmd.Process.Signal(syscall.SIGTERM)
		_, _, err = ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("on SIGTERM the socket ended with %v, want 1001", err)
		}
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
		}
		// Logs are JSON on a non-terminal stderr.
		for _, l := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
			if strings.HasPrefix(l, "created the dev app") {
				continue
			}
			if !json.Valid([]byte(l)) {
				t.Errorf("log line is not JSON: %q", l)
			}
		}
	})

	t.Run("textReusesDevApp", func(t *testing.T) {
		p := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "--hello-interval", "2s")
		ws, rest := p.line(t), p.line(t)
		if !strings.HasPrefix(ws, "ws://127.0.0.1:") || rest != "http://"+strings.TrimPrefix(ws, "ws://") {
			t.Fatalf("ready lines %q %q", ws, rest)
		}
		dev, _ := config.LoadDevApp(cfgDir)
		if dev.SDKAppID != ready.SDKAppID {
			t.Fatalf("dev app changed: %d then %d", ready.SDKAppID, dev.SDKAppID)
		}
		p.cmd.Process.Signal(os.Interrupt)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d after SIGINT", code)
		}
	})

	t.Run("hangupStops", func(t *testing.T) {
		p := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0")
		p.line(t)
		p.cmd.Process.Signal(syscall.SIGHUP)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d after SIGHUP", code)
		}
	})

	t.Run("addressInUse", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		p := startServe(t, bin, cfgDir, "--listen", ln.Addr().String(), "--data-dir", t.TempDir())
		if code := p.wait(t); code != ExitFailure || !strings.Contains(p.stderr.String(), "address in use") {
			t.Fatalf("exit %d, stderr %q", code, p.stderr.String())
		}
	})

	t.Run("dataDirLocked", func(t *testing.T) {
		data := t.TempDir()
		a := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "--data-dir", data)
		a.line(t)
		b := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "--data-dir", data)
		if code := b.wait(t); code != ExitFailure || !strings.Contains(b.stderr.String(), "locked") {
			t.Fatalf("second serve on one data dir: exit %d, stderr %q", code, b.stderr.String())
		}
		a.cmd.Process.Signal(syscall.SIGTERM)
		if code := a.wait(t); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})

	t.Run("badFlags", func(t *testing.T) {
		for _, args := range [][]string{
			{"--multi-device", "both"},
			{"--web-instances", "0"},
			{"--hello-interval", "10ms"},
			{"--hello-interval", "4294967296s"}, // 3 × it overflowed: a 30 s heartbeat timeout
			{"--hello-interval", "61m"},
			{"--log-level", "loud"},
			{"--conn-rate", "-1"},
			{"--conn-rate", "NaN"},
			{"--conn-burst", "-5"},
			{"--conn-max", "-1"},
			{"--heartbeat-timeout", "1ns"},
			{"--heartbeat-timeout", "-1s"},
			{"--allow-origin", "http://app.example/path"},
			{"--allow-origin", "app.example"},
			{"--allow-origin", "null"},
		} {
			p := startServe(t, bin, cfgDir, append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
			if code := p.wait(t); code != ExitUsage {
				t.Errorf("%v: exit %d, want %d; stderr %q", args, code, ExitUsage, p.stderr.String())
			}
		}
	})

	// A value from the environment or config.yaml that its flag would
	// refuse is exit 2 naming where it came from (viper read "abc" as 0,
	// which turned the connection limit off), as are serve.apps entries
	// of the wrong type; an unknown key is a warning.
	emptyFile := func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "empty.key")
		os.WriteFile(p, nil, 0o600)
		return p
	}
	t.Run("badValues", func(t *testing.T) {
		for _, c := range []struct{ env, yaml, want string }{
			{env: "CHATCTL_SERVE_CONN_RATE=abc", want: `CHATCTL_SERVE_CONN_RATE must be a number (as --conn-rate takes), not "abc"`},
			{env: "CHATCTL_SERVE_CONN_LIMIT_LOOPBACK=maybe", want: "CHATCTL_SERVE_CONN_LIMIT_LOOPBACK must be true or false"},
			{yaml: "serve:\n  heartbeat_timeout: 30\n", want: `config.yaml: serve.heartbeat_timeout must be a duration with its unit (30s, 2m) (as --heartbeat-timeout takes), not "30"`},
			{yaml: "serve:\n  conn_burst: 5x\n", want: "serve.conn_burst must be a whole number"},
			{yaml: "serve:\n  store: [a, b]\n", want: "config.yaml: serve.store must be one value, not a list or a map"},
			{env: "CHATCTL_SERVE_CONN_MAX=-3", want: "CHATCTL_SERVE_CONN_MAX must be at least 0, not -3"},
			{yaml: "serve:\n  apps:\n    - sdkappid: -1\n      secret_key: k\n", want: "config serve.apps: "},
			{yaml: "serve:\n  apps:\n    - sdkappid: 1400000001.7\n      secret_key: k\n", want: "is not a whole number"},
			{yaml: "serve:\n  apps:\n    - sdkappid: 1e20\n      secret_key: k\n", want: "is not a whole number"},
			{yaml: "serve:\n  allow_origin: [http://ok.example, 'http://x/path']\n  store: redis://127.0.0.1:1/0\n", want: `config.yaml: serve.allow_origin: allowed origin "http://x/path"`},
			{yaml: "serve:\n  apps:\n    - sdkappid: 1400000001\n      secret_key: k\n      admins: ['']\n", want: "config serve.apps[0].admins[0]: invalid UserID"},
			{yaml: "serve:\n  apps:\n    - sdkappid: 1400000001\n      secret_key: k\n      admins: ops\n", want: "config serve.apps: "},
			{yaml: "serve:\n  apps:\n    - sdkappid: 1400000001\n      secret_key: k\n      admins: 'a,b'\n", want: "config serve.apps: "},
			{yaml: "serve:\n  apps:\n    - sdkappid: 1400000001\n      secret_key: k\n      secret_key_file: /dev/null\n", want: "give secret_key or secret_key_file, not both"},
			{yaml: "serve:\n  apps:\n    - sdkappid: 1400000001\n      secret_key_file: " + emptyFile(t) + "\n", want: "is empty"},
		} {
			dir := t.TempDir()
			if c.yaml != "" {
				os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(c.yaml), 0o600)
			}
			p := startServeEnv(t, bin, dir, []string{c.env}, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
			if code := p.wait(t); code != ExitUsage || !strings.Contains(p.stderr.String(), c.want) || strings.Count(p.stderr.String(), "chatctl: ") != 1 {
				t.Errorf("%s%s: exit %d, stderr %q; want %d, one error line with %q", c.env, c.yaml, code, p.stderr.String(), ExitUsage, c.want)
			}
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("serve:\n  lisen: x\n  apps:\n    - sdkappid: \"1400000001\"\n      secret_key: k\n      bogus: 1\n"), 0o600)
		p := startServe(t, bin, dir, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "-o", "json")
		var r serveReady
		if err := json.Unmarshal([]byte(p.line(t)), &r); err != nil || r.SDKAppID != 1400000001 {
			t.Fatalf("ready line: %+v, %v", r, err)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t)
		for _, k := range []string{`unknown key "serve.lisen"`, "unknown key serve.apps[0].bogus"} {
			if !strings.Contains(p.stderr.String(), k) {
				t.Errorf("no warning %q in %q", k, p.stderr.String())
			}
		}
	})

	// The per-source connection limit from config.yaml's serve.* keys, on
	// loopback as asked: the burst's connections are answered, the next
	// one is reset unread.
	t.Run("connLimitConfig", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("serve:\n  conn_rate: 0.001\n  conn_burst: 2\n  conn_limit_loopback: true\n"), 0o600)
		p := startServe(t, bin, dir, "--listen", "127.0.0.1:0", "-o", "json")
		var r serveReady
		if err := json.Unmarshal([]byte(p.line(t)), &r); err != nil {
			t.Fatal(err)
		}
		cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
		for i := range 3 {
			resp, err := cl.Get(r.REST + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != (i < 2) {
				t.Fatalf("connection %d of a burst of 2: %v", i+1, err)
			}
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d", code)
		}

		// The cap on open connections from the environment: one kept
		// alive, the next reset unread.
		p = startServeEnv(t, bin, t.TempDir(), []string{"CHATCTL_SERVE_CONN_MAX=1", "CHATCTL_SERVE_CONN_LIMIT_LOOPBACK=true"}, "--listen", "127.0.0.1:0", "-o", "json")
		if err := json.Unmarshal([]byte(p.line(t)), &r); err != nil {
			t.Fatal(err)
		}
		keep := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
		defer keep.CloseIdleConnections()
		for i := range 2 {
			cl := keep
			if i == 1 {
				cl = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
			}
			resp, err := cl.Get(r.REST + "/healthz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if (err == nil) != (i == 0) {
				t.Fatalf("connection %d with one open at most: %v", i+1, err)
			}
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})

	t.Run("configApps", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(`serve:
  allow_origin: [http://app.example]
  apps:
    - sdkappid: 1400000077
      secret_key: "k1"
      admins: [root]
      web_instances: 2
    - sdkappid: 1400000078
      secret_key: "k2"
`), 0o600)
		p := startServe(t, bin, dir, "--listen", "127.0.0.1:0", "-o", "json")
		var r serveReady
		if err := json.Unmarshal([]byte(p.line(t)), &r); err != nil {
			t.Fatal(err)
		}
		if r.SDKAppID != 1400000077 || r.Admin != "root" {
			t.Fatalf("ready %+v", r)
		}
		if _, err := os.Stat(filepath.Join(dir, config.DevAppFile)); err == nil {
			t.Fatalf("a dev app was created although apps are configured")
		}
		for origin, ok := range map[string]bool{"http://app.example": true, "http://evil.example": false} {
			ws, resp, err := websocket.DefaultDialer.Dial(r.WS+"/binfo", http.Header{"Origin": {origin}})
			if ok && err != nil {
				t.Errorf("origin %s refused: %v", origin, err)
			}
			if !ok && (err == nil || resp.StatusCode != http.StatusForbidden) {
				t.Errorf("origin %s: %v, want 403", origin, err)
			}
			if ws != nil {
				ws.Close()
			}
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	// stopping starts serve, holds its graceful stop for its bound
	// (shutdownTimeout) with a REST request whose body never comes (the
	// server's 100 Continue shows its handler is reading), sends SIGTERM
	// (and its echo, with echo) and waits for the stop to begin. A second
	// signal then kills serve at once, as it does every command
	// (docs/OUTPUT.md, "Signals"); the echo does not.
	stopping := func(t *testing.T, echo bool) *serveProc {
		p := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "-o", "json", "--log-level", "info")
		var r serveReady
		if err := json.Unmarshal([]byte(p.line(t)), &r); err != nil {
			t.Fatal(err)
		}
		dev, err := config.LoadDevApp(cfgDir)
		if err != nil {
			t.Fatal(err)
		}
		us := sig.Gen(sig.Params{SDKAppID: dev.SDKAppID, Key: dev.SecretKey, UserID: r.Admin, Expire: 3600}, time.Now())
		c, err := net.Dial("tcp", strings.TrimPrefix(r.REST, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "POST "+rest.Prefix+rest.CmdKick+"?"+rest.Query(dev.SDKAppID, r.Admin, us)+
			" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(l, "HTTP/1.1 100") {
			t.Fatalf("REST request: %q, %v; want 100 Continue", l, err)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if echo {
			// As timeout(1) sends it to its process group, a moment
			// later: 20 ms, by which the first has been handled (the old
			// handler had restored the default action: killed), well
			// inside oneSignal.
			time.Sleep(20 * time.Millisecond)
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for end := time.Now().Add(10 * time.Second); !strings.Contains(p.stderr.String(), "shutting down"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("no graceful stop after SIGTERM; stderr:\n%s", p.stderr.String())
			}
		}
		return p
	}
	t.Run("secondSignalKills", func(t *testing.T) {
		p := stopping(t, false)
		time.Sleep(oneSignal + 100*time.Millisecond) // else the same signal's echo (withSignals)
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t)
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("after a second SIGTERM: %v, want killed by it; stderr:\n%s", p.cmd.ProcessState, p.stderr.String())
		}
	})
	// timeout(1) signals serve, then its process group: one stop, exit 0.
	t.Run("signalEchoIsOneStop", func(t *testing.T) {
		p := stopping(t, true)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d after SIGTERM and its echo, want 0; stderr:\n%s", code, p.stderr.String())
		}
	})
	// --store redis://: the ready line names the store (password hidden)
	// and the node; no AOF is warned about; SIGTERM removes the node's
	// heartbeat (its instances are offline at once on other nodes).
	t.Run("redisStore", func(t *testing.T) {
		rs := redistest.Start(t)
		url := "redis://default:pw-not-shown@" + rs.Addr() + "/0"
		rc := rs.Client()
		rc.ConfigSet(t.Context(), "requirepass", "pw-not-shown")
		p := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "-o", "json", "--store", url, "--node-ttl", "1s")
		var r serveReady
		line := p.line(t)
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Store != "redis://default:xxxxx@"+rs.Addr()+"/0" || r.Node == "" || r.DataDir != "" {
			t.Fatalf("ready line: %s", line)
		}
		rc.Do(t.Context(), "AUTH", "pw-not-shown")
		nodeKey := "chatctl:{g}:node:" + r.Node
		if n, err := rc.Exists(t.Context(), nodeKey).Result(); err != nil || n != 1 {
			t.Fatalf("node heartbeat key %s: %d %v", nodeKey, n, err)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
		}
		if n, err := rc.Exists(t.Context(), nodeKey).Result(); err != nil || n != 0 {
			t.Fatalf("node heartbeat key after SIGTERM: %d %v (want it deleted)", n, err)
		}
		if !strings.Contains(p.stderr.String(), "appendonly no") {
			t.Errorf("no warning about Redis without AOF; stderr:\n%s", p.stderr.String())
		}
		if strings.Contains(p.stderr.String(), "pw-not-shown") {
			t.Fatalf("the Redis password reached the log:\n%s", p.stderr.String())
		}
	})

	t.Run("redisStoreErrors", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close() // nothing listens there now: connection refused
		for _, tc := range []struct {
			store string
			code  int
			want  string
		}{
			{"redis://u:pw-not-shown@" + dead + "/0", ExitUnreachable, "Redis unreachable"},
			{"mysql://localhost/x", ExitUsage, "--store must be bolt or redis://"},
			{"redis://" + dead + "/notanumber", ExitUsage, "--store"},
			{"redis://u:pw-not-shown@host:port/0", ExitUsage, "invalid port"},
		} {
			p := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "--store", tc.store)
			code := p.wait(t)
			errs := p.stderr.String()
			if i := strings.Index(errs, "chatctl: "); i > 0 { // after "created the dev app" of a first run
				errs = errs[i:]
			}
			if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 ||
				strings.Contains(errs, "pw-not-shown") {
				t.Errorf("--store %s: exit %d, stderr %q; want exit %d and one line with %q", tc.store, code, errs, tc.code, tc.want)
			}
		}
		p := startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "--store", "redis://"+dead+"/0", "--node-ttl", "10ms")
		if code := p.wait(t); code != ExitUsage || !strings.Contains(p.stderr.String(), "--node-ttl: node TTL too short: at least 300ms, not 10ms") {
			t.Errorf("--node-ttl 10ms: exit %d, stderr %q; want %d and the bound", code, p.stderr.String(), ExitUsage)
		}
		// 0 is the default TTL, not below the bound: this run gets as far
		// as the (dead) Redis.
		p = startServe(t, bin, cfgDir, "--listen", "127.0.0.1:0", "--store", "redis://"+dead+"/0", "--node-ttl", "0")
		if code := p.wait(t); code != ExitUnreachable {
			t.Errorf("--node-ttl 0: exit %d, stderr %q; want %d (Redis unreachable)", code, p.stderr.String(), ExitUnreachable)
		}
	})
	// Two real serve processes on one Redis: a login on node B kicks the
	// instance on node A; node A SIGKILLed: its instances go offline on
	// node B (within --node-ttl; polled), and its A2Key logs in on node B.
	t.Run("redisTwoNodesSIGKILL", func(t *testing.T) {
		rs := redistest.Start(t)
		dir := t.TempDir()
		dev := config.DevApp{SDKAppID: 1400000079, SecretKey: "k79"}
		os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("serve:\n  apps:\n    - sdkappid: 1400000079\n      secret_key: k79\n"), 0o600)
		var r [2]serveReady
		var procs [2]*serveProc
		for i := range procs {
			procs[i] = startServe(t, bin, dir, "--listen", "127.0.0.1:0", "-o", "json", "--store", rs.URL(), "--node-ttl", "1s")
			if err := json.Unmarshal([]byte(procs[i].line(t)), &r[i]); err != nil {
				t.Fatal(err)
			}
		}
		ctx := t.Context()
		login := func(ws, user string) (*client.Conn, client.LoginResult) {
			c, err := client.Dial(ctx, client.Config{Endpoint: ws, SDKAppID: dev.SDKAppID})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			us := sig.Gen(sig.Params{SDKAppID: dev.SDKAppID, Key: dev.SecretKey, UserID: user, Expire: 3600}, time.Now())
			res, err := c.Login(ctx, user, us)
			if err != nil {
				t.Fatal(err)
			}
			return c, res
		}
		online := func(restURL, user string) int {
			var resp rest.QueryOnlineStatusResponse
			adm := &rest.Client{BaseURL: restURL, SDKAppID: dev.SDKAppID, Admin: "administrator", Key: dev.SecretKey}
			if _, err := adm.Do(ctx, rest.CmdQueryOnlineStatus, rest.QueryOnlineStatusRequest{IsNeedDetail: true, ToAccount: []string{user}}, &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.QueryResult) != 1 {
				t.Fatalf("query_online_status: %+v", resp)
			}
			return len(resp.QueryResult[0].Detail)
		}
		a, _ := login(r[0].WS, "alice")
		login(r[1].WS, "alice")
		select {
		case f := <-a.Pushes():
			var kp wire.KickPush
			json.Unmarshal(f.Body, &kp)
			if f.Head.ServCmd != wire.CmdForceOffline || kp.KickType() != wire.KickMultipleAccount {
				t.Fatalf("node A's instance got %s %s, want a multipleAccount kick", f.Head.ServCmd, f.Body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no kick pushed across the nodes")
		}
		_, rb := login(r[0].WS, "bob")
		if n := online(r[1].REST, "bob"); n != 1 {
			t.Fatalf("bob on node A, seen from node B: %d instances", n)
		}
		procs[0].cmd.Process.Kill()
		procs[0].wait(t)
		deadline := time.Now().Add(15 * time.Second)
		for online(r[1].REST, "bob") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the SIGKILLed node's instance is still online on node B")
			}
			time.Sleep(50 * time.Millisecond)
		}
		c, err := client.Dial(ctx, client.Config{Endpoint: r[1].WS, SDKAppID: dev.SDKAppID})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Relogin(ctx, rb.Session()); err != nil {
			t.Fatalf("a2 re-login on node B after node A was killed: %v", err)
		}
		if n := online(r[1].REST, "bob"); n != 1 {
			t.Fatalf("bob after re-login on node B: %d instances", n)
		}
		procs[1].cmd.Process.Signal(syscall.SIGTERM)
		if code := procs[1].wait(t); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
}
