package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"chatctl/pkg/wire"
)

// The fake server below is a scripted peer for the client's own edge cases
// (reply matching, frame heads, each kick path, event order). The real
// server is exercised in e2e/.

type fakeServer struct {
	t       *testing.T
	srv     *httptest.Server
	handle  func(fc *fakeConn, f wire.Frame) // nil: defaultHandle
	conns   chan *fakeConn
	mu      sync.Mutex
	open    []*fakeConn
	frameTy []int
	refuse  atomic.Bool // answer upgrades with 503 (server "down")
}

type fakeConn struct {
	ws     *websocket.Conn
	mu     sync.Mutex
	frames chan wire.Frame // every frame received, in order
	raw    chan []byte
	path   string
	query  string
}

func newFake(t *testing.T, handle func(fc *fakeConn, f wire.Frame)) *fakeServer {
	t.Helper()
	fs := &fakeServer{t: t, handle: handle, conns: make(chan *fakeConn, 16)}
	up := websocket.Upgrader{}
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fs.refuse.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		fc := &fakeConn{ws: ws, frames: make(chan wire.Frame, 256), raw: make(chan []byte, 256),
			path: r.URL.Path, query: r.URL.RawQuery}
		fs.mu.Lock()
		fs.open = append(fs.open, fc)
		fs.mu.Unlock()
		fs.conns <- fc
		defer ws.Close()
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			fs.mu.Lock()
			fs.frameTy = append(fs.frameTy, typ)
			fs.mu.Unlock()
			var f wire.Frame
			if err := json.Unmarshal(data, &f); err != nil {
				t.Errorf("fake: bad frame %q: %v", data, err)
				return
			}
			select {
			case fc.raw <- data:
			default:
			}
			select {
			case fc.frames <- f:
			default:
			}
			h := fs.handle
			if h == nil {
				h = defaultHandle
			}
			h(fc, f)
		}
	}))
	t.Cleanup(fs.close)
	return fs
}

func (fs *fakeServer) close() {
	fs.mu.Lock()
	for _, fc := range fs.open {
		fc.ws.Close()
	}
	fs.mu.Unlock()
	fs.srv.Close()
}

// dropAll closes every open socket (a "network loss").
func (fs *fakeServer) dropAll() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, fc := range fs.open {
		fc.ws.Close()
	}
	fs.open = nil
}

func (fs *fakeServer) cfg() Config {
	return Config{
		Endpoint: "ws" + strings.TrimPrefix(fs.srv.URL, "http"), SDKAppID: 1400000001,
		Tick: 10 * time.Millisecond, HeartbeatIdle: time.Hour, HeartbeatTimeout: 2 * time.Second,
		RequestTimeout: 2 * time.Second, LoginTimeout: 2 * time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	}
}

func (fc *fakeConn) send(cmd string, seq any, body string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	s, _ := json.Marshal(seq)
	_ = fc.ws.WriteMessage(websocket.BinaryMessage,
		fmt.Appendf(nil, `{"head":{"servcmd":%q,"seq":%s},"body":%s}`, cmd, s, body))
}

func (fc *fakeConn) reply(f wire.Frame, body string) {
	fc.send(f.Head.ServCmd, uint64(f.Head.Seq), body)
}

func (fc *fakeConn) kick(kt int) {
	b, _ := json.Marshal(wire.NewKickPush(kt, 99))
	fc.send(wire.CmdForceOffline, 0, string(b))
}

const okLogin = `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","A2Key":"a2-x","TinyId":"144115000000000001","InstId":1001,"HelloInterval":3,"TimeStamp":1795626047}`

func defaultHandle(fc *fakeConn, f wire.Frame) {
	switch f.Head.ServCmd {
	case wire.CmdLogin:
		fc.reply(f, okLogin)
	default:
		fc.reply(f, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
	}
}

// next returns the next frame the fake received on fc with servcmd cmd.
func (fc *fakeConn) next(t *testing.T, cmd string) wire.Frame {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-fc.frames:
			if f.Head.ServCmd == cmd {
				return f
			}
		case <-timeout:
			t.Fatalf("fake: no %s frame", cmd)
		}
	}
}

func (fs *fakeServer) nextConn(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case fc := <-fs.conns:
		return fc
	case <-time.After(5 * time.Second):
		t.Fatal("fake: no connection")
	}
	return nil
}

// checkLeaks fails the test if goroutines started during it are still
// running shortly after it (cleanups run in reverse: call it first).
func checkLeaks(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: %d running, %d before\n%s", runtime.NumGoroutine(), base, buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
