package server

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The WebSocket upgrades of /binfo and /info, the whole traffic of a
// login server, skip net/http: Serve's listener reads each new
// connection's request line itself, and when it is a GET of a WebSocket
// path it parses the request (http.ReadRequest) and hands the upgrade to
// gorilla on a ResponseWriter of its own. That spares per connection what
// net/http's server spends on a request that is hijacked at once: its
// buffered reader and writer, the background read that Hijack must abort
// (a goroutine, a read deadline in the past and a wait), the request's
// context and the response's state. Everything else (REST, /healthz,
// /debug/stats, and a WebSocket upgrade that is not a connection's first
// request) goes to net/http unchanged, with the bytes already read, once
// its head has been read here within the same cap (readHead).

const (
	// upgradeReadBuf is the reader of a connection's request, from a pool
	// (reqReaders): the socket reads through its own (readbuf.go).
	upgradeReadBuf = 1024
	// maxHeaderBytes bounds every request head: a connection's first one
	// here, later ones on a kept-alive connection through net/http's
	// MaxHeaderBytes (Serve; net/http reads up to 4 KiB more before it
	// refuses with 431). Browsers send a few KiB, cookies included; Go's
	// default of 1 MiB let each connection that never finished its head
	// hold a megabyte for headerTimeout.
	maxHeaderBytes = 32 << 10
	// headerTimeout bounds the reading of a request head (net/http's
	// ReadHeaderTimeout in Serve) and the handshake.
	headerTimeout = 10 * time.Second
	// idleTimeout closes a kept-alive HTTP connection (REST) that sends no
	// new request for that long.
	idleTimeout = 30 * time.Second
)

// httpTimeout bounds the reading of an HTTP request's body and the writing
// of its answer, whatever the path (withDeadlines): REST, the page, /healthz, a
// 404. http.Server has no ReadTimeout or WriteTimeout (they would also cut
// the WebSocket upgrades that net/http serves, and the page's event
// stream), so without it a client that sends its head and then trickles a
// body, or never reads its answers, holds a connection and a goroutine for
// as long as it likes (docs/RELIABILITY.md, slow-loris). A var: tests
// shorten it.
var httpTimeout = 30 * time.Second

// withDeadlines gives every request's body and answer httpTimeout, before
// any handler (/debug/stats included); a WebSocket's reader and writer set
// their own deadlines once upgraded, and the page's event stream lifts its
// read deadline.
func withDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(httpTimeout)
		rc.SetReadDeadline(deadline)  // not supported (httptest recorder): no bound
		rc.SetWriteDeadline(deadline) // idem
		next.ServeHTTP(w, r)
	})
}

// wsListener is the listener net/http serves: it accepts on the real one,
// upgrades WebSocket requests itself and queues every other connection
// for net/http's Accept.
type wsListener struct {
	net.Listener
	s    *Server
	syn  *synFilter         // the kernel's share of the per-source limit (synfilter.go)
	up   websocket.Upgrader // s.upgrader reading the socket through a sockConn
	http chan net.Conn
	done chan struct{} // closed when the accept loop ends
	err  error         // why it ended; written before done is closed

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // connections read here, not yet handed over
}

func (s *Server) wsListener(ln net.Listener) *wsListener {
	l := &wsListener{Listener: ln, s: s, http: make(chan net.Conn), done: make(chan struct{}),
		pending: map[net.Conn]struct{}{}}
	l.up = s.upgrader
	l.up.ReadBufferSize = gorillaReadBuf
	l.up.HandshakeTimeout = 0 // serveConn's read deadline bounds the request; the 101 fits any socket buffer
	l.syn = newSynFilter(ln, s.connLimit, s.log)
	go l.acceptLoop()
	return l
}

func (l *wsListener) acceptLoop() {
	defer close(l.done)
	defer l.syn.close()
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.s.log.Debug("accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			l.err = err
			return
		}
		backoff = 0
		if c = l.admit(c); c == nil {
			continue
		}
		if !l.track(c) {
			c.Close()
			continue
		}
		go l.serveConn(c)
	}
}

// admit asks the per-source limit (connlimit.go) about a new connection,
// and returns it, counted open until closed, or nil. One over the limit is
// reset here, on the accept loop: no read, no goroutine, no buffer. Each
// is counted; a source's refusals are logged once a minute at most
// (connLogEvery), through the limiter of unauthenticated failures. A
// source that keeps dialing is handed to the kernel (synfilter.go), which
// is logged the same way, once per block.
func (l *wsListener) admit(c net.Conn) net.Conn {
	v := l.s.connLimit.allow(c.RemoteAddr(), time.Now())
	if v.ok {
		if v.src == nil {
			return c
		}
		if tc, ok := c.(*net.TCPConn); ok {
			return &heldConn{TCPConn: tc, l: l.s.connLimit, src: v.src}
		}
		l.s.connLimit.release(v.src) // not TCP: not counted
		return c
	}
	if !v.block.IsZero() {
		if _, added := l.syn.block(v.key, v.block); added {
			l.s.blocked.Add(1)
			l.s.unauthLog(l.s.log, slog.LevelWarn, "source blocked in the kernel: it kept dialing while refused",
				"source", v.key.String(), "until", v.block.UTC().Format(time.RFC3339))
		}
	}
	l.s.refused.Add(1)
	reset(c) // no FIN_WAIT state kept for the attacker
	if v.first {
		limit := "rate"
		if v.full {
			limit = "open"
		}
		l.s.unauthLog(l.s.log, slog.LevelWarn, "connections refused: over the per-source limit", "remote", c.RemoteAddr().String(), "limit", limit)
	}
	return nil
}

// reset closes c with a reset where it is TCP: closing with bytes unread
// sends one too, and either stops the client's writes at once.
func reset(c net.Conn) {
	if tc, ok := c.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Accept returns the next connection for net/http.
func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.http:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close closes the real listener and the connections still being read.
func (l *wsListener) Close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.pending {
		c.Close()
	}
	clear(l.pending)
	l.mu.Unlock()
	return l.Listener.Close()
}

// track records c as being read here; false once the listener is closed.
func (l *wsListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *wsListener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// serveConn reads c's request line: a WebSocket path is upgraded here,
// anything else goes to net/http with what was read.
func (l *wsListener) serveConn(c net.Conn) {
	sc := l.upgrade(c)
	l.untrack(c)
	if sc != nil {
		sc.start() // and this goroutine, its stack grown by the upgrade, ends
	}
}

// upgrade answers c's first request; the socket when it was upgraded.
func (l *wsListener) upgrade(c net.Conn) *conn {
	deadline := time.Now().Add(headerTimeout)
	c.SetReadDeadline(deadline)
	lr := &io.LimitedReader{R: c, N: maxHeaderBytes}
	br := reqReaders.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() {
		br.Reset(nil) // nothing holds it after the upgrade: not gorilla, whose ReadBufferSize is set
		reqReaders.Put(br)
	}()
	msgType, ws, line := sniffUpgrade(br)
	if !ws {
		if !line {
			c.Close() // no request line in time, or the client went away
			return nil
		}
		head, ok := readHead(br, lr)
		if !ok {
			refuseHead(c, head)
			return nil
		}
		hc := &readConn{Conn: c, r: io.MultiReader(bytes.NewReader(head), c), until: deadline}
		select {
		case l.http <- hc:
		case <-l.done:
			c.Close()
		}
		return nil
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		c.Close()
		return nil
	}
	req.RemoteAddr = c.RemoteAddr().String()
	w := &upgradeWriter{c: newSockConn(c), br: br}
	sc := l.s.upgrade(&l.up, w, req, msgType)
	if !w.hijacked {
		w.finish()
	}
	return sc
}

var reqReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, upgradeReadBuf) }}

// sniffUpgrade reads until br holds the request line (or is full) and
// reports whether it is a GET of /binfo or /info, and which; line is false
// when the client sent no line (or one that does not fit br) in time.
func sniffUpgrade(br *bufio.Reader) (msgType int, ws, line bool) {
	for {
		// Peek one more byte than held (one read), then look at all held.
		_, err := br.Peek(br.Buffered() + 1)
		b, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			msgType, ws = wsPath(b[:i])
			return msgType, ws, true
		}
		if len(b) == br.Size() {
			return 0, false, true // a long line: net/http judges it
		}
		if err != nil {
			return 0, false, false
		}
	}
}

// wsPath checks a request line "GET /binfo?... HTTP/1.1": the same paths
// as routes (leading slashes collapsed).
func wsPath(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok {
		return 0, false
	}
	target, _, _ := bytes.Cut(rest, []byte(" "))
	path, _, _ := bytes.Cut(target, []byte("?"))
	if len(path) == 0 || path[0] != '/' {
		return 0, false // absolute-form or garbage: net/http decides
	}
	return wsMsgType(string(path))
}

// readHead reads the rest of a request head that is not an upgrade (what
// br holds, then from lr, which stops at maxHeaderBytes) and returns every
// byte read, to be handed to net/http. ok is false when the head did not
// end within the cap, or the client went away or ran out of time first.
// net/http would refuse an over-long head too, but only after answering 431
// and lingering half a second while the client's bytes keep coming: a
// client that sends a megabyte of head would push most of it.
func readHead(br *bufio.Reader, lr *io.LimitedReader) (head []byte, ok bool) {
	b, _ := br.Peek(br.Buffered())
	head = bytes.Clone(b)
	br.Discard(len(b))
	from := 0
	for {
		if t := head[from:]; bytes.Contains(t, []byte("\n\r\n")) || bytes.Contains(t, []byte("\n\n")) {
			return head, true
		}
		from = max(0, len(head)-2)
		if len(head) == cap(head) {
			head = append(head, 0)[:len(head)]
		}
		n, err := lr.Read(head[len(head):cap(head)])
		head = head[:len(head)+n]
		if err != nil && n == 0 {
			return head, false
		}
	}
}

// refuseHead answers a head over the cap (or cut short) and resets the
// connection: closing with bytes unread sends a reset, which stops the
// client's writes at once.
func refuseHead(c net.Conn, head []byte) {
	if len(head) >= maxHeaderBytes {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte("HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
	}
	reset(c)
}

// readConn is a connection whose first bytes were already read. Its first
// read deadline (net/http's ReadHeaderTimeout) is capped at until, so that
// the request head gets the same time in all.
type readConn struct {
	net.Conn
	r         io.Reader
	until     time.Time
	wirePaced // a WebSocket upgraded through net/http (serveWS) reads through it
}

func (c *readConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	return n, c.charge(n, err)
}

func (c *readConn) SetReadDeadline(t time.Time) error {
	if !c.until.IsZero() {
		if t.IsZero() || t.After(c.until) {
			t = c.until
		}
		c.until = time.Time{}
	}
	return c.Conn.SetReadDeadline(t)
}

// upgradeWriter is the ResponseWriter of an upgrade served outside
// net/http: gorilla hijacks it; an error answer (403, 400, 503) is
// buffered and written by finish, and the connection closed.
type upgradeWriter struct {
	c        net.Conn
	br       *bufio.Reader
	h        http.Header
	status   int
	body     []byte
	hijacked bool
}

func (w *upgradeWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *upgradeWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *upgradeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// Hijack hands the connection to gorilla, which reads it through a buffer
// of its own (and checks the request's reader holds nothing more); the
// writer is only a source of gorilla's handshake buffer.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return w.c, bufio.NewReadWriter(w.br, bufio.NewWriterSize(w.c, 256)), nil
}

// finish writes a response that was not an upgrade and closes.
func (w *upgradeWriter) finish() {
	// net/http writes the head (a header value's line breaks as spaces:
	// no response splitting).
	resp := &http.Response{StatusCode: cmp.Or(w.status, http.StatusOK), ProtoMajor: 1, ProtoMinor: 1,
		Header: w.Header(), ContentLength: int64(len(w.body)), Body: io.NopCloser(bytes.NewReader(w.body)), Close: true}
	var b bytes.Buffer // one write
	resp.Write(&b)
	w.c.SetWriteDeadline(time.Now().Add(time.Second))
	w.c.Write(b.Bytes())
	w.c.Close()
}
