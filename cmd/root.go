// Package cmd is chatctl's command line: one file per command with its
// flags, output and exit codes, over pkg/ (no protocol logic here). The
// lifecycle, admin and sig commands follow cli/cli: newXxxCmd(app, runF) builds
// one, its RunE only checks flags and arguments and fills XxxOptions (the
// App for streams and -o, the session store, the REST client (admin),
// the clock, the flags), then calls runF (a test's) or xxxRun, which does
// the work; so both are tested without a process (lifecycle_opts_test.go),
// and the built binary's tests keep exit codes, signals and pipes. What
// scripts rely on is in docs/OUTPUT.md and held by contract_test.go:
// outcome.go's classify is the one map from an error to its exit code and
// kind, and App.printJSON / printError write the one JSON document of a
// run. Nothing imports this package.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"chatctl/pkg/config"
	"chatctl/pkg/session"

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
  6  server unreachable
  129, 130, 143  stopped by SIGHUP, SIGINT, SIGTERM (watch without --until, serve once serving: 0)`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			return app.load(c)
		},
	}
	root.SetIn(app.In)
	root.SetOut(&firstErrWriter{w: app.Out}) // cobra's writes (help): execute reads its error
	root.SetErr(app.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(c, err)
	})
	pf := root.PersistentFlags()
	pf.StringP("output", "o", "text", "output format: text or json")
	pf.String("profile", "default", "session profile to use (env CHATCTL_PROFILE)")
	pf.String("endpoint", "", "WebSocket URL of the chat server, or cloud for Tencent's own (env CHATCTL_ENDPOINT) (default ws://"+DefaultListen+")")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("profile", completeProfiles)
	_ = root.RegisterFlagCompletionFunc("endpoint", cobra.FixedCompletions([]string{"cloud", "ws://" + DefaultListen}, cobra.ShellCompDirectiveNoFileComp))
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
// A write to a stdout or stderr whose reader went away fails with EPIPE
// instead of killing the process with SIGPIPE (exit 141, in no table); the
// long-running commands (watch, serve) also notice the hang-up without
// writing (watchHangup) and end with their documented codes.
func Execute() {
	signal.Ignore(syscall.SIGPIPE) // no handler goroutine: every command pays for start-up
	app := NewApp(os.Stdin, os.Stdout, os.Stderr)
	app.hangups = true
	app.signals = true
	os.Exit(run(app, os.Args[1:], true))
}

// Run runs chatctl with args and returns the exit code.
func Run(args []string, in io.Reader, out, errw io.Writer) int {
	return run(NewApp(in, out, errw), args, true)
}

// run runs app with args; lazy builds only the command that args run
// (commandName), else the whole tree.
func run(app *App, args []string, lazy bool) int {
	root := newRoot(app)
	only := ""
	if lazy {
		only = commandName(root.PersistentFlags(), args)
	}
	addCommands(root, app, only)
	return execute(app, root, args)
}

// execute runs root (newRoot's, with its subcommands) with args: it prints
// a failure's message on stderr, and its JSON document on stdout when -o
// json, and returns the exit code (classify).
func execute(app *App, root *cobra.Command, args []string) int {
	errw := app.Err
	ctx := context.Background()
	if app.signals {
		var stop func()
		ctx, stop = withSignals(ctx)
		defer stop()
	}
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	// Before Find: without it, "--help -o json" takes -o for a command
	// (cobra adds the flag only once a command is found).
	root.InitDefaultHelpFlag()
	helpNeedsTopic(root)
	groupsNeedSubcommand(root)
	root.SetArgs(args)
	c, err := root.ExecuteContextC(ctx)
	if out, ok := root.OutOrStdout().(*firstErrWriter); ok && err == nil && out.err != nil {
		// cobra ignores its writes' errors (help, usage, version).
		err = exitf(ExitFailure, "cannot write the output: %v", out.err)
	}
	if err == nil {
		return ExitOK
	}
	if isCobraUsage(err) {
		if f := flagBeforeUnknownCommand(root.PersistentFlags(), args, err); f != "" {
			err = fmt.Errorf("unknown flag: %s", f)
		}
		err = usageErr(c, err)
	}
	err = interrupted(ctx, err)
	o := classify(err)
	msg := oneLine(err.Error())
	if msg != "" {
		fmt.Fprintln(errw, "chatctl: "+msg)
	}
	// One document per run: a command that printed its own before it
	// failed (serve's ready line) reports the failure on stderr only;
	// watch's error document ends its stream of lines.
	if app.jsonWanted(args) && (!app.printed || app.streaming) && !app.stuck.Load() {
		var data any
		var ee *ExitError
		if errors.As(err, &ee) {
			data = ee.Data
		}
		_ = app.printError(o, msg, data)
	}
	return o.Code
}

// completeProfiles completes --profile with the profiles of the session
// file.
func completeProfiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	dir, err := config.Dir()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	profiles, err := session.Open(dir).List(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return slices.Sorted(maps.Keys(profiles)), cobra.ShellCompDirectiveNoFileComp
}

// groupsNeedSubcommand makes every command that only groups subcommands
// (chatctl itself, sig, admin, completion) fail with exit 2 when run bare
// or with an unknown subcommand; cobra would print its help and exit 0.
// Help is for asking: --help, or `chatctl help`.
func groupsNeedSubcommand(c *cobra.Command) {
	for _, sub := range c.Commands() {
		groupsNeedSubcommand(sub)
	}
	if c.ValidArgsFunction == nil && len(c.ValidArgs) == 0 {
		// No command takes a file as an argument (USER, SIG or -).
		c.ValidArgsFunction = cobra.NoFileCompletions
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	if c != c.Root() {
		// The root keeps cobra's own check of its arguments, which
		// suggests a command for a misspelt one.
		c.Args = cobra.ArbitraryArgs
	}
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErr(c, errors.New("missing subcommand"))
		}
		return usageErr(c, fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath()))
	}
}

// helpNeedsTopic makes `chatctl help TOPIC` of a topic that is no command
// a usage error (exit 2); cobra would print the root's usage and exit 0.
func helpNeedsTopic(root *cobra.Command) {
	for _, h := range root.Commands() {
		if h.Name() != "help" || h.Run == nil {
			continue
		}
		show := h.Run
		h.Run = nil
		h.RunE = func(c *cobra.Command, args []string) error {
			if found, rest, err := c.Root().Find(args); found == nil || err != nil || len(rest) > 0 {
				return usageErr(c, fmt.Errorf("unknown help topic %q", strings.Join(args, " ")))
			}
			show(c, args)
			return nil
		}
	}
}

// flagBeforeUnknownCommand is, for cobra's "unknown command" error, the
// flag before the command that the root does not know: cobra takes such a
// flag to have a value, so in "--bogus -o json" it read json as the
// command. A subcommand's flag before its name (--timeout 5s whoami) is
// fine, since the command is then found; "" when there is none.
func flagBeforeUnknownCommand(rootFlags *pflag.FlagSet, args []string, err error) string {
	if !strings.HasPrefix(err.Error(), "unknown command") {
		return ""
	}
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return ""
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		known := rootFlags.Lookup(name) != nil || name == "help" || name == "h"
		if !strings.HasPrefix(a, "--") && len(name) > 0 {
			known = rootFlags.ShorthandLookup(name[:1]) != nil || name[:1] == "h"
		}
		if !known {
			return a
		}
	}
	return ""
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

// oneLine is a message as chatctl prints it: one line, white space folded,
// other control characters and invalid UTF-8 escaped (a message may quote a
// server's ErrorInfo or a value from a file: neither may move a terminal's
// cursor or retitle its window), at most maxMessage bytes.
func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "), maxMessage)
}

// maxMessage bounds one message line.
const maxMessage = 2048

// printable escapes control characters, format characters (Unicode Cf:
// bidi overrides such as U+202E, zero-width characters, which would make a
// terminal show a user ID other than the one it holds) and invalid UTF-8
// in s (as Go's %q would, without the quotes) and cuts it to at most max
// bytes.
func printable(s string, max int) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || escaped(r) {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for len(s) > 0 {
			r, n := utf8.DecodeRuneInString(s)
			switch {
			case r == utf8.RuneError && n <= 1:
				fmt.Fprintf(&b, `\x%02x`, s[0])
			case escaped(r):
				q := strconv.QuoteRune(r)
				b.WriteString(q[1 : len(q)-1])
			default:
				b.WriteString(s[:n])
			}
			s = s[n:]
		}
		s = b.String()
	}
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// escaped reports whether printable escapes r: a control or a format
// character.
func escaped(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
