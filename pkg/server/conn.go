package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// conn is one WebSocket. One goroutine reads (run, readPump); frames go
// out through a queue that one writer at a time drains (writeOut): the
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

	// Frame pacing (pace.go): the socket's bucket, used by the reader
	// only, and the user it last logged in as, whose bucket it also draws on.
	bucket   bucket
	paceUser atomic.Pointer[userKey]
	// loginRefused: the frame just handled was a refused wslogin. Written
	// by the frame's handler goroutine, read by the reader after it.
	loginRefused bool
	// awaitA2: a hold of kick pushes waits for a frame with this socket's
	// new A2Key (kickpush.go), so frameIn must look; false, it need not.
	awaitA2 atomic.Bool
}

// serveWS is a WebSocket request that came through net/http. The reader
// runs in a goroutine of its own and the HTTP handler returns, so that
// net/http frees its per-connection state (buffers, a deep stack) while the
// socket lives on.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, msgType int) {
	if c := s.upgrade(&s.upgrader, w, r, msgType); c != nil {
		go c.run()
	}
}

// upgrade upgrades r with up and registers the socket; the caller runs
// its reader (run). nil when it was refused (and answered).
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
	if v := q.Get("platform"); v != "" {
		if p, ok := wire.ParsePlatform(v); ok {
			plat = p
		}
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
	c.log.Debug("socket open", "path", r.URL.Path)
	return c
}

// run is the reader goroutine: it reads until the socket ends, then waits
// for a writer still writing and takes the instance off the socket.
func (c *conn) run() {
	defer c.s.wg.Done()
	c.readPump()
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

// shutdown has the writer send what is queued, then a close frame, and
// end the socket.
func (c *conn) shutdown() {
	c.quitOnce.Do(func() {
		close(c.quit)
		c.wmu.Lock()
		start := !c.writing && !c.wended
		c.writing = c.writing || start
		c.wmu.Unlock()
		if start {
			go c.writeOut(false)
		}
	})
}

// enqueue queues a push from another goroutine without ever blocking: a
// client whose queue is full is too slow and loses its socket. A writer
// goroutine is started when none is writing.
func (c *conn) enqueue(msg []byte) {
	c.wmu.Lock()
	if c.wended {
		c.wmu.Unlock()
		return
	}
	if len(c.out) >= sendQueue {
		c.wmu.Unlock()
		c.log.Warn("send queue full, dropping slow client")
		c.ws.Close()
		return
	}
	c.out = append(c.out, msg)
	start := !c.writing
	c.writing = true
	c.wmu.Unlock()
	if start {
		go c.writeOut(false)
	}
}

// reply queues the answer to one of the client's own requests, from the
// goroutine handling it while the reader waits, and writes the queue
// itself when no writer is at it: no goroutine to wake for the common
// round trip. A full queue holds the reader back (so a client that
// pipelines many requests is slowed, not dropped) for at most
// WriteTimeout; then the client is too slow and loses its socket.
func (c *conn) reply(servcmd string, seq wire.Seq, body []byte) {
	msg := frame(servcmd, seq, body)
	var t *time.Timer
	for {
		c.wmu.Lock()
		if c.wended {
			c.wmu.Unlock()
			return
		}
		if len(c.out) < sendQueue {
			c.out = append(c.out, msg)
			write := !c.writing
			c.writing = true
			c.wmu.Unlock()
			if write {
				c.writeOut(true)
			}
			return
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.wmu.Unlock()
		if t == nil {
			t = time.NewTimer(c.s.writeTimeout)
			defer t.Stop()
		}
		select {
		case <-room:
		case <-c.writeDone:
			return
		case <-t.C:
			c.log.Warn("client not reading its replies, dropping it")
			c.ws.Close()
			return
		}
	}
}

// writeOut is the writer: it writes the queue until it is empty, then
// gives up the write side. The caller has taken it (c.writing). inline:
// the caller is a frame's handler, which the reader waits for; a close
// frame for shutdown then goes from a goroutine of its own, which waits
// for the reader.
func (c *conn) writeOut(inline bool) {
	for {
		c.wmu.Lock()
		if isClosed(c.readDone) {
			c.endWriting()
			c.wmu.Unlock()
			return
		}
		if len(c.out) == 0 {
			c.out = nil // no queue kept while idle
			quit := isClosed(c.quit)
			if quit && inline {
				c.wmu.Unlock()
				go c.writeOut(false) // the write side passes to it
				return
			}
			if !quit {
				c.writing = false
				c.wmu.Unlock()
				return
			}
			c.wmu.Unlock()
			c.closeFrame()
			c.wmu.Lock()
			c.endWriting()
			c.wmu.Unlock()
			return
		}
		msg := c.out[0]
		c.out[0] = nil
		c.out = c.out[1:]
		if c.room != nil {
			close(c.room)
			c.room = nil
		}
		c.wmu.Unlock()
		c.ws.SetWriteDeadline(time.Now().Add(c.s.writeTimeout))
		if err := c.ws.WriteMessage(c.msgType, msg); err != nil {
			c.ws.Close() // unblocks the reader
			c.wmu.Lock()
			c.endWriting()
			c.wmu.Unlock()
			return
		}
	}
}

// closeFrame sends shutdown's close frame, waits closeGrace for the
// client's answer (the reader ends on it), and closes the socket.
func (c *conn) closeFrame() {
	c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
		time.Now().Add(closeGrace))
	t := time.NewTimer(closeGrace)
	select {
	case <-c.readDone: // the client answered the close frame
	case <-t.C:
	}
	t.Stop()
	c.ws.Close()
}

// endWriting ends the write side for good: queued and later frames are
// dropped. c.wmu is held.
func (c *conn) endWriting() {
	c.writing = false
	c.out = nil
	if !c.wended {
		c.wended = true
		close(c.writeDone)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (c *conn) readPump() {
	c.ws.SetReadLimit(HardReadLimit)
	// Control frames are paced like the others (pace.go): gorilla handles
	// them inside NextReader, on this goroutine, so a flood of pings would
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
	for {
		c.ws.SetReadDeadline(time.Now().Add(c.s.hbTimeout))
		_, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, wire.MaxFrameSize+1))
		if err != nil {
			return
		}
		if len(data) > wire.MaxFrameSize {
			n, err := io.Copy(io.Discard, r)
			if err != nil {
				return // over HardReadLimit: gorilla has sent 1009
			}
			cmd, seq := sniffHead(data)
			c.s.unauthLog(c.log, slog.LevelDebug, "frame too large", "servcmd", cmd)
			c.reply(cmd, seq, failBody(wire.CodeTooLarge, "packet larger than 12 KB"))
			if !c.pace(frameCost(len(data) + int(n))) {
				return
			}
			continue
		}
		c.loginRefused = false
		if keepAlive(data) {
			// The frame of every socket every HelloInterval: answered
			// here, its path is short. Handing it to a worker and back
			// woke two goroutines per round trip, the largest cost of an
			// idle session after the system calls.
			c.handle(data)
		} else {
			// Other frames are handled on another goroutine while the
			// reader waits: decoding them and the login path grow a stack
			// to 8 KiB or more, and an idle session's reader would keep
			// that for as long as the socket lives (docs/SERVER.md,
			// memory per session).
			done := make(chan struct{})
			runFrame(func() {
				defer close(done)
				c.handle(data)
			})
			<-done
		}
		cost := frameCost(len(data))
		if c.loginRefused {
			cost = max(cost, failedLoginCost)
			// And a new connection's worth of its source's bucket
			// (connlimit.go): an address that keeps failing logins gets
			// fewer new sockets to fail them on.
			c.s.connLimit.charge(c.ws.RemoteAddr(), time.Now(), 1)
		}
		if !c.pace(cost) {
			return
		}
	}
}

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

// runFrame runs f on an idle worker, or on a new one.
func runFrame(f func()) {
	select {
	case frameWork <- f:
	default:
		go frameWorker(f)
	}
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

// sniffHead recovers servcmd and seq from a frame that does not decode
// (bad JSON, or cut at 12 KB): the SDK writes the head first.
func sniffHead(data []byte) (string, wire.Seq) {
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return "", 0
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return "", 0
		}
		if k, _ := k.(string); strings.EqualFold(k, "head") { // as encoding/json matches keys
			var h struct {
				ServCmd string   `json:"servcmd"`
				Seq     wire.Seq `json:"seq"`
			}
			if d.Decode(&h) != nil {
				return "", 0
			}
			return h.ServCmd, h.Seq
		}
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return "", 0
		}
	}
	return "", 0
}

// frame builds a reply (or push) with the minimal head {servcmd, seq}.
func frame(servcmd string, seq wire.Seq, body []byte) []byte {
	b := make([]byte, 0, 42+len(servcmd)+len(body))
	b = append(b, `{"head":{"servcmd":`...)
	b = appendCmd(b, servcmd)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, uint64(seq), 10)
	b = append(b, `},"body":`...)
	b = append(b, body...)
	return append(b, '}')
}

// appendCmd appends servcmd as a JSON string. The SDK's servcmds are
// plain ASCII and go as they are; anything else (a client's echoed
// garbage) goes through encoding/json.
func appendCmd(b []byte, servcmd string) []byte {
	for i := 0; i < len(servcmd); i++ {
		if c := servcmd[i]; c < ' ' || c > '~' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			cmd, _ := json.Marshal(servcmd)
			return append(b, cmd...)
		}
	}
	b = append(b, '"')
	b = append(b, servcmd...)
	return append(b, '"')
}

var okBody = []byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)

func failBody(code int, info string) []byte {
	b, _ := json.Marshal(wire.Fail(code, info))
	return b
}

// handle answers one frame.
func (c *conn) handle(data []byte) {
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
	// A frame with the A2Key of this socket's last login (the SDK's
	// background requests, its heartbeats) means the client has taken its
	// login reply: held kick pushes may go (kickpush.go).
	c.s.frameIn(c, h)
	switch h.ServCmd {
	case wire.CmdHeartbeat, wire.CmdHello:
		c.onAlive(h)
	case wire.CmdLogin:
		c.onLogin(&f)
	case wire.CmdLogout:
		c.onLogout(&f)
	default:
		if body, ok := wire.BackgroundReply(h.ServCmd); ok {
			c.reply(h.ServCmd, h.Seq, body)
			return
		}
		c.s.unauthLog(c.log, slog.LevelDebug, "unknown servcmd", "servcmd", h.ServCmd)
		c.reply(h.ServCmd, h.Seq, failBody(wire.CodeUnknownCommand, "unknown servcmd"))
	}
}
