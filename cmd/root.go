// Package cmd wires chatctl's flags and output to pkg/. It holds no protocol
// logic; nothing imports it.
package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// DefaultListen is where `chatctl serve` listens, and so where every other
// command looks for a server, when nothing is configured.
const DefaultListen = "127.0.0.1:7468"

// commands holds the constructors of the top-level subcommands. Each command
// file adds its own in init, so adding a command never edits this file.
var commands []func(*App) *cobra.Command

func register(f func(*App) *cobra.Command) { commands = append(commands, f) }

// NewRootCmd builds the whole command tree for one run.
func NewRootCmd(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "chatctl",
		Short: "The Tencent Cloud Chat login lifecycle in the shell",
		Long: `chatctl logs in, watches and kicks Tencent Cloud Chat sessions from the shell,
mints and verifies UserSigs, and serves a local chat server that the official
Web SDK logs into.

Exit codes:
  0  ok
  1  error
  2  usage (bad flag, argument or config value)
  3  not logged in
  4  kicked out / session revoked
  5  UserSig rejected (expired, bad signature, wrong user or app)
  6  server unreachable`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			return app.load(c)
		},
	}
	root.SetIn(app.In)
	root.SetOut(app.Out)
	root.SetErr(app.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(c, err)
	})
	pf := root.PersistentFlags()
	pf.StringP("output", "o", "text", "output format: text or json")
	pf.String("profile", "default", "session profile to use (env CHATCTL_PROFILE)")
	pf.String("endpoint", "", "WebSocket URL of the chat server (default ws://"+DefaultListen+")")
	app.bind(pf.Lookup("output"), "output")
	app.bind(pf.Lookup("profile"), "profile")
	app.bind(pf.Lookup("endpoint"), "endpoint")
	for _, f := range commands {
		root.AddCommand(f(app))
	}
	return root
}

// Execute runs chatctl with the process's arguments and exits with its code.
func Execute() {
	os.Exit(Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Run runs chatctl with args and returns the exit code.
func Run(args []string, in io.Reader, out, errw io.Writer) int {
	app := NewApp(in, out, errw)
	root := NewRootCmd(app)
	root.SetArgs(args)
	c, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if isCobraUsage(err) {
		err = usageErr(c, err)
		code = ExitUsage
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(errw, "chatctl: "+oneLine(msg))
	}
	return code
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
