// Package e2e runs pkg/client against the real server (pkg/server through
// servertest) on loopback. Test files only.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/sig"
)

// start runs a real server with a 1 s HelloInterval.
func start(t *testing.T, opts ...servertest.Option) *servertest.Server {
	t.Helper()
	return servertest.Start(t, append([]servertest.Option{servertest.HelloInterval(time.Second)}, opts...)...)
}

// cfg is a client config with fast, test-sized timers.
func cfg(ts *servertest.Server) client.Config {
	return client.Config{
		Endpoint:         ts.WSURL,
		SDKAppID:         ts.App.SDKAppID,
		Tick:             20 * time.Millisecond,
		HeartbeatIdle:    200 * time.Millisecond,
		HeartbeatTimeout: 2 * time.Second,
		RequestTimeout:   5 * time.Second,
		LoginTimeout:     5 * time.Second,
		BackoffMin:       20 * time.Millisecond,
		BackoffMax:       200 * time.Millisecond,
	}
}

// login logs user in on a socket that is then closed, like `chatctl login`
// exiting, and returns the session to attach later.
func login(t *testing.T, ts *servertest.Server, user string, expire time.Duration) client.Session {
	t.Helper()
	ctx := context.Background()
	c, err := client.Dial(ctx, cfg(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Login(ctx, user, ts.Sig(user, expire))
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return res.Session()
}

// watchRun is a Watch in the background with its events recorded.
type watchRun struct {
	mu     sync.Mutex
	events []client.Event
	ch     chan client.Event
	done   chan error
	cancel context.CancelFunc
	res    error
	ended  bool
}

func watch(t *testing.T, c client.Config, s client.Session) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watchRun{ch: make(chan client.Event, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- client.Watch(ctx, c, s, func(e client.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
			w.ch <- e
		})
	}()
	t.Cleanup(func() {
		cancel()
		w.result(t)
	})
	return w
}

func (w *watchRun) snapshot() []client.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]client.Event(nil), w.events...)
}

func describe(e client.Event) string {
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

// expect waits for the next events, in order.
func (w *watchRun) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, name := range want {
		select {
		case e := <-w.ch:
			if got := describe(e); got != name {
				t.Fatalf("event %q, want %q (all: %v)", got, name, w.snapshot())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no event, want %q (all: %v)", name, w.snapshot())
		}
	}
}

// result waits for Watch to return.
func (w *watchRun) result(t *testing.T) error {
	t.Helper()
	w.mu.Lock()
	if w.ended {
		defer w.mu.Unlock()
		return w.res
	}
	w.mu.Unlock()
	select {
	case err := <-w.done:
		w.mu.Lock()
		w.res, w.ended = err, true
		w.mu.Unlock()
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("Watch still running (events %v)", w.snapshot())
	}
	return nil
}

func (w *watchRun) none(t *testing.T, names ...string) {
	t.Helper()
	for _, e := range w.snapshot() {
		for _, n := range names {
			if e.Name == n {
				t.Fatalf("unexpected %s (all: %v)", describe(e), w.snapshot())
			}
		}
	}
}

func wantKicked(t *testing.T, err error, typ string) {
	t.Helper()
	var ke *client.KickedError
	if !errors.As(err, &ke) || ke.Type != typ {
		t.Fatalf("Watch returned %v, want KickedError %s", err, typ)
	}
}

// waitOnline waits until user has n Online instances on the server (an
// attach or re-login has been processed).
func waitOnline(t *testing.T, ts *servertest.Server, user string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		list, err := ts.Server().Online(context.Background(), ts.App.SDKAppID, user)
		if err != nil {
			t.Fatal(err)
		}
		online := 0
		for _, i := range list {
			if i.Status == "Online" {
				online++
			}
		}
		if online == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d instances online, want %d", user, online, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restKick calls v4/im_open_login_svc/kick as the app's administrator.
func restKick(t *testing.T, ts *servertest.Server, user string) {
	t.Helper()
	admin := ts.App.Admins[0]
	q := url.Values{}
	q.Set("sdkappid", fmt.Sprint(ts.App.SDKAppID))
	q.Set("identifier", admin)
	q.Set("usersig", ts.Sig(admin, time.Hour))
	q.Set("random", "12345")
	q.Set("contenttype", "json")
	body, _ := json.Marshal(map[string]string{"UserID": user})
	resp, err := http.Post(ts.RESTURL+"/v4/im_open_login_svc/kick?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		ActionStatus string
		ErrorCode    int
		ErrorInfo    string
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &env) != nil || env.ErrorCode != 0 {
		t.Fatalf("REST kick: HTTP %d %s", resp.StatusCode, raw)
	}
}

// otherKeySig is a well-formed UserSig made with a key the server does not have.
func otherKeySig(ts *servertest.Server, user string) string {
	return sig.Gen(sig.Params{SDKAppID: ts.App.SDKAppID, Key: "0123456789abcdef0123456789abcdef", UserID: user, Expire: 3600}, time.Now())
}
