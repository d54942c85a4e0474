package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatctl/pkg/server/servertest"
	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// client is a bare protocol client speaking the SDK's frames.
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	mt     int // frame type the client sends and expects
	seq    atomic.Uint64
	pushes []reply
	// Credentials after login.
	a2, tiny string
	inst     uint64
}

type reply struct {
	Head    map[string]any
	Body    map[string]any
	Raw     []byte
	MsgType int
}

func (r reply) code() int {
	if v, ok := r.Body["ErrorCode"].(float64); ok {
		return int(v)
	}
	return 0
}

func (r reply) str(k string) string { s, _ := r.Body[k].(string); return s }

func (r reply) kickType() int {
	var p wire.KickPush
	b, _ := json.Marshal(r.Body)
	json.Unmarshal(b, &p)
	return p.KickType()
}

// dial opens path ("/binfo" or "/info", with an optional query) on ts.
func dial(t *testing.T, ts *servertest.Server, path string) *client {
	t.Helper()
	c, _, err := dialHeader(t, ts, path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

func dialHeader(t *testing.T, ts *servertest.Server, path string, h http.Header) (*client, *http.Response, error) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(ts.WSURL+path, h)
	if err != nil {
		return nil, resp, err
	}
	mt := websocket.BinaryMessage
	if strings.HasPrefix(path, "/info") {
		mt = websocket.TextMessage
	}
	c := &client{t: t, ws: ws, mt: mt}
	c.seq.Store(17057997)
	t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

// sendRaw sends one message of the client's frame type.
func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(c.mt, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends a request and returns its seq.
func (c *client) send(servcmd string, head map[string]any, body any) uint64 {
	c.t.Helper()
	seq := c.seq.Add(1)
	h := map[string]any{"ver": "v4", "platform": 7, "servcmd": servcmd, "seq": seq,
		"sdkappid": servertest.SDKAppID, "reqtime": time.Now().Unix()}
	if c.a2 != "" {
		h["a2"], h["tinyid"], h["status_instid"] = c.a2, c.tiny, c.inst
	}
	for k, v := range head {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	if body == nil {
		body = map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"head": h, "body": body})
	c.sendRaw(b)
	return seq
}

// read returns the next frame, failing the test after 5 s.
func (c *client) read() reply {
	c.t.Helper()
	r, err := c.tryRead(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return r
}

func (c *client) tryRead(d time.Duration) (reply, error) {
	c.ws.SetReadDeadline(time.Now().Add(d))
	mt, b, err := c.ws.ReadMessage()
	if err != nil {
		return reply{}, err
	}
	var f struct {
		Head map[string]any `json:"head"`
		Body map[string]any `json:"body"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("server sent bad JSON %q: %v", b, err)
	}
	return reply{Head: f.Head, Body: f.Body, Raw: b, MsgType: mt}, nil
}

// await reads until the reply to (servcmd, seq), keeping pushes aside.
func (c *client) await(servcmd string, seq uint64) reply {
	c.t.Helper()
	for {
		r := c.read()
		if r.Head["servcmd"] == servcmd && r.Head["seq"] == float64(seq) {
			if r.MsgType != c.mt {
				c.t.Fatalf("reply frame type %d, want %d", r.MsgType, c.mt)
			}
			return r
		}
		c.pushes = append(c.pushes, r)
	}
}

func (c *client) call(servcmd string, head map[string]any, body any) reply {
	c.t.Helper()
	return c.await(servcmd, c.send(servcmd, head, body))
}

// login logs in with identifier + usersig and keeps the credentials.
func (c *client) login(user, usersig string) reply {
	c.t.Helper()
	r := c.call(wire.CmdLogin, map[string]any{"identifier": user, "usersig": usersig, "a2": nil, "tinyid": nil, "status_instid": 0},
		map[string]any{"State": "Online", "is_web_uniapp": 0, "InstType": 0, "CustomInfo": ""})
	if r.code() == 0 {
		c.keep(r)
		// Like the SDK's first requests after its login (which carry the
		// new a2): the server holds kick pushes until the client has taken
		// its login reply.
		c.call(wire.CmdHeartbeat, nil, nil)
	}
	return r
}

// keep takes the credentials of r, a successful wslogin reply.
func (c *client) keep(r reply) {
	c.a2, c.tiny = r.str("A2Key"), r.str("TinyId")
	c.inst = uint64(r.Body["InstId"].(float64))
}

// reconnect is a new socket (on /binfo) with c's session: an SDK's
// reconnect, or a second watch of the same profile. Its relogin is the
// session's a2 re-login.
func (c *client) reconnect(t *testing.T, ts *servertest.Server) *client {
	t.Helper()
	n := dial(t, ts, "/binfo")
	n.a2, n.tiny, n.inst = c.a2, c.tiny, c.inst
	return n
}

// mustLogin logs in and fails the test unless it worked.
func (c *client) mustLogin(user, usersig string) reply {
	c.t.Helper()
	r := c.login(user, usersig)
	if r.code() != 0 {
		c.t.Fatalf("login %s: %s", user, r.Raw)
	}
	return r
}

// relogin sends the a2 form of wslogin with the kept credentials.
func (c *client) relogin() reply {
	c.t.Helper()
	return c.call(wire.CmdLogin, nil, map[string]any{"State": "Online", "is_web_uniapp": 0, "InstType": 0, "CustomInfo": ""})
}

// refusedRevoked sends the a2 re-login of c's session and fails the test,
// saying what it was, unless it is refused as revoked for reason (70002).
func (c *client) refusedRevoked(reason, what string) {
	c.t.Helper()
	if r := c.relogin(); r.code() != wire.CodeA2Rejected || r.str("ErrorInfo") != "instance revoked: "+reason {
		c.t.Fatalf("%s: %s", what, r.Raw)
	}
}

// awaitPush reads until a push with servcmd arrives (or one was kept).
func (c *client) awaitPush(servcmd string) reply {
	c.t.Helper()
	for i, p := range c.pushes {
		if p.Head["servcmd"] == servcmd {
			c.pushes = append(c.pushes[:i], c.pushes[i+1:]...)
			return p
		}
	}
	for {
		r := c.read()
		if r.Head["servcmd"] == servcmd {
			return r
		}
		c.pushes = append(c.pushes, r)
	}
}

// closed reports the close error once the server ends the socket.
func (c *client) closed() error {
	c.t.Helper()
	for {
		if _, err := c.tryRead(5 * time.Second); err != nil {
			return err
		}
	}
}

// fakeClock is a settable clock for servertest.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var loginBody = map[string]any{"State": "Online", "is_web_uniapp": 0, "InstType": 0, "CustomInfo": ""}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// dialSlowReader opens a /binfo socket with a small receive buffer (64 KiB)
// for a client that will not read: the server's writes to it fill the
// buffers and then block. Closed at the test's end.
func dialSlowReader(t *testing.T, ts *servertest.Server) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}}
	slow, _, err := d.Dial(ts.WSURL+"/binfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	return slow
}
