package client

import (
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"chatctl/pkg/wire"
)

func TestLoginHeadsLikeTheSDK(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, nil)
	ctx := context.Background()
	c, err := Dial(ctx, fs.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fc := fs.nextConn(t)
	if fc.path != "/binfo" || !strings.Contains(fc.query, "sdkappid=1400000001") {
		t.Fatalf("URL %s?%s", fc.path, fc.query)
	}

	res, err := c.Login(ctx, "alice", "sig-alice")
	if err != nil {
		t.Fatal(err)
	}
	if res.A2Key != "a2-x" || res.TinyID != "144115000000000001" || res.InstID != 1001 ||
		res.HelloInterval != 3*time.Second || res.UserID != "alice" {
		t.Fatalf("result %+v", res)
	}
	if !res.ServerTime.Equal(time.Unix(1795626047, 0)) || res.RTT <= 0 {
		t.Fatalf("clock: server %v rtt %v", res.ServerTime, res.RTT)
	}
	if want := res.ServerTime.Add(res.RTT / 2).Sub(res.LocalTime).Round(time.Millisecond); res.Offset != want {
		t.Fatalf("offset %v, want %v", res.Offset, want)
	}
	if s := res.Session(); s != (Session{UserID: "alice", A2Key: "a2-x", TinyID: "144115000000000001", InstID: 1001}) {
		t.Fatalf("session %+v", s)
	}
	login := fc.next(t, wire.CmdLogin)
	h := login.Head
	if h.Identifier != "alice" || h.UserSig != "sig-alice" || h.A2 != "" || h.CS != 0 ||
		h.SDKAppID != 1400000001 || h.Platform != 7 || h.Ver != "v4" {
		t.Fatalf("login head %+v", h)
	}
	var body wire.LoginRequest
	if err := json.Unmarshal(login.Body, &body); err != nil || body.State != "Online" {
		t.Fatalf("login body %s", login.Body)
	}

	if err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	hello := fc.next(t, wire.CmdHello)
	h = hello.Head
	if h.A2 != "a2-x" || h.TinyID != "144115000000000001" || h.StatusInstID != 1001 || h.UserSig != "" || h.Identifier != "" {
		t.Fatalf("hello head %+v", h)
	}
	if h.CS != crc32.ChecksumIEEE(hello.Body) || h.CS == 0 {
		t.Fatalf("hello cs %d, crc of %s is %d", h.CS, hello.Body, crc32.ChecksumIEEE(hello.Body))
	}
	if uint64(h.Seq) != uint64(login.Head.Seq)+1 {
		t.Fatalf("seq %d after %d", h.Seq, login.Head.Seq)
	}
	if _, err := c.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if hb := fc.next(t, wire.CmdHeartbeat); hb.Head.CS != 0 || hb.Head.A2 != "a2-x" {
		t.Fatalf("heartbeat head %+v", hb.Head)
	}
	if err := c.Logout(ctx, wire.LogoutUser); err != nil {
		t.Fatal(err)
	}
	var lo wire.LogoutRequest
	if f := fc.next(t, wire.CmdLogout); json.Unmarshal(f.Body, &lo) != nil || lo.LogoutType != 0 {
		t.Fatalf("logout body %s", f.Body)
	}
	fs.mu.Lock()
	for _, ty := range fs.frameTy {
		if ty != websocket.BinaryMessage {
			t.Errorf("client sent frame type %d, want binary", ty)
		}
	}
	fs.mu.Unlock()
}

func TestReloginUsesA2FormAndKeepsA2(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, nil)
	ctx := context.Background()
	s := Session{UserID: "bob", A2Key: "a2-saved", TinyID: "144115000000000009", InstID: 77}
	res, err := Probe(ctx, fs.cfg(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.A2Key != "a2-saved" || res.InstID != 1001 || res.UserID != "bob" || res.ServerTime.IsZero() {
		t.Fatalf("result %+v", res)
	}
	h := fs.nextConn(t).next(t, wire.CmdLogin).Head
	if h.A2 != "a2-saved" || h.TinyID != "144115000000000009" || h.StatusInstID != 77 || h.UserSig != "" || h.Identifier != "" {
		t.Fatalf("relogin head %+v", h)
	}
}

func TestReplyMatchingSeqAsStringAndStrayReplies(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		// A stray frame with the right seq but another servcmd first: a push.
		fc.send("im_open_status.other", uint64(f.Head.Seq), `{}`)
		// Then the reply, seq as a string.
		fc.send(f.Head.ServCmd, jsonNum(uint64(f.Head.Seq)), `{"ErrorCode":0,"Extra":1}`)
	})
	c, err := Dial(context.Background(), fs.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, err := c.Do(context.Background(), "profile.portrait_get_all", map[string]any{"From_Account": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"Extra":1`) {
		t.Fatalf("body %s", body)
	}
	select {
	case p := <-c.Pushes():
		if p.Head.ServCmd != "im_open_status.other" {
			t.Fatalf("push %+v", p.Head)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stray frame not delivered as a push")
	}
}

func jsonNum(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestServerErrorOnLogin(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":70003,"ErrorInfo":"bad sig"}`)
	})
	c, err := Dial(context.Background(), fs.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Login(context.Background(), "alice", "nope")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != 70003 || se.Info != "bad sig" || se.Cmd != wire.CmdLogin {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "nope") {
		t.Fatal("UserSig in the error")
	}
}

func TestLoginReplyWithoutA2KeyIsBad(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) { fc.reply(f, `{"TinyId":"1"}`) })
	c, err := Dial(context.Background(), fs.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(context.Background(), "a", "s"); !errors.Is(err, ErrBadReply) {
		t.Fatalf("err %v", err)
	}
}

func TestDialUnreachable(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Dial(context.Background(), Config{Endpoint: "ws://" + addr, SDKAppID: 1})
	var ue *UnreachableError
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, &ue) || len(ue.Tried) != 1 ||
		!strings.HasPrefix(ue.Tried[0], "ws://"+addr+"/binfo?sdkappid=1&") {
		t.Fatalf("err %v, want an UnreachableError naming ws://%s/binfo", err, addr)
	}
	_, err = Probe(context.Background(), Config{Endpoint: "ws://" + addr, SDKAppID: 1}, Session{A2Key: "secret-a2"})
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "secret-a2") {
		t.Fatalf("probe err %v", err)
	}
}

func TestDialHandshakeRefused(t *testing.T) {
	checkLeaks(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Dial(context.Background(), Config{Endpoint: srv.URL, SDKAppID: 1})
	if !errors.Is(err, ErrHandshake) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrHandshake only", err)
	}
}

func TestPendingFailsWhenSocketDies(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) { fc.ws.Close() })
	c, err := Dial(context.Background(), fs.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Login(context.Background(), "a", "s")
	if !errors.Is(err, ErrConnLost) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrConnLost", err)
	}
	<-c.Done()
	if !errors.Is(c.Err(), ErrConnLost) {
		t.Fatalf("Err() %v", c.Err())
	}
	if err := c.Hello(context.Background()); !errors.Is(err, ErrConnLost) {
		t.Fatalf("request after death: %v", err)
	}
}

func TestRequestTimeoutAndContext(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {}) // never answers
	cfg := fs.cfg()
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Heartbeat(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("heartbeat err %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Hello(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("hello err %v: want context.Canceled, not a timeout", err)
	}
	// The caller's deadline running out is no reply in time, as the
	// request's own timeout (chatctl --timeout: exit 6).
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if _, err := c.Login(dctx, "u", "sig"); !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("login past the caller's deadline: %v: want ErrTimeout (so ErrUnreachable)", err)
	}
	if n := c.pend.len(); n != 0 {
		t.Fatalf("%d requests left pending", n)
	}
}

func TestCloseFromManyGoroutines(t *testing.T) {
	checkLeaks(t)
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {})
	c, err := Dial(context.Background(), fs.cfg())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Login(context.Background(), "a", "s"); errc <- err }()
	fs.nextConn(t).next(t, wire.CmdLogin)
	done := make(chan struct{})
	for range 4 {
		go func() { c.Close(); done <- struct{}{} }()
	}
	for range 4 {
		<-done
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending login after Close: %v", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err() %v", c.Err())
	}
}

// A socket that dies while the a2 re-login waits (the server closed it:
// another socket of the instance logged it out) is tried once more on a
// fresh one, whose answer says why; a second loss is reported as it is.
func TestProbeAndLogoutTryAFreshSocketOnce(t *testing.T) {
	checkLeaks(t)
	var logins atomic.Int32
	var lostEvery atomic.Bool
	fs := newFake(t, func(fc *fakeConn, f wire.Frame) {
		if f.Head.ServCmd != wire.CmdLogin {
			defaultHandle(fc, f)
			return
		}
		if n := logins.Add(1); n == 1 || lostEvery.Load() {
			fc.ws.Close()
			return
		}
		fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":70002,"ErrorInfo":"instance revoked: logout"}`)
	})
	s := Session{UserID: "alice", A2Key: "a2", TinyID: "1", InstID: 5}
	_, err := Probe(context.Background(), fs.cfg(), s)
	var se *ServerError
	if !errors.As(err, &se) || se.RevokedReason() != "logout" || logins.Load() != 2 {
		t.Fatalf("probe: %v after %d logins; want the second socket's 70002 logout", err, logins.Load())
	}
	logins.Store(0)
	if err := LogoutSession(context.Background(), fs.cfg(), s); !errors.As(err, &se) || se.RevokedReason() != "logout" || logins.Load() != 2 {
		t.Fatalf("logout: %v after %d logins", err, logins.Load())
	}
	// Lost once the wslogout is out: tried once more, where a re-login
	// refused as logged out means it was done (nil); one that succeeds
	// means it was not, and the wslogout goes again; lost twice is lost.
	var logoutDone, loseEvery atomic.Bool
	lostOnLogout := newFake(t, func(fc *fakeConn, f wire.Frame) {
		switch {
		case f.Head.ServCmd == wire.CmdLogout && (logins.Load() == 1 || loseEvery.Load()):
			fc.ws.Close()
		case f.Head.ServCmd == wire.CmdLogin && logins.Add(1) == 2 && logoutDone.Load():
			fc.reply(f, `{"ActionStatus":"FAIL","ErrorCode":70002,"ErrorInfo":"instance revoked: logout"}`)
		default:
			defaultHandle(fc, f)
		}
	})
	for _, done := range []bool{true, false} {
		logins.Store(0)
		logoutDone.Store(done)
		if err := LogoutSession(context.Background(), lostOnLogout.cfg(), s); err != nil || logins.Load() != 2 {
			t.Fatalf("lost after wslogout (done %v): %v after %d logins; want nil after 2", done, err, logins.Load())
		}
	}
	logins.Store(0)
	loseEvery.Store(true)
	if err := LogoutSession(context.Background(), lostOnLogout.cfg(), s); !errors.Is(err, ErrConnLost) || logins.Load() != 2 {
		t.Fatalf("lost after wslogout twice: %v after %d logins; want ErrConnLost after 2", err, logins.Load())
	}
	lostEvery.Store(true)
	logins.Store(0)
	if _, err := Probe(context.Background(), fs.cfg(), s); !errors.Is(err, ErrConnLost) || logins.Load() != 2 {
		t.Fatalf("lost twice: %v after %d logins; want ErrConnLost after 2", err, logins.Load())
	}
}

// A canceled context (a signal) ends a handshake the host never answers,
// not the dial's own bound: gorilla honours only a deadline. The upgrade
// request is sent; the host reads it and says nothing.
func TestDialCanceledMidHandshake(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, Config{Endpoint: "ws://" + ln.Addr().String(), SDKAppID: 1, DialTimeout: time.Minute})
		done <- err
	}()
	c := <-accepted
	defer c.Close()
	buf := make([]byte, 1)
	c.Read(buf) // the upgrade request has begun
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("canceled dial: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the dial went on 30 s after its context was canceled")
	}
}

// A host that answers the upgrade a byte at a time until the dial's
// deadline cuts it short is a timeout, as a silent one is: the error was
// the parser's "malformed HTTP response" of the bytes so far, and chatctl
// told it as "cannot reach", not "did not answer in time" (the CLI pass).
func TestDialTrickledHandshakeIsATimeout(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for _, b := range []byte("HTTP/1.1 101 Switching Protocols\r\n") {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
		<-stop
	}()
	_, err = Dial(context.Background(), Config{Endpoint: "ws://" + ln.Addr().String(), SDKAppID: 1, DialTimeout: 500 * time.Millisecond})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a trickled handshake cut by the dial's bound: %v; want unreachable, deadline exceeded", err)
	}
}
