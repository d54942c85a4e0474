// Package servertest runs a real chatctl server on loopback for tests, the
// way net/http/httptest runs an HTTP server: a bbolt store in a temp dir,
// one app with a random key, WebSocket and REST on one port.
//
//	ts := servertest.Start(t, servertest.HelloInterval(2*time.Second))
//	conn := dial(ts.WSURL + "/binfo")
//	sig := ts.Sig("alice", time.Hour)
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"chatctl/pkg/server"
	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
	"chatctl/pkg/sig"
)

// SDKAppID is the app id of every test server.
const SDKAppID = 1400000001

// Admin is the test app's REST administrator.
const Admin = "administrator"

// Option tunes Start.
type Option func(*options)

// options are the server.Config of the test server (start sets its Apps
// and Store) and the test app's policy.
type options struct {
	cfg   server.Config
	web   int
	multi string
	wrap  func(store.Store) store.Store
	wrapP func(server.Presence) server.Presence
}

// WrapStore makes the server use wrap(its bolt store): a test's hold on
// one store call.
func WrapStore(wrap func(store.Store) store.Store) Option {
	return func(o *options) { o.wrap = wrap }
}

// WrapPresence makes the server use wrap(a MemoryPresence on its store):
// a test's hold on one presence call. (A Config.Presence is a cluster's:
// its failed store writes are retried, repair.go.)
func WrapPresence(wrap func(server.Presence) server.Presence) Option {
	return func(o *options) { o.wrapP = wrap }
}

// HelloInterval sets the HelloInterval sent in wslogin (default 5 s).
func HelloInterval(d time.Duration) Option { return func(o *options) { o.cfg.HelloInterval = d } }

// HeartbeatTimeout sets how long a silent socket is kept.
func HeartbeatTimeout(d time.Duration) Option { return func(o *options) { o.cfg.HeartbeatTimeout = d } }

// WriteTimeout sets how long a client may leave its socket unread before
// it is dropped (default 10 s).
func WriteTimeout(d time.Duration) Option { return func(o *options) { o.cfg.WriteTimeout = d } }

// WebInstances sets how many Web instances a user may have online (default 1).
func WebInstances(n int) Option { return func(o *options) { o.web = n } }

// MultiDevice sets the multi-device policy: server.MultiDeviceMulti (default)
// or server.MultiDeviceSingle.
func MultiDevice(policy string) Option { return func(o *options) { o.multi = policy } }

// Clock sets the server's clock (Sig uses it too).
func Clock(now func() time.Time) Option { return func(o *options) { o.cfg.Now = now } }

// AllowedOrigins sets the browser origins allowed besides same-host ones.
func AllowedOrigins(origins ...string) Option {
	return func(o *options) { o.cfg.AllowedOrigins = origins }
}

// Logger sets the server's logger (default: discard, or text on stderr when
// CHATCTL_TEST_LOG is set).
func Logger(l *slog.Logger) Option { return func(o *options) { o.cfg.Logger = l } }

// Bus sets the kick bus (default: a new in-process one per start).
func Bus(b server.Bus) Option { return func(o *options) { o.cfg.Bus = b } }

// Unpaced turns off the server's frame pacing, for benchmarks of the
// per-frame cost that send more frames on one socket than a client would.
func Unpaced() Option { return func(o *options) { o.cfg.Unpaced = true } }

// ConnLimit limits new connections per source address (server.Config's
// ConnRate, ConnBurst, ConnLimitLoopback; default off).
func ConnLimit(rate float64, burst int, loopback bool) Option {
	return func(o *options) { o.cfg.ConnRate, o.cfg.ConnBurst, o.cfg.ConnLimitLoopback = rate, burst, loopback }
}

// ConnMax caps the connections one source address holds open at once
// (server.Config.ConnMax; default off).
func ConnMax(n int) Option { return func(o *options) { o.cfg.ConnMax = n } }

// Server is a running test server.
type Server struct {
	WSURL   string // ws://127.0.0.1:PORT (the SDK appends /binfo)
	RESTURL string // http://127.0.0.1:PORT
	Addr    string // 127.0.0.1:PORT
	App     server.AppConfig
	DataDir string

	t    testing.TB
	opts options

	mu     sync.Mutex
	srv    *server.Server
	store  *bolt.Store
	served chan error
	closed bool
}

// Start starts a server on a free loopback port; t.Cleanup closes it.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	if o.cfg.Now == nil {
		o.cfg.Now = time.Now
	}
	if o.cfg.Logger == nil {
		if os.Getenv("CHATCTL_TEST_LOG") != "" {
			o.cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			o.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	ts := &Server{
		App: server.AppConfig{
			SDKAppID:     SDKAppID,
			Key:          hex.EncodeToString(key),
			Admins:       []string{Admin},
			WebInstances: o.web,
			MultiDevice:  o.multi,
		},
		DataDir: t.TempDir(),
		t:       t,
		opts:    o,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: listen: %v", err)
	}
	ts.Addr = ln.Addr().String()
	ts.WSURL = "ws://" + ts.Addr
	ts.RESTURL = "http://" + ts.Addr
	if err := ts.start(ln); err != nil {
		ln.Close()
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(ts.Close)
	return ts
}

func (ts *Server) start(ln net.Listener) error {
	cfg := ts.opts.cfg
	st, err := bolt.OpenOptions(filepath.Join(ts.DataDir, server.StoreFile), bolt.Options{Now: cfg.Now})
	if err != nil {
		return err
	}
	cfg.Apps, cfg.Store = []server.AppConfig{ts.App}, st
	if ts.opts.wrap != nil {
		cfg.Store = ts.opts.wrap(st)
	}
	if ts.opts.wrapP != nil {
		cfg.Presence = ts.opts.wrapP(server.NewMemoryPresence(cfg.Store, cfg.Now))
	}
	srv, err := server.New(cfg)
	if err != nil {
		st.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ts.srv, ts.store, ts.served = srv, st, served
	return nil
}

// Server is the running server (a new one after Restart).
func (ts *Server) Server() *server.Server {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.srv
}

// Store is the running server's store.
func (ts *Server) Store() *bolt.Store {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.store
}

// Sig mints a UserSig for user with the app's key, valid for expire from
// the server's clock (whole seconds).
func (ts *Server) Sig(user string, expire time.Duration) string {
	return sig.Gen(sig.Params{
		SDKAppID: ts.App.SDKAppID,
		Key:      ts.App.Key,
		UserID:   user,
		Expire:   int64(expire / time.Second),
	}, ts.opts.cfg.Now())
}

// stop shuts the server down and closes its store.
func (ts *Server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("servertest: shutdown: %v", err)
	}
	if err := <-ts.served; err != nil {
		ts.t.Errorf("servertest: serve: %v", err)
	}
	if err := ts.store.Close(); err != nil {
		ts.t.Errorf("servertest: store close: %v", err)
	}
}

// Restart stops the server (closing every socket with 1001) and starts a
// new one on the same port over the same data dir.
func (ts *Server) Restart() {
	ts.t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		ts.t.Fatalf("servertest: Restart after Close")
	}
	ts.stop()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", ts.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		ts.closed = true
		ts.t.Fatalf("servertest: relisten on %s: %v", ts.Addr, err)
	}
	if err := ts.start(ln); err != nil {
		ln.Close()
		ts.closed = true
		ts.t.Fatalf("servertest: restart: %v", err)
	}
}

// Close stops the server and closes its store; later calls do nothing.
func (ts *Server) Close() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return
	}
	ts.closed = true
	ts.stop()
}

// Frame is a request frame as a client writes it: head {servcmd, seq}
// with head's fields over them, and body ({} when nil).
func Frame(servcmd string, seq int, head map[string]any, body any) []byte {
	h := map[string]any{"servcmd": servcmd, "seq": seq}
	for k, v := range head {
		h[k] = v
	}
	if body == nil {
		body = map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"head": h, "body": body})
	return b
}
