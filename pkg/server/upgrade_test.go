package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"
)

const upgradeHead = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

// loginRaw logs user in on an upgraded raw connection and checks the reply.
func loginRaw(t *testing.T, ts *servertest.Server, c *rawConn, user string) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"head": map[string]any{"servcmd": wire.CmdLogin, "seq": 1,
		"sdkappid": servertest.SDKAppID, "identifier": user, "usersig": ts.Sig(user, time.Hour)}, "body": loginBody})
	if err := c.send(req); err != nil {
		t.Fatal(err)
	}
	r, err := c.recv()
	if err != nil || !strings.Contains(string(r), `"ErrorCode":0`) || !strings.Contains(string(r), `"A2Key"`) {
		t.Fatalf("login of %s: %s %v", user, r, err)
	}
}

// The first request of a connection decides who serves it: a WebSocket
// upgrade is served outside net/http, anything else by net/http, which
// still upgrades a later request of a kept-alive connection.
func TestUpgradeAfterHTTPRequestOnSameConn(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	nc, err := net.Dial("tcp", ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(nc)
	fmt.Fprintf(nc, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", ts.Addr)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	fmt.Fprintf(nc, "GET //binfo?platform=7 HTTP/1.1\r\nHost: %s\r\n%s\r\n", ts.Addr, upgradeHead)
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after healthz: %v %v", resp, err)
	}
	if br.Buffered() != 0 {
		t.Fatalf("%d bytes after the 101", br.Buffered())
	}
	loginRaw(t, ts, &rawConn{nc}, "keepalive")
}

// A WebSocket upgrade that is a connection's first request: the 101, a
// login, and the error answers of the path served outside net/http.
func TestFirstRequestUpgrade(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t, servertest.AllowedOrigins("http://localhost:5173"))
	c, err := rawDial(ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	loginRaw(t, ts, c, "first")
	c.Close()

	answer := func(req string) (*http.Response, string) {
		t.Helper()
		nc, err := net.Dial("tcp", ts.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(nc, req)
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	// A foreign origin: 403 with gorilla's reason, and the connection closed.
	resp, body := answer("GET /binfo HTTP/1.1\r\nHost: " + ts.Addr + "\r\nOrigin: http://evil.example\r\n" + upgradeHead + "\r\n")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "origin not allowed") || !resp.Close {
		t.Errorf("evil origin: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	// No Host, and an origin with none: not the same host (403).
	resp, _ = answer("GET /binfo HTTP/1.1\r\nOrigin: null\r\n" + upgradeHead + "\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("no Host, Origin null: %d", resp.StatusCode)
	}
	// Not an upgrade at all: 400.
	resp, _ = answer("GET /info HTTP/1.1\r\nHost: " + ts.Addr + "\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET /info: %d", resp.StatusCode)
	}
	// A malformed head: 400.
	resp, _ = answer("GET /binfo HTTP/1.1\r\nno colon here\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed head: %d", resp.StatusCode)
	}
	// A long request line that does not fit the sniffing buffer goes to
	// net/http, which serves it.
	resp, _ = answer("GET /healthz?pad=" + strings.Repeat("x", 3000) + " HTTP/1.1\r\nHost: " + ts.Addr + "\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("long healthz: %d", resp.StatusCode)
	}
}

// Shutdown closes connections still sending their first request.
func TestShutdownClosesHalfOpenRequests(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	var conns []net.Conn
	for _, first := range []string{"", "GET /binfo HTTP/1.1\r\n", "GET /heal"} {
		nc, err := net.Dial("tcp", ts.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		io.WriteString(nc, first)
		conns = append(conns, nc)
	}
	time.Sleep(100 * time.Millisecond) // let the server read what was sent
	ts.Close()
	for i, nc := range conns {
		// Well before the 10 s header timeout.
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil || errorsAs(err, new(net.Error)) && err.(net.Error).Timeout() {
			t.Errorf("connection %d still open after Shutdown: %v", i, err)
		}
	}
}
