package cmd_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"

	"strings"
	"syscall"
	"testing"
	"time"
)

// watch sees each KICKED_OUT type and exits with its code; afterwards
// whoami tells the kick from the session file.
func TestWatchKicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		kickType string
		code     int
		serve    []string
		login    []string // extra login args of the watched profile
		kick     func(t *testing.T, c *cli)
	}{
		{name: "multipleAccount", kickType: "multipleAccount", code: 4,
			kick: func(t *testing.T, c *cli) {
				mustRun(t, c, 0, "--profile", "second", "login", "alice")
			}},
		{name: "REST_API_Kick", kickType: "REST_API_Kick", code: 4,
			kick: func(t *testing.T, c *cli) {
				// The REST API may be mounted a moment after the
				// WebSocket: retry while the kick is not answered.
				deadline := time.Now().Add(10 * time.Second)
				for {
					r := c.run("admin", "kick", "alice")
					if r.code == 0 {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("admin kick: %v", r)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}},
		{name: "multipleDevice/same platform", kickType: "multipleDevice", code: 4,
			login: []string{"--platform", "PC"},
			kick: func(t *testing.T, c *cli) {
				mustRun(t, c, 0, "--profile", "second", "login", "alice", "--platform", "3")
			}},
		{name: "multipleDevice/single policy", kickType: "multipleDevice", code: 4,
			serve: []string{"--multi-device", "single"},
			kick: func(t *testing.T, c *cli) {
				mustRun(t, c, 0, "--profile", "second", "login", "alice", "--platform", "Android")
			}},
		{name: "userSigExpired", kickType: "userSigExpired", code: 5,
			serve: []string{"--hello-interval", "1s"},
			login: []string{"--expire", "5s"}}, // margin for a slow machine to attach before it ends
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCLI(t, "")
			c.withServer(serveOpts{args: tc.serve})
			mustRun(t, c, 0, append([]string{"login", "alice"}, tc.login...)...)
			w := c.start("watch")
			w.expect("SDK_READY")
			if tc.kick != nil {
				tc.kick(t, c)
			}
			w.expect("KICKED_OUT "+tc.kickType, "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE connected", "NET_STATE_CHANGE disconnected")
			w.expect("SDK_NOT_READY")
			if code := w.wait(15 * time.Second); code != tc.code {
				t.Errorf("watch exited %d, want %d; stderr: %s", code, tc.code, w.stderr.String())
			}
			if !strings.Contains(w.stderr.String(), tc.kickType) {
				t.Errorf("watch's message does not name %s: %q", tc.kickType, w.stderr.String())
			}
			checkEvents(t, w.output(), "default", "alice")

			// The session file says why; whoami tells it, with no network.
			var f struct {
				Profiles map[string]struct {
					State    string `json:"state"`
					KickType string `json:"kick_type"`
					Platform int    `json:"platform"`
				}
			}
			if err := json.Unmarshal([]byte(c.sessionBytes()), &f); err != nil {
				t.Fatal(err)
			}
			p := f.Profiles["default"]
			wantState := map[int]string{4: "kicked", 5: "expired"}[tc.code]
			if p.State != wantState || p.KickType != tc.kickType {
				t.Errorf("session file: state %q kick_type %q, want %q %q", p.State, p.KickType, wantState, tc.kickType)
			}
			if len(tc.login) > 0 && tc.login[0] == "--platform" && p.Platform != 3 {
				t.Errorf("session file: platform %d, want 3 (PC)", p.Platform)
			}
			for _, args := range [][]string{{"whoami"}, {"whoami", "--check"}, {"server-time"}, {"watch"}} {
				r := c.run(args...)
				if args[0] == "watch" {
					// watch replays the recorded end first.
					checkRecordedEnd(t, r.stdout, tc.kickType)
					r.stdout = ""
				}
				if r.code != tc.code || r.stdout != "" || !strings.Contains(r.stderr, tc.kickType) {
					t.Errorf("after the kick, want exit %d naming %s and no stdout:\n%v", tc.code, tc.kickType, r)
				}
			}
			// The next login starts afresh.
			mustRun(t, c, 0, "login", "alice")
		})
	}
}

// watch rides out a server restart: NET_STATE_CHANGE, then still attached
// (the new server process has it online), no KICKED_OUT; SIGTERM ends it
// with exit 0.
func TestWatchSurvivesRestart(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	data := t.TempDir()
	srv := c.withServer(serveOpts{dataDir: data})
	mustRun(t, c, 0, "login", "alice")
	w := c.start("watch")
	w.expect("SDK_READY")
	waitOnline(t, c, "alice")

	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d on SIGTERM", code)
	}
	w.expect("NET_STATE_CHANGE connecting")
	startServe(t, c.cfg, serveOpts{listen: srv.Addr, dataDir: data})
	w.expect("NET_STATE_CHANGE connected", "NET_STATE_CHANGE disconnected")
	waitOnline(t, c, "alice")

	w.signal(syscall.SIGTERM)
	if code := w.wait(10 * time.Second); code != 0 {
		t.Errorf("watch exited %d on SIGTERM, want 0; stderr: %s", code, w.stderr.String())
	}
	evs := checkEvents(t, w.output(), "default", "alice")
	for _, e := range evs {
		if e.Event == "KICKED_OUT" || e.Event == "SDK_NOT_READY" {
			t.Errorf("event %s across a restart:\n%s", e, strings.Join(w.output(), "\n"))
		}
	}
	// The session is still good.
	mustRun(t, c, 0, "whoami", "--check")
}

// waitOnline waits until the server reports user Online over REST (admin
// online), which does not touch the instance.
func waitOnline(t *testing.T, c *cli, user string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.run("admin", "online", user)
		if r.code == 0 && strings.Contains(r.stdout, "Online") && !strings.Contains(r.stdout, "Offline") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not online after 10 s: %v", user, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustRun(t *testing.T, c *cli, code int, args ...string) result {
	t.Helper()
	r := c.run(args...)
	if r.code != code {
		t.Fatalf("want exit %d:\n%v", code, r)
	}
	return r
}

// How watch ends without a kick: SIGINT → 0; --timeout alone → 0;
// --until an event that does not come within --timeout → 1.
func TestWatchStops(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")

	w := c.start("watch")
	w.expect("SDK_READY")
	w.signal(os.Interrupt)
	if code := w.wait(10 * time.Second); code != 0 || w.stderr.String() != "" {
		t.Errorf("watch exited %d on SIGINT, want 0 and no message; stderr: %s", code, w.stderr.String())
	}

	r := mustRun(t, c, 0, "watch", "--timeout", "300ms")
	if evs := checkEvents(t, splitLines(r.stdout), "default", "alice"); len(evs) != 1 || evs[0].Event != "SDK_READY" {
		t.Errorf("watch --timeout: %v", r)
	}
	r = c.run("watch", "--until", "KICKED_OUT", "--timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, "timed out") || !strings.Contains(r.stdout, "SDK_READY") {
		t.Errorf("watch --until KICKED_OUT --timeout: want exit 1, timed out:\n%v", r)
	}
	// None of this ended the session.
	mustRun(t, c, 0, "whoami", "--check")
}

// A server that forgot everything (a new data dir on the same address)
// refuses the saved sessions: every command says the session was revoked,
// none leaves the profile stuck: login logs in afresh, logout removes it.
func TestServerReset(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	srv := c.withServer(serveOpts{dataDir: t.TempDir()})
	for _, p := range []string{"default", "b", "c"} {
		mustRun(t, c, 0, "--profile", p, "login", "u-"+p)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d on SIGTERM", code)
	}
	startServe(t, c.cfg, serveOpts{listen: srv.Addr, dataDir: t.TempDir()})

	checkFailure(t, c.run("whoami", "--check"), 4, "revoked", "70002", `"default"`)
	checkFailure(t, c.run("whoami"), 4, "revoked")
	r := c.run("--profile", "b", "watch")
	checkFailure(t, result{args: r.args, code: r.code, stderr: r.stderr}, 4, "revoked", `"b"`)
	if evs := checkEvents(t, splitLines(r.stdout), "b", "u-b"); len(evs) != 1 || evs[0].Event != "SDK_NOT_READY" {
		t.Errorf("watch of a revoked session: want one SDK_NOT_READY:\n%v", r)
	}
	checkFailure(t, c.run("--profile", "c", "logout"), 3, "revoked", "removed")
	checkFailure(t, c.run("--profile", "c", "whoami"), 3)
	r = mustRun(t, c, 0, "login", "u-default")
	if strings.Contains(r.stdout, "repeatLogin") {
		t.Errorf("login after a reset: want a fresh login:\n%v", r)
	}
	mustRun(t, c, 0, "whoami", "--check")
}

// checkRecordedEnd checks that out is the two lines a watch of an ended
// session prints: KICKED_OUT of kickType and SDK_NOT_READY, both recorded.
func checkRecordedEnd(t *testing.T, out, kickType string) {
	t.Helper()
	lines := splitLines(out)
	if len(lines) != 2 {
		t.Fatalf("watch of an ended session printed %d lines, want 2:\n%s", len(lines), out)
	}
	type line struct {
		Schema   int    `json:"schema_version"`
		Event    string `json:"event"`
		Type     string `json:"type"`
		Time     string `json:"time"`
		Recorded bool   `json:"recorded"`
	}
	var got []line
	for _, l := range lines {
		var one line
		if err := json.Unmarshal([]byte(l), &one); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		got = append(got, one)
	}
	if got[0].Event != "KICKED_OUT" || got[0].Type != kickType || got[1].Event != "SDK_NOT_READY" ||
		!got[0].Recorded || !got[1].Recorded || got[0].Schema != 1 || got[0].Time == "" {
		t.Errorf("watch of an ended session printed:\n%s\nwant recorded KICKED_OUT %s, SDK_NOT_READY", out, kickType)
	}
}

// What another server says (--endpoint elsewhere) is reported but not
// saved: the session at its own server is still fine. Another dev app
// refuses it (70020). A server of the same app that is not the profile's
// (its own data: it never issued the A2Key) refuses it as revoked: not the
// profile's end, so exit 1 server_refused (as logout tells it), with no
// kick_type, the message naming the server that said it.
func TestOtherEndpointDoesNotRecord(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	otherApp := startServe(t, filepath.Join(t.TempDir(), "other"), serveOpts{})
	sameApp := startServe(t, c.cfg, serveOpts{dataDir: filepath.Join(t.TempDir(), "other")})
	before := c.sessionBytes()
	for _, other := range []struct {
		ws   string
		code int
		kind string
		want []string
	}{
		{otherApp.WS, 5, "usersig_rejected", []string{"refused", "70020"}},
		{sameApp.WS, 1, "server_refused", []string{"not the server of profile", "revoked", "code 70"}},
	} {
		for _, args := range [][]string{{"whoami", "--check"}, {"server-time"}, {"watch"}} {
			r := c.run(append(args, "--endpoint", other.ws)...)
			if args[0] == "watch" { // it prints the SDK_NOT_READY
				if evs := checkEvents(t, splitLines(r.stdout), "default", "alice"); len(evs) != 1 || evs[0].Event != "SDK_NOT_READY" {
					t.Errorf("watch --endpoint %s: want one SDK_NOT_READY:\n%v", other.ws, r)
				}
				r.stdout = ""
			}
			checkFailure(t, r, other.code, append([]string{other.ws}, other.want...)...)
			if strings.Contains(r.stderr, "chatctl login alice") {
				t.Errorf("%v: another server's word is told as the profile's end:\n%s", args, r.stderr)
			}
			if j := c.run(append(args, "--endpoint", other.ws, "-o", "json")...); !strings.Contains(j.stdout, `"kind":"`+other.kind+`"`) || strings.Contains(j.stdout, "kick_type") {
				t.Errorf("%v -o json: %v", args, j)
			}
		}
	}
	// The profile's own server under another name answers OK: not
	// recorded either (checked_at), as no other endpoint's word is.
	mustRun(t, c, 0, "whoami", "--check", "--endpoint", strings.Replace(c.endpoint, "127.0.0.1", "localhost", 1))
	mustRun(t, c, 0, "status", "--check", "--endpoint", strings.Replace(c.endpoint, "127.0.0.1", "localhost", 1))
	mustRun(t, c, 0, "server-time", "--endpoint", strings.Replace(c.endpoint, "127.0.0.1", "localhost", 1))
	if c.sessionBytes() != before {
		t.Errorf("another server's answer changed the session file:\nbefore: %s\nafter: %s", before, c.sessionBytes())
	}
	mustRun(t, c, 0, "whoami", "--check")
}

// A watch of an old session records its end only while the profile still
// holds that session. Instance IDs are per server: a login on a server with
// a fresh data dir gets the old session's ID again, and the old watch's
// kick was saved into the new, live session (the CLI pass).
func TestWatchEndKeepsANewSessionWithTheSameInstance(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	first := c.withServer(serveOpts{})
	second := startServe(t, c.cfg, serveOpts{dataDir: filepath.Join(t.TempDir(), "second")})
	mustRun(t, c, 0, "login", "carol")
	w := c.start("watch")
	w.expect("SDK_READY")
	mustRun(t, c, 0, "logout", "--local")
	mustRun(t, c, 0, "login", "carol", "--endpoint", second.WS)
	mustRun(t, c, 0, "admin", "kick", "carol", "--rest-url", first.REST)
	w.expect("KICKED_OUT REST_API_Kick")
	w.expect("SDK_NOT_READY")
	if code := w.wait(15 * time.Second); code != 4 {
		t.Errorf("the old session's watch exited %d, want 4", code)
	}
	var p struct {
		Profiles map[string]struct {
			InstID uint64 `json:"inst_id"`
			State  string `json:"state"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(c.sessionBytes()), &p); err != nil || p.Profiles["default"].InstID != 1 {
		t.Fatalf("want the new session with instance 1 again (the case under test): %v %s", err, c.sessionBytes())
	}
	if st := p.Profiles["default"].State; st != "ready" {
		t.Errorf("the new session's state is %q: the old session's end was saved into it", st)
	}
	mustRun(t, c, 0, "whoami", "--check", "--endpoint", second.WS)
}

// Commands that ask the server (server-time, whoami --check, a repeated
// login, a second watch) re-attach the profile's instance on their own
// socket; a watch already running must still hear the kick.
func TestProbesDoNotDeafenWatch(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	w1 := c.start("watch")
	w1.expect("SDK_READY")
	mustRun(t, c, 0, "server-time")
	mustRun(t, c, 0, "whoami", "--check")
	mustRun(t, c, 0, "login", "alice")
	w2 := c.start("watch")
	w2.expect("SDK_READY")
	mustRun(t, c, 0, "--profile", "second", "login", "alice")
	for _, w := range []*bgProc{w1, w2} {
		w.expect("KICKED_OUT multipleAccount")
		w.expect("SDK_NOT_READY")
		if code := w.wait(15 * time.Second); code != 4 {
			t.Errorf("watch exited %d, want 4", code)
		}
	}
}

// A reader that stops reading (its pipe full) cannot hold watch past a
// signal or its --timeout: the stuck write is given up and the exit is the
// one documented for that end (the CLI pass: `timeout 3 chatctl watch |
// slow` ran until the reader read, and a first SIGTERM did nothing).
func TestWatchEndsWithAFullPipe(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	mustRun(t, c, 0, "login", "alice")
	// A profile whose end is recorded: its watch replays it (the
	// verification pass: that path wrote without a bound).
	mustRun(t, c, 0, "--profile", "ended", "login", "bob")
	mustRun(t, c, 0, "admin", "kick", "bob")
	mustRun(t, c, 4, "--profile", "ended", "whoami", "--check")
	for _, tc := range []struct {
		args []string
		sig  os.Signal
		code int
	}{
		{[]string{"watch", "-o", "json"}, syscall.SIGTERM, 0},
		{[]string{"watch", "--until", "KICKED_OUT"}, syscall.SIGINT, 130},
		{[]string{"watch", "--timeout", "2s"}, nil, 0},
		{[]string{"watch", "--timeout", "2s", "--until", "KICKED_OUT", "-o", "json"}, nil, 1},
		{[]string{"--profile", "ended", "watch", "-o", "json"}, syscall.SIGTERM, 0},
		{[]string{"--profile", "ended", "watch", "--until", "SDK_NOT_READY"}, syscall.SIGINT, 130},
		{[]string{"--profile", "ended", "watch", "--timeout", "2s"}, nil, 0},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		fillPipe(t, w)
		cmd := exec.Command(c.bin, tc.args...)
		cmd.Env = c.env()
		cmd.Stdout = w
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		done := make(chan int, 1)
		go func() { done <- exitCodeOf(cmd.Wait()) }()
		if tc.sig != nil {
			time.Sleep(time.Second) // its SDK_READY line is stuck by then
			cmd.Process.Signal(tc.sig)
		}
		select {
		case code := <-done:
			if code != tc.code {
				t.Errorf("%v with a full pipe: exit %d, want %d; stderr:\n%s", tc.args, code, tc.code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%v with a full pipe did not end on %v; stderr:\n%s", tc.args, tc.sig, stderr.String())
		}
		r.Close()
	}
}

// fillPipe writes to w until its pipe is full, leaving it blocking.
func fillPipe(t *testing.T, w *os.File) {
	t.Helper()
	raw, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		syscall.SetNonblock(int(fd), true)
		chunk := make([]byte, 4096)
		for {
			if _, err := syscall.Write(int(fd), chunk); err != nil {
				break
			}
		}
		syscall.SetNonblock(int(fd), false)
	})
}
