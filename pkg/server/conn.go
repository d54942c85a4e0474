package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

const (
	// sendQueue is how many outbound frames may wait for a slow client;
	// past it the socket is dropped rather than blocking anyone.
	sendQueue = 32
	// HardReadLimit is the largest message read at all: a frame between
	// wire.MaxFrameSize and this is discarded and answered 80002 with the
	// socket kept; a larger one closes the socket (1009).
	HardReadLimit = 256 * 1024
)

// conn is one WebSocket. One goroutine at a time reads (read); frames go
// out through a queue that one writer at a time drains (writeOut, writer.go): the
// goroutine that handled a client's frame writes its reply itself, and a
// push from elsewhere starts a writer goroutine that ends once the queue
// is empty. An idle socket so holds one goroutine, its reader, and no
// queue: a second goroutine and its stack per socket were the largest
// part of an idle session's memory (docs/BENCHMARKS.md, "What an idle
// session holds").
type conn struct {
	s        *Server
	ws       *websocket.Conn
	msgType  int           // BinaryMessage on /binfo, TextMessage on /info
	platform wire.Platform // from the URL query, 0 if none
	urlApp   uint64        // sdkappid of the URL query, 0 if none
	log      *slog.Logger

	quit      chan struct{} // closed by shutdown
	readDone  chan struct{} // closed when the reader has ended
	writeDone chan struct{} // closed when writing has ended for good
	quitOnce  sync.Once

	// The outbound queue. Guarded by wmu.
	wmu     sync.Mutex
	out     [][]byte      // frames not yet written, at most sendQueue; nil when empty
	writing bool          // a writer holds the socket's write side
	wended  bool          // writeDone is closed: frames are dropped
	room    chan struct{} // closed when the writer takes a frame; made by a reply waiting for room

	// Written by the hub's methods only, under its lock (hub.go).
	held           *entry // the instance this socket holds
	pendingExpired bool   // answer the next heartbeat/wshello with 70001
	// loggingIn is not the hub's: onLogin sets it while a wslogin of this
	// socket is handled, so that holding no instance does not make it idle
	// (hub.closeIdle). It sits in pendingExpired's padding: after awaitA2
	// it took conn from 208 to 216 bytes, the next allocation class (224).
	loggingIn atomic.Bool

	// Frame pacing (pace.go): the socket's bucket, used by the reader
	// only, and the user it last logged in as, whose bucket it also draws on.
	bucket   bucket
	paceUser atomic.Pointer[userKey]
	source   *connSource // the limited source whose frame bucket it draws on, or nil
	// loginRefused: the frame just handled was a refused wslogin. Written
	// by the frame's handler goroutine, read by the reader after it.
	loginRefused bool
	// awaitA2: a hold of kick pushes waits for a frame with this socket's
	// new A2Key (kickpush.go), so frameIn must look; false, it need not.
	awaitA2 atomic.Bool
}

// serveWS is a WebSocket request that came through net/http. The reader
// runs in goroutines of its own and the HTTP handler returns, so that
// net/http frees its per-connection state (buffers, a deep stack) while the
// socket lives on.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, msgType int) {
	if c := s.upgrade(&s.upgrader, w, r, msgType); c != nil {
		c.start()
	}
}

// upgrade upgrades r with up and registers the socket; the caller starts
// its reader (start). nil when it was refused (and answered).
func (s *Server) upgrade(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request, msgType int) *conn {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return nil
	}
	q := r.URL.Query()
	var plat wire.Platform
	if p, ok := wire.ParsePlatform(q.Get("platform")); ok {
		plat = p
	}
	urlApp, _ := strconv.ParseUint(q.Get("sdkappid"), 10, 64)
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		s.unauthLog(s.log, slog.LevelDebug, "upgrade refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return nil // the upgrader has answered
	}
	c := &conn{
		s:         s,
		ws:        ws,
		msgType:   msgType,
		platform:  plat,
		urlApp:    urlApp,
		log:       s.log.With("remote", r.RemoteAddr),
		source:    sourceOf(ws.NetConn()),
		quit:      make(chan struct{}),
		readDone:  make(chan struct{}),
		writeDone: make(chan struct{}),
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
			time.Now().Add(time.Second))
		ws.Close()
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if w, ok := ws.NetConn().(interface{ paceReads(*conn) }); ok {
		w.paceReads(c) // before the reader starts
	}
	c.log.Debug("socket open", "path", r.URL.Path)
	return c
}

// start starts the socket's reader (read).
func (c *conn) start() {
	c.ws.SetReadLimit(HardReadLimit)
	// Control frames are paced like the others (pace.go): gorilla handles
	// them inside NextReader, on the reader, so a flood of pings would
	// otherwise be answered as fast as it comes.
	c.ws.SetPingHandler(func(data string) error {
		if !c.pace(1) {
			return errSocketEnding
		}
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.s.writeTimeout))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	c.ws.SetPongHandler(func(string) error {
		if !c.pace(1) {
			return errSocketEnding
		}
		return nil
	})
	go c.read()
}

// read is the socket's reader. An idle socket waits on a goroutine that
// has run nothing but waits for frames and hand-offs to a frame worker,
// so that its stack is the runtime's smallest, 2 KiB: once a goroutine's
// stack has grown (the upgrade, a frame answered on it), it keeps 4 KiB or
// more for as long as it waits, since the runtime halves a stack at a GC
// only when less than a quarter of it is in use, which a wait in gorilla's
// frame read never is (docs/BENCHMARKS.md, "What an idle session holds").
// So after a frame answered on this goroutine, a new one waits for the
// next and this one ends, its stack going back to the runtime. One
// goroutine reads at a time: the next starts once this one is done with
// the socket's read side.
func (c *conn) read() {
	for {
		c.ws.SetReadDeadline(time.Now().Add(c.s.hbTimeout))
		mt, r, err := c.ws.NextReader()
		if err != nil {
			break
		}
		more, grown := c.frame(mt, r)
		if !more {
			break
		}
		if grown {
			go c.read()
			return
		}
	}
	c.end()
}

// end is the reader's last: it waits for a writer still writing and takes
// the instance off the socket.
func (c *conn) end() {
	defer c.s.wg.Done()
	close(c.readDone)
	c.wmu.Lock()
	if !c.writing {
		c.endWriting()
	} // else the writer ends it, between two frames
	c.wmu.Unlock()
	<-c.writeDone
	c.ws.Close()
	c.s.detach(c)
	c.log.Debug("socket closed")
}

// frame reads the rest of a frame from r, answers it and paces the
// socket. more is false when the socket is to end; grown, when the frame
// was answered on this goroutine, which has grown its stack.
func (c *conn) frame(mt int, r io.Reader) (more, grown bool) {
	data, err := io.ReadAll(io.LimitReader(r, wire.MaxFrameSize+1))
	if err != nil {
		return false, false
	}
	if len(data) > wire.MaxFrameSize {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return false, false // over HardReadLimit: gorilla has sent 1009
		}
		cmd, seq := sniffHead(data)
		c.s.unauthLog(c.log, slog.LevelDebug, "frame too large", "servcmd", cmd)
		c.reply(cmd, seq, failBody(wire.CodeTooLarge, "packet larger than 12 KB"))
		return c.pace(1), true
	}
	if mt == websocket.TextMessage && !utf8.Valid(data) {
		// RFC 6455 8.1: a text message that is not UTF-8 fails the
		// connection, 1007. Decoded, its bad bytes would be U+FFFD and
		// answered as if sent so; the SDK never sends one. (One over 12
		// KB is not decoded, and only its first 12 KB are in hand, which
		// may end inside a character: it gets 80002 above.)
		c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "text frame not UTF-8"),
			time.Now().Add(time.Second))
		return false, false
	}
	c.loginRefused = false
	grown = keepAlive(data)
	if grown {
		// The frame of every socket every HelloInterval: answered
		// here, its path is short. Handing it to a worker and back
		// woke two goroutines per round trip, the largest cost of an
		// idle session after the system calls.
		growStack()
		c.handle(data, true)
	} else {
		// Other frames are handled on a worker while the reader waits:
		// the login path grows a stack to 8 KiB or more, which a worker
		// grows once for many frames, and the reader stays small.
		onWorker(func() { c.handle(data, false) })
	}
	cost := 1.0
	if c.loginRefused {
		cost = failedLoginCost
		// And a new connection's worth of its source's bucket
		// (connlimit.go): an address that keeps failing logins gets
		// fewer new sockets to fail them on.
		if c.source != nil {
			c.s.connLimit.charge(c.source, time.Now(), 1)
		}
	}
	return c.pace(cost), grown
}

// growStack grows the calling goroutine's stack at once to what a
// keep-alive's answer needs (8 KiB: a frame of 5 KiB, plus the runtime's
// guard, past 4). Grown where the answer needs it, deep in the JSON
// decoder, the runtime's copy of the stack walked every frame above
// (BenchmarkHeartbeat's profile: copying stacks 5.7% of its CPU, 2% grown
// here, three frames deep).
//
//go:noinline
func growStack() {
	var pad [5 << 10]byte
	stackSink(pad[:])
}

//go:noinline
func stackSink([]byte) {}

var (
	helloCmd     = []byte(`"servcmd":"` + wire.CmdHello + `"`)
	heartbeatCmd = []byte(`"servcmd":"` + wire.CmdHeartbeat + `"`)
)

// keepAlive reports whether a frame looks like a wshello or a
// heartbeat.alive as the SDK writes them. It only picks the goroutine
// that handles the frame: handle decodes it and goes by what it is.
func keepAlive(data []byte) bool {
	return bytes.Contains(data, helloCmd) || bytes.Contains(data, heartbeatCmd)
}

// errSocketEnding ends a read when the socket is being closed meanwhile.
var errSocketEnding = errors.New("socket ending")

// frameWork hands a frame to an idle frame worker. Workers outlive one
// frame, so that the stack a login grows is grown once per worker, not
// once per frame (copying a stack as it grows was the largest single cost
// of a login in user space); there are as many as frames were in hand at
// once, and each ends after frameWorkerIdle without work.
var frameWork = make(chan func())

const frameWorkerIdle = time.Second

// onWorker runs f on an idle frame worker, or on a new one, and waits for it.
func onWorker(f func()) {
	done := make(chan struct{})
	g := func() {
		defer close(done)
		f()
	}
	select {
	case frameWork <- g:
	default:
		go frameWorker(g)
	}
	<-done
}

func frameWorker(f func()) {
	f()
	t := time.NewTimer(frameWorkerIdle)
	defer t.Stop()
	for {
		select {
		case f := <-frameWork:
			f()
			t.Reset(frameWorkerIdle)
		case <-t.C:
			return
		}
	}
}

// handle answers one frame. onReader: it runs on the reader, as a frame
// that looked like a keep-alive (keepAlive); decoding it there is shallow
// (the body stays raw), but anything it turns out to be other than a
// keep-alive goes to a worker as other frames do, so that the login path
// runs on a stack grown for it already (frameWork).
func (c *conn) handle(data []byte, onReader bool) {
	var f wire.Frame
	if err := wire.Unmarshal(data, &f); err != nil {
		cmd, seq := sniffHead(data)
		c.s.unauthLog(c.log, slog.LevelDebug, "bad frame", "servcmd", cmd, "err", err)
		c.reply(cmd, seq, failBody(wire.CodeBadJSON, "bad JSON frame"))
		return
	}
	h := &f.Head
	if h.ServCmd == "" {
		c.reply("", h.Seq, failBody(wire.CodeBadJSON, "frame without head.servcmd"))
		return
	}
	if onReader && h.ServCmd != wire.CmdHeartbeat && h.ServCmd != wire.CmdHello {
		onWorker(func() { c.dispatch(&f) })
		return
	}
	c.dispatch(&f)
}

// dispatch answers a decoded frame by its servcmd.
func (c *conn) dispatch(f *wire.Frame) {
	h := &f.Head
	// A frame with the A2Key of this socket's last login (the SDK's
	// background requests, its heartbeats) means the client has taken its
	// login reply: held kick pushes may go (kickpush.go).
	c.s.frameIn(c, h)
	switch h.ServCmd {
	case wire.CmdHeartbeat, wire.CmdHello:
		c.onAlive(h)
	case wire.CmdLogin:
		c.onLogin(f)
	case wire.CmdLogout:
		c.onLogout(f)
	default:
		if body, ok := wire.BackgroundReply(h.ServCmd); ok {
			c.reply(h.ServCmd, h.Seq, body)
			return
		}
		c.s.unauthLog(c.log, slog.LevelDebug, "unknown servcmd", "servcmd", h.ServCmd)
		c.reply(h.ServCmd, h.Seq, failBody(wire.CodeUnknownCommand, "unknown servcmd"))
	}
}
