package cmd

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"chatctl/pkg/config"
	"chatctl/pkg/server"
	"chatctl/pkg/server/backend"
	"chatctl/pkg/server/cluster"
	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
)

func init() { register("serve", newServeCmd) }

// shutdownTimeout bounds a graceful stop (SIGINT/SIGTERM/SIGHUP): sockets get a
// close frame and a moment to answer, then the store is flushed.
const shutdownTimeout = 4 * time.Second

// serveApp is one entry of the config list serve.apps.
type serveApp struct {
	SDKAppID      uint64   `mapstructure:"sdkappid"`
	SecretKey     string   `mapstructure:"secret_key"`
	SecretKeyFile string   `mapstructure:"secret_key_file"`
	Admins        []string `mapstructure:"admins"`
	WebInstances  int      `mapstructure:"web_instances"`
	MultiDevice   string   `mapstructure:"multi_device"`
}

// serveReady is the line `serve -o json` prints once it accepts connections.
type serveReady struct {
	WS       string `json:"ws"`
	REST     string `json:"rest"`
	SDKAppID uint64 `json:"sdkappid"`
	Admin    string `json:"admin"`
	// Store is "bolt" (DataDir holds it) or the Redis URL, password redacted.
	Store   string `json:"store"`
	DataDir string `json:"data_dir,omitempty"`
	Node    string `json:"node,omitempty"` // this node's id in the cluster (Redis)
}

func newServeCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a local chat server that the official Web SDK and chatctl log into",
		Long: `Run a local chat server: the WebSocket protocol of the Tencent Cloud Chat Web
SDK 3.6.6 (point the SDK's proxyServer at the printed ws:// URL) and the REST
API subset of docs/REST.md (the printed http:// URL), on one port.

With no configuration it serves a dev app, created once in the config dir
(devapp.json, 0600) with a random SDKAppID and secret key and the admin
"administrator", so that "chatctl sig gen", "chatctl login" and
"chatctl admin" work without flags. Other apps come from config.yaml
(serve.apps) or from sdkappid + secret_key (CHATCTL_SDKAPPID,
CHATCTL_SECRET_KEY). See docs/SERVER.md.

When ready it prints the WebSocket and REST URLs on stdout (-o json: one
JSON line {"ws","rest","sdkappid","admin","store","data_dir"|"node"}).
SIGINT, SIGTERM and SIGHUP close every socket with 1001 and flush the store.

A page at http://HOST:PORT/ui/ shows the apps, the policy, the online users
and a live feed of logins, logouts, kicks, expiries and refusals, and can
kick a user, end one instance, import or delete an account with the
admin's UserSig (read-only without it; docs/SERVER.md, "The page").

Several nodes behind one address share one Redis with --store
redis://HOST:PORT/DB (docs/MULTINODE.md): kicks, the multi-instance policy
and query_online_status then span every node.`,
		Example: `  chatctl serve
  chatctl serve --listen 127.0.0.1:0 -o json
  chatctl serve --web-instances 3 --multi-device single --allow-origin http://localhost:5173
  chatctl serve --store redis://127.0.0.1:6379/0 --listen :8001`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			// SIGINT, SIGTERM and SIGHUP end c's context (withSignals), and a
			// second one kills the process, as for every command: serve
			// has no handler of its own, which would catch that second
			// signal during the graceful stop. No watchHangup here: the
			// ready line's reader may leave once it has the URL
			// (scripts/demo.sh reads it from a FIFO), and the server must
			// go on. Stop it with SIGTERM.
			return runServe(c.Context(), app)
		},
	}
	f := c.Flags()
	f.String("listen", DefaultListen, "address to listen on (host:port; port 0 picks a free one)")
	f.String("data-dir", "", "directory of the durable store (default <config dir>/data)")
	f.String("store", "", "where state lives: bolt (the data dir, default) or redis://[user:password@]HOST:PORT/DB, shared by several nodes")
	f.Duration("node-ttl", cluster.DefaultNodeTTL, "with --store redis://: a node that stops heartbeating has its instances offline on every node after this long")
	f.Duration("hello-interval", server.DefaultHelloInterval, "HelloInterval sent to the SDK (1s to 1h): its wshello period and how soon a disconnected SDK retries")
	f.Duration("heartbeat-timeout", 0, "close sockets silent for this long (default max(30s, 3 × hello-interval))")
	f.Int("web-instances", 1, "Web instances one user may have online (the oldest is kicked with multipleAccount)")
	f.String("multi-device", server.MultiDeviceMulti, "multi: platforms coexist (one terminal each); single: a login kicks every other platform")
	f.StringArray("allow-origin", nil, "browser Origin allowed to connect, e.g. http://localhost:5173, or * (repeatable; no Origin, and the same host when it is an IP or localhost, are always allowed)")
	f.String("log-level", "info", "log level: debug, info, warn or error")
	f.Bool("unpaced", false, "do not pace inbound frames; only for benchmarks that log in and out on one socket or as one user faster than any client, never on a network")
	f.Float64("conn-rate", server.DefaultConnRate, "new connections a second per source address (IPv4, IPv6 /64) after the burst; over it a connection is reset (0: no limit)")
	f.Int("conn-burst", server.DefaultConnBurst, "new connections at once per source address (0: no limit)")
	f.Int("conn-max", server.DefaultConnMax, "connections one source address holds open at once; over it a connection is reset (0: no limit)")
	f.Bool("conn-limit-loopback", false, "limit loopback sources too (the host's own clients and a reverse proxy on it are exempt by default)")
	app.bind(f.Lookup("listen"), "serve.listen")
	app.bind(f.Lookup("data-dir"), "serve.data_dir")
	app.bind(f.Lookup("store"), "serve.store")
	app.bind(f.Lookup("node-ttl"), "serve.node_ttl")
	app.bind(f.Lookup("hello-interval"), "serve.hello_interval")
	app.bind(f.Lookup("heartbeat-timeout"), "serve.heartbeat_timeout")
	app.bind(f.Lookup("web-instances"), "serve.web_instances")
	app.bind(f.Lookup("multi-device"), "serve.multi_device")
	app.bind(f.Lookup("allow-origin"), "serve.allow_origin")
	app.bind(f.Lookup("log-level"), "serve.log_level")
	app.bind(f.Lookup("unpaced"), "serve.unpaced")
	app.bind(f.Lookup("conn-rate"), "serve.conn_rate")
	app.bind(f.Lookup("conn-burst"), "serve.conn_burst")
	app.bind(f.Lookup("conn-max"), "serve.conn_max")
	app.bind(f.Lookup("conn-limit-loopback"), "serve.conn_limit_loopback")
	return c
}

// newDevApp makes a dev app: SDKAppID 14xxxxxxxx and a 64-hex secret key.
func newDevApp() config.DevApp {
	var b [40]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return config.DevApp{
		SDKAppID:  1400000000 + binary.BigEndian.Uint64(b[:8])%100000000,
		SecretKey: hex.EncodeToString(b[8:]),
		Admin:     "administrator",
	}
}

// serveApps resolves the apps to serve: serve.apps, else sdkappid +
// secret_key, else the dev app (created on first use).
func serveApps(app *App) ([]server.AppConfig, error) {
	v := app.V
	web := v.GetInt("serve.web_instances")
	multi := v.GetString("serve.multi_device")
	if web < 1 {
		return nil, exitf(ExitUsage, "%s must be at least 1, not %d", app.source("serve.web_instances"), web)
	}
	if multi != server.MultiDeviceMulti && multi != server.MultiDeviceSingle {
		return nil, exitf(ExitUsage, "%s must be %s or %s, not %.40q", app.source("serve.multi_device"), server.MultiDeviceMulti, server.MultiDeviceSingle, multi)
	}
	var list []serveApp
	if v.IsSet("serve.apps") {
		// Strictly typed: viper's default reads sdkappid -1 as 2^64-1,
		// true as 1 and 1400000001.7 as 1400000001, and its hooks split
		// admins: "a,b" into two admins and took admins: ops as a list.
		// Unknown keys are warned about, as config.yaml's are (App.load).
		var md mapstructure.Metadata
		err := v.UnmarshalKey("serve.apps", &list, func(c *mapstructure.DecoderConfig) {
			c.WeaklyTypedInput, c.Metadata = false, &md
			c.DecodeHook = wholeNumbers
		})
		if err != nil {
			return nil, exitf(ExitUsage, "config serve.apps: %v", oneLine(err.Error()))
		}
		for _, k := range md.Unused {
			app.warnf("%s: unknown key serve.apps%s (ignored)", configFile(app.ConfigDir()), k)
		}
	}
	id, err := app.sdkAppID()
	if err != nil {
		return nil, err
	}
	if len(list) == 0 && id != 0 {
		// Read only here: serve.apps, when set, leaves it unused.
		key, err := app.configSecret("secret_key")
		if err != nil {
			return nil, err
		}
		if key != "" {
			list = []serveApp{{SDKAppID: id, SecretKey: key}}
			a, err := app.oneValue("admin")
			if err != nil {
				return nil, err
			}
			if a != "" {
				list[0].Admins = []string{a}
			}
		}
	}
	if len(list) == 0 {
		dev, created, err := config.LoadOrCreateDevApp(app.ConfigDir(), newDevApp)
		if err != nil {
			return nil, fmt.Errorf("dev app: %w", err)
		}
		if created {
			app.infof("created the dev app %d (admin %q) in %s", dev.SDKAppID, dev.Admin, filepath.Join(app.ConfigDir(), config.DevAppFile))
		}
		admin := dev.Admin
		if admin == "" {
			admin = "administrator"
		}
		list = []serveApp{{SDKAppID: dev.SDKAppID, SecretKey: dev.SecretKey, Admins: []string{admin}}}
	}
	apps := make([]server.AppConfig, 0, len(list))
	for i, a := range list {
		if a.SDKAppID == 0 {
			return nil, exitf(ExitUsage, "config serve.apps[%d]: sdkappid is required", i)
		}
		key, err := secretValue(a.SecretKey, fmt.Sprintf("config serve.apps[%d].secret_key", i))
		if err != nil {
			return nil, err
		}
		if a.SecretKeyFile != "" {
			if key != "" {
				return nil, exitf(ExitUsage, "config serve.apps[%d] (sdkappid %d): give secret_key or secret_key_file, not both", i, a.SDKAppID)
			}
			b, err := config.ReadRegular(a.SecretKeyFile, 64<<10)
			if err != nil {
				return nil, exitf(ExitUsage, "config serve.apps[%d].secret_key_file: %v", i, err)
			}
			if key, err = givenSecret(b, fmt.Sprintf("config serve.apps[%d].secret_key_file %s", i, a.SecretKeyFile)); err != nil {
				return nil, err
			}
		}
		if key == "" {
			return nil, exitf(ExitUsage, "config serve.apps[%d] (sdkappid %d): secret_key or secret_key_file is required", i, a.SDKAppID)
		}
		if len(a.Admins) == 0 {
			a.Admins = []string{"administrator"}
		}
		for j, ad := range a.Admins {
			if err := wire.ValidateUserID(ad); err != nil {
				return nil, exitf(ExitUsage, "config serve.apps[%d].admins[%d]: %v", i, j, err)
			}
		}
		if a.WebInstances == 0 {
			a.WebInstances = web
		}
		if a.MultiDevice == "" {
			a.MultiDevice = multi
		}
		apps = append(apps, server.AppConfig{SDKAppID: a.SDKAppID, Key: key, Admins: a.Admins,
			WebInstances: a.WebInstances, MultiDevice: a.MultiDevice})
	}
	return apps, nil
}

// wholeNumbers decodes a whole number strictly, as the top-level sdkappid
// is read (App.sdkAppID): a YAML float is refused (mapstructure truncates
// 1400000001.7, and 1e20 overflowed), and a quoted number is read as the
// number it spells.
func wholeNumbers(from, to reflect.Type, data any) (any, error) {
	if to.Kind() < reflect.Int || to.Kind() > reflect.Uint64 {
		return data, nil
	}
	switch d := data.(type) {
	case float64:
		return nil, fmt.Errorf("%v is not a whole number", d)
	case string:
		if to.Kind() >= reflect.Uint {
			return strconv.ParseUint(d, 10, 64)
		}
		return strconv.ParseInt(d, 10, 64)
	}
	return data, nil
}

// newLogger logs to w: JSON unless w is a terminal.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, exitf(ExitUsage, "--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// urlHost is the host:port clients should dial for a listener address: an
// unspecified IP (0.0.0.0, ::) is reached on loopback.
func urlHost(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

func runServe(ctx context.Context, app *App) error {
	v := app.V
	log, err := newLogger(app.Err, v.GetString("serve.log_level"))
	if err != nil {
		return err
	}
	hello := v.GetDuration("serve.hello_interval")
	if hello < time.Second || hello > server.MaxHelloInterval {
		return exitf(ExitUsage, "%s must be from 1s to %s, not %s", app.source("serve.hello_interval"), server.MaxHelloInterval, hello)
	}
	listen := v.GetString("serve.listen")
	if err := checkListen(listen); err != nil {
		return exitf(ExitUsage, "%s %.80q: %v", app.source("serve.listen"), listen, err)
	}
	// Below the hello interval every session is closed between two of
	// the SDK's wshellos (0: the default).
	if hb := v.GetDuration("serve.heartbeat_timeout"); hb != 0 && hb < hello {
		return exitf(ExitUsage, "%s must be 0 (the default) or at least the hello interval (%s), not %s", app.source("serve.heartbeat_timeout"), hello, hb)
	}
	connRate, connBurst := v.GetFloat64("serve.conn_rate"), v.GetInt("serve.conn_burst")
	if connRate < 0 || math.IsNaN(connRate) || math.IsInf(connRate, 0) {
		return exitf(ExitUsage, "%s must be a number of at least 0, not %v", app.source("serve.conn_rate"), connRate)
	}
	connMax := v.GetInt("serve.conn_max")
	for _, c := range []struct {
		key string
		n   int
	}{{"serve.conn_burst", connBurst}, {"serve.conn_max", connMax}} {
		if c.n < 0 {
			return exitf(ExitUsage, "%s must be at least 0, not %d", app.source(c.key), c.n)
		}
	}
	apps, err := serveApps(app)
	if err != nil {
		return err
	}
	// Origins never hold commas or spaces: accept lists from env and YAML.
	// Checked before the store is opened: a usage error should not wait
	// on Redis, or create a data dir.
	var origins []string
	for _, o := range v.GetStringSlice("serve.allow_origin") {
		for _, o := range strings.FieldsFunc(o, func(r rune) bool { return r == ',' || r == ' ' }) {
			if err := server.CheckAllowedOrigin(o); err != nil {
				return exitf(ExitUsage, "%s: %v", app.source("serve.allow_origin"), err)
			}
			origins = append(origins, o)
		}
	}
	be, err := openBackend(ctx, app, log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := be.Close(ctx); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	srv, err := server.New(server.Config{
		Apps:              apps,
		Store:             be.Store,
		Bus:               be.Bus,
		Presence:          be.Presence,
		HelloInterval:     hello,
		HeartbeatTimeout:  v.GetDuration("serve.heartbeat_timeout"),
		AllowedOrigins:    origins,
		Logger:            log,
		Unpaced:           v.GetBool("serve.unpaced"),
		ConnRate:          connRate,
		ConnBurst:         connBurst,
		ConnMax:           connMax,
		ConnLimitLoopback: v.GetBool("serve.conn_limit_loopback"),
	})
	if err != nil {
		return exitf(ExitUsage, "%v", err)
	}
	be.Bind(srv)
	// No TCP keep-alive on accepted sockets: the server closes a socket
	// silent for the heartbeat timeout itself, and the keep-alive options
	// cost four setsockopt calls per connection (docs/BENCHMARKS.md).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return exitf(ExitFailure, "listen %s: address in use (is another chatctl serve running? use --listen 127.0.0.1:0 for a free port)", listen)
		}
		return exitf(ExitFailure, "listen %s: %v", listen, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	host := urlHost(ln.Addr())
	ready := serveReady{WS: "ws://" + host, REST: "http://" + host, SDKAppID: apps[0].SDKAppID,
		Admin: apps[0].Admins[0], Store: be.Name, DataDir: be.DataDir, Node: be.Node}
	log.Info("serving", "ws", ready.WS, "rest", ready.REST, "apps", len(apps), "sdkappid", ready.SDKAppID,
		"store", be.Name, "data_dir", be.DataDir, "node", ready.Node, "allowed_origins", origins, "hello_interval", srv.HelloInterval().String(), "heartbeat_timeout", srv.HeartbeatTimeout().String())
	if app.JSON() {
		err = app.printJSON(ready)
	} else {
		_, err = fmt.Fprintf(app.Out, "%s\n%s\n", ready.WS, ready.REST)
	}
	if err != nil {
		log.Warn("cannot print the ready line", "err", err)
	}

	// A listener that fails after the ready line goes through the same
	// shutdown (its sockets closed, the store flushed) as a signal.
	var serveErr error
	stopped := false
	select {
	case serveErr = <-served:
		stopped = true
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	if !stopped {
		serveErr = <-served
	}
	log.Info("stopped")
	if serveErr != nil {
		return exitf(ExitFailure, "serve: %v", serveErr)
	}
	return nil
}

// checkListen refuses a listen address that is not host:port with a port
// number (the host may be empty: every interface).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, e.g. 127.0.0.1:7468 or :7468")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

// openBackend opens the store of serve's flags (backend.Open) and maps its
// errors to exit codes and messages naming the flag or key.
func openBackend(ctx context.Context, app *App, log *slog.Logger) (*backend.Backend, error) {
	v := app.V
	dataDir := v.GetString("serve.data_dir")
	if dataDir == "" {
		dataDir = filepath.Join(app.ConfigDir(), "data")
	}
	be, err := backend.Open(ctx, backend.Options{Store: v.GetString("serve.store"), DataDir: dataDir,
		NodeTTL: v.GetDuration("serve.node_ttl"), Logger: log})
	if err == nil {
		return be, nil
	}
	msg := oneLine(err.Error())
	switch {
	case errors.Is(err, backend.ErrBadStore):
		return nil, exitf(ExitUsage, "%s must be bolt or redis://[user:password@]HOST:PORT/DB: %s", app.source("serve.store"), msg)
	case errors.Is(err, backend.ErrNodeTTL):
		return nil, exitf(ExitUsage, "%s: %s", app.source("serve.node_ttl"), msg)
	case errors.Is(err, store.ErrUnavailable):
		return nil, exitf(ExitUnreachable, "%s: Redis unreachable: %s (is redis-server running?)", app.source("serve.store"), msg)
	}
	return nil, exitf(ExitFailure, "%s", msg)
}
