package fault

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/client"
	"chatctl/pkg/server/servertest"
)

// events collects a Watch's events and lets the test wait for one.
type events struct {
	mu     sync.Mutex
	list   []client.Event
	notify chan struct{}
}

func newEvents() *events { return &events{notify: make(chan struct{}, 1)} }

func (e *events) emit(ev client.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

func (e *events) all() []client.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]client.Event(nil), e.list...)
}

// waitFor waits until an event after index from matches; it returns its index.
func (e *events) waitFor(t *testing.T, from int, d time.Duration, name, state string) int {
	t.Helper()
	deadline := time.After(d)
	for {
		for i, ev := range e.all() {
			if i >= from && ev.Name == name && (state == "" || matchAny(state, ev.State) || ev.Type == state) {
				return i
			}
		}
		select {
		case <-e.notify:
		case <-deadline:
			t.Fatalf("no %s %s after event %d within %v; events: %v", name, state, from, d, e.all())
		}
	}
}

// matchAny reports whether s is one of the |-separated alternatives.
func matchAny(alts, s string) bool {
	for _, a := range strings.Split(alts, "|") {
		if a == s {
			return true
		}
	}
	return false
}

// checkOrder checks a Watch's event stream: SDK_READY first, "connected"
// only after "connecting", nothing after SDK_NOT_READY, KICKED_OUT at most
// once and right before SDK_NOT_READY, times never going back.
// "connected" is emitted when the socket is up, before the a2 re-login is
// answered, so a re-login lost on the network goes connected → disconnected.
func checkOrder(t *testing.T, evs []client.Event) {
	t.Helper()
	if len(evs) == 0 || evs[0].Name != client.EventSDKReady {
		t.Errorf("first event is not SDK_READY: %v", evs)
		return
	}
	away := false
	kicks := 0
	for i, ev := range evs {
		if i > 0 && ev.Time.Before(evs[i-1].Time) {
			t.Errorf("event %d (%s) is earlier than event %d: %v", i, ev.Name, i-1, evs)
		}
		switch ev.Name {
		case client.EventNetStateChange:
			switch ev.State {
			case client.StateConnecting:
				away = true
			case client.StateDisconnected:
				away = true
			case client.StateConnected:
				if !away {
					t.Errorf("event %d: connected without connecting first: %v", i, evs)
				}
				away = false
			default:
				t.Errorf("event %d: unknown state %q", i, ev.State)
			}
		case client.EventKickedOut:
			kicks++
			if i != len(evs)-2 || evs[i+1].Name != client.EventSDKNotReady {
				t.Errorf("KICKED_OUT is not followed by SDK_NOT_READY as the last event: %v", evs)
			}
		case client.EventSDKNotReady:
			if i != len(evs)-1 {
				t.Errorf("events after SDK_NOT_READY: %v", evs)
			}
		case client.EventSDKReady:
			if i != 0 {
				t.Errorf("a second SDK_READY at %d: %v", i, evs)
			}
		}
	}
	if kicks > 1 {
		t.Errorf("%d KICKED_OUT events: %v", kicks, evs)
	}
}

// A pkg/client Watch behind a proxy that cuts, delays, refuses and stalls
// its connections: it reports every loss (NET_STATE_CHANGE), comes back
// each time with backoff (a bounded number of attempts while the server is
// unreachable), and a kick that happens while it is away is reported when it
// gets back (KICKED_OUT multipleAccount), once, last, in order. A later
// attach of the same session reports the same kick.
//
// Not parallel: it checks for leaked goroutines, so it runs alone, before
// the parallel tests of the package.
func TestWatchThroughFaultyNetwork(t *testing.T) {
	// Cleanups run in reverse: the server is closed before the leak check,
	// and ctx is cancelled only after it, so that what ends only with ctx
	// counts as a leak.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.HelloInterval(time.Second))
	p, err := NewProxy(ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	direct := client.Config{Endpoint: ts.WSURL, SDKAppID: servertest.SDKAppID}
	c, err := client.Dial(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Login(ctx, "alice", ts.Sig("alice", time.Hour))
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	sess := res.Session()

	const backoffMin, backoffMax = 50 * time.Millisecond, 400 * time.Millisecond
	viaProxy := client.Config{
		Endpoint: "ws://" + p.Addr(), SDKAppID: servertest.SDKAppID,
		DialTimeout: 500 * time.Millisecond, RequestTimeout: 2 * time.Second, LoginTimeout: 2 * time.Second,
		HeartbeatIdle: 300 * time.Millisecond, HeartbeatTimeout: 2 * time.Second,
		Tick: 50 * time.Millisecond, BackoffMin: backoffMin, BackoffMax: backoffMax,
	}
	ev := newEvents()
	werr := make(chan error, 1)
	go func() { werr <- client.Watch(ctx, viaProxy, sess, ev.emit) }()
	ev.waitFor(t, 0, 10*time.Second, client.EventSDKReady, "")

	// 1. Cut: reported, and back.
	p.Cut()
	i := ev.waitFor(t, 0, 10*time.Second, client.EventNetStateChange, client.StateConnecting)
	i = ev.waitFor(t, i, 10*time.Second, client.EventNetStateChange, client.StateConnected)

	// 2. 80 ms of added latency each way: heartbeats still come back, the
	// session stays up (no new events).
	p.SetDelay(80 * time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	p.SetDelay(0)
	if n := len(ev.all()); n != i+1 {
		t.Errorf("events under added latency: %v", ev.all()[i+1:])
	}

	// 3. Refused for 2 s: "disconnected" after failed attempts, attempts
	// spaced by the backoff, back once allowed.
	p.SetRefuse(true)
	n0 := len(p.Accepts())
	p.Cut()
	i = ev.waitFor(t, i+1, 10*time.Second, client.EventNetStateChange, client.StateConnecting)
	i = ev.waitFor(t, i, 10*time.Second, client.EventNetStateChange, client.StateDisconnected)
	const refused = 2 * time.Second
	time.Sleep(refused)
	attempts := len(p.Accepts()) - n0
	p.SetRefuse(false)
	// Each delay is at least backoffMin/2 (equal jitter): a client without
	// backoff would make thousands of attempts.
	if limit := int(refused/(backoffMin/2)) + 2; attempts < 2 || attempts > limit {
		t.Errorf("%d connection attempts in %v while refused (want 2..%d)", attempts, refused, limit)
	}
	t.Logf("%d attempts in %v while refused (backoff %v..%v)", attempts, refused, backoffMin, backoffMax)
	i = ev.waitFor(t, i, 10*time.Second, client.EventNetStateChange, client.StateConnected)

	// 4. Stalled (a dead link): the unanswered heartbeat makes it
	// reconnect. While it is away, alice logs in elsewhere, which kicks
	// this instance (multipleAccount). When the link comes back the watch
	// reports that kick.
	p.SetStall(true)
	i = ev.waitFor(t, i+1, 10*time.Second, client.EventNetStateChange, client.StateConnecting+"|"+client.StateDisconnected)
	c2, err := client.Dial(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Login(ctx, "alice", ts.Sig("alice", time.Hour)); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	p.SetStall(false)
	ev.waitFor(t, i, 15*time.Second, client.EventKickedOut, client.KickedMultipleAccount)
	select {
	case err := <-werr:
		var ke *client.KickedError
		if !errors.As(err, &ke) || ke.Type != client.KickedMultipleAccount {
			t.Errorf("Watch returned %v, want KickedError multipleAccount", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after KICKED_OUT")
	}
	checkOrder(t, ev.all())

	// 5. A later attach reports the same kick at once.
	ev2 := newEvents()
	err = client.Watch(ctx, viaProxy, sess, ev2.emit)
	var ke *client.KickedError
	if !errors.As(err, &ke) || ke.Type != client.KickedMultipleAccount {
		t.Errorf("later Watch returned %v, want KickedError multipleAccount; events %v", err, ev2.all())
	}
	c2.Close()
	p.Close()
	ts.Close()
}

// watchLine is one line of `chatctl watch`.
type watchLine struct {
	Event string `json:"event"`
	State string `json:"state"`
	Type  string `json:"type"`
	Time  time.Time
	Raw   string `json:"-"` // the line as printed
}

// watchProc is a running `chatctl watch --timeout 60s`, its lines read as
// they come.
type watchProc struct {
	t      testing.TB
	lines  chan watchLine
	done   chan int // its exit code, after its last line
	stderr lockedBuffer
	got    []watchLine // the lines next returned
}

func startWatch(t testing.TB, env []string) *watchProc {
	w := &watchProc{t: t, lines: make(chan watchLine, 100), done: make(chan int, 1)}
	cmd := exec.Command(builtBinary(t), "watch", "--timeout", "60s")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := watchLine{Raw: sc.Text()}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l.Event = "UNPARSABLE: " + sc.Text()
			}
			w.lines <- l
		}
		close(w.lines)
		w.done <- exitCode(cmd.Wait())
	}()
	return w
}

// next is watch's next line, waited for d at most; what says what the
// test waits for (in the failure).
func (w *watchProc) next(what string, d time.Duration) watchLine {
	w.t.Helper()
	select {
	case l, ok := <-w.lines:
		if !ok {
			w.t.Fatalf("watch ended waiting for %s; lines %+v; stderr %s", what, w.got, w.stderr.String())
		}
		w.got = append(w.got, l)
		return l
	case <-time.After(d):
		w.t.Fatalf("no line from watch within %v waiting for %s; lines %+v; stderr %s", d, what, w.got, w.stderr.String())
	}
	return watchLine{}
}

// exited checks that watch exits 4 within 20 s (it was kicked), and that
// every line it printed parsed, in time order; got has them all then.
func (w *watchProc) exited() {
	w.t.Helper()
	select {
	case code := <-w.done:
		if code != 4 {
			w.t.Errorf("watch exited %d, want 4; stderr %s", code, w.stderr.String())
		}
	case <-time.After(20 * time.Second):
		w.t.Fatal("watch still running after KICKED_OUT")
	}
	for l := range w.lines { // closed before done is sent
		w.got = append(w.got, l)
	}
	for i, l := range w.got {
		if i > 0 && l.Time.Before(w.got[i-1].Time) || strings.HasPrefix(l.Event, "UNPARSABLE") {
			w.t.Errorf("line %d: %+v", i, w.got)
		}
	}
}

// The `chatctl watch` binary behind the proxy: a cut is printed as
// NET_STATE_CHANGE; while the server is unreachable the user is kicked by a
// login elsewhere; when the network is back watch prints KICKED_OUT
// multipleAccount and exits 4; every line parses, in order. A second watch
// on the profile says the session was kicked (exit 4).
func TestWatchBinaryThroughFaultyNetwork(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config")
	srv := startServe(t, cfg, "--hello-interval", "1s")
	p, err := NewProxy(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	direct := cleanEnv(cfg, "CHATCTL_ENDPOINT="+srv.WS)
	proxied := cleanEnv(cfg, "CHATCTL_ENDPOINT=ws://"+p.Addr())
	if r := run(t, direct, 30*time.Second, "login", "alice"); r.code != 0 {
		t.Fatalf("%v", r)
	}

	w := startWatch(t, proxied)
	if l := w.next("SDK_READY", 20*time.Second); l.Event != "SDK_READY" {
		t.Fatalf("first line %+v", l)
	}
	p.SetRefuse(true)
	p.Cut()
	if l := w.next("NET_STATE_CHANGE", 20*time.Second); l.Event != "NET_STATE_CHANGE" || l.State != "connecting" {
		t.Fatalf("after the cut: %+v", l)
	}
	// Kicked while away: alice logs in on another profile, directly.
	if r := run(t, direct, 30*time.Second, "--profile", "other", "login", "alice"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	p.SetRefuse(false)
	var kicked bool
	for !kicked {
		l := w.next("KICKED_OUT", 20*time.Second)
		switch {
		case l.Event == "NET_STATE_CHANGE":
		case l.Event == "KICKED_OUT" && l.Type == "multipleAccount":
			kicked = true
		default:
			t.Fatalf("unexpected line %+v (all: %+v)", l, w.got)
		}
	}
	if l := w.next("SDK_NOT_READY", 20*time.Second); l.Event != "SDK_NOT_READY" {
		t.Errorf("after KICKED_OUT: %+v", l)
	}
	w.exited()
	r := run(t, proxied, 30*time.Second, "watch", "--timeout", "10s")
	if r.code != 4 || !strings.Contains(r.stderr, "multipleAccount") {
		t.Errorf("second watch: %v", r)
	}
	n := 0
	for _, l := range w.got {
		n += strings.Count(l.Raw, "KICKED_OUT")
	}
	if n != 1 {
		t.Errorf("KICKED_OUT printed more than once: %+v", w.got)
	}
}
