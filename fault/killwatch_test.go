package fault

import (
	"path/filepath"
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
	w := startWatch(t, env)
	next := func(what string) watchLine { return w.next(what, 30*time.Second) }
	if l := next("SDK_READY"); l.Event != "SDK_READY" {
		t.Fatalf("first line %+v", l)
	}
	srv.kill()
	if l := next("NET_STATE_CHANGE"); l.Event != "NET_STATE_CHANGE" || l.State != "connecting" {
		t.Fatalf("after SIGKILL: %+v", l)
	}
	srv2 := startServe(t, cfg, "--data-dir", data, "--hello-interval", "1s", "--listen", srv.Addr)
	for {
		l := next("connected")
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
	if l := next("KICKED_OUT"); l.Event != "KICKED_OUT" || l.Type != "REST_API_Kick" {
		t.Fatalf("after the REST kick: %+v (all %+v)", l, w.got)
	}
	if l := next("SDK_NOT_READY"); l.Event != "SDK_NOT_READY" {
		t.Errorf("after KICKED_OUT: %+v", l)
	}
	w.exited()
	srv2.stop(t)
}
