package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

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
}

// configKeys are the config keys chatctl understands, in config.yaml and as
// CHATCTL_<KEY>: load warns about any other key of config.yaml, whichever
// command runs. A key ending in ".*" is a section whose sub-keys are
// free-form. TestConfigKeys checks that the keys flags are bound to and the
// keys the code reads are exactly these.
var configKeys = [...]string{
	"output", "profile", "endpoint", // the root's flags
	"sdkappid", "secret_key", "admin", // the app's credentials
	"rest_url",
	"user_sig",
	"serve.*", // serve's flags and serve.apps
}

// isConfigKey reports whether key is one of configKeys or in one of its
// sections.
func isConfigKey(key string) bool {
	for _, k := range configKeys {
		if p, ok := strings.CutSuffix(k, "*"); ok {
			if strings.HasPrefix(key, p) {
				return true
			}
		} else if key == k {
			return true
		}
	}
	return false
}

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
	path := filepath.Join(dir, "config.yaml")
	a.V.SetConfigFile(path)
	a.V.SetConfigType("yaml")
	if err := a.V.ReadInConfig(); err != nil && !errors.Is(err, os.ErrNotExist) {
		var nf viper.ConfigFileNotFoundError
		if !errors.As(err, &nf) {
			if _, statErr := os.Stat(path); statErr == nil {
				return exitf(ExitUsage, "config file %s: %v", path, oneLine(err.Error()))
			}
		}
	}
	var unknown []string
	for _, k := range a.V.AllKeys() {
		if !isConfigKey(k) && a.V.InConfig(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		a.warnf("%s: unknown key %q (ignored)", path, k)
	}
	switch a.Output() {
	case "text", "json":
	default:
		return usageErr(c, fmt.Errorf("--output must be text or json, not %q", a.Output()))
	}
	return nil
}

// ConfigDir is the resolved config dir (valid after load).
func (a *App) ConfigDir() string { return a.configDir }

// Output is "text" or "json".
func (a *App) Output() string { return a.V.GetString("output") }

// JSON reports whether -o json was asked for.
func (a *App) JSON() bool { return a.Output() == "json" }

// Profile is the session profile in use.
func (a *App) Profile() string { return a.V.GetString("profile") }

// Endpoint is the chat server's WebSocket URL.
func (a *App) Endpoint() string {
	if e := a.V.GetString("endpoint"); e != "" {
		return e
	}
	return "ws://" + DefaultListen
}

// warnf prints a warning line on stderr.
func (a *App) warnf(format string, args ...any) {
	fmt.Fprintf(a.Err, "chatctl: warning: "+format+"\n", args...)
}

// infof prints a message line on stderr.
func (a *App) infof(format string, args ...any) {
	fmt.Fprintf(a.Err, format+"\n", args...)
}

// printJSON writes v as one JSON line on stdout.
func (a *App) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = a.Out.Write(append(b, '\n'))
	return err
}
