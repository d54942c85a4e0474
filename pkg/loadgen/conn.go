// Package loadgen is the load generator behind `chatctl bench`: many
// logins, many held sessions and many REST kicks against any server that
// speaks the Web SDK 3.6.6 protocol (docs/PROTOCOL.md); logins and held
// sessions also against Centrifugo and the floors (proto.go), so that one
// generator measures them all side by side.
//
// Its client is deliberately lean, so that the generator is not the
// bottleneck when it shares a machine with the server: its own minimal
// WebSocket client (ws.go: the handshake written and read by hand, no
// net/http), small buffers, the login done synchronously on the caller's
// goroutine, then one reader goroutine per held session. Writes (wshello,
// heartbeat.alive) come from a per-session timer callback and are
// serialized, so there is at most one reader and one writer per socket at
// any moment.
package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
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
	// Protocol is what to speak ("" is ProtoSDK).
	Protocol Protocol
	// Close is how sockets end ("" is CloseSDK).
	Close CloseMode
}

// wsURL is the URL to upgrade: the endpoint with the protocol's path
// (/binfo after the endpoint's for the SDK; Centrifugo's default
// /connection/websocket when the endpoint has none).
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
	case "tcp":
		if t.Protocol == ProtoTCP {
			u.Scheme = "ws" // only its host:port is used
			break
		}
		fallthrough
	default:
		return "", fmt.Errorf("bad endpoint %q: want ws://host:port", t.Endpoint)
	}
	switch t.Protocol {
	case ProtoSDK, "":
		u.Path += "/binfo"
	case ProtoCentrifugo:
		if u.Path == "" {
			u.Path = "/connection/websocket"
		}
	default:
		if u.Path == "" {
			u.Path = "/"
		}
	}
	return u.String(), nil
}

// Dialer opens lean sessions to one Target. Safe for concurrent use.
type Dialer struct {
	t       Target
	addr    string // host:port to dial
	host    string // the Host header
	tlsHost string // server name for wss, "" for ws
	query   string // the path and the constant part of the query
	plat    int
	timeout time.Duration
	dialers []*net.Dialer // one per source IP (or one with none)
	next    atomic.Uint64
}

// NewDialer checks t and prepares its dialers.
func NewDialer(t Target) (*Dialer, error) {
	base, err := t.wsURL()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if t.Protocol, err = ParseProtocol(string(t.Protocol)); err != nil {
		return nil, err
	}
	if t.Close, err = ParseCloseMode(string(t.Close)); err != nil {
		return nil, err
	}
	d := &Dialer{t: t, host: u.Host, plat: t.Platform, timeout: t.DialTimeout}
	if d.plat == 0 {
		d.plat = 7
	}
	if d.timeout <= 0 {
		d.timeout = 10 * time.Second
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	d.addr = net.JoinHostPort(u.Hostname(), port)
	if u.Scheme == "wss" {
		d.tlsHost = u.Hostname()
	}
	d.query = u.EscapedPath()
	if t.Protocol != ProtoSDK {
		if u.RawQuery != "" {
			d.query += "?" + u.RawQuery
		}
	} else {
		d.query += "?sdkappid=" + strconv.FormatUint(t.SDKAppID, 10) +
			"&platform=" + strconv.Itoa(d.plat) + "&host=unknown&version=-1&sdkversion=" +
			url.QueryEscape(wire.SDKVersion)
	}
	mk := func(ip net.IP) *net.Dialer {
		// No TCP keep-alive (4 setsockopt calls per socket): held
		// sessions are kept by the protocol's own heartbeats.
		nd := &net.Dialer{Timeout: d.timeout, KeepAlive: -1}
		if ip != nil {
			nd.LocalAddr = &net.TCPAddr{IP: ip}
		}
		return nd
	}
	if len(t.SourceIPs) == 0 {
		d.dialers = []*net.Dialer{mk(nil)}
	}
	for _, ip := range t.SourceIPs {
		d.dialers = append(d.dialers, mk(ip))
	}
	return d, nil
}

// pathQuery is the request target of a new socket: the SDK's query, with
// a fresh instanceid and random; the endpoint's path and query as they are
// for the other protocols.
func (d *Dialer) pathQuery() string {
	if d.t.Protocol != ProtoSDK {
		return d.query
	}
	b := make([]byte, 0, len(d.query)+80)
	b = append(b, d.query...)
	b = append(b, "&instanceid="...)
	var id [16]byte
	binary.LittleEndian.PutUint64(id[:], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	b = hex.AppendEncode(b, id[:])
	b = append(b, "&random="...)
	b = strconv.AppendFloat(b, rand.Float64(), 'f', -1, 64)
	return string(b)
}

var (
	loginBody = json.RawMessage(`{"State":"Online","is_web_uniapp":0,"InstType":0,"CustomInfo":""}`)
	helloBody = json.RawMessage(`{"is_web_uniapp":0}`)
	aliveBody = json.RawMessage(`{}`)
	// kickAckBody is wslogout type 1: the SDK's answer to a
	// multipleAccount/multipleDevice push (PROTOCOL.md 4.5).
	kickAckBody = json.RawMessage(`{"wslogout_type":1,"is_web_uniapp":0}`)
)

// inFrame is what the generator reads of a server frame.
type inFrame struct {
	Head struct {
		ServCmd string   `json:"servcmd"`
		Seq     wire.Seq `json:"seq"`
	} `json:"head"`
	Body json.RawMessage `json:"body"`
}

// loginFrame is the wslogin reply, decoded in one go.
type loginFrame struct {
	Head struct {
		ServCmd string   `json:"servcmd"`
		Seq     wire.Seq `json:"seq"`
	} `json:"head"`
	Body loginReply `json:"body"`
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
	KeyStopped   = "stopped" // the run was stopped (a signal) while it waited
)

// stopped is err, marked as the run's stop when ctx was canceled (a
// signal) rather than timed out: ErrorKey tells it apart.
func stopped(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", err, context.Canceled)
	}
	return err
}

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
	case errors.Is(se.err, context.Canceled):
		return se.stage + ": " + KeyStopped
	case errors.Is(se.err, context.DeadlineExceeded), strings.Contains(msg, "timeout"):
		return se.stage + ": " + KeyTimeout
	case strings.Contains(msg, "connection refused"):
		return se.stage + ": connection refused"
	case strings.Contains(msg, "connection reset"):
		return se.stage + ": connection reset"
	case errors.Is(se.err, ErrBadHandshake):
		return KeyHandshake
	}
	var ce *errClosed
	if errors.As(se.err, &ce) {
		return se.stage + ": " + ce.Error() // a server that refuses by closing (Centrifugo's 3500s)
	}
	return se.stage
}

// Retryable reports whether err says to try the login again: a timeout
// of the dial, handshake or reply, or the server's 70169.
func Retryable(err error) bool {
	k := ErrorKey(err)
	return k == strconv.Itoa(wire.CodeTimeout) || strings.HasSuffix(k, ": "+KeyTimeout)
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

	ws     *wsConn
	a2     string
	tinyID string
	sdkApp uint64
	plat   int
	proto  Protocol
	reset  bool // end with a TCP reset, not the SDK's close
	pong   bool // Centrifugo expects a pong to each ping

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
// identifier+usersig wslogin; for Centrifugo userSig is the connection
// JWT; the floors take none), synchronously. The returned Session has no
// goroutine yet: Close it, or Keep it.
func (d *Dialer) Login(ctx context.Context, userID, userSig string) (*Session, error) {
	i := d.next.Add(1)
	nd := d.dialers[int(i%uint64(len(d.dialers)))]
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var ws *wsConn
	var err error
	if d.t.Protocol == ProtoTCP {
		var c net.Conn
		if c, err = nd.DialContext(ctx, "tcp", d.addr); err == nil {
			ws = &wsConn{c: c, br: bufio.NewReaderSize(c, 512)}
		}
	} else {
		ws, err = dialWS(ctx, nd, d.addr, d.host, d.tlsHost, d.pathQuery())
	}
	if err != nil {
		stage := "dial"
		var he *handshakeError
		if errors.As(err, &he) && he.answered {
			stage = KeyHandshake
		}
		return nil, &stageError{stage, stopped(ctx, err)}
	}
	s := &Session{User: userID, ws: ws, sdkApp: d.t.SDKAppID, plat: d.plat, seq: rand.Uint64N(1 << 20),
		proto: d.t.Protocol, reset: d.t.Close == CloseReset, done: make(chan struct{})}
	dl := time.Now().Add(d.timeout)
	if t, ok := ctx.Deadline(); ok && t.Before(dl) {
		dl = t
	}
	ws.c.SetReadDeadline(dl)
	// A signal (ctx canceled) ends the login's read too, not its deadline
	// only (the socket is its own, until the login is done). After the
	// deadline above, which would undo a cut that came first.
	stop := context.AfterFunc(ctx, func() { ws.c.SetDeadline(time.Now()) })
	defer stop()
	s.lastIn.Store(time.Now().UnixNano())
	switch d.t.Protocol {
	case ProtoSDK:
		err = s.loginSDK(userID, userSig)
	case ProtoCentrifugo:
		err = s.connectCentrifugo(userSig)
	default:
		err = s.loginFloor(d.t.Protocol)
	}
	if err != nil {
		ws.c.Close()
		var le *LoginError
		if errors.As(err, &le) {
			return nil, le
		}
		return nil, &stageError{"login", stopped(ctx, err)}
	}
	if !stop() {
		// ctx ended as the login finished: the socket's deadline is spent.
		ws.c.Close()
		return nil, &stageError{"login", stopped(ctx, context.Cause(ctx))}
	}
	ws.c.SetReadDeadline(time.Time{})
	s.lastIn.Store(time.Now().UnixNano())
	return s, nil
}

// loginSDK sends the wslogin and reads its reply.
func (s *Session) loginSDK(userID, userSig string) error {
	seq, err := s.write(wire.CmdLogin, loginBody, userID, userSig)
	if err != nil {
		return err
	}
	for {
		data, err := s.ws.readMessage()
		if err != nil {
			return err
		}
		var f loginFrame
		if wire.Unmarshal(data, &f) != nil || f.Head.ServCmd != wire.CmdLogin || uint64(f.Head.Seq) != seq {
			continue // a push before the reply: not ours to judge
		}
		r := &f.Body
		if r.ErrorCode != 0 || r.ActionStatus == "FAIL" {
			return &LoginError{Code: r.ErrorCode, Info: r.ErrorInfo}
		}
		if r.A2Key == "" || r.TinyID == "" {
			return errors.New("bad reply: no A2Key or TinyId")
		}
		s.a2, s.tinyID, s.InstID = r.A2Key, r.TinyID, r.InstID
		s.HelloInterval = time.Duration(r.HelloInterval) * time.Second
		return nil
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
	return s.seq, s.ws.writeFrame(opBinary, b, time.Now().Add(10*time.Second))
}

// Close ends the socket (the Target's CloseMode: close frame 4000, like
// the SDK, then TCP close; or a TCP reset) without logging out, and waits for the reader if Keep started one.
func (s *Session) Close() {
	if !s.hangUp() {
		<-s.done
		return
	}
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

// hangUp stops the timer and closes the socket (close frame 4000, then
// TCP close; or a reset), once; it reports whether this call did it. The reader then
// ends without counting a disconnect.
func (s *Session) hangUp() bool {
	if s.closing.Swap(true) {
		return false
	}
	s.wmu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.reset {
		// SO_LINGER 0: close sends RST and frees the socket at once,
		// on both sides (no FIN exchange, no TIME_WAIT).
		if tc, ok := s.ws.c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	} else if s.proto != ProtoTCP {
		s.ws.closeFrame(closeSDK)
	}
	s.wmu.Unlock()
	s.ws.c.Close()
	return true
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
