package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"chatctl/pkg/wire"
)

// sdkRecording is testdata/sdk_cloud_hosts.json: the hosts the official SDK
// opened sockets to, in order, per SDKAppID (its "source" says how).
func sdkRecording(t *testing.T) map[uint64][]string {
	t.Helper()
	b, err := os.ReadFile("testdata/sdk_cloud_hosts.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Hosts map[string][]string `json:"hosts"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[uint64][]string{}
	for k, v := range doc.Hosts {
		id, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = v
	}
	if len(out) < 8 {
		t.Fatalf("recording has %d SDKAppIDs", len(out))
	}
	return out
}

// One fresh dial tries the SDK's hosts up to the first repeat, and dials
// that keep failing go on exactly as the SDK's reconnects do.
func TestCloudHostsMatchSDKRecording(t *testing.T) {
	for id, sdk := range sdkRecording(t) {
		k := 1
		for k < len(sdk) && !slices.Contains(sdk[:k], sdk[k]) {
			k++
		}
		first := sdk[:k] // up to the first repeat
		if k == len(sdk) {
			t.Fatalf("%d: the recording never repeats a host", id)
		}
		if got := Cloud(id).WebSocket; !slices.Equal(got, first) {
			t.Errorf("%d: Cloud %v\nSDK's first dial %v", id, got, first)
		}
		h := newHostCursor(EndpointCloud, id)
		var tried []string
		for len(tried) < len(sdk) {
			for _, host := range h.cycle() {
				h.tried(host)
				tried = append(tried, host)
			}
		}
		if !slices.Equal(tried[:len(sdk)], sdk) {
			t.Errorf("%d: failing dials try %v\nSDK tried %v", id, tried[:len(sdk)], sdk)
		}
	}
}

func TestCloudSites(t *testing.T) {
	for _, tc := range []struct {
		id         uint64
		site, rest string
	}{
		{0, "CHINA", "console.tim.qq.com"},
		{1400000001, "CHINA", "console.tim.qq.com"},
		{19999999, "CHINA", "console.tim.qq.com"},
		{20000000, "SINGAPORE", "adminapisgp.im.qcloud.com"},
		{1729999999, "SINGAPORE", "adminapisgp.im.qcloud.com"},
		{30000000, "KOREA", "adminapikr.im.qcloud.com"},
		{1730000000, "KOREA", "adminapikr.im.qcloud.com"},
		{49999999, "GERMANY", "adminapiger.im.qcloud.com"},
		{50000000, "IND", "adminapiind.im.qcloud.com"},
		{1760000001, "JPN", "adminapijpn.im.qcloud.com"},
		{70000001, "USA", "adminapiusa.im.qcloud.com"},
		{89999999, "INDONESIA", "adminapiidn.im.qcloud.com"},
		{90000000, "CHINA", "console.tim.qq.com"},
		{1790000000, "CHINA", "console.tim.qq.com"},
	} {
		c := Cloud(tc.id)
		if c.Site != tc.site || c.REST != tc.rest {
			t.Errorf("%d: %s %s, want %s %s", tc.id, c.Site, c.REST, tc.site, tc.rest)
		}
		if len(c.WebSocket) < 2 || c.WebSocket[0] != strings.Replace(siteOf(tc.id).perApp, "*", strconv.FormatUint(tc.id, 10), 1) {
			t.Errorf("%d: hosts %v: the per-app host first", tc.id, c.WebSocket)
		}
	}
}

// tlsRoute is a Dialer whose wss:// dials (NetDialTLSContext: gorilla then
// speaks plain HTTP over the returned conn) are recorded and answered per
// host: a fake server's address, or an error, or a hang until the dial's
// deadline.
type tlsRoute struct {
	mu    sync.Mutex
	addrs []string
	route func(host string) (addr string, err error, hang bool)
}

func (r *tlsRoute) dialer() *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: time.Minute, // the per-host deadline is the dial's context
		NetDialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			r.mu.Lock()
			r.addrs = append(r.addrs, addr)
			r.mu.Unlock()
			host, _, _ := net.SplitHostPort(addr)
			to, err, hang := r.route(host)
			if hang {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			if err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", to)
		},
	}
}

func (r *tlsRoute) hosts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.addrs))
	for i, a := range r.addrs {
		h, _, _ := net.SplitHostPort(a)
		out[i] = "wss://" + h
	}
	return out
}

func noSuchHost(host string) error {
	return &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// Hosts whose name lookup hangs: each is given up at DialTimeout, then the
// next is tried, and the error lists them all.
func TestDialCloudEachHostBoundedThenUnreachable(t *testing.T) {
	checkLeaks(t)
	const id = 20000001
	r := &tlsRoute{route: func(string) (string, error, bool) { return "", nil, true }}
	cfg := Config{Endpoint: EndpointCloud, SDKAppID: id, Dialer: r.dialer(), DialTimeout: 20 * time.Millisecond}
	_, err := Dial(context.Background(), cfg)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want *UnreachableError after each host's deadline", err)
	}
	want := Cloud(id).WebSocket
	if got := r.hosts(); !slices.Equal(got, want) {
		t.Fatalf("dialled %v, want %v", got, want)
	}
	if len(ue.Tried) != len(want) {
		t.Fatalf("Tried %v", ue.Tried)
	}
	inst := ""
	for i, s := range ue.Tried {
		u, err := url.Parse(s)
		if err != nil || u.Scheme+"://"+u.Host != want[i] || u.Path != "/binfo" {
			t.Fatalf("Tried[%d] %s, want %s/binfo?...", i, s, want[i])
		}
		keys := []string{}
		for _, kv := range strings.Split(u.RawQuery, "&") {
			keys = append(keys, strings.SplitN(kv, "=", 2)[0])
		}
		if sdk := []string{"sdkappid", "instanceid", "random", "platform", "host", "version", "sdkversion"}; !slices.Equal(keys, sdk) {
			t.Fatalf("query keys %v, want the SDK's %v", keys, sdk)
		}
		q := u.Query()
		if q.Get("sdkappid") != "20000001" || q.Get("platform") != "7" || q.Get("sdkversion") != SDKVersion {
			t.Fatalf("query %v", q)
		}
		if inst == "" {
			inst = q.Get("instanceid")
		}
		if q.Get("instanceid") != inst || len(inst) != 32 {
			t.Fatalf("instance id %q, want one 32-hex id for every host", q.Get("instanceid"))
		}
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "instanceid") {
		t.Fatalf("message %q: want one line naming hosts, not URLs", msg)
	}
	for _, h := range want {
		if !strings.Contains(msg, h) {
			t.Fatalf("message %q does not name %s", msg, h)
		}
	}
}

func TestDialCloudStopsWhenContextEnds(t *testing.T) {
	checkLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &tlsRoute{route: func(string) (string, error, bool) {
		cancel()
		return "", nil, true
	}}
	_, err := Dial(ctx, Config{Endpoint: EndpointCloud, SDKAppID: 1400000001, Dialer: r.dialer()})
	var ue *UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, context.Canceled) || len(ue.Tried) != 1 {
		t.Fatalf("err %v, want the first host only, canceled", err)
	}
}

// The first host that answers is used: here the default, after the
// per-app host's name did not resolve.
func TestDialCloudFallsThroughToAnsweringHost(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, nil)
	fake := strings.TrimPrefix(fs.srv.URL, "http://")
	const id = 1400000001
	hosts := Cloud(id).WebSocket
	r := &tlsRoute{route: func(h string) (string, error, bool) {
		if "wss://"+h == hosts[0] {
			return "", noSuchHost(h), false
		}
		return fake, nil, false
	}}
	c, err := Dial(context.Background(), Config{Endpoint: EndpointCloud, SDKAppID: id, Dialer: r.dialer()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(context.Background(), "alice", "sig"); err != nil {
		t.Fatal(err)
	}
	fc := fs.nextConn(t)
	if fc.path != "/binfo" || !strings.HasPrefix(fc.query, "sdkappid=1400000001&instanceid=") {
		t.Fatalf("fake saw %s?%s", fc.path, fc.query)
	}
	if got := r.hosts(); !slices.Equal(got, hosts[:2]) {
		t.Fatalf("dialled %v, want %v", got, hosts[:2])
	}
}

// Like the SDK, a Watch that lost its socket reconnects to the host after
// the one it was on, not to the first again.
func TestWatchCloudMovesOnAfterLoss(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, nil)
	fake := strings.TrimPrefix(fs.srv.URL, "http://")
	const id = 1400000001
	hosts := Cloud(id).WebSocket // per-app, default, IPv6, backup, backup CN
	r := &tlsRoute{route: func(h string) (string, error, bool) {
		if "wss://"+h == hosts[0] {
			return "", noSuchHost(h), false
		}
		return fake, nil, false
	}}
	cfg := fs.cfg()
	cfg.Endpoint, cfg.Dialer = EndpointCloud, r.dialer()
	w := startWatch(t, cfg, saved)
	w.expect(t, "SDK_READY")
	fs.nextConn(t).next(t, wire.CmdLogin)
	fs.dropAll()
	w.expect(t, "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE connected")
	fs.nextConn(t).next(t, wire.CmdLogin)
	fs.dropAll() // before or after the re-login's reply: either way the next dial moves on
	fs.nextConn(t).next(t, wire.CmdLogin)
	if got := r.hosts(); !slices.Equal(got, hosts[:4]) {
		t.Fatalf("dialled %v, want %v", got, hosts[:4])
	}
	w.cancel()
	if err := w.result(t); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableErrorMessage(t *testing.T) {
	one := &UnreachableError{Tried: []string{"ws://127.0.0.1:1/binfo?sdkappid=1"}, Err: errors.New("connection refused")}
	if got := one.Error(); got != "ws://127.0.0.1:1: server unreachable: connection refused" {
		t.Fatalf("%q", got)
	}
	two := &UnreachableError{Tried: []string{"wss://a/binfo?x=1", "wss://b/binfo?x=1"}, Err: errors.New("no such host")}
	if got := two.Error(); got != "server unreachable: tried wss://a, wss://b (last: no such host)" {
		t.Fatalf("%q", got)
	}
	if !errors.Is(two, ErrUnreachable) || errors.Is(two, ErrHandshake) {
		t.Fatal("UnreachableError must match ErrUnreachable and only what Err matches")
	}
}
