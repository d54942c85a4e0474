package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/wire"
)

var saved = Session{UserID: "alice", A2Key: "a2-saved", TinyID: "144115000000000001", InstID: 5}

// watchRun runs Watch in the background and records its events.
type watchRun struct {
	mu     sync.Mutex
	events []Event
	ch     chan Event
	done   chan error
	cancel context.CancelFunc
	gid    atomic.Int64 // how many distinct emitters (must stay 1)
}

func startWatch(t *testing.T, cfg Config, s Session) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watchRun{ch: make(chan Event, 100), done: make(chan error, 1), cancel: cancel}
	var inEmit atomic.Bool
	go func() {
		w.done <- Watch(ctx, cfg, s, func(e Event) {
			if !inEmit.CompareAndSwap(false, true) {
				t.Error("emit called concurrently")
			}
			if e.Time.IsZero() {
				t.Error("event without time")
			}
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
			w.ch <- e
			inEmit.Store(false)
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
	return w
}

func (w *watchRun) snapshot() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events...)
}

func (w *watchRun) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, name := range want {
		select {
		case e := <-w.ch:
			if got := describe(e); got != name {
				t.Fatalf("event %q, want %q (all: %v)", got, name, w.snapshot())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event, want %q (all: %v)", name, w.snapshot())
		}
	}
}

func describe(e Event) string {
	switch {
	case e.State != "":
		return e.Name + " " + e.State
	case e.Type != "":
		return e.Name + " " + e.Type
	case e.Code != 0:
		return fmt.Sprintf("%s %d", e.Name, e.Code)
	}
	return e.Name
}

func (w *watchRun) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("Watch still running (events %v)", w.snapshot())
	}
	return nil
}

func wantKicked(t *testing.T, err error, typ string) {
	t.Helper()
	var ke *KickedError
	if !errors.As(err, &ke) || ke.Type != typ {
		t.Fatalf("Watch returned %v, want KickedError %s", err, typ)
	}
}

func TestWatchReadyThenCancel(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, nil)
	w := startWatch(t, fs.cfg(), saved)
	w.expect(t, "SDK_READY")
	h := fs.nextConn(t).next(t, wire.CmdLogin).Head
	if h.A2 != "a2-saved" || h.UserSig != "" || h.StatusInstID != 5 {
		t.Fatalf("attach head %+v", h)
	}
	w.cancel()
	if err := w.result(t); err != nil {
		t.Fatalf("Watch after cancel: %v", err)
	}
}

func TestWatchMultipleAccountWaitsForLogoutReply(t *testing.T) {
	checkLeaks(t)
	var wp atomic.Pointer[watchRun]
	var early atomic.Bool
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		switch f.Head.ServCmd {
		case wire.CmdLogin:
			fc.reply(f, okLogin)
			time.Sleep(20 * time.Millisecond)
			fc.kick(wire.KickMultipleAccount)
		case wire.CmdLogout:
			time.Sleep(100 * time.Millisecond) // KICKED_OUT must wait for this reply
			if w := wp.Load(); w != nil {      // stored long before the kick
				for _, e := range w.snapshot() {
					if e.Name == EventKickedOut {
						early.Store(true)
					}
				}
			}
			fc.reply(f, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
		default:
			defaultHandle(fc, f)
		}
	})
	cfg := fs.cfg()
	cfg.Tick = time.Hour // no heartbeats/hellos: the fake reads wp only after the kick
	w := startWatch(t, cfg, saved)
	wp.Store(w)
	w.expect(t, "SDK_READY", "KICKED_OUT multipleAccount", "SDK_NOT_READY")
	wantKicked(t, w.result(t), KickedMultipleAccount)
	if early.Load() {
		t.Fatal("KICKED_OUT emitted before the wslogout reply")
	}
	f := fs.nextConn(t).next(t, wire.CmdLogout)
	if !strings.Contains(string(f.Body), `"wslogout_type":1`) {
		t.Fatalf("logout body %s", f.Body)
	}
}

func TestWatchRESTKickIsImmediate(t *testing.T) {
	checkLeaks(t)
	var logouts atomic.Int32
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		switch f.Head.ServCmd {
		case wire.CmdLogin:
			fc.reply(f, okLogin)
			fc.kick(wire.KickRESTAPI)
		case wire.CmdLogout:
			logouts.Add(1)
		default:
			defaultHandle(fc, f)
		}
	})
	w := startWatch(t, fs.cfg(), saved)
	w.expect(t, "SDK_READY", "KICKED_OUT REST_API_Kick", "SDK_NOT_READY")
	wantKicked(t, w.result(t), KickedRESTAPI)
	if logouts.Load() != 0 {
		t.Fatal("wslogout sent for a REST kick")
	}
}

func TestWatchKickByReplyOnHello(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		if f.Head.ServCmd == wire.CmdHello {
			fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":1002,"ErrorInfo":"kicked","KickType":2,"NewInstInfo":{}}`)
			return
		}
		defaultHandle(fc, f)
	})
	cfg := fs.cfg()
	cfg.HelloInterval = 30 * time.Millisecond
	w := startWatch(t, cfg, saved)
	w.expect(t, "SDK_READY", "KICKED_OUT multipleDevice", "SDK_NOT_READY")
	wantKicked(t, w.result(t), KickedMultipleDevice)
}

func TestWatchSigExpiredOnHeartbeat(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		if f.Head.ServCmd == wire.CmdHeartbeat {
			fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":70001,"ErrorInfo":"usersig expired"}`)
			return
		}
		defaultHandle(fc, f)
	})
	cfg := fs.cfg()
	cfg.HeartbeatIdle = 30 * time.Millisecond
	w := startWatch(t, cfg, saved)
	w.expect(t, "SDK_READY", "KICKED_OUT userSigExpired", "SDK_NOT_READY")
	wantKicked(t, w.result(t), KickedUserSigExpired)
}

func TestWatchReconnectsAfterLossAndRelogsIn(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, nil)
	w := startWatch(t, fs.cfg(), saved)
	w.expect(t, "SDK_READY")
	first := fs.nextConn(t)
	first.next(t, wire.CmdLogin)
	fs.dropAll()
	w.expect(t, "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE connected")
	second := fs.nextConn(t)
	h := second.next(t, wire.CmdLogin).Head
	if h.A2 != "a2-saved" || h.UserSig != "" || h.StatusInstID != 1001 {
		t.Fatalf("re-login head %+v (want the InstId of the last reply)", h)
	}
	if !strings.Contains(first.query, "instanceid=") ||
		strings.Split(strings.Split(first.query, "instanceid=")[1], "&")[0] !=
			strings.Split(strings.Split(second.query, "instanceid=")[1], "&")[0] {
		t.Fatalf("instance id changed across reconnect: %s vs %s", first.query, second.query)
	}
	w.cancel()
	if err := w.result(t); err != nil {
		t.Fatal(err)
	}
	for _, e := range w.snapshot() {
		if e.Name == EventKickedOut || e.Name == EventSDKNotReady {
			t.Fatalf("unexpected %v", e)
		}
	}
}

func TestWatchUnansweredHeartbeatReconnects(t *testing.T) {
	checkLeaks(t)
	var conns atomic.Int32
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		if f.Head.ServCmd == wire.CmdLogin {
			conns.Add(1)
		}
		if f.Head.ServCmd == wire.CmdHeartbeat && conns.Load() == 1 {
			return // the first socket is silently dead
		}
		defaultHandle(fc, f)
	})
	cfg := fs.cfg()
	cfg.HeartbeatIdle = 30 * time.Millisecond
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	w := startWatch(t, cfg, saved)
	w.expect(t, "SDK_READY", "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE connected")
}

func TestWatchServerDownThenBack(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, nil)
	w := startWatch(t, fs.cfg(), saved)
	w.expect(t, "SDK_READY")
	fs.refuse.Store(true)
	fs.dropAll()
	w.expect(t, "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE disconnected")
	fs.refuse.Store(false)
	w.expect(t, "NET_STATE_CHANGE connected")
	w.cancel()
	if err := w.result(t); err != nil {
		t.Fatal(err)
	}
	if n := len(w.snapshot()); n != 4 {
		t.Fatalf("events %v, want exactly 4", w.snapshot())
	}
}

func TestWatchRefusedReloginSurfaces(t *testing.T) {
	for _, tc := range []struct {
		body   string
		events []string
		kicked string
		code   int
	}{
		{`{"ActionStatus":"FAIL","ErrorCode":70002,"ErrorInfo":"instance revoked: multipleAccount"}`,
			[]string{"KICKED_OUT multipleAccount", "SDK_NOT_READY"}, KickedMultipleAccount, 0},
		{`{"ActionStatus":"FAIL","ErrorCode":70002,"ErrorInfo":"instance revoked: logout"}`,
			[]string{"SDK_NOT_READY 70002"}, "", 70002},
		{`{"ActionStatus":"FAIL","ErrorCode":70001,"ErrorInfo":"usersig expired"}`,
			[]string{"KICKED_OUT userSigExpired", "SDK_NOT_READY"}, KickedUserSigExpired, 0},
	} {
		t.Run(tc.events[0], func(t *testing.T) {
			checkLeaks(t)
			var logins atomic.Int32
			fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
				if f.Head.ServCmd == wire.CmdLogin && logins.Add(1) > 1 {
					fc.reply(f, tc.body)
					return
				}
				defaultHandle(fc, f)
			})
			w := startWatch(t, fs.cfg(), saved)
			w.expect(t, "SDK_READY")
			fs.dropAll()
			w.expect(t, "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE connected")
			w.expect(t, tc.events...)
			err := w.result(t)
			if tc.kicked != "" {
				wantKicked(t, err, tc.kicked)
				return
			}
			var se *ServerError
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("Watch returned %v, want ServerError %d", err, tc.code)
			}
		})
	}
}

func TestWatchFirstAttachRefused(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":70002,"ErrorInfo":"instance revoked: REST_API_Kick"}`)
	})
	w := startWatch(t, fs.cfg(), saved)
	w.expect(t, "KICKED_OUT REST_API_Kick", "SDK_NOT_READY")
	wantKicked(t, w.result(t), KickedRESTAPI)
}

func TestWatchKickOtherRelogsInOnSameSocket(t *testing.T) {
	checkLeaks(t)
	var logins atomic.Int32
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		if f.Head.ServCmd == wire.CmdLogin && logins.Add(1) == 1 {
			fc.reply(f, okLogin)
			fc.send(wire.CmdKickOther, 0, `{}`)
			return
		}
		defaultHandle(fc, f)
	})
	w := startWatch(t, fs.cfg(), saved)
	w.expect(t, "SDK_READY")
	fc := fs.nextConn(t)
	fc.next(t, wire.CmdLogin)
	if h := fc.next(t, wire.CmdLogin).Head; h.A2 != "a2-saved" || h.UserSig != "" {
		t.Fatalf("KickOther re-login head %+v", h)
	}
	select {
	case e := <-w.ch:
		t.Fatalf("KickOther gave event %v", e)
	case <-time.After(100 * time.Millisecond):
	}
}

// A server that found the UserSig expired while the client was away refuses
// the a2 re-login neutrally and answers the next heartbeat with 70001.
func TestRefusalFollowedByExpiredHeartbeat(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		switch f.Head.ServCmd {
		case wire.CmdLogin:
			fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":70002,"ErrorInfo":"a2 expired"}`)
		case wire.CmdHeartbeat:
			fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":70001,"ErrorInfo":"usersig expired"}`)
		}
	})
	_, err := Probe(context.Background(), fs.cfg(), saved)
	var se *ServerError
	if !errors.As(err, &se) || se.KickedType() != KickedUserSigExpired {
		t.Fatalf("Probe: %v, want 70001", err)
	}
	w := startWatch(t, fs.cfg(), saved)
	w.expect(t, "KICKED_OUT userSigExpired", "SDK_NOT_READY")
	wantKicked(t, w.result(t), KickedUserSigExpired)
}
