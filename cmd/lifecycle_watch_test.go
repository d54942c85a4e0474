package cmd_test

import (
	"encoding/json"

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
			login: []string{"--expire", "3s"}},
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
