// Package loadgen is the load generator behind `chatctl bench`: many
// logins, many held sessions and many REST kicks against any server that
// speaks the Web SDK 3.6.6 protocol (docs/PROTOCOL.md).
//
// Its client is deliberately lean, so that the generator is not the
// bottleneck when it shares a machine with the server: gorilla/websocket
// directly, small buffers, a shared write-buffer pool, the login done
// synchronously on the caller's goroutine, then one reader goroutine per
// held session. Writes (wshello, heartbeat.alive) come from a per-session
// timer callback, never from the reader, so there is still at most one
// reader and one writer per socket at any moment.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/wire"

	"github.com/gorilla/websocket"
)

// SDK-like constants (PROTOCOL.md 2.4, 3.2), as pkg/client sends them.
const (
	closeSDK         = 4000
	HeartbeatIdle    = 10 * time.Second // the SDK's idle time before heartbeat.alive
	HeartbeatTimeout = 3 * time.Second  // the SDK's wait for its answer
	readLimit        = 64 * 1024
)

// Target says where and as which app to connect.
type Target struct {
	// Endpoint is ws://host:port (http:// is mapped); /binfo is appended.
	Endpoint string
	SDKAppID uint64
	// Platform is sent in the URL and the head; 0 means 7 (web).
	Platform int
	// SourceIPs are local addresses to dial from, used in turn; empty
	// means the system's choice. Each gives ~28k connections to one
	// server port (net.ipv4.ip_local_port_range).
	SourceIPs []net.IP
	// DialTimeout bounds the TCP connect and WebSocket handshake; the
	// login reply is awaited as long again. 0 means 10 s.
	DialTimeout time.Duration
}

func (t *Target) wsURL() (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(t.Endpoint), "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("bad endpoint %q: want ws://host:port", t.Endpoint)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("bad endpoint %q: want ws://host:port", t.Endpoint)
	}
	u.Path += "/binfo"
	return u.String(), nil
}

// Dialer opens lean sessions to one Target. Safe for concurrent use.
type Dialer struct {
	t       Target
	base    string // ws URL without the query
	plat    int
	timeout time.Duration
	dialers []*websocket.Dialer // one per source IP (or one with none)
	next    atomic.Uint64
}

// writePool is shared by every socket: a buffer is held only while a
// frame is written.
var writePool sync.Pool

// NewDialer checks t and prepares its dialers.
func NewDialer(t Target) (*Dialer, error) {
	base, err := t.wsURL()
	if err != nil {
		return nil, err
	}
	d := &Dialer{t: t, base: base, plat: t.Platform, timeout: t.DialTimeout}
	if d.plat == 0 {
		d.plat = 7
	}
	if d.timeout <= 0 {
		d.timeout = 10 * time.Second
	}
	mk := func(ip net.IP) *websocket.Dialer {
		nd := &net.Dialer{Timeout: d.timeout}
		if ip != nil {
			nd.LocalAddr = &net.TCPAddr{IP: ip}
		}
		return &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: d.timeout,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
			WriteBufferPool:  &writePool,
		}
	}
	if len(t.SourceIPs) == 0 {
		d.dialers = []*websocket.Dialer{mk(nil)}
	}
	for _, ip := range t.SourceIPs {
		d.dialers = append(d.dialers, mk(ip))
	}
	return d, nil
}

func (d *Dialer) url() string {
	var b [16]byte
	for i := range 2 {
		v := rand.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	q := url.Values{}
	q.Set("sdkappid", strconv.FormatUint(d.t.SDKAppID, 10))
	q.Set("instanceid", fmt.Sprintf("%x", b))
	q.Set("random", strconv.FormatFloat(rand.Float64(), 'f', -1, 64))
	q.Set("platform", strconv.Itoa(d.plat))
	q.Set("host", "unknown")
	q.Set("version", "-1")
	q.Set("sdkversion", wire.SDKVersion)
	return d.base + "?" + q.Encode()
}

var (
	loginBody = json.RawMessage(`{"State":"Online","is_web_uniapp":0,"InstType":0,"CustomInfo":""}`)
	helloBody = json.RawMessage(`{"is_web_uniapp":0}`)
	aliveBody = json.RawMessage(`{}`)
)

// inFrame is what the generator reads of a server frame.
type inFrame struct {
	Head struct {
		ServCmd string   `json:"servcmd"`
		Seq     wire.Seq `json:"seq"`
	} `json:"head"`
	Body json.RawMessage `json:"body"`
}

type loginReply struct {
	wire.Envelope
	A2Key         string `json:"A2Key"`
	TinyID        string `json:"TinyId"`
	InstID        uint64 `json:"InstId"`
	HelloInterval int    `json:"HelloInterval"`
}

// LoginError is a wslogin refused by the server.
type LoginError struct {
	Code int
	Info string
}

func (e *LoginError) Error() string { return fmt.Sprintf("login refused: %d %s", e.Code, e.Info) }

// Failure stages of ErrorKey for errors that are not a server code.
const (
	KeyDial      = "dial"
	KeyPorts     = "dial: no free local port"
	KeyFiles     = "dial: too many open files"
	KeyHandshake = "handshake"
	KeyTimeout   = "timeout"
	KeyConnLost  = "connection lost"
)

// ErrorKey names an error for the "errors by code" table: the server's
// code for a refused login, else the stage and a short cause.
func ErrorKey(err error) string {
	var le *LoginError
	if errors.As(err, &le) {
		return strconv.Itoa(le.Code)
	}
	var se *stageError
	if !errors.As(err, &se) {
		return "other"
	}
	msg := se.err.Error()
	switch {
	case strings.Contains(msg, "cannot assign requested address"), strings.Contains(msg, "address already in use"):
		return KeyPorts
	case strings.Contains(msg, "too many open files"):
		return KeyFiles
	case errors.Is(se.err, context.DeadlineExceeded), strings.Contains(msg, "timeout"):
		return se.stage + ": " + KeyTimeout
	case strings.Contains(msg, "connection refused"):
		return se.stage + ": connection refused"
	case strings.Contains(msg, "connection reset"):
		return se.stage + ": connection reset"
	case errors.Is(se.err, websocket.ErrBadHandshake):
		return KeyHandshake
	}
	return se.stage
}

// IsLimit reports whether err is a local resource limit (ports or file
// descriptors) rather than the server's doing.
func IsLimit(err error) bool {
	k := ErrorKey(err)
	return k == KeyPorts || k == KeyFiles
}

type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// Session is one lean client socket.
type Session struct {
	User          string
	InstID        uint64
	HelloInterval time.Duration // the server's, from the wslogin reply

	ws     *websocket.Conn
	a2     string
	tinyID string
	sdkApp uint64
	plat   int

	wmu sync.Mutex // serializes writes
	seq uint64     // guarded by wmu

	lastIn    atomic.Int64 // unix nanos of the last inbound frame
	closing   atomic.Bool  // Close was called
	kickType  atomic.Int32 // KickType of a stat_forceoffline push, 0 if none
	kickedAt  atomic.Int64 // unix nanos the push arrived
	hbPending atomic.Int64 // unix nanos a heartbeat was sent and not answered, 0 if none
	kickSent  atomic.Int64 // unix nanos a REST kick of this user was sent (Kick run)
	reading   atomic.Bool  // Keep started the reader
	done      chan struct{}

	timer     *time.Timer // guarded by wmu
	nextHello time.Time   // only the timer callback touches it
}

// Login dials a new socket and logs userID in with userSig (the first,
// identifier+usersig wslogin), synchronously. The returned Session has no
// goroutine yet: Close it, or Keep it.
func (d *Dialer) Login(ctx context.Context, userID, userSig string) (*Session, error) {
	i := d.next.Add(1)
	wd := d.dialers[int(i%uint64(len(d.dialers)))]
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	ws, resp, err := wd.DialContext(ctx, d.url(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		stage := "dial"
		if resp != nil {
			stage = KeyHandshake
		}
		return nil, &stageError{stage, err}
	}
	ws.SetReadLimit(readLimit)
	s := &Session{User: userID, ws: ws, sdkApp: d.t.SDKAppID, plat: d.plat, seq: rand.Uint64N(1 << 20), done: make(chan struct{})}
	dl := time.Now().Add(d.timeout)
	if t, ok := ctx.Deadline(); ok && t.Before(dl) {
		dl = t
	}
	ws.SetReadDeadline(dl)
	s.lastIn.Store(time.Now().UnixNano())
	seq, err := s.write(wire.CmdLogin, loginBody, userID, userSig)
	if err != nil {
		ws.Close()
		return nil, &stageError{"login", err}
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, &stageError{"login", err}
		}
		var f inFrame
		if json.Unmarshal(data, &f) != nil || f.Head.ServCmd != wire.CmdLogin || uint64(f.Head.Seq) != seq {
			continue // a push before the reply: not ours to judge
		}
		var r loginReply
		if err := json.Unmarshal(f.Body, &r); err != nil {
			ws.Close()
			return nil, &stageError{"login", fmt.Errorf("bad reply: %w", err)}
		}
		if r.ErrorCode != 0 || r.ActionStatus == "FAIL" {
			ws.Close()
			return nil, &LoginError{Code: r.ErrorCode, Info: r.ErrorInfo}
		}
		if r.A2Key == "" || r.TinyID == "" {
			ws.Close()
			return nil, &stageError{"login", errors.New("bad reply: no A2Key or TinyId")}
		}
		s.a2, s.tinyID, s.InstID = r.A2Key, r.TinyID, r.InstID
		s.HelloInterval = time.Duration(r.HelloInterval) * time.Second
		ws.SetReadDeadline(time.Time{})
		s.lastIn.Store(time.Now().UnixNano())
		return s, nil
	}
}

// write sends one request; identifier+userSig before login, a2 after.
func (s *Session) write(cmd string, body json.RawMessage, userID, userSig string) (uint64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.seq++
	req := wire.NewRequest(cmd, s.seq, s.sdkApp, s.plat, body)
	h := &req.Head
	h.StatusInstID, h.ReqTime = s.InstID, time.Now().Unix()
	if userSig != "" {
		h.Identifier, h.UserSig = userID, userSig
	} else {
		h.A2, h.TinyID = s.a2, s.tinyID
	}
	b, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.seq, s.ws.WriteMessage(websocket.BinaryMessage, b)
}

// Close ends the socket (close frame 4000, like the SDK, then TCP close)
// without logging out, and waits for the reader if Keep started one.
func (s *Session) Close() {
	if s.closing.Swap(true) {
		<-s.done
		return
	}
	s.wmu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.ws.SetWriteDeadline(time.Now().Add(time.Second))
	s.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(closeSDK, ""))
	s.wmu.Unlock()
	s.ws.Close()
	select {
	case <-s.done:
	default:
		if !s.reading.Load() {
			close(s.done)
		} else {
			<-s.done
		}
	}
}

// Kicked returns the KickType of the kick push received (0 if none) and
// when it arrived.
func (s *Session) Kicked() (int, time.Time) {
	t := s.kickType.Load()
	if t == 0 {
		return 0, time.Time{}
	}
	return int(t), time.Unix(0, s.kickedAt.Load())
}
