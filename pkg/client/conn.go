package client

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

	"github.com/gorilla/websocket"

	"chatctl/pkg/wire"
)

// Header constants the SDK 3.6.6 sends on every request (PROTOCOL.md 2.1).
const (
	closeSDK       = 4000 // the SDK's close code when it tears a socket down
	maxInboundSize = 1 << 20
	pushBuffer     = 64
	outBuffer      = 64
)

// creds are the credentials a request head carries.
type creds struct {
	userID, userSig string // before login
	a2, tinyID      string // after login
	instID          uint64
}

// Conn is one WebSocket to the chat server with exactly one reader and one
// writer goroutine. All methods are safe for concurrent use; Close is safe
// from anywhere and more than once.
type Conn struct {
	cfg    Config
	ws     *websocket.Conn
	seq    *seqGen
	pend   *pendingTable
	out    chan []byte
	pushes chan wire.Frame
	done   chan struct{}
	wg     sync.WaitGroup

	lastIn atomic.Int64 // unix nanos (real clock) of the last inbound frame

	mu      sync.Mutex
	cred    creds
	err     error // why the socket ended; set once
	sendEnd bool  // writer should send a close frame before closing
	ended   bool
}

// BuildURL returns the socket URL for cfg like the SDK builds it: the query
// in the SDK's order, without compress=gzip (this client does not inflate
// COMP frames). With Endpoint EndpointCloud it is the URL of the first host
// the SDK tries for cfg.SDKAppID (Cloud).
func BuildURL(cfg Config) (string, error) {
	cfg = cfg.withDefaults()
	return buildURL(newHostCursor(cfg.Endpoint, cfg.SDKAppID).cycle()[0], cfg)
}

// buildURL is BuildURL for the base URL endpoint.
func buildURL(endpoint string, cfg Config) (string, error) {
	ep := strings.TrimRight(strings.TrimSpace(endpoint), "/")
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("bad endpoint %q: want ws://host:port", endpoint)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("bad endpoint %q: want ws://host:port", endpoint)
	}
	inst := cfg.InstanceID
	if inst == "" {
		inst = NewInstanceID()
	}
	// The SDK's getURL order (PROTOCOL.md 1.1); url.Values would sort it.
	q := [][2]string{
		{"sdkappid", strconv.FormatUint(cfg.SDKAppID, 10)},
		{"instanceid", inst},
		{"random", strconv.FormatFloat(rand.Float64(), 'f', -1, 64)},
		{"platform", strconv.Itoa(cfg.Platform)},
		{"host", "unknown"},
		{"version", "-1"},
		{"sdkversion", SDKVersion},
	}
	var b strings.Builder
	for i, kv := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[0] + "=" + url.QueryEscape(kv[1]))
	}
	u.Path += "/binfo"
	u.RawQuery = b.String()
	return u.String(), nil
}

// Dial opens a socket to cfg.Endpoint, or with EndpointCloud to the first
// of the SDK's hosts for cfg.SDKAppID that answers, tried in the SDK's
// order, each within DialTimeout. When none answers the error is an
// *UnreachableError (it matches ErrUnreachable); a single endpoint that
// answers HTTP but refuses the upgrade gives an error wrapping ErrHandshake.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	return dial(ctx, cfg, nil, newHostCursor(cfg.Endpoint, cfg.SDKAppID))
}

// dial is Dial with defaults applied, a seq source (nil: random start) and
// the host cursor to move on from; all hosts share one instance id.
func dial(ctx context.Context, cfg Config, seq *seqGen, hosts *hostCursor) (*Conn, error) {
	if cfg.InstanceID == "" {
		cfg.InstanceID = NewInstanceID()
	}
	d := cfg.Dialer
	if d == nil {
		dd := *websocket.DefaultDialer
		dd.HandshakeTimeout = cfg.DialTimeout
		d = &dd
	}
	cycle := hosts.cycle()
	ue := &UnreachableError{}
	for _, host := range cycle {
		u, err := buildURL(host, cfg)
		if err != nil {
			return nil, err
		}
		hosts.tried(host)
		ue.Tried = append(ue.Tried, u)
		ws, err := dialOne(ctx, d, u, cfg.DialTimeout)
		if err == nil {
			return newConn(cfg, ws, seq), nil
		}
		if errors.Is(err, ErrHandshake) && len(cycle) == 1 {
			return nil, err
		}
		cfg.Logger.Debug("client: host unreachable", "host", hostOf(u), "err", err)
		ue.Err = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, ue
}

// dialOne dials one socket URL within timeout. A host that answers HTTP
// but refuses the upgrade gives an error wrapping ErrHandshake.
func dialOne(ctx context.Context, d *websocket.Dialer, u string, timeout time.Duration) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// gorilla turns only the context's deadline into the connection's, so
	// a signal (ctx canceled) did not end a handshake that a host never
	// answers: `timeout 2 chatctl whoami --check` took the 10 s bound. The
	// connection's deadline is set to now when ctx ends, until the dial
	// is over.
	var stops []func() bool
	var mu sync.Mutex
	cancelable := func(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
		return func(c context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(c, network, addr)
			if err == nil {
				mu.Lock()
				stops = append(stops, context.AfterFunc(dctx, func() { conn.SetDeadline(time.Now()) }))
				mu.Unlock()
			}
			return conn, err
		}
	}
	dd := *d
	if dd.NetDialContext == nil {
		dd.NetDialContext = (&net.Dialer{}).DialContext
	}
	dd.NetDialContext = cancelable(dd.NetDialContext)
	if dd.NetDialTLSContext != nil {
		dd.NetDialTLSContext = cancelable(dd.NetDialTLSContext)
	}
	ws, resp, err := dd.DialContext(dctx, u, nil)
	mu.Lock()
	fired := false
	for _, stop := range stops {
		fired = !stop() || fired
	}
	mu.Unlock()
	if fired && err == nil {
		// ctx ended as the handshake finished: the socket's deadline is
		// spent.
		ws.Close()
		ws, err = nil, context.Cause(dctx)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil && resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
		return nil, fmt.Errorf("%s: %w (HTTP %d)", hostOf(u), ErrHandshake, resp.StatusCode)
	}
	if err != nil {
		if d, ok := dctx.Deadline(); ok && dctx.Err() == nil && !time.Now().Before(d) {
			// The socket's deadline, the context's, cut the read; the
			// context's own timer fires any moment.
			<-dctx.Done()
		}
		if dctx.Err() != nil && !errors.Is(err, dctx.Err()) {
			// The deadline (or a cancel) cut a reply short: the parser's
			// error of the bytes so far ("malformed HTTP response") is
			// not what happened.
			err = fmt.Errorf("%w: %w", err, context.Cause(dctx))
		}
	}
	return ws, err
}

// hostOf is scheme://host of a URL: what messages name (the query holds
// nothing a user needs there).
func hostOf(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return endpoint
}

// newConn starts the reader and writer of ws. seq may be nil (random start).
func newConn(cfg Config, ws *websocket.Conn, seq *seqGen) *Conn {
	if seq == nil {
		seq = newSeqGen(0)
	}
	c := &Conn{
		cfg:    cfg,
		ws:     ws,
		seq:    seq,
		pend:   newPendingTable(),
		out:    make(chan []byte, outBuffer),
		pushes: make(chan wire.Frame, pushBuffer),
		done:   make(chan struct{}),
	}
	c.lastIn.Store(time.Now().UnixNano())
	ws.SetReadLimit(maxInboundSize)
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// end records why the socket ends (first caller wins), fails the pending
// requests and stops the writer, which closes the socket.
func (c *Conn) end(err error, sendClose bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	c.err = err
	c.sendEnd = sendClose
	c.mu.Unlock()
	c.pend.close(err)
	close(c.done)
}

// Close sends a close frame (code 4000, like the SDK), closes the socket
// and waits for the reader and writer to exit. Pending requests fail with
// ErrClosed. It does not log out: use Logout first for that.
func (c *Conn) Close() error {
	c.end(ErrClosed, true)
	c.wg.Wait()
	return nil
}

// Done is closed when the socket has ended (Close, or the connection was
// lost); Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is nil while the socket is up, then ErrClosed or an error wrapping
// ErrConnLost.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Pushes delivers frames that answer no pending request (kick pushes,
// StatSvc.KickOther, ...). Buffered; when nobody reads, extra pushes are
// dropped with a warning. It is never closed: select on Done too.
func (c *Conn) Pushes() <-chan wire.Frame { return c.pushes }

// LastInbound is when the last frame (reply or push) arrived.
func (c *Conn) LastInbound() time.Time { return time.Unix(0, c.lastIn.Load()) }

func (c *Conn) readLoop() {
	defer c.wg.Done()
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.end(fmt.Errorf("%w: %v", ErrConnLost, err), false)
			return
		}
		now := time.Now()
		c.lastIn.Store(now.UnixNano())
		if typ == websocket.BinaryMessage || typ == websocket.TextMessage {
			c.dispatch(data, now)
		}
	}
}

// dispatch hands one inbound frame to the request waiting for it
// (servcmd+seq), or to Pushes.
func (c *Conn) dispatch(data []byte, now time.Time) {
	var f wire.Frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.cfg.Logger.Warn("client: undecodable frame dropped", "err", err, "len", len(data))
		return
	}
	if c.pend.resolve(f.Head.ServCmd, uint64(f.Head.Seq), reply{body: f.Body, at: now}) {
		return
	}
	select {
	case c.pushes <- f:
	default:
		c.cfg.Logger.Warn("client: push dropped, nobody reading", "servcmd", f.Head.ServCmd)
	}
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	defer c.ws.Close()
	for {
		select {
		case b := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
				c.end(fmt.Errorf("%w: %v", ErrConnLost, err), false)
				return
			}
		case <-c.done:
			c.mu.Lock()
			send := c.sendEnd
			c.mu.Unlock()
			if send {
				_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
				_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(closeSDK, ""))
			}
			return
		}
	}
}

// reqOpts choose the head credentials of one request.
type reqOpts struct {
	cred *creds // nil: the Conn's current credentials
}

// start sends a request and returns its pendingCall; the reply arrives on
// call.done. The caller must wait for it or call c.forget(call).
func (c *Conn) start(cmd string, body any, o reqOpts) (*pendingCall, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	var cr creds
	if o.cred != nil {
		cr = *o.cred
	} else {
		c.mu.Lock()
		cr = c.cred
		c.mu.Unlock()
	}
	req := wire.NewRequest(cmd, c.seq.next(), c.cfg.SDKAppID, c.cfg.Platform, raw)
	h := &req.Head
	h.StatusInstID, h.ReqTime = cr.instID, c.cfg.Now().Unix()
	if cr.a2 != "" {
		h.A2, h.TinyID = cr.a2, cr.tinyID
	} else {
		h.Identifier, h.UserSig = cr.userID, cr.userSig
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	call := &pendingCall{Cmd: cmd, Seq: h.Seq, done: make(chan reply, 1)}
	if err := c.pend.add(call); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	call.sent = time.Now()
	select {
	case c.out <- b:
	case <-c.done:
		// end() already failed the call through the table.
	}
	c.cfg.Logger.Debug("client: request", "servcmd", cmd, "seq", h.Seq)
	return call, nil
}

func (c *Conn) forget(call *pendingCall) { c.pend.remove(call) }

// wait waits for call's reply, ctx or timeout, and decodes the envelope:
// a non-zero ErrorCode gives *ServerError.
func (c *Conn) wait(ctx context.Context, call *pendingCall, timeout time.Duration) (reply, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-call.done:
		return r, replyErr(call.Cmd, r)
	case <-t.C:
		c.forget(call)
		return reply{}, fmt.Errorf("%s: %w (%s)", call.Cmd, ErrTimeout, timeout)
	case <-ctx.Done():
		c.forget(call)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The caller's deadline ran out before the reply: to the
			// caller that is no reply in time, as the timeout's own.
			return reply{}, fmt.Errorf("%s: %w (deadline)", call.Cmd, ErrTimeout)
		}
		return reply{}, fmt.Errorf("%s: %w", call.Cmd, ctx.Err())
	}
}

// replyErr turns a reply into an error: transport error, or *ServerError.
func replyErr(cmd string, r reply) error {
	if r.err != nil {
		return fmt.Errorf("%s: %w", cmd, r.err)
	}
	var env struct {
		ErrorCode int    `json:"ErrorCode"`
		ErrorInfo string `json:"ErrorInfo"`
		KickType  int    `json:"KickType"`
	}
	if len(r.body) > 0 && string(r.body) != "null" {
		if err := json.Unmarshal(r.body, &env); err != nil {
			return fmt.Errorf("%s: %w: %v", cmd, ErrBadReply, err)
		}
	}
	if env.ErrorCode != 0 {
		return &ServerError{Cmd: cmd, Code: env.ErrorCode, Info: env.ErrorInfo, KickType: env.KickType}
	}
	return nil
}

// Do sends any request with the Conn's current credentials and returns the
// reply body. The timeout is RequestTimeout; ErrorCode != 0 gives
// *ServerError.
func (c *Conn) Do(ctx context.Context, servcmd string, body any) (json.RawMessage, error) {
	call, err := c.start(servcmd, body, reqOpts{})
	if err != nil {
		return nil, err
	}
	r, err := c.wait(ctx, call, c.cfg.RequestTimeout)
	return r.body, err
}

// loginReply is the wslogin reply; TimeStamp may carry decimals.
type loginReply struct {
	A2Key         string      `json:"A2Key"`
	TinyID        flexString  `json:"TinyId"`
	InstID        uint64      `json:"InstId"`
	HelloInterval int         `json:"HelloInterval"`
	TimeStamp     json.Number `json:"TimeStamp"`
}

// flexString is a JSON string, or a number kept as its literal text
// (TinyId must stay a string; a server might send it as a number).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n)
	return nil
}

var loginBody = wire.LoginRequest{State: "Online"}

// Login is the first login (identifier+usersig in the head). On success the
// Conn switches to the a2 form for every later request.
func (c *Conn) Login(ctx context.Context, userID, userSig string) (LoginResult, error) {
	cr := creds{userID: userID, userSig: userSig}
	c.mu.Lock()
	c.cred = cr // like the SDK: identifier+usersig until the A2Key arrives
	c.mu.Unlock()
	res, err := c.login(ctx, cr)
	if err != nil {
		return res, err
	}
	res.UserID = userID
	c.mu.Lock()
	c.cred = creds{userID: userID, a2: res.A2Key, tinyID: res.TinyID, instID: res.InstID}
	c.mu.Unlock()
	return res, nil
}

// Relogin is the a2 re-login (a2+tinyid+status_instid, no usersig) of a
// saved Session. Like the SDK it keeps the Session's A2Key and takes only
// InstId (and the clock) from the reply. On success the Conn uses these
// credentials for every later request.
func (c *Conn) Relogin(ctx context.Context, s Session) (LoginResult, error) {
	cr := creds{userID: s.UserID, a2: s.A2Key, tinyID: s.TinyID, instID: s.InstID}
	c.mu.Lock()
	c.cred = cr
	c.mu.Unlock()
	res, err := c.login(ctx, cr)
	if err != nil {
		return res, err
	}
	res.UserID, res.A2Key, res.TinyID = s.UserID, s.A2Key, s.TinyID
	if res.InstID == 0 {
		res.InstID = s.InstID
	}
	c.mu.Lock()
	c.cred.instID = res.InstID
	c.mu.Unlock()
	return res, nil
}

func (c *Conn) login(ctx context.Context, cr creds) (LoginResult, error) {
	call, err := c.start(wire.CmdLogin, loginBody, reqOpts{cred: &cr})
	if err != nil {
		return LoginResult{}, err
	}
	r, err := c.wait(ctx, call, c.cfg.LoginTimeout)
	if err != nil {
		return LoginResult{}, err
	}
	return parseLogin(r, call, c.cfg.Now(), cr.a2 == "")
}

// parseLogin decodes a successful wslogin reply read at local time local.
// A first login must carry A2Key and TinyId (the SDK's 2023 and 2022).
func parseLogin(r reply, call *pendingCall, local time.Time, first bool) (LoginResult, error) {
	var lr loginReply
	if err := json.Unmarshal(r.body, &lr); err != nil {
		return LoginResult{}, fmt.Errorf("%s: %w: %v", wire.CmdLogin, ErrBadReply, err)
	}
	res := LoginResult{
		A2Key: lr.A2Key, TinyID: string(lr.TinyID), InstID: lr.InstID,
		HelloInterval: time.Duration(lr.HelloInterval) * time.Second,
		RTT:           r.at.Sub(call.sent), LocalTime: local,
	}
	if first {
		if res.A2Key == "" {
			return LoginResult{}, fmt.Errorf("%s: %w: no A2Key", wire.CmdLogin, ErrBadReply)
		}
		if res.TinyID == "" {
			return LoginResult{}, fmt.Errorf("%s: %w: no TinyId", wire.CmdLogin, ErrBadReply)
		}
	}
	if ts, err := lr.TimeStamp.Float64(); err == nil && ts > 0 {
		res.ServerTime, res.Offset = clockOffset(ts, res.RTT, local)
	}
	return res, nil
}

// clockOffset is PROTOCOL.md 4.9: offset = TimeStamp*1000 + RTT/2 - now (ms).
func clockOffset(timestamp float64, rtt time.Duration, local time.Time) (server time.Time, offset time.Duration) {
	sec := int64(timestamp)
	nsec := int64((timestamp - float64(sec)) * 1e9)
	server = time.Unix(sec, nsec)
	offset = server.Add(rtt / 2).Sub(local)
	return server, offset.Round(time.Millisecond)
}

// Heartbeat sends heartbeat.alive and returns its round trip. The timeout
// is HeartbeatTimeout (the SDK's 3 s).
func (c *Conn) Heartbeat(ctx context.Context) (time.Duration, error) {
	call, err := c.start(wire.CmdHeartbeat, struct{}{}, reqOpts{})
	if err != nil {
		return 0, err
	}
	r, err := c.wait(ctx, call, c.cfg.HeartbeatTimeout)
	if err != nil {
		return 0, err
	}
	return r.at.Sub(call.sent), nil
}

// Hello sends im_open_status.wshello.
func (c *Conn) Hello(ctx context.Context) error {
	_, err := c.Do(ctx, wire.CmdHello, wire.HelloRequest{})
	return err
}

// Logout sends wslogout with the given type (wire.LogoutUser 0, or
// wire.LogoutKickAck 1) and waits for the reply.
func (c *Conn) Logout(ctx context.Context, typ int) error {
	_, err := c.Do(ctx, wire.CmdLogout, wire.LogoutRequest{LogoutType: typ})
	return err
}

// Probe dials a fresh socket, re-logs in with s (a2 form), and closes it
// (once more on another when the first is lost: onFreshSocket).
// The wslogin reply is the only one carrying TimeStamp, so this is both the
// live "is this session still good" check (whoami --check) and the live
// clock measurement (server-time): the result holds ServerTime, RTT and
// Offset. Errors: ErrUnreachable (wrapped), *ServerError: use its
// KickedType() (userSigExpired, multipleAccount, ...; a refusal naming no
// kick is followed by one heartbeat, which a server answers with 70001 when
// the UserSig ran out) and RevokedReason() ("logout", ...).
//
// Caveat: the re-login moves the instance to the probe's socket on a server
// that tracks one socket per instance; a Watch of the same session on
// another socket then depends on the server telling it (StatSvc.KickOther,
// which Watch answers with a re-login, as the SDK does).
func Probe(ctx context.Context, cfg Config, s Session) (res LoginResult, err error) {
	err = onFreshSocket(ctx, cfg, func(c *Conn) error {
		if res, err = c.Relogin(ctx, s); err != nil {
			return c.explainRefusal(ctx, err)
		}
		return nil
	})
	return res, err
}

// onFreshSocket runs f on a fresh socket, and once more on another when
// the first died while a request was pending (ErrConnLost), as the SDK
// reconnects: a server closes an instance's other sockets when one of them
// logs it out (a `chatctl logout` beside this run), and the second
// socket's a2 re-login hears why (70002 instance revoked: logout), where
// the lost socket only said "unreachable".
func onFreshSocket(ctx context.Context, cfg Config, f func(*Conn) error) error {
	for try := 0; ; try++ {
		c, err := Dial(ctx, cfg)
		if err != nil {
			return err
		}
		err = f(c)
		c.Close()
		if try > 0 || !errors.Is(err, ErrConnLost) || ctx.Err() != nil {
			return err
		}
	}
}

// LogoutSession logs a saved Session out on the server the way the SDK
// does after a reconnect: a fresh socket, the a2 re-login, then wslogout
// type 0, then close. A refused re-login returns its *ServerError (the
// session is already over: see KickedType and RevokedReason) and sends no
// wslogout; network failures wrap ErrUnreachable.
//
// A socket lost once the wslogout was out (the server closes an
// instance's other sockets when one logs it out: two logouts of one
// profile at once) is tried once more (onFreshSocket). There a re-login
// refused as "revoked: logout" means the instance is logged out, by this
// wslogout or the other one, as asked: nil. It was "unreachable, the
// session is kept" of a session the server had ended.
func LogoutSession(ctx context.Context, cfg Config, s Session) error {
	sent := false // a wslogout went out on a socket then lost
	return onFreshSocket(ctx, cfg, func(c *Conn) error {
		if _, err := c.Relogin(ctx, s); err != nil {
			var se *ServerError
			if sent && errors.As(err, &se) && se.RevokedReason() == "logout" {
				return nil
			}
			return c.explainRefusal(ctx, err)
		}
		err := c.Logout(ctx, wire.LogoutUser)
		sent = sent || errors.Is(err, ErrConnLost)
		return err
	})
}

// explainRefusal follows up a refused a2 re-login whose code names no kick
// with one heartbeat on the same socket: a server that found the UserSig
// expired while the client was away answers it with 70001, as it would
// for the SDK (whose next heartbeat then gives KICKED_OUT userSigExpired).
// It returns that 70001 *ServerError, or err unchanged.
func (c *Conn) explainRefusal(ctx context.Context, err error) error {
	var se *ServerError
	if !errors.As(err, &se) || se.KickedType() != "" {
		return err
	}
	if _, herr := c.Heartbeat(ctx); herr != nil {
		var he *ServerError
		if errors.As(herr, &he) && he.SigExpired() {
			return he
		}
	}
	return err
}
