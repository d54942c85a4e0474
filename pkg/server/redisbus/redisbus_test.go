package redisbus_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/fault"
	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/redisbus"
	rstore "chatctl/pkg/server/store/redis"
	"chatctl/pkg/server/store/redis/redistest"

	goredis "github.com/redis/go-redis/v9"
)

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	goredis.SetLogger(quiet{}) // dial failures are expected: tests restart Redis
	os.Exit(leaktest.Run(m))
}

// recorder collects the kicks a subscriber got.
type recorder struct {
	mu    sync.Mutex
	kicks []server.Kick
	cond  chan struct{}
}

func newRecorder() *recorder { return &recorder{cond: make(chan struct{}, 1)} }

func (r *recorder) add(k server.Kick) {
	r.mu.Lock()
	r.kicks = append(r.kicks, k)
	r.mu.Unlock()
	select {
	case r.cond <- struct{}{}:
	default:
	}
}

func (r *recorder) count(match func(server.Kick) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range r.kicks {
		if match(k) {
			n++
		}
	}
	return n
}

// wait waits (bounded) until a kick matching match arrived.
func (r *recorder) wait(t *testing.T, what string, match func(server.Kick) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for r.count(match) == 0 {
		select {
		case <-r.cond:
		case <-deadline:
			t.Fatalf("%s: never delivered", what)
		}
	}
}

func inst(id uint64) func(server.Kick) bool {
	return func(k server.Kick) bool { return k.InstID == id }
}

func open(t *testing.T, url, channel string) *redisbus.Bus {
	return newBus(t, url, redisbus.Options{Channel: channel})
}

// newBus is a bus on a client of its own with the store's defaults
// (rstore.ParseURL), as a node's bus is on its store's client; both are
// closed when the test ends, the bus first.
func newBus(t testing.TB, url string, o redisbus.Options) *redisbus.Bus {
	t.Helper()
	opt, err := rstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	b, err := redisbus.New(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// A kick published on any node reaches every node's subscribers, with every
// field, and the publishing node's exactly once (locally, not again from
// Redis).
func TestCrossNode(t *testing.T) {
	url := redistest.URL(t)
	ch := redistest.Prefix(t, url) + "kick"
	n1, n2, n3 := open(t, url, ch), open(t, url, ch), open(t, url, ch)
	r1, r2, r3 := newRecorder(), newRecorder(), newRecorder()
	n1.Subscribe(r1.add)
	n2.Subscribe(r2.add)
	cancel3 := n3.Subscribe(r3.add)

	k := server.Kick{App: 1400000001, User: "用户 a", InstID: 1 << 52, Type: 1, By: 99}
	n1.Publish(k)
	for i, r := range []*recorder{r1, r2, r3} {
		r.wait(t, "node "+string(rune('1'+i)), func(got server.Kick) bool { return got == k })
	}
	// n1 published it; once n1 has seen a later kick of n2 through Redis,
	// its own echo (published before) has been seen too.
	deadline := time.Now().Add(10 * time.Second)
	for n1.Stats().Published == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	n2.Publish(server.Kick{App: 1, User: "m", InstID: 2, Type: 3})
	r1.wait(t, "marker", inst(2))
	if n := r1.count(inst(1 << 52)); n != 1 {
		t.Fatalf("the publishing node got its own kick %d times, want 1", n)
	}
	// An unsubscribed callback gets nothing more.
	cancel3()
	n2.Publish(server.Kick{App: 1, User: "x", InstID: 3, Type: 2})
	r1.wait(t, "after cancel", inst(3))
	if r3.count(inst(3)) != 0 {
		t.Fatal("a canceled subscriber got a kick")
	}
	// A logout notice crosses as one, not as a kick.
	out := server.Kick{App: 1, User: "o", InstID: 4, Logout: true}
	n2.Publish(out)
	r1.wait(t, "logout", func(got server.Kick) bool { return got == out })
	if s := n1.Stats(); s.Received < 2 || s.Dropped != 0 || s.Malformed != 0 {
		t.Fatalf("node 1 stats %+v", s)
	}
}

// Another deployment's channel, or junk on ours, delivers nothing.
func TestIsolationAndJunk(t *testing.T) {
	url := redistest.URL(t)
	p := redistest.Prefix(t, url)
	a, b := open(t, url, p+"kick"), open(t, url, p+"other")
	ra, rb := newRecorder(), newRecorder()
	a.Subscribe(ra.add)
	b.Subscribe(rb.add)
	c := goredis.NewClient(mustParse(t, url))
	defer c.Close()
	ctx := context.Background()
	c.Publish(ctx, p+"kick", "not json")
	c.Publish(ctx, p+"kick", `{"a":1}`)
	b.Publish(server.Kick{App: 1, User: "u", InstID: 10, Type: 1})
	a.Publish(server.Kick{App: 1, User: "u", InstID: 11, Type: 1})
	// Waiting for a's marker through b's side would not work (other
	// channel): use a third node on a's channel.
	n := open(t, url, p+"kick")
	rn := newRecorder()
	n.Subscribe(rn.add)
	n.Publish(server.Kick{App: 1, User: "u", InstID: 12, Type: 1})
	ra.wait(t, "marker", inst(12))
	if ra.count(inst(10)) != 0 {
		t.Fatal("a kick on another channel was delivered")
	}
	if s := a.Stats(); s.Malformed != 2 {
		t.Fatalf("Malformed = %d, want 2", s.Malformed)
	}
	if n := ra.count(func(server.Kick) bool { return true }); n != 2 { // 11 (local) and 12
		t.Fatalf("delivered %d kicks, want 2", n)
	}
}

func mustParse(t *testing.T, url string) *goredis.Options {
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Redis restarts: both nodes' subscriptions come back by themselves, each
// reports it once (OnResubscribe: the node then re-checks revocations), and
// a kick published afterwards is delivered both ways. Kicks published while
// Redis is down reach the local subscribers and are counted as lost for the
// others.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	resub := make(chan string, 10)
	openNode := func(name string) *redisbus.Bus {
		return newBus(t, srv.URL(), redisbus.Options{Channel: "kick", OnResubscribe: func() { resub <- name }})
	}
	n1, n2 := openNode("n1"), openNode("n2")
	r1, r2 := newRecorder(), newRecorder()
	n1.Subscribe(r1.add)
	n2.Subscribe(r2.add)
	n1.Publish(server.Kick{App: 1, User: "u", InstID: 1, Type: 1})
	r2.wait(t, "before the restart", inst(1))
	if len(resub) != 0 {
		t.Fatal("OnResubscribe called for the first subscription")
	}

	srv.Stop()
	n1.Publish(server.Kick{App: 1, User: "u", InstID: 2, Type: 1})
	r1.wait(t, "local delivery with Redis down", inst(2))
	deadline := time.Now().Add(10 * time.Second)
	for n1.Stats().PublishErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("publishing with Redis down: stats %+v", n1.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Restart()
	back := map[string]bool{}
	timeout := time.After(15 * time.Second)
	for len(back) < 2 {
		select {
		case n := <-resub:
			back[n] = true
		case <-timeout:
			t.Fatalf("resubscribed: %v; n1 %+v n2 %+v", back, n1.Stats(), n2.Stats())
		}
	}
	// Both are subscribed again: one publish each way is delivered.
	n1.Publish(server.Kick{App: 1, User: "u", InstID: 100, Type: 1})
	r2.wait(t, "node 1 to node 2 after the restart", inst(100))
	n2.Publish(server.Kick{App: 1, User: "u", InstID: 7, Type: 3})
	r1.wait(t, "node 2 to node 1 after the restart", inst(7))
	if s := n2.Stats(); s.Resubscribed != 1 {
		t.Fatalf("node 2 stats %+v: want one resubscription", s)
	}
}

// Publish never blocks: with Redis unreachable a full queue drops.
func TestPublishNeverBlocks(t *testing.T) {
	srv := redistest.Start(t)
	b := newBus(t, srv.URL(), redisbus.Options{Queue: 4})
	srv.Kill()
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			b.Publish(server.Kick{App: 1, User: "u", InstID: uint64(i + 1), Type: 1})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish blocked with Redis down")
	}
	if s := b.Stats(); s.Dropped == 0 {
		t.Fatalf("stats %+v: want drops", s)
	}
}

// New fails when Redis does not confirm the subscription.
func TestNewUnreachable(t *testing.T) {
	c := goredis.NewClient(mustParse(t, "redis://127.0.0.1:1/0"))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := redisbus.New(ctx, c, redisbus.Options{}); err == nil {
		t.Fatal("New on a closed port succeeded")
	}
}

// Close stops every goroutine the bus started.
func TestNoLeak(t *testing.T) {
	url := redistest.URL(t)
	ch := redistest.Prefix(t, url) + "kick"
	leaktest.Check(t)
	for range 3 {
		b := newBus(t, url, redisbus.Options{Channel: ch})
		r := newRecorder()
		b.Subscribe(r.add)
		b.Publish(server.Kick{App: 1, User: "u", InstID: 1, Type: 1})
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		b.Publish(server.Kick{App: 1, User: "u", InstID: 2, Type: 1}) // after Close: harmless
	}
}

// Health pings on a quiet subscription neither break it nor count as a
// resubscription.
func TestQuietHealthPings(t *testing.T) {
	url := redistest.URL(t)
	ch := redistest.Prefix(t, url) + "kick"
	mk := func() *redisbus.Bus {
		return newBus(t, url, redisbus.Options{Channel: ch, HealthEvery: 200 * time.Millisecond})
	}
	a, b := mk(), mk()
	r := newRecorder()
	b.Subscribe(r.add)
	// ~5 health pings. (A pong slower than HealthEvery would count as a
	// dead connection: 200 ms leaves a loaded CI machine room.)
	time.Sleep(time.Second)
	a.Publish(server.Kick{App: 1, User: "u", InstID: 5, Type: 1})
	r.wait(t, "after quiet pings", inst(5))
	if s := b.Stats(); s.Resubscribed != 0 {
		t.Fatalf("stats %+v: a quiet subscription was broken", s)
	}
}

// A subscription whose connection goes silent without closing is noticed
// by the health ping and replaced: kicks flow again.
//
// What proves that the silent connection is what was replaced (and not a
// slow pong on a healthy one, which a loaded machine also produces now and
// then): a kick published after the freeze has not been delivered when the
// first replacement after the freeze is reported. OnResubscribe runs in the
// receive goroutine before anything on the new subscription is delivered,
// so the kick can only have come over the old connection; had it stayed
// alive, the kick would be there.
func TestSilentConnection(t *testing.T) {
	url := redistest.URL(t)
	opt := mustParse(t, url)
	px, err := fault.NewProxy(opt.Addr) // Freeze: silent, as with a peer that vanished without closing
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	ch := redistest.Prefix(t, url) + "kick"
	r := newRecorder()
	var frozen atomic.Bool
	// Whether the kick published after the freeze had been delivered, at
	// each replacement after the freeze.
	resub := make(chan bool, 10)
	viaProxy := newBus(t, "redis://"+px.Addr()+"/"+strconv.Itoa(opt.DB), redisbus.Options{
		Channel: ch, HealthEvery: 50 * time.Millisecond,
		OnResubscribe: func() {
			if frozen.Load() {
				select {
				case resub <- r.count(inst(2)) > 0:
				default:
				}
			}
		},
	})
	direct := open(t, url, ch)
	viaProxy.Subscribe(r.add)
	direct.Publish(server.Kick{App: 1, User: "u", InstID: 1, Type: 1})
	r.wait(t, "before the freeze", inst(1))

	frozen.Store(true)
	px.Freeze()
	direct.Publish(server.Kick{App: 1, User: "u", InstID: 2, Type: 1})
	select {
	case delivered := <-resub:
		if delivered {
			t.Fatalf("the kick published after the freeze came before the replacement: the replaced connection was not silent; %+v", viaProxy.Stats())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("a silent connection was never replaced: %+v", viaProxy.Stats())
	}
	// At most once: a loaded machine may replace the subscription once
	// more (a pong slower than 50 ms), so publish until one arrives.
	deadline := time.Now().Add(15 * time.Second)
	for id := uint64(100); r.count(func(k server.Kick) bool { return k.InstID >= 100 }) == 0; id++ {
		if time.Now().After(deadline) {
			t.Fatalf("nothing delivered after the new subscription: %+v", viaProxy.Stats())
		}
		direct.Publish(server.Kick{App: 1, User: "u", InstID: id, Type: 1})
		select {
		case <-r.cond:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
