package fault

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `chatctl watch` attached while the server is killed with SIGKILL and
// restarted on the same port and data dir: watch prints the loss
// (NET_STATE_CHANGE connecting) and the return (connected) and stays
// attached; a REST kick after the restart reaches it (KICKED_OUT
// REST_API_Kick, exit 4); every line is valid JSON, in time order.
func TestWatchSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config")
	data := filepath.Join(t.TempDir(), "data")
	srv := startServe(t, cfg, "--data-dir", data, "--hello-interval", "1s")
	env := cleanEnv(cfg, "CHATCTL_ENDPOINT="+srv.WS)
	if r := run(t, env, procLimit, "login", "alice"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	cmd := exec.Command(builtBinary(t), "watch", "--timeout", "60s")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan watchLine, 100)
	done := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l watchLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l.Event = "UNPARSABLE: " + sc.Text()
			}
			lines <- l
		}
		close(lines)
		done <- exitCode(cmd.Wait())
	}()
	var got []watchLine
	next := func() watchLine {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended; lines %+v; stderr %s", got, stderr.String())
			}
			got = append(got, l)
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("no line within 30 s; lines %+v; stderr %s", got, stderr.String())
		}
		return watchLine{}
	}
	if l := next(); l.Event != "SDK_READY" {
		t.Fatalf("first line %+v", l)
	}
	srv.kill()
	if l := next(); l.Event != "NET_STATE_CHANGE" || l.State != "connecting" {
		t.Fatalf("after SIGKILL: %+v", l)
	}
	srv2 := startServe(t, cfg, "--data-dir", data, "--hello-interval", "1s", "--listen", srv.Addr)
	for {
		l := next()
		if l.Event != "NET_STATE_CHANGE" {
			t.Fatalf("while the server restarts: %+v", l)
		}
		if l.State == "connected" {
			break
		}
	}
	// Kick through REST: whether watch's re-login has landed yet (push) or
	// not (the re-login is refused as revoked by the kick), it must report
	// REST_API_Kick.
	if r := run(t, env, procLimit, "admin", "kick", "alice"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if l := next(); l.Event != "KICKED_OUT" || l.Type != "REST_API_Kick" {
		t.Fatalf("after the REST kick: %+v (all %+v)", l, got)
	}
	if l := next(); l.Event != "SDK_NOT_READY" {
		t.Errorf("after KICKED_OUT: %+v", l)
	}
	select {
	case code := <-done:
		if code != 4 {
			t.Errorf("watch exited %d, want 4; stderr %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch still running after KICKED_OUT")
	}
	for i := 1; i < len(got); i++ {
		if got[i].Time.Before(got[i-1].Time) || strings.HasPrefix(got[i].Event, "UNPARSABLE") {
			t.Errorf("line %d: %+v", i, got)
		}
	}
	srv2.stop(t)
}
