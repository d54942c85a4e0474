package server_test

import (
	"bufio"
	"fmt"
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

// The adversarial pass over what a WebSocket client controls (docs/RELIABILITY.md,
// "Attacks"): each test names the attack and asserts the documented answer.

// sdkappid in the URL and in the head: the head's wins; the URL's is only
// a fallback when the head has none; a bogus or overflowing value is 70020
// or a bad frame, never another app.
func TestAppIDURLVersusHead(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	app := servertest.SDKAppID
	for _, tc := range []struct {
		name, query string
		head        any // head.sdkappid; nil: absent
		code        int
	}{
		{"head right, URL bogus", "?sdkappid=999", app, 0},
		{"head absent, URL right", fmt.Sprintf("?sdkappid=%d", app), nil, 0},
		{"head absent, URL overflowing", "?sdkappid=18446744073709551616", nil, wire.CodeAppNotFound},
		{"head absent, URL negative", "?sdkappid=-1", nil, wire.CodeAppNotFound},
		{"head bogus, URL right", fmt.Sprintf("?sdkappid=%d", app), 999, wire.CodeAppNotFound},
		{"head max uint64", "", uint64(1<<64 - 1), wire.CodeAppNotFound},
		{"head negative", "", -1, wire.CodeBadJSON},
		{"head a string", "", fmt.Sprint(app), wire.CodeBadJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts, "/binfo"+tc.query)
			user := "u" + fmt.Sprint(len(tc.name))
			r := c.call(wire.CmdLogin, map[string]any{"sdkappid": tc.head, "identifier": user, "usersig": ts.Sig(user, time.Hour)}, loginBody)
			if r.code() != tc.code {
				t.Fatalf("got %s, want %d", r.Raw, tc.code)
			}
		})
	}
}

// Integers of the head at and past their ranges: seq echoes any uint64
// (and integral floats), and anything else is a bad frame (60003) that
// still gets its one reply; a platform out of range logs in as Web; a
// status_instid that is not the A2Key's is ignored (the A2Key names the
// instance).
func TestHeadIntegerRanges(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	c := h.dial(t, "/binfo", "")
	for _, tc := range []struct {
		seq  string
		code int
		echo string
	}{
		{"18446744073709551615", 0, `"seq":18446744073709551615`},
		{`"42"`, 0, `"seq":42`},
		{"1e3", 0, `"seq":1000`},
		{"18446744073709551616", wire.CodeBadJSON, ""},
		{"1e30", wire.CodeBadJSON, ""},
		{"-1", wire.CodeBadJSON, ""},
		{"1.5", wire.CodeBadJSON, ""},
	} {
		c.Send(t, servertest.RawFrame(servertest.OpBinary, []byte(`{"head":{"servcmd":"heartbeat.alive","seq":`+tc.seq+`},"body":{}}`), false))
		code, raw := c.Reply(t)
		if code != tc.code || !strings.Contains(string(raw), tc.echo) {
			t.Errorf("seq %s: %s, want code %d with %s", tc.seq, raw, tc.code, tc.echo)
		}
	}

	ts := h.Server
	for _, p := range []any{1 << 40, -1, 0, 999} {
		x := dial(t, ts, "/binfo")
		user := fmt.Sprintf("p%v", p)
		r := x.call(wire.CmdLogin, map[string]any{"platform": p, "identifier": user, "usersig": ts.Sig(user, time.Hour)}, loginBody)
		if r.code() != 0 {
			t.Fatalf("platform %v: %s", p, r.Raw)
		}
	}
	a := dial(t, ts, "/binfo")
	a.mustLogin("inst", ts.Sig("inst", time.Hour))
	b := dial(t, ts, "/binfo")
	b.a2, b.tiny, b.inst = a.a2, a.tiny, a.inst+12345
	r := b.relogin()
	if r.code() != 0 || uint64(r.Body["InstId"].(float64)) != a.inst {
		t.Fatalf("a2 re-login with another status_instid: %s (instance %d)", r.Raw, a.inst)
	}
}

// Fields a re-login may change: the a2 of one user with the identifier
// and UserSig of another logs in the UserSig's user (a UserSig wins); a
// second login on one socket as another user replaces the first one's
// instance, which is then revoked, not left online without a socket.
func TestReloginChangesUser(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	c := dial(t, ts, "/binfo")
	c.mustLogin("alice", ts.Sig("alice", time.Hour))
	aliceA2, aliceTiny, aliceInst := c.a2, c.tiny, c.inst
	r := c.call(wire.CmdLogin, map[string]any{"identifier": "bob", "usersig": ts.Sig("bob", time.Hour)}, loginBody)
	if r.code() != 0 || r.str("TinyId") == aliceTiny {
		t.Fatalf("bob's UserSig with alice's a2 in the head: %s", r.Raw)
	}
	x := dial(t, ts, "/binfo")
	x.a2, x.tiny, x.inst = aliceA2, aliceTiny, aliceInst
	if r := x.relogin(); r.code() != wire.CodeA2Rejected {
		t.Fatalf("alice's a2 after the socket logged in as bob: %s, want %d", r.Raw, wire.CodeA2Rejected)
	}
}

// Compression is not negotiated (the SDK does not ask for it, and a
// compressed frame is a decompression bomb on a 12 KB budget): an offer is
// answered without the extension, and a frame with RSV1 set anyway closes
// the socket (1002).
func TestCompressionRefused(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	c, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /binfo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", h.Addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("server negotiated %q", ext)
	}
	ws := &servertest.RawWS{Conn: c, R: br}
	f := servertest.RawFrame(servertest.OpBinary, []byte(`{"head":{"servcmd":"heartbeat.alive","seq":1},"body":{}}`), false)
	f[0] |= 0x40 // RSV1: "compressed"
	ws.Send(t, f)
	for {
		op, p, err := ws.Next(10 * time.Second)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if op == servertest.OpClose {
			if len(p) < 2 || int(p[0])<<8|int(p[1]) != websocket.CloseProtocolError {
				t.Fatalf("close frame %q, want 1002", p)
			}
			return
		}
	}
}

// Fragmentation: a 12 KB frame sent as 12,288 one-byte fragments, with
// pings between them, is one frame with one reply (the pings answered,
// paced); it costs its bytes' worth of tokens, not one. A fragmented
// message past the hard read limit closes the socket with 1009 however it
// is cut.
func TestFragmentedFrames(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	c := h.dial(t, "/binfo", "")
	msg := []byte(`{"head":{"servcmd":"heartbeat.alive","seq":7},"body":{"pad":"` + strings.Repeat("x", wire.MaxFrameSize-80) + `"}}`)
	var all []byte
	for i := range msg {
		op := byte(servertest.OpCont)
		if i == 0 {
			op = servertest.OpBinary
		}
		all = append(all, servertest.RawFrame(op, msg[i:i+1], i < len(msg)-1)...)
		if i%1000 == 0 {
			all = append(all, servertest.RawFrame(servertest.OpPing, []byte("p"), false)...)
		}
	}
	go c.Write(all)
	pongs := 0
	for {
		op, p, err := c.Next(time.Minute)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if op == servertest.OpPong {
			pongs++
			continue
		}
		if op != servertest.OpBinary || !strings.Contains(string(p), `"seq":7`) || !strings.Contains(string(p), `"ErrorCode":0`) {
			t.Fatalf("reply %.200s", p)
		}
		break
	}
	if pongs != 13 {
		t.Errorf("%d pongs before the reply, want 13", pongs)
	}

	big := h.dial(t, "/binfo", "")
	chunk := make([]byte, 64<<10)
	var b []byte
	for i := range server.HardReadLimit/len(chunk) + 2 {
		op := byte(servertest.OpCont)
		if i == 0 {
			op = servertest.OpBinary
		}
		b = append(b, servertest.RawFrame(op, chunk, true)...)
	}
	go big.Write(b)
	for {
		op, p, err := big.Next(30 * time.Second)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if op == servertest.OpClose {
			if len(p) < 2 || int(p[0])<<8|int(p[1]) != websocket.CloseMessageTooBig {
				t.Fatalf("close frame %q, want 1009", p)
			}
			return
		}
	}
}

// Upgrade headers: a wrong Sec-WebSocket-Version, a missing key or a
// control character in a header is 400; a 20 KB hostile Origin is 403 and
// logged cut short; offered subprotocols
// are not selected; a 20 KB query string (under the head cap) upgrades
// and its parameters are ignored when they do not parse.
func TestUpgradeHeaderAttacks(t *testing.T) {
	leaktest.Check(t)
	h := startHardened(t)
	try := func(path, extra string) (int, http.Header) {
		t.Helper()
		c, err := net.Dial("tcp", h.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%s\r\n", path, h.Addr, extra)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header
	}
	key := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if code, _ := try("/binfo", key+"Sec-WebSocket-Version: 8\r\n"); code != http.StatusBadRequest {
		t.Errorf("version 8: HTTP %d", code)
	}
	if code, _ := try("/binfo", "Sec-WebSocket-Version: 13\r\n"); code != http.StatusBadRequest {
		t.Errorf("no key: HTTP %d", code)
	}
	evil := "http://evil.example/" + strings.Repeat("%1b[31m", 3000)
	if code, _ := try("/binfo", key+"Sec-WebSocket-Version: 13\r\nOrigin: "+evil+"\r\n"); code != http.StatusForbidden {
		t.Errorf("20 KB hostile origin: HTTP %d", code)
	}
	if code, _ := try("/binfo", key+"Sec-WebSocket-Version: 13\r\nOrigin: http://a\x1b[31m.example\r\n"); code != http.StatusBadRequest {
		t.Errorf("origin with a control character: HTTP %d", code)
	}
	if code, hd := try("/binfo", key+"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, "+strings.Repeat("p", 2000)+"\r\n"); code != http.StatusSwitchingProtocols || hd.Get("Sec-WebSocket-Protocol") != "" {
		t.Errorf("subprotocols offered: HTTP %d, selected %q", code, hd.Get("Sec-WebSocket-Protocol"))
	}
	q := "/binfo?platform=99999999999999999999&sdkappid=x&pad=" + strings.Repeat("q", 20000)
	if code, _ := try(q, key+"Sec-WebSocket-Version: 13\r\n"); code != http.StatusSwitchingProtocols {
		t.Errorf("20 KB query: HTTP %d", code)
	}
	if _, _, longest, _ := h.log.stats(); longest > 1024 {
		t.Errorf("a log line of %d bytes", longest)
	}
}
