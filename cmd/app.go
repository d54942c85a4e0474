package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/config"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// App is one run of chatctl: its IO streams and its configuration.
// Precedence: flag > environment (CHATCTL_*) > config.yaml > default.
type App struct {
	In       io.Reader
	Out, Err io.Writer
	V        *viper.Viper

	bindings  map[*pflag.Flag]string
	configDir string
	loaded    bool        // load succeeded
	printed   bool        // a JSON document was written (printJSON)
	streaming bool        // the command prints a document a line (watch): its error document comes last
	stuck     atomic.Bool // a write to stdout was given up (printJSONWithin): nothing more is written there
	hangups   bool        // long-running commands end when stdout's reader goes away (Execute)
	signals   bool        // SIGINT, SIGTERM and SIGHUP stop the run (withSignals; Execute)
	endpoint  string      // the configured endpoint, normalized; "" for the default
	nulls     []string    // the secret keys config.yaml sets to null (load)
}

// configKeys are the config keys chatctl understands, in config.yaml and as
// CHATCTL_<KEY>: load warns about any other key of config.yaml, whichever
// command runs (serve.apps' entries: serveApps). TestConfigKeys checks
// that the keys flags are bound to and the keys the code reads are exactly
// these.
var configKeys = [...]string{
	"output", "profile", "endpoint", // the root's flags
	"sdkappid", "secret_key", "admin", // the app's credentials
	"rest_url",
	"user_sig",
	// serve's flags, and its apps
	"serve.listen", "serve.data_dir", "serve.store", "serve.node_ttl", "serve.hello_interval",
	"serve.heartbeat_timeout", "serve.web_instances", "serve.multi_device", "serve.allow_origin",
	"serve.log_level", "serve.unpaced", "serve.conn_rate", "serve.conn_burst",
	"serve.conn_max", "serve.conn_limit_loopback", "serve.apps",
}

// isConfigKey reports whether key is one of configKeys.
func isConfigKey(key string) bool { return slices.Contains(configKeys[:], key) }

// NewApp returns an App reading configuration from the environment.
func NewApp(in io.Reader, out, errw io.Writer) *App {
	v := viper.New()
	v.SetEnvPrefix("CHATCTL")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	return &App{In: in, Out: out, Err: errw, V: v, bindings: map[*pflag.Flag]string{}}
}

// bind ties a flag to a config key of configKeys (so also to
// CHATCTL_<KEY>). Several commands may bind flags of their own to one key
// (--sdkappid): viper keeps one flag per key, so load binds the running
// command's flags again.
func (a *App) bind(f *pflag.Flag, key string) {
	a.bindings[f] = key
	_ = a.V.BindPFlag(key, f)
}

// configFile is config.yaml in the config dir dir.
func configFile(dir string) string { return filepath.Join(dir, "config.yaml") }

// maxConfigFile bounds config.yaml: a few hundred bytes in practice.
const maxConfigFile = 1 << 20

// load reads config.yaml from the config dir, warns about keys nothing
// understands, and checks the global flags.
func (a *App) load(c *cobra.Command) error {
	dir, err := config.Dir()
	if err != nil {
		return err
	}
	a.configDir = dir
	for _, fs := range []*pflag.FlagSet{c.InheritedFlags(), c.Flags()} {
		fs.VisitAll(func(f *pflag.Flag) {
			if key, ok := a.bindings[f]; ok {
				_ = a.V.BindPFlag(key, f)
			}
		})
	}
	path := configFile(dir)
	a.V.SetConfigType("yaml")
	// Read here, not by viper: a FIFO or /dev/zero put in its place would
	// hold every command, past its signals, or fill its memory.
	b, err := config.ReadRegular(path, maxConfigFile)
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		// None; a config dir that is a file is the lifecycle commands'
		// to report (checkConfigDir).
	case err != nil:
		return exitf(ExitUsage, "config file: %v", oneLine(err.Error()))
	default:
		if err := a.V.ReadConfig(bytes.NewReader(b)); err != nil {
			return exitf(ExitUsage, "config file %s: %v", path, oneLine(err.Error()))
		}
	}
	var unknown []string
	for _, k := range a.V.AllKeys() {
		switch {
		case !isConfigKey(k) && a.V.InConfig(k):
			unknown = append(unknown, k)
		case (k == "secret_key" || k == "user_sig") && !a.V.InConfig(k):
			// Listed but not "in the config": config.yaml sets it to null
			// (`secret_key:`, `~`: a templated CI secret that came out
			// empty). No flag or default gives these keys, and the
			// environment's are not listed. Read as absent, it meant the
			// dev app's key or a minted UserSig without a word.
			a.nulls = append(a.nulls, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		a.warnf("%s: unknown key %q (ignored)", path, k)
	}
	if err := a.checkTyped(c); err != nil {
		return err
	}
	switch a.Output() {
	case "text", "json":
	default:
		return exitf(ExitUsage, "%s must be text or json, not %.40q", a.source("output"), a.Output())
	}
	if e := a.V.GetString("endpoint"); e != "" {
		n, err := client.NormalizeEndpoint(e)
		if err != nil {
			return exitf(ExitUsage, "%s: %v", a.source("endpoint"), err)
		}
		a.endpoint = n
	}
	a.loaded = true
	return nil
}

// checkTyped refuses a value from the environment or config.yaml that the
// flag it stands for would refuse: viper reads "abc" as 0 and "maybe" as
// false, so CHATCTL_SERVE_CONN_RATE=abc turned the connection limit off,
// and a duration without a unit was nanoseconds. (sdkappid has its own
// check, where it is read.)
func (a *App) checkTyped(c *cobra.Command) error {
	var bad error
	for _, fs := range []*pflag.FlagSet{c.InheritedFlags(), c.Flags()} {
		fs.VisitAll(func(f *pflag.Flag) {
			key, ok := a.bindings[f]
			if !ok || f.Changed || bad != nil {
				return
			}
			if _, env := os.LookupEnv(a.envName(key)); !env && !a.V.InConfig(key) {
				return
			}
			if t := f.Value.Type(); t != "stringArray" && t != "stringSlice" {
				if _, err := a.oneValue(key); err != nil {
					bad = err
					return
				}
			}
			v := fmt.Sprint(a.V.Get(key))
			var err error
			switch f.Value.Type() {
			case "duration":
				_, err = time.ParseDuration(v)
			case "int":
				_, err = strconv.ParseInt(v, 0, 64)
			case "float64":
				_, err = strconv.ParseFloat(v, 64)
			case "bool":
				_, err = strconv.ParseBool(v)
			default:
				return
			}
			if err != nil {
				bad = exitf(ExitUsage, "%s must be %s (as --%s takes), not %.40q", a.source(key), typeWord[f.Value.Type()], f.Name, v)
			}
		})
	}
	return bad
}

// oneValue is key's value, from wherever it came, as a string; a list or a
// map given for it (in config.yaml: endpoint: [ws://…]) is exit 2, where
// viper's GetString read it as "" (not set), and the command went on with
// the saved endpoint, the dev app's key or a minted UserSig. Keys bound to
// the running command's flags are checked as it loads (checkTyped); the
// others where they are read, so that a bad serve.* key does not fail
// whoami.
func (a *App) oneValue(key string) (string, error) {
	switch a.V.Get(key).(type) {
	case []any, map[string]any:
		return "", exitf(ExitUsage, "%s must be one value, not a list or a map", a.source(key))
	}
	return a.V.GetString(key), nil
}

// typeWord names a flag type in checkTyped's message.
var typeWord = map[string]string{"duration": "a duration with its unit (30s, 2m)", "int": "a whole number", "float64": "a number", "bool": "true or false"}

// envName is key's environment variable.
func (a *App) envName(key string) string {
	return "CHATCTL_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// sdkAppID is the configured SDKAppID, 0 for none, checked where a command
// reads it (a bad one must not fail whoami or version, which do not).
// viper reads "abc", -5 or 1.4e9 as 0, which means "the configured app,
// else the dev app" (as 0 itself does): a key meant for another app would
// be paired with the dev app's ID, so those are exit 2.
func (a *App) sdkAppID() (uint64, error) {
	raw := a.V.Get("sdkappid")
	if raw == nil {
		return 0, nil
	}
	v := fmt.Sprint(raw)
	if v == "" { // unset
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, exitf(ExitUsage, "%s must be an SDKAppID (a number; 0 for the default), not %.40q", a.source("sdkappid"), v)
	}
	return n, nil
}

// source names where the value of key came from, for messages: its flag,
// its environment variable, or the config file and key.
func (a *App) source(key string) string {
	for f, k := range a.bindings {
		if k == key && f.Changed {
			return "--" + f.Name
		}
	}
	env := a.envName(key)
	if _, ok := os.LookupEnv(env); ok {
		return env
	}
	if a.inConfig(key) {
		return configFile(a.configDir) + ": " + key
	}
	return key
}

// inConfig reports whether config.yaml sets key, to null too for a secret
// key (load).
func (a *App) inConfig(key string) bool {
	return a.V.InConfig(key) || slices.Contains(a.nulls, key)
}

// jsonWanted reports whether the failed run of args asked for -o json:
// from the loaded configuration, or, when the run failed before loading it
// (a bad flag), from args, CHATCTL_OUTPUT and config.yaml, in that order.
func (a *App) jsonWanted(args []string) bool {
	if a.loaded {
		return a.JSON()
	}
	out := os.Getenv("CHATCTL_OUTPUT")
	for i := 0; i < len(args); i++ {
		v := args[i]
		if v == "--" {
			break // arguments, not flags
		}
		switch {
		case v == "-o" || v == "--output":
			if i+1 < len(args) {
				out = args[i+1]
				i++
			}
		case strings.HasPrefix(v, "--output="):
			out = strings.TrimPrefix(v, "--output=")
		case strings.HasPrefix(v, "-o"):
			out = strings.TrimPrefix(strings.TrimPrefix(v, "-o"), "=")
		}
	}
	if out == "" {
		out = configOutput()
	}
	return out == "json"
}

// configOutput is config.yaml's output, read for a run that failed before
// loading it (jsonWanted); "" when there is none or it cannot be read.
func configOutput() string {
	dir, err := config.Dir()
	if err != nil {
		return ""
	}
	b, err := config.ReadRegular(configFile(dir), maxConfigFile)
	if err != nil {
		return ""
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if v.ReadConfig(bytes.NewReader(b)) != nil {
		return ""
	}
	return v.GetString("output")
}

// ConfigDir is the resolved config dir (valid after load).
func (a *App) ConfigDir() string { return a.configDir }

// Output is "text" or "json".
func (a *App) Output() string { return a.V.GetString("output") }

// JSON reports whether -o json was asked for.
func (a *App) JSON() bool { return a.Output() == "json" }

// Profile is the session profile in use.
func (a *App) Profile() string { return a.V.GetString("profile") }

// Endpoint is the chat server's WebSocket URL, normalized
// (client.NormalizeEndpoint), or "cloud".
func (a *App) Endpoint() string { return endpointOrDefault(a.endpoint) }

// endpointOrDefault is the configured endpoint e, or where `chatctl serve`
// listens by default when e is "".
func endpointOrDefault(e string) string {
	if e != "" {
		return e
	}
	return "ws://" + DefaultListen
}

// warnf prints a warning line on stderr, as oneLine makes it.
func (a *App) warnf(format string, args ...any) {
	fmt.Fprintln(a.Err, "chatctl: warning: "+oneLine(fmt.Sprintf(format, args...)))
}

// infof prints a message line on stderr, as oneLine makes it: it may name
// a user ID or a value from a file.
func (a *App) infof(format string, args ...any) {
	fmt.Fprintln(a.Err, oneLine(fmt.Sprintf(format, args...)))
}

// checkedText runs work, which prints text lines on stdout without
// checking each write, and fails with the first write that failed (a
// closed pipe, a full disk: exit 1, docs/OUTPUT.md) when work itself did
// not.
func (a *App) checkedText(work func() error) error {
	out := &firstErrWriter{w: a.Out}
	a.Out = out
	defer func() { a.Out = out.w }()
	if err := work(); err != nil {
		return err
	}
	return out.err
}

// firstErrWriter remembers the first error of its writes to w.
type firstErrWriter struct {
	w   io.Writer
	err error
}

func (f *firstErrWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

// SchemaVersion is the "schema_version" of every JSON document and watch
// line chatctl prints (docs/OUTPUT.md). It changes only when a field
// changes meaning or goes away; new fields do not change it.
const SchemaVersion = 1

// printJSON writes v, an object, as one JSON document: one line on stdout,
// "schema_version" first.
func (a *App) printJSON(v any) error {
	line, err := a.jsonLine(v)
	if err != nil {
		return err
	}
	_, err = a.Out.Write(line)
	return err
}

// jsonLine is v as printJSON writes it, counted as printed.
func (a *App) jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	a.printed = true
	return append(versioned(b), '\n'), nil
}

// stuckGrace is how long a write to stdout still gets once the run's
// context has ended (printJSONWithin): a line of a session's end that
// comes with a signal is written if its reader reads at all.
const stuckGrace = time.Second

// errStdoutStuck is printJSONWithin's: the write was given up.
var errStdoutStuck = errors.New("stdout is not being read")

// printJSONWithin is printJSON that stops waiting for the write stuckGrace
// after ctx ends: a reader that stops reading (its pipe full) holds a
// write for ever, and a watch must still end on a signal or its
// --timeout. The write given up goes on in the background, and nothing
// more is written to stdout (the run's error document neither): its lines
// would come out of order, if ever. Its goroutine stays blocked until the
// process exits, which is why only a command that then ends the process
// (watch) may use this.
func (a *App) printJSONWithin(ctx context.Context, v any) error {
	if a.stuck.Load() {
		return errStdoutStuck
	}
	line, err := a.jsonLine(v)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.Out.Write(line)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(stuckGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		a.stuck.Store(true)
		return errStdoutStuck
	}
}

// versioned puts "schema_version" first in the JSON object b.
func versioned(b []byte) []byte {
	head := `{"schema_version":` + strconv.Itoa(SchemaVersion)
	switch {
	case len(b) < 2 || b[0] != '{':
		return b
	case string(b) == "{}":
		return []byte(head + "}")
	}
	return append([]byte(head+","), b[1:]...)
}

// errorDoc is the "error" object of a failed command's JSON document.
type errorDoc struct {
	Code        int      `json:"code"`
	Kind        string   `json:"kind"`
	Message     string   `json:"message"`
	KickType    string   `json:"kick_type,omitempty"`
	TencentCode int      `json:"tencent_code,omitempty"`
	Tried       []string `json:"tried,omitempty"`
}

// docOf is the "error" object of outcome o, whose message is msg.
func docOf(o outcome, msg string) errorDoc {
	return errorDoc{Code: o.Code, Kind: o.Kind, Message: msg, KickType: o.KickType, TencentCode: o.TencentCode, Tried: o.Tried}
}

// printError writes a failed command's JSON document: the fields of data
// (an object, or nil) and "error".
func (a *App) printError(o outcome, msg string, data any) error {
	e, err := json.Marshal(struct {
		Error errorDoc `json:"error"`
	}{docOf(o, msg)})
	if err != nil {
		return err
	}
	if data != nil {
		d, err := json.Marshal(data)
		if err == nil && len(d) > 2 && d[0] == '{' {
			// {data fields} + {"error":…} → {data fields,"error":…}
			e = append(append(d[:len(d)-1:len(d)-1], ','), e[1:]...)
		}
	}
	return a.printJSON(json.RawMessage(e))
}
