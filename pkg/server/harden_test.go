package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// logSink counts the bytes and lines a server logs and keeps the longest
// line.
type logSink struct {
	mu      sync.Mutex
	bytes   int
	lines   int
	longest int
	errors  int
	refused int    // lines of refused logins and requests
	head    []byte // the first logSinkHead bytes
}

const logSinkHead = 64 << 10

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes += len(p)
	l.head = append(l.head, p[:min(len(p), logSinkHead-len(l.head))]...)
	for _, line := range bytes.Split(bytes.TrimSuffix(p, []byte("\n")), []byte("\n")) {
		l.lines++
		l.longest = max(l.longest, len(line))
		if bytes.Contains(line, []byte("level=ERROR")) {
			l.errors++
		}
		if bytes.Contains(line, []byte("refused")) || bytes.Contains(line, []byte("msg=rest")) {
			l.refused++
		}
	}
	return len(p), nil
}

// stats: bytes and lines of refusals logged, the longest line, ERROR lines.
func (l *logSink) stats() (bytes, refused, longest, errors int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes, l.refused, l.longest, l.errors
}

// String is the first logSinkHead bytes logged.
func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.head)
}

// hardened is a test server whose log (debug) goes to a logSink.
type hardened struct {
	*servertest.Server
	log *logSink
}

func startHardened(t *testing.T, opts ...servertest.Option) *hardened {
	t.Helper()
	h := &hardened{log: &logSink{}}
	logger := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.Server = servertest.Start(t, append(opts, servertest.Logger(logger))...)
	return h
}

func (h *hardened) sig(user string) string { return h.Sig(user, time.Hour) }

func (h *hardened) dial(t *testing.T, path string, extra string) *servertest.RawWS {
	t.Helper()
	c, err := servertest.DialRaw(context.Background(), nil, h.Addr, path, extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func loginFrame(user, usersig string, seq int) []byte {
	return frameJSON(wire.CmdLogin, seq, map[string]any{"identifier": user, "usersig": usersig}, nil)
}

// wslogin checks the identifier with the one UserID rule before anything
// else: an empty, long or control-character identifier, even with a
// UserSig minted for it, is refused 70402, never reaches the lockout
// table, and logs no ERROR line and nothing long.
func TestLoginBadIdentifier(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	c := h.dial(t, "/binfo", "")
	// (Invalid UTF-8 cannot arrive: JSON decoding makes it U+FFFD.)
	// U+FFFD: what "\ud800" decodes to, which named one user with it.
	for _, id := range []string{"", strings.Repeat("a", 33), "a\x00b", "a\nb", "a\u0085b", "al\uFFFDice", strings.Repeat("x", 12000)} {
		us := h.sig(id)
		if len(id) > 100 {
			us = "eJyrVkrOzEvMS8ksSizJzM9TsjI0MDIwMTIwNTMyNTc1MjEyNDI0MDEyMjI1MTAwMzI0MDI0MDI0NDIwMTA0MDQ0AQABAAA" // a UserSig of it would not fit in 12 KB
		}
		c.Send(t, servertest.RawFrame(servertest.OpBinary, loginFrame(id, us, 1), false))
		if code, raw := c.Reply(t); code != wire.CodeBadParam {
			t.Fatalf("identifier %.40q: %.300s, want 70402", id, raw)
		}
	}
	n := server.LockoutUsers(h.Server.Server())
	if n != 0 {
		t.Errorf("the lockout tracks %d users after bad identifiers only", n)
	}
	c.Send(t, servertest.RawFrame(servertest.OpBinary, loginFrame("alice", h.sig("alice"), 2), false))
	if code, raw := c.Reply(t); code != 0 {
		t.Fatalf("a good login on the same socket: %s", raw)
	}
	if _, _, longest, errs := h.log.stats(); errs > 0 || longest > 1024 {
		t.Errorf("log: %d ERROR lines, longest line %d bytes", errs, longest)
	}
}

// unauthLinesBound is the most lines the limiter lets through in elapsed.
func unauthLinesBound(elapsed time.Duration) int {
	return server.UnauthLogBurst + int(elapsed.Seconds()*server.UnauthLogRate) + 1
}

// 1,000 failed wslogins with 12,000-byte identifiers (200 sockets, 5 each:
// what their pacing lets through at once) and 1,000 with distinct valid
// identifiers and a wrong UserSig: the lockout table holds none of the
// long ones, and the log gets at most the limiter's lines, none over 1 KiB.
// (fault.TestFloods with FAULT_FLOOD=badlogin runs them against the binary.)
func TestFailedLoginFloodLogBounded(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	before, _, _, _ := h.log.stats()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 400 {
		c := h.dial(t, "/binfo", "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				id := fmt.Sprintf("v%d-%d", i, j) // valid, wrong UserSig
				if i < 200 {
					id = strings.Repeat(string(rune('a'+j%26)), 12000-8) + fmt.Sprintf("%08d", i*5+j)
				}
				c.Send(t, servertest.RawFrame(servertest.OpBinary, loginFrame(id, "eJyrVkrOzEvMS8ksSizJzM9TsjI0MDIwMTIwNTMyNTc1MjEyNDI0MDEyMjI1MTAwMzI0MDI0MDI0NDIwMTA0MDQ0AQABAAA", 1), false))
				if code, _ := c.Reply(t); code == 0 {
					t.Errorf("login %.20s… answered OK", id)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := server.LockoutUsers(h.Server.Server())
	if n > 1000 {
		t.Errorf("the lockout tracks %d users; only the 1,000 valid ids may be", n)
	}
	after, lines, longest, _ := h.log.stats()
	if lines > unauthLinesBound(elapsed)+2 || longest > 1024 {
		t.Errorf("log: %d lines (limit %d in %v), longest %d bytes", lines, unauthLinesBound(elapsed), elapsed, longest)
	}
	t.Logf("2,000 failed logins in %v: %d log bytes (%.1f per login), %d lines", elapsed, after-before, float64(after-before)/2000, lines)
}

// 200 unauthenticated REST requests: 100 whose identifier is 900 KB are
// refused at the header cap (431 and a reset; nothing logged), 100 with 30 KB identifiers
// are answered and logged within the limiter, each value cut to
// server.MaxLogField.
func TestRESTLogBounded(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	before, lines0, _, _ := h.log.stats()
	start := time.Now()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	// 20 at a time: net/http waits 500 ms after a 431 before it closes.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := range 200 {
		size := 900_000
		if i%2 == 1 {
			size = 30_000
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u := fmt.Sprintf("http://%s/v4/im_open_login_svc/kick?sdkappid=%d&identifier=%s&usersig=x", h.Addr, servertest.SDKAppID, strings.Repeat("i", size))
			resp, err := cl.Post(u, "application/json", strings.NewReader(`{"UserID":"bob"}`))
			if err != nil {
				// Over the cap: a 431 and a reset, which may come first.
				if size < server.MaxHeaderBytes || !strings.Contains(err.Error(), "connection reset") {
					t.Errorf("request %d (%d bytes): %.200s", i, size, err)
				}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case size > server.MaxHeaderBytes && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge:
				t.Errorf("900 KB identifier: HTTP %d, want 431", resp.StatusCode)
			case size < server.MaxHeaderBytes && (resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"ErrorCode":60004`))):
				t.Errorf("30 KB identifier: HTTP %d %s", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, lines, longest, _ := h.log.stats()
	if lines-lines0 > unauthLinesBound(elapsed) || longest > 1024 {
		t.Errorf("log: %d lines (limit %d), longest %d bytes", lines-lines0, unauthLinesBound(elapsed), longest)
	}
	t.Logf("200 REST requests: %d log bytes (%.1f per request)", after-before, float64(after-before)/200)
}

// Every request head is capped: 50 connections sending 1 MiB of headers
// to a non-upgrade path get 431 and a reset once the server has read the
// cap (not the megabyte; without a cap the server would wait for the rest
// and time out with no answer); an upgrade whose head is over the cap gets
// 400. A head that fits, on a connection's first request and on a second
// one, is served.
func TestHeadersCapped(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", h.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			path := "/healthz"
			if i%2 == 1 {
				path = "/v4/im_open_login_svc/kick?sdkappid=1"
			}
			got := make(chan string, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					got <- err.Error()
					return
				}
				resp.Body.Close()
				got <- resp.Status
			}()
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n", path)
			sent := 0
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			for sent < 1<<20 {
				n, err := io.WriteString(c, line)
				sent += n
				if err != nil {
					break // the server closed it
				}
			}
			// 431, or the reset that follows it (which may drop the 431).
			if s := <-got; !strings.HasPrefix(s, "431") && !strings.Contains(s, "connection reset") {
				t.Errorf("%s with 1 MiB of headers: %q (sent %d bytes)", path, s, sent)
			}
		}()
	}
	wg.Wait()

	ok, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	pad := strings.Repeat(line, 25) // 25 KB: under the cap
	fmt.Fprintf(ok, "GET /healthz HTTP/1.1\r\nHost: x\r\n%s\r\nGET /healthz HTTP/1.1\nHost: x\n\n", pad)
	okr := bufio.NewReader(ok)
	for i := range 2 {
		ok.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(okr, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d with a head under the cap: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}

	c, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		fmt.Fprintf(c, "GET /binfo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
		for range 40 {
			io.WriteString(c, line)
		}
		io.WriteString(c, "\r\n")
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("upgrade with a 40 KiB head: %v %v", resp, err)
	}
}

// frameJSON is servertest.Frame with the test app's sdkappid in the head
// (head may override it).
func frameJSON(servcmd string, seq int, head map[string]any, body any) []byte {
	h := map[string]any{"sdkappid": servertest.SDKAppID}
	for k, v := range head {
		h[k] = v
	}
	return servertest.Frame(servcmd, seq, h, body)
}

const markerSeq = 999999

// floodThenMark writes n copies of flood and then a heartbeat with
// markerSeq, and reads until the marker's reply.
func floodThenMark(t *testing.T, c *servertest.RawWS, flood []byte, n int) {
	t.Helper()
	go func() {
		var all []byte
		for range n {
			all = append(all, flood...)
		}
		all = append(all, servertest.RawFrame(servertest.OpBinary, frameJSON(wire.CmdHeartbeat, markerSeq, nil, nil), false)...)
		c.SetWriteDeadline(time.Now().Add(time.Minute))
		c.Write(all) // an error shows as a missing marker below
	}()
	for {
		op, p, err := c.Next(time.Minute)
		if err != nil {
			t.Errorf("waiting for the marker: %v", err)
			return
		}
		if op == servertest.OpBinary && bytes.Contains(p, []byte(fmt.Sprintf(`"seq":%d`, markerSeq))) {
			return
		}
	}
}

// Every kind of frame is paced per socket: 100 of a kind and a marker
// heartbeat on one socket, and the marker's reply cannot come before the
// socket's bucket allows 101 frames (FrameBurst, then FrameRate a second),
// whatever the kind: WebSocket pings and pongs, background commands,
// wslogout type 1 without a session, heartbeats and hellos with and
// without a session, unknown commands, bad JSON, oversized frames. The
// bound is on the count the server processed in the time it took, so a
// slow machine only makes it looser. A well-behaved login meanwhile works.
func TestFloodsArePaced(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	const n = 100
	kinds := map[string][]byte{
		"ping":          servertest.RawFrame(servertest.OpPing, []byte("p"), false),
		"pong":          servertest.RawFrame(servertest.OpPong, []byte("p"), false),
		"background":    servertest.RawFrame(servertest.OpBinary, frameJSON("sns.friend_get", 1, nil, nil), false),
		"kick ack":      servertest.RawFrame(servertest.OpBinary, frameJSON(wire.CmdLogout, 1, nil, map[string]any{"wslogout_type": 1}), false),
		"heartbeat":     servertest.RawFrame(servertest.OpBinary, frameJSON(wire.CmdHeartbeat, 1, nil, nil), false),
		"hello":         servertest.RawFrame(servertest.OpBinary, frameJSON(wire.CmdHello, 1, nil, nil), false),
		"unknown":       servertest.RawFrame(servertest.OpBinary, frameJSON("no.such", 1, nil, nil), false),
		"bad json":      servertest.RawFrame(servertest.OpBinary, []byte(`{"head":`), false),
		"logged-in hb":  nil, // heartbeats of a logged-in socket
		"logged-in bg":  nil,
		"fragmented hb": append(servertest.RawFrame(servertest.OpBinary, []byte(`{"head":{"servcmd":"heartbeat.alive",`), true), servertest.RawFrame(servertest.OpCont, []byte(`"seq":1},"body":{}}`), false)...),
		"failed login":  servertest.RawFrame(servertest.OpBinary, loginFrame("mallory", "eJyrVkrOzEvMS8ksSg", 1), false),
		"12 KB in 64 fragments": func() []byte {
			msg := []byte(`{"head":{"servcmd":"heartbeat.alive","seq":1},"body":{"p":"` + strings.Repeat("x", 12*1024-80) + `"}}`)
			var b []byte
			for i := 0; i < len(msg); i += 192 {
				op := byte(servertest.OpCont)
				if i == 0 {
					op = servertest.OpBinary
				}
				b = append(b, servertest.RawFrame(op, msg[i:min(i+192, len(msg))], i+192 < len(msg))...)
			}
			return b
		}(),
		// A message whose fragments are empty, 6 bytes each on the wire:
		// gorilla parses them inside one Read, so only their bytes can
		// pay for them (about 1.5 tokens for the 1,000 here).
		"1,000 empty fragments": func() []byte {
			b := servertest.RawFrame(servertest.OpBinary, frameJSON(wire.CmdHeartbeat, 1, nil, nil), true)
			for i := range 1000 {
				b = append(b, servertest.RawFrame(servertest.OpCont, nil, i < 999)...)
			}
			return b
		}(),
	}
	// The same through an upgrade that net/http serves (an absolute-form
	// request line is left to it): its socket reads through readConn.
	kinds["1,000 empty fragments via net/http"] = kinds["1,000 empty fragments"]
	var wg sync.WaitGroup
	for name, flood := range kinds {
		path := "/binfo"
		if strings.HasSuffix(name, "via net/http") {
			path = "http://" + h.Addr + path
		}
		c := h.dial(t, path, "")
		if strings.HasPrefix(name, "logged-in") {
			u := strings.ReplaceAll(name, " ", "-")
			c.Send(t, servertest.RawFrame(servertest.OpBinary, loginFrame(u, h.sig(u), 1), false))
			if code, raw := c.Reply(t); code != 0 {
				t.Fatalf("login: %s", raw)
			}
			cmd := wire.CmdHeartbeat
			if name == "logged-in bg" {
				cmd = "recentcontact.page_get"
			}
			flood = servertest.RawFrame(servertest.OpBinary, frameJSON(cmd, 1, nil, nil), false)
		}
		count, cost := n, 1
		switch name {
		case "failed login":
			count, cost = 10, server.FailedLoginCost
		case "12 KB in 64 fragments":
			count, cost = 30, 2 // 1 + 12,800 bytes read (64 heads): 4 tokens; count 2 for slack
		case "1,000 empty fragments", "1,000 empty fragments via net/http":
			count, cost = 30, 2 // 1 + 6,060 bytes: 2.5 tokens
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			floodThenMark(t, c, flood, count)
			e := time.Since(start)
			// The login spent a token before start: count it as processed.
			if allowed := server.FrameBurst + server.FrameRate*e.Seconds() + 1; float64(count*cost+1) > allowed {
				t.Errorf("%s: %d frames (%d tokens) processed in %v; the socket's pacing allows %.0f tokens", name, count+1, count*cost+1, e, allowed)
			}
		}()
	}
	good := h.dial(t, "/binfo", "")
	good.Send(t, servertest.RawFrame(servertest.OpBinary, loginFrame("good", h.sig("good"), 1), false))
	if code, raw := good.Reply(t); code != 0 {
		t.Errorf("a well-behaved login during the floods: %s", raw)
	}
	wg.Wait()
}

// A logged-in user's frames are paced over all the user's sockets: six
// sockets of one user (each within its own socket burst) get no more than
// the user's bucket through.
func TestUserFloodPaced(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t, servertest.WebInstances(6))
	const socks, n = 6, 60
	var cs []*servertest.RawWS
	for range socks {
		c := h.dial(t, "/binfo", "")
		c.Send(t, servertest.RawFrame(servertest.OpBinary, loginFrame("flooder", h.sig("flooder"), 1), false))
		if code, raw := c.Reply(t); code != 0 {
			t.Fatalf("login: %s", raw)
		}
		cs = append(cs, c)
	}
	hb := servertest.RawFrame(servertest.OpBinary, frameJSON(wire.CmdHeartbeat, 1, nil, nil), false)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			floodThenMark(t, c, hb, n)
		}()
	}
	wg.Wait()
	e := time.Since(start)
	processed := socks * (n + 1)
	if allowed := server.UserFrameBurst + server.UserFrameRate*e.Seconds() + socks; float64(processed) > allowed {
		t.Errorf("%d frames of one user processed in %v; the user's pacing allows %.0f", processed, e, allowed)
	}
}

// A text frame on /info that is not UTF-8 fails the socket with close
// 1007 (RFC 6455 8.1) and no answer; a binary one on /binfo is only bytes,
// and UTF-8 text frames are answered.
func TestTextFrameNotUTF8(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	// The raw byte: encoding/json would write \ufffd for it.
	bad := bytes.Replace(loginFrame("alXice", h.sig("al\uFFFDice"), 1), []byte(`"alXice"`), []byte("\"al\xffice\""), 1)

	c := h.dial(t, "/info", "")
	c.Send(t, servertest.RawFrame(servertest.OpText, bad, false))
	op, p, err := c.Next(5 * time.Second)
	if err != nil || op != servertest.OpClose || len(p) < 2 || binary.BigEndian.Uint16(p) != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("invalid UTF-8 text frame: opcode %d %q %v, want close 1007", op, p, err)
	}

	c = h.dial(t, "/info", "")
	c.Send(t, servertest.RawFrame(servertest.OpText, loginFrame("alice", h.sig("alice"), 1), false))
	if code, raw := c.Reply(t); code != 0 {
		t.Fatalf("a UTF-8 text login: %s", raw)
	}
	// Valid text over 12 KB whose 12 KB cut falls inside a character: the
	// 80002 of an oversized frame, the socket kept (from review).
	big := append([]byte(`{"head":{"servcmd":"x","seq":2},"body":{"pad":"`), bytes.Repeat([]byte("é"), 7000)...)
	big = append(big, `"}}`...)
	if utf8.Valid(big[:wire.MaxFrameSize+1]) { // what the server reads of it
		big = append([]byte(" "), big...) // shift the cut into a character
	}
	c.Send(t, servertest.RawFrame(servertest.OpText, big, false))
	if code, raw := c.Reply(t); code != wire.CodeTooLarge {
		t.Fatalf("valid 14 KB text: %.200s, want 80002", raw)
	}
	c = h.dial(t, "/binfo", "")
	c.Send(t, servertest.RawFrame(servertest.OpBinary, bad, false))
	if _, raw := c.Reply(t); len(raw) == 0 {
		t.Fatal("a binary frame with the same bytes was not answered")
	}
}
