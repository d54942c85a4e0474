// Package cmd wires chatctl's flags and output to pkg/. It holds no protocol
// logic; nothing imports it.
package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// DefaultListen is where `chatctl serve` listens, and so where every other
// command looks for a server, when nothing is configured.
const DefaultListen = "127.0.0.1:7468"

// command is a top-level subcommand: its name and its constructor.
type command struct {
	name string
	new  func(*App) *cobra.Command
}

// commands holds the top-level subcommands. Each command file adds its own
// in init, so adding a command never edits this file.
var commands []command

// register adds the top-level subcommand name, built by f. A run of another
// command does not build it: start-up builds only the command it runs (see
// commandName). name must be the name of the command f builds.
func register(name string, f func(*App) *cobra.Command) {
	commands = append(commands, command{name: name, new: f})
}

// NewRootCmd builds the whole command tree for one run.
func NewRootCmd(app *App) *cobra.Command {
	root := newRoot(app)
	addCommands(root, app, "")
	return root
}

// newRoot builds the root command and its persistent flags, without
// subcommands (addCommands adds them).
func newRoot(app *App) *cobra.Command {
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
	return root
}

// addCommands adds to root the registered command named only, or every
// registered command when only is "".
func addCommands(root *cobra.Command, app *App, only string) {
	for _, c := range commands {
		if only == "" || c.name == only {
			root.AddCommand(c.new(app))
		}
	}
	if only != "" {
		// Cobra's default `completion` command (four scripts' worth of
		// help text) is built on every run; a run of another command
		// never reaches it.
		root.CompletionOptions.DisableDefaultCmd = true
	}
}

// commandName is the registered command that args run, or "" when that is
// not plain: only a command named before any other argument, after flags of
// rootFlags (the root's persistent flags) given with their values, counts.
// A flag's value is in the same argument ("-o=json", "-ojson",
// "--profile=p"), or in the next one ("-o json") unless the flag takes none
// (a bool). Anything else (help, completion, an unknown or misspelt command
// or flag, "--") builds the whole tree, so cobra's help, suggestions and
// errors see every command.
func commandName(rootFlags *pflag.FlagSet, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || a == "-":
			return ""
		case strings.HasPrefix(a, "--"):
			name, _, inArg := strings.Cut(a[2:], "=")
			f := rootFlags.Lookup(name)
			if f == nil {
				return "" // --help, or a flag of a subcommand
			}
			if !inArg && f.NoOptDefVal == "" {
				i++ // the value is the next argument
			}
		case strings.HasPrefix(a, "-"):
			// Shorthands, as pflag reads them: bools may be grouped
			// ("-qv"); a flag with a value takes the rest of the
			// argument ("-ojson", "-o=json") or else the next one.
			for s := a[1:]; s != ""; {
				f := rootFlags.ShorthandLookup(s[:1])
				switch {
				case f == nil:
					return "" // -h, or a flag of a subcommand
				case len(s) > 2 && s[1] == '=', f.NoOptDefVal == "" && len(s) > 1:
					s = "" // the value is the rest
				case f.NoOptDefVal != "":
					s = s[1:] // a bool: more shorthands may follow
				default:
					s = ""
					i++ // the value is the next argument
				}
			}
		default:
			for _, c := range commands {
				if c.name == a {
					return a
				}
			}
			return ""
		}
	}
	return ""
}

// Execute runs chatctl with the process's arguments and exits with its code.
func Execute() {
	os.Exit(Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Run runs chatctl with args and returns the exit code.
func Run(args []string, in io.Reader, out, errw io.Writer) int {
	return run(args, in, out, errw, true)
}

// run is Run; lazy builds only the command that args run (commandName),
// else the whole tree.
func run(args []string, in io.Reader, out, errw io.Writer, lazy bool) int {
	app := NewApp(in, out, errw)
	root := newRoot(app)
	only := ""
	if lazy {
		only = commandName(root.PersistentFlags(), args)
	}
	addCommands(root, app, only)
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
