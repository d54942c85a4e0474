// Package server is the gateway of `chatctl serve`: the WebSocket protocol
// of the Tencent Cloud Chat Web SDK 3.6.6 (docs/PROTOCOL.md) on /binfo and
// /info, the login registry with its kick policies, and the REST API of
// pkg/server/rest on /v4/. Durable state lives in a store.Store.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/server/ui"
	"chatctl/pkg/sig"

	"github.com/gorilla/websocket"
)

// Multi-device policies of an app (AppConfig.MultiDevice).
const (
	// MultiDeviceMulti lets platforms coexist: one terminal per platform,
	// WebInstances Web instances.
	MultiDeviceMulti = "multi"
	// MultiDeviceSingle allows one platform at a time: a login on any
	// platform kicks the user's instances on every other platform.
	MultiDeviceSingle = "single"
)

// StoreFile is the name of the bolt store file in a data dir.
const StoreFile = "chatctl.db"

// Defaults of Config.
const (
	DefaultHelloInterval = 5 * time.Second
	MinHeartbeatTimeout  = 30 * time.Second
	DefaultWriteTimeout  = 10 * time.Second
	// MaxHelloInterval bounds Config.HelloInterval: it is how often the
	// SDK says it is alive, and so how long a dead socket may hold its
	// instance; past it 3 × hello (the default heartbeat timeout)
	// overflowed to 30 s, below the hello interval.
	MaxHelloInterval = time.Hour
)

// AppConfig is one app the server serves.
type AppConfig struct {
	SDKAppID     uint64
	Key          string   // the secret key UserSigs are minted with
	Admins       []string // REST administrators
	WebInstances int      // Web instances one user may have online; 0 = 1
	MultiDevice  string   // MultiDeviceMulti (default) or MultiDeviceSingle
}

// Config configures a Server.
type Config struct {
	Apps  []AppConfig
	Store store.Store // required; the caller closes it after Shutdown
	// HelloInterval is sent to the SDK in wslogin (default 5 s): the SDK
	// sends wshello that often, and a disconnected SDK retries at least
	// that often (PROTOCOL.md addendum 3).
	HelloInterval time.Duration
	// HeartbeatTimeout closes a socket that sent nothing for that long
	// (default max(30 s, 3 × HelloInterval); the SDK sends a heartbeat after
	// 10 s without inbound frames).
	HeartbeatTimeout time.Duration
	// WriteTimeout bounds each write to a socket, and how long a client may
	// leave its replies unread, before it is dropped (default 10 s).
	WriteTimeout time.Duration
	// AllowedOrigins are the browser origins ("https://app.example:8443",
	// or "*" for any) allowed besides requests without Origin and same-host ones.
	AllowedOrigins []string
	Logger         *slog.Logger     // nil = discard
	Now            func() time.Time // nil = time.Now
	Bus            Bus              // nil = an in-process bus
	// Presence, if set, is the list of every node's instances (several
	// nodes on one Redis: pkg/server/cluster); nil keeps it in this
	// node's memory (MemoryPresence).
	Presence Presence
	// Unpaced turns off the pacing of inbound frames (pace.go). For
	// benchmarks of the per-frame cost only: a server on a network needs it.
	Unpaced bool
	// ConnRate and ConnBurst limit new connections per source address (an
	// IPv4 address, an IPv6 /64, and an IPv6 /48 at SiteFactor times
	// them): a burst of ConnBurst, then ConnRate a second; ConnMax, the
	// connections it holds open at once. Over either
	// a connection is reset unread (connlimit.go), and a limited source's
	// frames also draw on its own bucket (pace.go). 0 (the default) turns
	// each off; `chatctl serve` sets DefaultConnRate, DefaultConnBurst and
	// DefaultConnMax. Loopback sources are exempt unless ConnLimitLoopback.
	ConnRate          float64
	ConnBurst         int
	ConnMax           int
	ConnLimitLoopback bool
}

type userKey struct {
	app  uint64
	user string
}

type instKey struct {
	app  uint64
	inst uint64
}

// Server is the chat gateway. Its methods are safe for concurrent use.
type Server struct {
	apps         map[uint64]*AppConfig
	verifiers    map[uint64]*sig.Verifier
	store        store.Store
	bus          Bus
	presence     Presence // MemoryPresence on one node
	retryWrites  bool     // a cluster: failed store writes are owed (repair.go)
	instLocks    instLocks
	unsub        func()
	log          *slog.Logger
	now          func() time.Time
	secret       []byte
	hello        time.Duration
	hbTimeout    time.Duration
	writeTimeout time.Duration
	origins      map[string]bool
	anyOrigin    bool
	upgrader     websocket.Upgrader
	handler      http.Handler
	locks        lockout
	feed         *ui.Feed     // lifecycle events for the page (events.go)
	unauthLines  lineLimiter  // unauthenticated failures in the log (logbound.go)
	framePace    framePace    // frames per socket and per user (pace.go)
	connLimit    *connLimit   // new connections per source (connlimit.go)
	refused      atomic.Int64 // connections reset by connLimit
	blocked      atomic.Int64 // sources handed to the kernel (synfilter.go)
	gcs          forcedGC     // /debug/stats?gc=1's collections (metrics.go)

	hub *hub // this node's instances and the sockets holding them (hub.go)

	// mu guards the sockets and what waits on them: the open sockets, the
	// held and repeated kick pushes, closing and the HTTP servers. Taken
	// before the hub's lock when both are (a login's hold and attach,
	// registry.go), never after it.
	mu      sync.Mutex
	conns   map[*conn]struct{}
	kp      kickPushes // held and repeated kick pushes (kickpush.go)
	closing bool
	srvs    []*http.Server
	wg      sync.WaitGroup // one per socket

	pendingMu  sync.Mutex
	pending    map[instKey]pendingWrite // failed store writes to retry (repair.go)
	revokingMu sync.Mutex
	revoking   map[instKey]revoking // kicked instances whose revocation is being written (kick.go)
}

// New checks cfg and returns a Server; it reads the A2Key secret from the store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	if len(cfg.Apps) == 0 {
		return nil, errors.New("server: no app configured")
	}
	s := &Server{
		apps:      map[uint64]*AppConfig{},
		verifiers: map[uint64]*sig.Verifier{},
		store:     cfg.Store,
		bus:       cfg.Bus,
		presence:  cfg.Presence,
		// Config.Presence is a cluster's: its node retries the writes
		// that failed (the cluster).
		retryWrites: cfg.Presence != nil,
		log:         cfg.Logger,
		now:         cfg.Now,
		hello:       cfg.HelloInterval,
		origins:     map[string]bool{},
		conns:       map[*conn]struct{}{},
		kp:          newKickPushes(),
		pending:     map[instKey]pendingWrite{},
		revoking:    map[instKey]revoking{},
		framePace:   framePace{off: cfg.Unpaced},
		connLimit:   newConnLimit(cfg.ConnRate, cfg.ConnBurst, cfg.ConnMax, cfg.ConnLimitLoopback),
	}
	for _, a := range cfg.Apps {
		if a.SDKAppID == 0 || a.Key == "" {
			return nil, fmt.Errorf("server: app %d needs an SDKAppID and a key", a.SDKAppID)
		}
		if _, dup := s.apps[a.SDKAppID]; dup {
			return nil, fmt.Errorf("server: app %d configured twice", a.SDKAppID)
		}
		if a.WebInstances < 0 {
			return nil, fmt.Errorf("server: app %d: web instances must be at least 1", a.SDKAppID)
		}
		if a.WebInstances == 0 {
			a.WebInstances = 1
		}
		switch a.MultiDevice {
		case "":
			a.MultiDevice = MultiDeviceMulti
		case MultiDeviceMulti, MultiDeviceSingle:
		default:
			return nil, fmt.Errorf("server: app %d: multi-device policy must be %q or %q, not %q",
				a.SDKAppID, MultiDeviceMulti, MultiDeviceSingle, a.MultiDevice)
		}
		a.Admins = append([]string(nil), a.Admins...)
		s.apps[a.SDKAppID] = &a
		s.verifiers[a.SDKAppID] = sig.NewVerifier(a.SDKAppID, a.Key)
	}
	s.log = slog.New(boundHandler{cmp.Or(s.log, slog.New(slog.DiscardHandler)).Handler()})
	if s.now == nil {
		s.now = time.Now
	}
	if s.hello <= 0 {
		s.hello = DefaultHelloInterval
	}
	s.hello = min(max(s.hello, time.Second), MaxHelloInterval)
	s.hbTimeout = cfg.HeartbeatTimeout
	if s.hbTimeout <= 0 {
		s.hbTimeout = max(MinHeartbeatTimeout, 3*s.hello)
	}
	s.writeTimeout = cfg.WriteTimeout
	if s.writeTimeout <= 0 {
		s.writeTimeout = DefaultWriteTimeout
	}
	s.hub = newHub(s.hbTimeout)
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			s.anyOrigin = true
			continue
		}
		if err := CheckAllowedOrigin(o); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.origins[originKey(o)] = true
	}
	if s.bus == nil {
		s.bus = NewLocalBus()
	}
	if cfg.Presence == nil {
		s.presence = NewMemoryPresence(s.store, s.now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secret, err := s.store.Secret(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: a2 secret: %w", err)
	}
	if len(secret) < 16 {
		return nil, errors.New("server: the store's a2 secret is too short")
	}
	s.secret = secret
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  2048,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      s.checkOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	s.feed = ui.NewFeed(feedKeep, ui.MaxSubscribers, s.now) // lifecycle events for the page
	s.handler = withDeadlines(s.withDebug(s.routes()))
	s.unsub = s.bus.Subscribe(s.deliverKick)
	return s, nil
}

// HelloInterval is the interval the server sends in wslogin.
func (s *Server) HelloInterval() time.Duration { return s.hello }

// HeartbeatTimeout is how long a silent socket is kept.
func (s *Server) HeartbeatTimeout() time.Duration { return s.hbTimeout }

// Handler serves /binfo and /info (WebSocket), /v4/... (REST), /healthz,
// the page /ui/ (pkg/server/ui) and /debug/stats (loopback; metrics.go).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	rest := s.restHandler()
	page := ui.Handler(&uiBackend{s: s, rest: rest})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The SDK concatenates proxyServer and "/binfo" verbatim, so a
		// trailing slash in proxyServer gives "//binfo": accept it.
		p := "/" + strings.TrimLeft(r.URL.Path, "/")
		if mt, ok := wsMsgType(p); ok {
			s.serveWS(w, r, mt)
			return
		}
		if !s.paceRequest(r) {
			return // the client went away while it waited
		}
		switch {
		case p == "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok\n"))
		case strings.HasPrefix(p, "/v4/"):
			rest.ServeHTTP(w, r)
		case p == "/ui" || strings.HasPrefix(p, ui.Prefix):
			page.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// wsMsgType is the message type of the WebSocket paths, leading slashes
// collapsed (see routes): /binfo binary, /info text. Both routes and the
// first-request upgrade (upgrade.go) ask it.
func wsMsgType(path string) (int, bool) {
	switch strings.TrimLeft(path, "/") {
	case "binfo":
		return websocket.BinaryMessage, true
	case "info":
		return websocket.TextMessage, true
	}
	return 0, false
}

// Serve accepts connections on ln until Shutdown; it returns nil after
// Shutdown and the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	srv := &http.Server{
		Handler: s.handler,
		// Every request head, upgrade or not, is bounded in size and time
		// alike (upgrade.go reads the upgrades); a body and an answer have
		// httpTimeout (withDeadlines), and a kept-alive connection between
		// requests idleTimeout.
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// Each request knows its connection's source (paceRequest).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if src := sourceOf(c); src != nil {
				return context.WithValue(ctx, connSourceKey{}, src)
			}
			return ctx
		},
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.srvs = append(s.srvs, srv)
	s.mu.Unlock()
	err := srv.Serve(s.wsListener(ln))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// closeGrace is how long Shutdown waits for a client to answer the close
// frame before it drops the TCP connection.
const closeGrace = time.Second

// Shutdown stops accepting, closes every socket with a close frame (1001
// "server shutting down") and waits for them, or until ctx is done. It does
// not close the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.stopKickPushesLocked()
	s.feed.Close() // event streams end: the HTTP shutdown would wait for them
	srvs := s.srvs
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()

	herrs := make([]error, len(srvs))
	var hwg sync.WaitGroup
	for i, srv := range srvs {
		hwg.Go(func() { herrs[i] = srv.Shutdown(ctx) })
	}
	for _, c := range conns {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.ws.Close()
		}
		s.mu.Unlock()
		<-done
		err = ctx.Err()
	}
	hwg.Wait()
	s.unsub() // New subscribed, whatever the bus
	if err == nil {
		err = errors.Join(herrs...)
	}
	return err
}

// App returns an app's secret key and administrators (rest.Backend).
func (s *Server) App(sdkappid uint64) (key string, admins []string, ok bool) {
	a := s.apps[sdkappid]
	if a == nil {
		return "", nil, false
	}
	return a.Key, append([]string(nil), a.Admins...), true
}

// Store is the server's durable state (rest.Backend).
func (s *Server) Store() store.Store { return s.store }

// Now is the server's clock (rest.Backend).
func (s *Server) Now() time.Time { return s.now() }
