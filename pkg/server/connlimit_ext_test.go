package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// dialFrom opens /binfo on ts from the loopback address ip (Linux routes
// all of 127/8 to lo), as another host would.
func dialFrom(t *testing.T, ts *servertest.Server, ip string) (*client, error) {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 20 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			return nd.DialContext(ctx, network, addr)
		},
	}
	ws, _, err := d.Dial(ts.WSURL+"/binfo", nil)
	if err != nil {
		return nil, err
	}
	c := &client{t: t, ws: ws, mt: websocket.BinaryMessage}
	c.seq.Store(17057997)
	t.Cleanup(func() { ws.Close() })
	return c, nil
}

// New connections per source address: an attacker on 127.0.0.2 gets its
// burst and is then reset before anything is read, counted, and logged
// once; the good client on 127.0.0.1 still logs in; a
// source failing logins pays a connection per refusal. The rate is so low
// (one token in 1,000 s) that nothing refills during the test.
func TestConnLimitPerSource(t *testing.T) {
	leaktest.Check(t)
	const burst = 5
	h := startHardened(t, servertest.ConnLimit(0.001, burst, true))
	ts := h.Server

	for i := range burst {
		if _, err := dialFrom(t, ts, "127.0.0.2"); err != nil {
			t.Fatalf("attacker's connection %d of the burst: %v", i+1, err)
		}
	}
	for i := range 3 {
		if _, err := dialFrom(t, ts, "127.0.0.2"); err == nil {
			t.Fatalf("attacker's connection %d past the burst upgraded", burst+i+1)
		}
	}
	// A raw connection past the burst reads nothing but its end: no answer,
	// not even a 4xx.
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", ts.Addr)
	if err == nil {
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		var b [64]byte
		n, rerr := c.Read(b[:])
		c.Close()
		if n > 0 || rerr == nil || isTimeout(rerr) {
			t.Fatalf("a connection past the burst read %q, %v", b[:n], rerr)
		}
	}
	if got := ts.Server().Stats(false).ConnsRefused; got != 4 {
		t.Errorf("conns_refused %d, want 4", got)
	}
	if _, lines, _, _ := h.log.stats(); lines != 1 {
		t.Errorf("%d log lines for 4 refusals of one source, want 1", lines)
	}

	// The good client, on its own bucket, logs in.
	for i := range 3 {
		g, err := dialFrom(t, ts, "127.0.0.1")
		if err != nil {
			t.Fatalf("good client's connection %d: %v", i+1, err)
		}
		g.mustLogin("good", ts.Sig("good", time.Hour))
	}

	// 127.0.0.3: one socket, two refused wslogins (a connection each),
	// then burst − 3 connections are left.
	b, err := dialFrom(t, ts, "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := b.login(strings.Repeat("x", 40), "bogus"); r.code() != wire.CodeBadParam {
			t.Fatalf("bad identifier: %s", r.Raw)
		}
	}
	b.call(wire.CmdHeartbeat, nil, nil) // read after the second refusal was charged
	for i := range burst - 3 {
		if _, err := dialFrom(t, ts, "127.0.0.3"); err != nil {
			t.Fatalf("connection %d after two failed logins: %v", i+2, err)
		}
	}
	if _, err := dialFrom(t, ts, "127.0.0.3"); err == nil {
		t.Fatal("failed logins cost no connections")
	}
	if st := ts.Server().Stats(false); st.ConnSources != 3 {
		t.Errorf("conn_sources %d, want 3", st.ConnSources)
	}
}

// By default (ConnLimitLoopback off) loopback sources are not limited:
// the host's own clients, and a reverse proxy on it, are exempt.
func TestConnLimitLoopbackExempt(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.ConnLimit(0.001, 2, false))
	for i := range 6 {
		if _, err := dialFrom(t, ts, "127.0.0.2"); err != nil {
			t.Fatalf("loopback connection %d refused: %v", i+1, err)
		}
	}
	if st := ts.Server().Stats(false); st.ConnsRefused != 0 || st.ConnSources != 0 {
		t.Errorf("stats %+v, want nothing refused or tracked", st)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// The connections one source holds at once are capped, WebSocket and
// HTTP alike: the one past the cap is reset unread and logged as such;
// another source is not held back; a closed connection, whoever closes
// it, makes room again.
func TestConnMaxPerSource(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t, servertest.ConnLimit(0, 0, true), servertest.ConnMax(2))
	ts := h.Server

	ws, err := dialFrom(t, ts, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	// An HTTP connection kept alive by net/http counts as much.
	hc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hc.Write([]byte("GET /healthz HTTP/1.1\r\nHost: " + ts.Addr + "\r\n\r\n"))
	hc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if b := make([]byte, 12); !readFull(hc, b) || !strings.HasPrefix(string(b), "HTTP/1.1 ") {
		t.Fatalf("the HTTP connection within the cap: %q", b)
	}
	if _, err := dialFrom(t, ts, "127.0.0.2"); err == nil {
		t.Fatal("a third connection of a source capped at 2 upgraded")
	}
	if _, err := dialFrom(t, ts, "127.0.0.3"); err != nil {
		t.Fatalf("another source: %v", err)
	}
	if got := ts.Server().Stats(false).ConnsRefused; got != 1 {
		t.Errorf("conns_refused %d, want 1", got)
	}
	if !strings.Contains(h.log.String(), "limit=open") {
		t.Errorf("no log line of the refusal's limit:\n%s", h.log.String())
	}

	// The client closes its socket, then its HTTP connection: each time
	// the server's close makes room for one more.
	for _, c := range []net.Conn{ws.ws.NetConn(), hc} {
		c.Close()
		deadline := time.Now().Add(20 * time.Second)
		for {
			n, err := dialFrom(t, ts, "127.0.0.2")
			if err == nil {
				defer n.ws.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no room after a connection closed: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// readFull reads len(b) bytes of c.
func readFull(c net.Conn, b []byte) bool {
	_, err := io.ReadFull(c, b)
	return err == nil
}

// The frames of all of a source's sockets, logged in or not, draw on one
// bucket of the source's: two sockets each well within their own bucket
// empty it, and then wait for it, while another source's socket is
// answered at once.
func TestSourceFrameBucket(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t, servertest.ConnLimit(1000, 1000, true))
	ts := h.Server
	server.SetSourceFrames(ts.Server(), 1e-6, 10) // nothing refills during the test
	hb := servertest.RawFrame(servertest.OpBinary, frameJSON(wire.CmdHeartbeat, 1, nil, nil), false)
	from := func(ip string) *servertest.RawWS {
		c, err := servertest.DialRaw(context.Background(), &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}, ts.Addr, "/binfo", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := from("127.0.0.2"), from("127.0.0.2")
	for _, c := range []*servertest.RawWS{a, b, a, b, a, b, a, b} {
		c.Send(t, hb)
		if code, raw := c.Reply(t); code != 0 {
			t.Fatalf("heartbeat: %s", raw)
		}
	}
	// 8 frames (and their bytes) of the 10 tokens; a socket's own bucket
	// holds 50. A frame is charged after its reply: the last one may
	// come a moment after.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		tokens, ok := server.SourceFrameTokens(ts.Server(), "127.0.0.2")
		if ok && tokens <= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("source bucket at %.2f (held %v) after 8 frames from two sockets, want at most 2", tokens, ok)
		}
	}
	for range 3 {
		b.Send(t, hb)
	}
	answered := 0
	for range 3 {
		if _, _, err := b.Next(500 * time.Millisecond); err != nil {
			break
		}
		answered++
	}
	if answered == 3 {
		t.Fatal("all 3 frames past the source's bucket were answered")
	}
	c := from("127.0.0.3")
	c.Send(t, hb)
	if code, raw := c.Reply(t); code != 0 {
		t.Fatalf("another source's heartbeat: %s", raw)
	}
}

// HTTP requests draw on their source's frame bucket too: past it, the
// next request of the source waits, another source's is answered.
func TestSourceFrameBucketHTTP(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t, servertest.ConnLimit(1000, 1000, true))
	ts := h.Server
	server.SetSourceFrames(ts.Server(), 1e-6, 3)
	client := func(ip string, timeout time.Duration) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext}}
	}
	get := func(c *http.Client) error {
		resp, err := c.Get(ts.RESTURL + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	}
	a := client("127.0.0.2", 20*time.Second)
	defer a.CloseIdleConnections()
	for i := range 3 {
		if err := get(a); err != nil {
			t.Fatalf("request %d within the source's bucket: %v", i+1, err)
		}
	}
	slow := client("127.0.0.2", 500*time.Millisecond)
	defer slow.CloseIdleConnections()
	if err := get(slow); err == nil {
		t.Fatal("a request past the source's bucket was answered at once")
	}
	b := client("127.0.0.3", 20*time.Second)
	defer b.CloseIdleConnections()
	if err := get(b); err != nil {
		t.Fatalf("another source: %v", err)
	}

	// A connection keeps the source it was admitted with: its entry
	// deleted (a full table makes room), its requests still draw on it.
	c := client("127.0.0.4", 20*time.Second)
	defer c.CloseIdleConnections()
	for i := range 3 {
		if err := get(c); err != nil {
			t.Fatalf("request %d within the bucket: %v", i+1, err)
		}
	}
	server.ForgetSources(ts.Server())
	// The same kept-alive connection, with a short wait of its own.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.RESTURL+"/healthz", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the kept-alive connection's request past the bucket was answered once its entry was deleted")
	}
}

// Every way a connection ends gives its place back, whichever side ends
// it: a count that leaked would lock a source (a NAT) out for good once
// it reached --conn-max.
func TestConnMaxReleasedOnEveryEnd(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t, servertest.ConnLimit(0, 0, true), servertest.ConnMax(3), servertest.HeartbeatTimeout(300*time.Millisecond))
	ts := h.Server
	const ip = "127.0.0.2"
	tcp := func() net.Conn {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).Dial("tcp", ts.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	drain := func(c net.Conn) { // until the server's end
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		io.Copy(io.Discard, c)
	}
	for _, end := range []struct {
		name string
		run  func()
	}{
		{"the client closes its socket", func() {
			ws, err := dialFrom(t, ts, ip)
			if err != nil {
				t.Fatal(err)
			}
			ws.ws.Close()
		}},
		{"the server closes a silent socket", func() {
			ws, err := dialFrom(t, ts, ip)
			if err != nil {
				t.Fatal(err)
			}
			ws.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
			for {
				if _, _, err := ws.ws.ReadMessage(); err != nil {
					break
				}
			}
		}},
		{"an HTTP request with Connection: close", func() {
			c := tcp()
			c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: " + ts.Addr + "\r\nConnection: close\r\n\r\n"))
			drain(c)
		}},
		{"an upgrade refused for its Origin", func() {
			c := tcp()
			c.Write([]byte("GET /binfo HTTP/1.1\r\nHost: " + ts.Addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n"))
			drain(c)
		}},
		{"a head over the cap", func() {
			c := tcp()
			c.Write([]byte("GET /healthz HTTP/1.1\r\nX: " + strings.Repeat("a", 2<<20)))
			drain(c)
		}},
		{"an upgrade request that is no upgrade", func() {
			c := tcp()
			c.Write([]byte("GET /binfo HTTP/1.1\r\nHost: " + ts.Addr + "\r\n\r\n"))
			drain(c)
		}},
	} {
		for range 2 {
			end.run()
			deadline := time.Now().Add(20 * time.Second)
			for server.SourceOpen(ts.Server(), ip) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d connections still counted open", end.name, server.SourceOpen(ts.Server(), ip))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}
