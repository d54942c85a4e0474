package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
	"chatctl/pkg/server/ui"
	"chatctl/pkg/wire"
)

// startInternal runs a Server on loopback for the tests of this file.
func startInternal(t *testing.T) (*Server, string) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 16)
	rand.Read(key)
	s, err := New(Config{Apps: []AppConfig{{SDKAppID: 1400000001, Key: hex.EncodeToString(key), Admins: []string{"administrator"}}}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
		st.Close()
	})
	return s, ln.Addr().String()
}

// No HTTP request holds its connection past httpTimeout, whatever its
// path: a body that trickles in or never comes (slow-loris on the body), a
// chunked one a byte at a time, answers never read. A prompt request on
// the same server is answered meanwhile, and the page's event stream,
// which is meant to last, outlives the bound.
func TestSlowHTTPCut(t *testing.T) {
	old := httpTimeout
	httpTimeout = 300 * time.Millisecond
	t.Cleanup(func() { httpTimeout = old })
	s, addr := startInternal(t)

	trickle := func(c net.Conn, b string) {
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.WriteString(c, b); err != nil {
				return
			}
		}
	}
	for _, tc := range []struct {
		name, head string
		then       func(net.Conn)
	}{
		{"REST body trickled", "POST /v4/im_open_login_svc/kick?sdkappid=1400000001&identifier=administrator&usersig=x HTTP/1.1\r\n" +
			"Host: h\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
			func(c net.Conn) { trickle(c, " ") }},
		{"page action body trickled", "POST /ui/api/import HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{",
			func(c net.Conn) { trickle(c, " ") }},
		{"/healthz body never sent", "GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", nil},
		{"/debug/stats body never sent", "GET /debug/stats HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", nil},
		{"event stream body never sent", "GET /ui/api/events HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 100\r\n\r\n", nil},
		{"404 chunked body trickled", "POST /nowhere HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
			func(c net.Conn) { trickle(c, "1\r\nx\r\n") }},
		{"answers never read", "", func(c net.Conn) {
			// Pipelined page files (6.5 KB each) until the server's
			// writes block, the client reading nothing for a while.
			c.(*net.TCPConn).SetReadBuffer(4096)
			for range 3000 {
				if _, err := io.WriteString(c, "GET /ui/app.js HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.head)
			if tc.then != nil {
				go tc.then(c)
			}
			time.Sleep(time.Second) // past httpTimeout, reading nothing
			// The server answers and closes, or resets the connection (the
			// client was writing); either way it lets go. Only a server
			// that holds on until the generous deadline fails: idleTimeout
			// (30 s) is past it.
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if n, err := io.Copy(io.Discard, c); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("still holds its connection: %v (%d read)", err, n)
				}
			}
		})
	}

	resp, err := http.Post("http://"+addr+"/v4/im_open_login_svc/kick?sdkappid=1400000001", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("prompt REST request: HTTP %d", resp.StatusCode)
	}

	t.Run("event stream lasts", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/ui/api/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		time.Sleep(time.Second)
		s.feed.Publish(ui.Event{Kind: "login", User: "after-the-bound"})
		r := bufio.NewReader(resp.Body)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("the stream ended: %v", err)
			}
			if strings.Contains(l, "after-the-bound") {
				return
			}
		}
	})
}

// Failed logins under ever new user IDs keep the lockout's memory bounded,
// and do not free a user who is locked.
func TestLockoutBounded(t *testing.T) {
	var l lockout
	now := time.Unix(1795626047, 0)
	victim := userKey{1, "victim"}
	for range LockoutFailures {
		l.fail(victim, now)
	}
	if !l.locked(victim, now) {
		t.Fatal("victim not locked")
	}
	for i := range 4 * lockoutMaxUsers {
		l.fail(userKey{1, fmt.Sprint("guess", i)}, now.Add(time.Duration(i)*time.Microsecond))
	}
	if n := len(l.m); n > lockoutMaxUsers {
		t.Errorf("lockout tracks %d users, more than %d", n, lockoutMaxUsers)
	}
	if !l.locked(victim, now.Add(time.Second)) {
		t.Error("a flood of other users freed a locked user")
	}
}

// The frame bucket: a burst is free, then each frame waits 1/rate, a
// 16 KiB frame 4/rate more, debt stops at one burst, an idle hour refills
// it to the burst and no more, and a clock that goes back refills nothing.
func TestFrameBucket(t *testing.T) {
	var b bucket
	now := time.Unix(1795626047, 0)
	for i := range FrameBurst {
		if d := b.spend(now, 1, FrameRate, FrameBurst); d != 0 {
			t.Fatalf("frame %d of the burst waits %v", i, d)
		}
	}
	if d := b.spend(now, 1, FrameRate, FrameBurst); d != time.Second/FrameRate {
		t.Fatalf("first frame past the burst waits %v, want %v", d, time.Second/FrameRate)
	}
	if d := b.spend(now, 4, FrameRate, FrameBurst); d != 5*time.Second/FrameRate { // a 16 KiB read: 4 tokens
		t.Fatalf("a 16 KiB frame past the burst waits %v", d)
	}
	if d := b.spend(now.Add(-time.Hour), 1, FrameRate, FrameBurst); d != 6*time.Second/FrameRate {
		t.Fatalf("a clock gone back an hour: waits %v, want %v", d, 6*time.Second/FrameRate)
	}
	for range 10 * FrameBurst { // sockets that come and go, never waiting
		b.spend(now, 1, FrameRate, FrameBurst)
	}
	if d := b.spend(now, 1, FrameRate, FrameBurst); d != time.Second*FrameBurst/FrameRate {
		t.Fatalf("after ten bursts of debt: waits %v, want at most one burst's %v", d, time.Second*FrameBurst/FrameRate)
	}
	now = now.Add(time.Hour)
	if d := b.spend(now, 1, FrameRate, FrameBurst); d != 0 {
		t.Fatalf("after an idle hour: waits %v", d)
	}
	if b.tokens != FrameBurst-1 {
		t.Fatalf("bucket refilled to %v, want %d", b.tokens+1, FrameBurst)
	}
}

// The users' buckets are forgotten once full: failed or finished users do
// not pile up.
func TestUserBucketsForgotten(t *testing.T) {
	var p framePace
	now := time.Unix(1795626047, 0)
	for i := range 5000 {
		p.user(userKey{1, fmt.Sprint("u", i)}, now, 1)
	}
	p.user(userKey{1, "late"}, now.Add(time.Minute), 1)
	if n := len(p.users.m); n > 1 {
		t.Fatalf("%d user buckets kept a minute later, want 1", n)
	}
}

// logField: clean short values pass as they are; control characters,
// ANSI escapes and invalid UTF-8 are escaped; long values are cut on a
// rune boundary and say their length; the result is bounded either way.
func TestLogField(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"名前", "名前"},
		{"a\nb", `a\nb`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"\xff", `\xff`},
		{"a\u0085b", `a\u0085b`},
		// invisible format characters: a look-alike admin, a reversed name
		{"administrator\u200b", `administrator\u200b`},
		{"evil\u202egnp.exe", `evil\u202egnp.exe`},
		{"\ufeffbom", `\ufeffbom`},
	} {
		if got := logField(tc.in); got != tc.want {
			t.Errorf("logField(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 1000) // 2 bytes a rune
	got := logField(long)
	if !strings.HasPrefix(got, strings.Repeat("é", MaxLogField/2)) || !strings.HasSuffix(got, "…(2000 bytes)") {
		t.Errorf("long value: %q", got)
	}
	for _, in := range []string{strings.Repeat("\x00", 1<<20), strings.Repeat("é", 1<<20), "x" + strings.Repeat("é", 1<<20)} {
		if got := logField(in); len(got) > 4*MaxLogField || !utf8.ValidString(got) {
			t.Errorf("%d-byte value: %d bytes out, valid UTF-8 %v", len(in), len(got), utf8.ValidString(got))
		}
	}
}

// A kick found socket c holding instance 1 (hub.kick), and c logged in as
// instance 2 before the push went: the push is not c's any more (its SDK
// would log its new session out), so it is neither sent nor repeated. With
// c holding the kicked instance, or nothing (the kick released it), it is
// (from review).
func TestKickPushSkipsSocketLoggedInAgain(t *testing.T) {
	s, _ := startInternal(t)
	c := &conn{s: s} // never written to: the pushes are only decided here
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	kicked, other := instKey{1400000001, 1}, instKey{1400000001, 2}
	msg := kickPushMsg(wire.KickMultipleAccount, 0)
	// push decides a kick push of ik to c: whether it is to be sent now,
	// and whether its repeat was armed (then dropped: no timer is left).
	push := func(ik instKey) (now, repeated bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now = s.pushKickLocked(c, ik, msg)
		rs := s.kp.byConn[c]
		for _, r := range append([]*kickRetry(nil), rs...) {
			s.dropRetryLocked(r)
		}
		return now, len(rs) > 0
	}
	if now, rep := push(kicked); !now || !rep {
		t.Fatalf("to a socket holding nothing: sent %v, repeated %v; want both", now, rep)
	}
	s.hub.attach(c, &entry{Instance: store.Instance{App: 1400000001, User: "u", InstID: other.inst}}, nil, time.Now())
	defer s.hub.release(c, time.Now())
	if now, rep := push(kicked); now || rep {
		t.Fatalf("to a socket now holding instance 2: sent %v, repeated %v; want neither", now, rep)
	}
	if now, rep := push(other); !now || !rep {
		t.Fatalf("a kick of the instance it holds: sent %v, repeated %v; want both", now, rep)
	}
}
