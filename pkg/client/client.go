// Package client speaks the Tencent Cloud Chat Web SDK 3.6.6 WebSocket
// protocol (docs/PROTOCOL.md) the way the official SDK does: one socket to
// <Endpoint>/binfo (or, with EndpointCloud, to Tencent's hosts in the SDK's
// order: docs/CLOUD.md), binary JSON frames, requests matched by
// servcmd+seq.
//
// Two layers:
//
//   - Conn: one socket with exactly one reader and one writer goroutine.
//     Login (identifier+usersig), Relogin (a2+tinyid), Heartbeat, Hello,
//     Logout, Do (any servcmd). Probe dials, re-logs in with a saved Session
//     and closes: the live check behind `whoami --check` and `server-time`.
//   - Watch: attaches a saved Session and keeps it alive like the SDK does
//     (heartbeats, hellos, kick handling, reconnects with backoff), emitting
//     lifecycle Events in order from the caller's goroutine.
//
// Secrets (UserSig, A2Key) are never logged and never appear in errors.
package client

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"chatctl/pkg/wire"
)

// SDK-like defaults (PROTOCOL.md 2.4, 3.2).
const (
	DefaultPlatform         = 7 // web
	DefaultHeartbeatIdle    = 10 * time.Second
	DefaultHeartbeatTimeout = 3 * time.Second
	DefaultRequestTimeout   = 15 * time.Second
	DefaultLoginTimeout     = 90 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultTick             = time.Second
	DefaultBackoffMin       = 250 * time.Millisecond
	DefaultBackoffMax       = 5 * time.Second
	// SDKVersion is the Web SDK version this client imitates.
	SDKVersion = wire.SDKVersion
)

// Config says where and how to connect. Only Endpoint and SDKAppID are
// required; zero durations take the SDK-like defaults above.
type Config struct {
	// Endpoint is ws://host:port or wss://host:port (http/https are
	// accepted and mapped); "/binfo?..." is appended like the SDK's
	// proxyServer. EndpointCloud means Tencent's hosts for SDKAppID
	// (Cloud).
	Endpoint string
	SDKAppID uint64
	// Platform goes into the URL and the head; 0 means 7 (web).
	Platform int
	// InstanceID is the SDK instance id (32 hex) in the URL; a random one
	// is made per Dial when empty. Watch keeps one across its reconnects.
	InstanceID string
	// Dialer to use; nil means a copy of websocket.DefaultDialer with
	// HandshakeTimeout DialTimeout.
	Dialer *websocket.Dialer
	// Logger gets debug/warn records (never secrets); nil discards.
	Logger *slog.Logger
	// Now is the local clock used for reqtime, the server-time offset and
	// event times; nil means time.Now.
	Now func() time.Time

	// DialTimeout bounds the WebSocket handshake, DNS and TCP included, of
	// each host tried (default 10 s).
	DialTimeout time.Duration
	// WriteTimeout bounds each frame write (default 10 s).
	WriteTimeout time.Duration
	// RequestTimeout is the reply timeout of ordinary requests (wshello,
	// wslogout, Do); the SDK's is 15 s.
	RequestTimeout time.Duration
	// LoginTimeout is the reply timeout of wslogin; the SDK's is 90 s.
	LoginTimeout time.Duration
	// HeartbeatIdle: Watch sends heartbeat.alive after this long without
	// any inbound frame (SDK: 10 s).
	HeartbeatIdle time.Duration
	// HeartbeatTimeout: Watch reconnects when a heartbeat is not answered
	// within it (SDK: 3 s). Also the default timeout of Conn.Heartbeat.
	HeartbeatTimeout time.Duration
	// HelloInterval overrides the server's HelloInterval in Watch when > 0;
	// when 0 the wslogin reply's value is used (none: no hellos).
	HelloInterval time.Duration
	// Tick is Watch's timer resolution (SDK: 1 s).
	Tick time.Duration
	// BackoffMin and BackoffMax bound Watch's reconnect delays
	// (exponential, with jitter; defaults 250 ms and 5 s).
	BackoffMin, BackoffMax time.Duration
}

func (c Config) withDefaults() Config {
	if c.Platform == 0 {
		c.Platform = DefaultPlatform
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.LoginTimeout, DefaultLoginTimeout)
	def(&c.HeartbeatIdle, DefaultHeartbeatIdle)
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.Tick, DefaultTick)
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	return c
}

// NewInstanceID returns a random 32-hex SDK instance id.
func NewInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Session is what a saved login needs for an a2 re-login (PROTOCOL.md 4.2).
type Session struct {
	UserID string // for logs and events only; not sent in the a2 form
	A2Key  string
	TinyID string
	InstID uint64 // sent as status_instid
}

// LoginResult is a successful wslogin reply plus the clock measurement of
// PROTOCOL.md 4.9.
type LoginResult struct {
	UserID        string
	A2Key         string // for Relogin: the A2Key the client keeps (the reply's is ignored, like the SDK)
	TinyID        string
	InstID        uint64
	HelloInterval time.Duration // 0 when the server sent none
	// ServerTime is the reply's TimeStamp (whole seconds unless the server
	// sends decimals); zero when absent.
	ServerTime time.Time
	// RTT is from writing the wslogin request to reading its reply.
	RTT time.Duration
	// Offset is server minus local clock, the SDK formula:
	// TimeStamp*1000 + RTT/2 - Date.now() (at the reply). Zero, with
	// ServerTime zero, when the reply had no TimeStamp.
	Offset time.Duration
	// LocalTime is the local clock (Config.Now) when the reply was read.
	LocalTime time.Time
}

// Session returns the Session to save for later a2 re-logins.
func (r LoginResult) Session() Session {
	return Session{UserID: r.UserID, A2Key: r.A2Key, TinyID: r.TinyID, InstID: r.InstID}
}

// ServerNow is the server's clock now per the measured offset, like the
// SDK's getServerTime().
func (r LoginResult) ServerNow(now time.Time) time.Time { return now.Add(r.Offset) }

// Errors. Network failures wrap ErrUnreachable so callers can map them to
// one exit code with errors.Is.
var (
	// ErrUnreachable: the endpoint could not be reached (dial refused,
	// DNS, handshake timeout), the socket was lost, or no reply came.
	ErrUnreachable = errors.New("server unreachable")
	// ErrConnLost: the socket died while a request was pending. It wraps
	// ErrUnreachable.
	ErrConnLost = fmt.Errorf("connection lost: %w", ErrUnreachable)
	// ErrTimeout: no reply within the request's timeout. It wraps
	// ErrUnreachable.
	ErrTimeout = fmt.Errorf("no reply in time: %w", ErrUnreachable)
	// ErrClosed: the Conn was closed by Close.
	ErrClosed = errors.New("connection closed")
	// ErrHandshake: something answered at the endpoint but refused the
	// WebSocket upgrade (not a chat server?). It does not wrap
	// ErrUnreachable.
	ErrHandshake = errors.New("websocket handshake refused")
	// ErrBadReply: the server's reply broke the protocol (no A2Key, ...).
	ErrBadReply = errors.New("bad reply")
)

// UnreachableError is Dial's error when no host answered: one for a single
// endpoint, each of the SDK's hosts for EndpointCloud. It matches
// ErrUnreachable and whatever Err matches (a context's error, a DNS error,
// ErrHandshake when the last host answered HTTP but refused the upgrade).
type UnreachableError struct {
	// Tried are the socket URLs dialled, in order. They hold the SDKAppID,
	// instance id and the like, no secret.
	Tried []string
	// Err is why the last of them failed.
	Err error
}

// Error names the hosts tried (scheme://host) on one line.
func (e *UnreachableError) Error() string {
	hosts := make([]string, len(e.Tried))
	for i, u := range e.Tried {
		hosts[i] = hostOf(u)
	}
	why := "no host to try"
	if e.Err != nil {
		why = e.Err.Error()
	}
	if len(hosts) == 1 {
		return fmt.Sprintf("%s: %v: %s", hosts[0], ErrUnreachable, why)
	}
	return fmt.Sprintf("%v: tried %s (last: %s)", ErrUnreachable, strings.Join(hosts, ", "), why)
}

func (e *UnreachableError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUnreachable}
	}
	return []error{ErrUnreachable, e.Err}
}

// ServerError is a non-zero ErrorCode in a reply (PROTOCOL.md 2.4).
type ServerError struct {
	Cmd      string // servcmd of the request
	Code     int    // ErrorCode
	Info     string // ErrorInfo
	KickType int    // with Code 1002 (PROTOCOL.md 4.7), else 0
}

func (e *ServerError) Error() string {
	if e.Info == "" {
		return fmt.Sprintf("%s: server error %d", e.Cmd, e.Code)
	}
	return fmt.Sprintf("%s: %s (code %d)", e.Cmd, e.Info, e.Code)
}

// SigExpired reports whether the code means "UserSig expired" to the SDK
// (70001 or 20002, PROTOCOL.md 4.6).
func (e *ServerError) SigExpired() bool {
	return e.Code == wire.CodeSigExpired || e.Code == codeSigExpiredAlt
}

// RevokedPrefix starts the ErrorInfo of our server's refusal (70002) of an
// a2 re-login whose instance was revoked, e.g. "instance revoked:
// multipleAccount" (pkg/server/store: RevokeInstance).
const RevokedPrefix = "instance revoked: "

// RevokedReason returns why the server refused an a2 re-login: a KICKED_OUT
// type (multipleAccount, multipleDevice, REST_API_Kick, userSigExpired),
// "logout", or another reason the server gave; "" when this is not such a
// refusal.
func (e *ServerError) RevokedReason() string {
	if e.Code != wire.CodeA2Rejected || !strings.HasPrefix(e.Info, RevokedPrefix) {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(e.Info, RevokedPrefix))
}

// KickedType returns the KICKED_OUT type a refused a2 re-login stands for:
// userSigExpired for 70001/20002, the KickType of a 1002 reply, or the
// revocation reason when it is a kick type; "" otherwise (e.g. a logout
// elsewhere or an unknown A2Key).
func (e *ServerError) KickedType() string {
	switch {
	case e.SigExpired():
		return KickedUserSigExpired
	case e.Code == wire.CodeKickedByReply && e.KickType != 0:
		return wire.KickTypeName(e.KickType)
	}
	switch r := e.RevokedReason(); r {
	case KickedMultipleAccount, KickedMultipleDevice, KickedRESTAPI, KickedUserSigExpired:
		return r
	}
	return ""
}

// codeSigExpiredAlt is the other code the SDK treats as userSigExpired.
const codeSigExpiredAlt = 20002

// KickedError ends Watch after a KICKED_OUT event.
type KickedError struct {
	Type string // multipleAccount, multipleDevice, REST_API_Kick, userSigExpired
}

func (e *KickedError) Error() string { return "kicked out: " + e.Type }

// Lifecycle event names (the SDK's TencentCloudChat.EVENT values).
const (
	EventSDKReady       = "SDK_READY"
	EventSDKNotReady    = "SDK_NOT_READY"
	EventNetStateChange = "NET_STATE_CHANGE"
	EventKickedOut      = "KICKED_OUT"
)

// NET_STATE_CHANGE states.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
)

// KICKED_OUT types.
const (
	KickedMultipleAccount = "multipleAccount"
	KickedMultipleDevice  = "multipleDevice"
	KickedRESTAPI         = "REST_API_Kick"
	KickedUserSigExpired  = wire.KickedUserSigExpired
	KickedUnknown         = wire.KickedUnknown
)

// Event is one lifecycle event of Watch.
type Event struct {
	Name  string    `json:"event"`
	State string    `json:"state,omitempty"` // NET_STATE_CHANGE
	Type  string    `json:"type,omitempty"`  // KICKED_OUT
	Code  int       `json:"code,omitempty"`  // SDK_NOT_READY after a refused a2 re-login
	Info  string    `json:"info,omitempty"`  // the server's ErrorInfo with Code
	Time  time.Time `json:"time"`
}
