package cmd

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// Each registered name is the name of the command its constructor builds:
// a run builds only the command whose name it finds in its arguments.
func TestRegisteredNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		app := NewApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if got := c.new(app).Name(); got != c.name {
			t.Errorf("command registered as %q is named %q", c.name, got)
		}
		if seen[c.name] {
			t.Errorf("%q is registered twice", c.name)
		}
		seen[c.name] = true
	}
	if len(seen) < 8 {
		t.Fatalf("only %d registered commands", len(seen))
	}
}

// configKeys is the whole list of config keys: every key a flag is bound to
// and every key the code reads is in it (else config.yaml warns about a key
// that is used), and every key in it is bound or read (else a key nothing
// uses passes silently). The keys bound are those of the whole command tree
// and the literal keys of bind calls; the keys read are the literal keys of
// viper getters called on an App's V or on a variable v.
func TestConfigKeys(t *testing.T) {
	used := map[string]string{} // key → where
	app := NewApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	NewRootCmd(app)
	for f, k := range app.bindings {
		used[k] = "flag --" + f.Name
	}
	if len(used) < 5 {
		t.Fatalf("only %d keys bound to flags", len(used))
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	reads := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			// checkTyped reads the keys flags are bound to; oneValue
			// and configSecret their callers' keys (counted below).
			if fn, ok := n.(*ast.FuncDecl); ok && (fn.Name.Name == "checkTyped" || fn.Name.Name == "oneValue" || fn.Name.Name == "configSecret") {
				return false
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			m, arg := sel.Sel.Name, -1
			switch {
			case m == "bind" && len(call.Args) == 2:
				arg = 1
			case (m == "configSecret" || m == "oneValue") && len(call.Args) == 1:
				arg = 0
				reads++
			case isViper(sel.X) && (strings.HasPrefix(m, "Get") || m == "IsSet" || m == "UnmarshalKey" || m == "Sub"):
				arg = 0
				reads++
			default:
				return true
			}
			lit, ok := call.Args[arg].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: %s's key is not a string literal", fset.Position(call.Pos()), m)
				return true
			}
			key, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			used[key] = fset.Position(call.Pos()).String()
			return true
		})
	}
	if reads < 10 {
		t.Fatalf("only %d config reads found", reads)
	}
	for k, where := range used {
		if !isConfigKey(k) {
			t.Errorf("%s uses config key %q, which is not in configKeys", where, k)
		}
	}
	for _, k := range configKeys {
		if _, found := used[k]; !found {
			t.Errorf("configKeys holds %q, which no flag is bound to and no code reads", k)
		}
	}
}

// isViper reports whether x is an App's V (app.V, a.V, o.app.V) or v.
func isViper(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.SelectorExpr:
		return x.Sel.Name == "V"
	case *ast.Ident:
		return x.Name == "v"
	}
	return false
}

func TestCommandName(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"whoami"}, "whoami"},
		{[]string{"whoami", "--check"}, "whoami"},
		{[]string{"-o", "json", "whoami"}, "whoami"},
		{[]string{"-ojson", "--profile", "p", "login", "alice"}, "login"},
		{[]string{"--output=json", "--endpoint=ws://x", "sig", "gen"}, "sig"},
		{[]string{"--endpoint", "ws://x", "server-time"}, "server-time"},
		{[]string{"-o", "whoami", "version"}, "version"}, // whoami is -o's value
		{[]string{}, ""},
		{[]string{"help", "whoami"}, ""},
		{[]string{"completion", "bash"}, ""},
		{[]string{"--help", "whoami"}, ""},
		{[]string{"--check", "whoami"}, ""},
		{[]string{"--", "whoami"}, ""},
		{[]string{"whoam"}, ""},
		{[]string{"serve", "--listen", ":0"}, "serve"},
		{[]string{"bench", "logins"}, "bench"},
	} {
		if got := commandName(rootFlags(), c.args); got != c.want {
			t.Errorf("commandName(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// rootFlags is the root's persistent flags.
func rootFlags() *pflag.FlagSet {
	return newRoot(NewApp(strings.NewReader(""), io.Discard, io.Discard)).PersistentFlags()
}

// commandName knows a root flag from the root's flag set, not from a list
// of its own: with flags added to the root, it skips what pflag skips.
func TestCommandNameNewRootFlags(t *testing.T) {
	flags := func() *pflag.FlagSet {
		fs := rootFlags()
		fs.String("extra", "", "")
		fs.StringP("xval", "x", "", "")
		fs.BoolP("quiet", "q", false, "")
		fs.BoolP("verbose", "v", false, "")
		return fs
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--extra", "whoami", "version"}, "version"},
		{[]string{"--extra=whoami", "version"}, "version"},
		{[]string{"-x", "whoami", "version"}, "version"},
		{[]string{"-xwhoami", "version"}, "version"},
		{[]string{"-x=whoami", "version"}, "version"},
		{[]string{"--quiet", "whoami"}, "whoami"},
		{[]string{"--quiet=false", "whoami"}, "whoami"},
		{[]string{"-q", "whoami"}, "whoami"},
		{[]string{"-qv", "whoami"}, "whoami"},
		{[]string{"-qo", "whoami", "version"}, "version"},
		{[]string{"-vqojson", "whoami"}, "whoami"},
		{[]string{"-qz", "whoami"}, ""},
		{[]string{"--xval", "p", "--profile", "q", "-q", "logout"}, "logout"},
	} {
		if got := commandName(flags(), c.args); got != c.want {
			t.Errorf("commandName(%q) = %q, want %q", c.args, got, c.want)
		}
		// pflag reads the same arguments as flags up to the command.
		fs := flags()
		fs.SetInterspersed(false)
		fs.SetOutput(io.Discard)
		if err := fs.Parse(c.args); err == nil && c.want != "" && (fs.NArg() == 0 || fs.Arg(0) != c.want) {
			t.Errorf("pflag reads %q as flags and then %q, not %q", c.args, fs.Args(), c.want)
		}
	}
}

// A run that builds only its command prints exactly what a run with the
// whole tree prints: help, usage errors, config warnings, results.
func TestLazyTreeSameAsFull(t *testing.T) {
	dir := t.TempDir()
	isolateEnv(t, dir)
	config := "serve:\n  listen: 127.0.0.1:0\nuser_sig: x\nrest_url: http://127.0.0.1:1\nsecret_key: k\nadmin: a\nbogus: 1\nbogus_section:\n  k: v\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"version"},
		{"-o", "json", "version"},
		{"version", "extra"},
		{"version", "--help"},
		{"whoami"},
		{"--profile", "p", "whoami"},
		{"--profile", "bad/name", "whoami"},
		{"-ojson", "whoami", "--bogus"},
		{"whoami", "--help"},
		{"login", "--help"},
		{"login"},
		{"logout", "--help"},
		{"server-time", "--help"},
		{"watch", "--help"},
		{"sig", "--help"},
		{"sig", "gen", "--help"},
		{"sig", "decode", "not-a-sig"},
		{"sig", "nope"},
		{"admin", "--help"},
		{"admin", "kick", "--help"},
		{"-o", "yaml", "whoami"},
	} {
		only := commandName(rootFlags(), args)
		if only == "" {
			t.Fatalf("%q builds the whole tree", args)
		}
		var fullOut, fullErr, lazyOut, lazyErr bytes.Buffer
		fullCode := run(NewApp(strings.NewReader(""), &fullOut, &fullErr), args, false)
		lazyCode := run(NewApp(strings.NewReader(""), &lazyOut, &lazyErr), args, true)
		if fullCode != lazyCode || fullOut.String() != lazyOut.String() || fullErr.String() != lazyErr.String() {
			t.Errorf("%q: whole tree: exit %d\n%s%s\nonly %s: exit %d\n%s%s", args, fullCode, fullOut.String(), fullErr.String(),
				only, lazyCode, lazyOut.String(), lazyErr.String())
		}
		// Every run that gets to read the config warns about exactly the
		// keys no command knows.
		if fullCode != ExitUsage && !strings.Contains(fullOut.String(), "Usage:") {
			warned := strings.Count(fullErr.String(), "unknown key")
			if warned != 2 || !strings.Contains(fullErr.String(), `unknown key "bogus"`) || !strings.Contains(fullErr.String(), `unknown key "bogus_section.k"`) {
				t.Errorf("%q: unknown-key warnings: %q", args, fullErr.String())
			}
		}
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain message":                   "plain message",
		"two\nlines\t and  spaces":        "two lines and spaces",
		"server says \x1b]0;pwned\x07 ok": `server says \x1b]0;pwned\a ok`,
		"bad \xff byte":                   `bad \xff byte`,
		"张三 kicked":                       "张三 kicked",
		"c1 \u0085 control":               `c1 control`, // U+0085 is white space to strings.Fields
		// Format characters (Cf): a bidi override shows "\u202eevil" as
		// "live", a zero-width space hides between letters.
		"\u202eevil\u202c kicked":   `\u202eevil\u202c kicked`,
		"al\u200bice \u2066x\u2069": `al\u200bice \u2066x\u2069`,
		"tag \U000e0041":            `tag \U000e0041`,
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
	// A user ID in text output (whoami, status, admin) is escaped the same way.
	if got := printable("\u202eevil\u202c", maxField); got != `\u202eevil\u202c` {
		t.Errorf("printable(U+202E evil U+202C) = %q", got)
	}
	if got := oneLine(strings.Repeat("x", 100000)); len(got) > maxMessage+len("…") {
		t.Errorf("oneLine of 100000 bytes: %d bytes", len(got))
	}
}

// --help (or -h) before a root flag with a value is still help: cobra's
// help flag must exist before the command is looked up, or "-o json"
// after it reads as the command "json" (exit 2).
func TestHelpBeforeRootFlags(t *testing.T) {
	isolateEnv(t, t.TempDir())
	for _, args := range [][]string{
		{"--help", "-o", "json"},
		{"--help", "--profile", "x"},
		{"-h", "--endpoint", "ws://127.0.0.1:1"},
		{"-o", "json", "--help"},
	} {
		var out, errb bytes.Buffer
		code := run(NewApp(strings.NewReader(""), &out, &errb), args, false)
		if code != 0 || !strings.Contains(out.String(), "Usage:") || errb.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q, stdout %.80q", args, code, errb.String(), out.String())
		}
	}
}

// A key of one value given a list or a map in config.yaml, and a secret
// set to nothing but spaces, are exit 2 naming where they came from. Both
// read as "not set": the command went on with the saved endpoint, the dev
// app's key or a UserSig of its own minting.
func TestConfigValuesNotOfTheirKind(t *testing.T) {
	for _, c := range []struct{ yaml, env, want string }{
		{yaml: "endpoint: [ws://10.0.0.1:1]\n", want: "config.yaml: endpoint must be one value, not a list or a map"},
		{yaml: "endpoint: {a: 1}\n", want: "config.yaml: endpoint must be one value"},
		{yaml: "secret_key: [a, b]\n", want: "config.yaml: secret_key must be one value"},
		{yaml: "admin: {x: 1}\n", want: "config.yaml: admin must be one value"},
		{yaml: "output: [json]\n", want: "config.yaml: output must be one value"},
		{yaml: "secret_key: \"  \"\n", want: "config.yaml: secret_key is set but empty"},
		// YAML's null is set to nothing too (viper reads it as absent:
		// the dev app's key was used)
		{yaml: "secret_key:\n", want: "config.yaml: secret_key is set but empty"},
		{yaml: "Secret_Key: ~\n", want: "config.yaml: secret_key is set but empty"},
		{env: "CHATCTL_SECRET_KEY= ", want: "CHATCTL_SECRET_KEY is set but empty"},
		{env: "CHATCTL_SECRET_KEY=", want: "CHATCTL_SECRET_KEY is set but empty"},
		// A secret with white space inside: a file of two lines, a key and a comment.
		{env: "CHATCTL_SECRET_KEY=0123abcd\n# the dev key", want: "CHATCTL_SECRET_KEY holds white space or a control character inside (byte 8; a second line?)"},
		{yaml: "secret_key: \"0123 abcd\"\n", want: "config.yaml: secret_key holds white space"},
	} {
		dir := t.TempDir()
		isolateEnv(t, dir)
		if c.yaml != "" {
			os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(c.yaml), 0o600)
		}
		if k, v, ok := strings.Cut(c.env, "="); ok {
			t.Setenv(k, v)
		}
		var out, errw bytes.Buffer
		code := run(NewApp(strings.NewReader(""), &out, &errw), []string{"sig", "gen", "--user", "a", "--sdkappid", "1400000001"}, true)
		if code != ExitUsage || !strings.Contains(errw.String(), c.want) || out.Len() != 0 {
			t.Errorf("%s%s: exit %d, stdout %q, stderr %q; want %d and %q", c.yaml, c.env, code, out.String(), errw.String(), ExitUsage, c.want)
		}
	}
	// A bad value of a key the command does not use fails only the
	// commands that do: serve's keys do not fail version or whoami.
	cfg := t.TempDir()
	isolateEnv(t, cfg)
	os.WriteFile(filepath.Join(cfg, "config.yaml"), []byte("serve:\n  store: [a, b]\n"), 0o600)
	for _, args := range [][]string{{"version"}, {"whoami", "-o", "json"}} {
		var out, errw bytes.Buffer
		if code := run(NewApp(strings.NewReader(""), &out, &errw), args, true); code == ExitUsage {
			t.Errorf("%q with a bad serve.store: exit 2, %q", args, errw.String())
		}
	}

	// A UserSig set but blank: login refuses it before minting one.
	dir := t.TempDir()
	isolateEnv(t, dir)
	t.Setenv("CHATCTL_USER_SIG", " \n")
	var out, errw bytes.Buffer
	if code := run(NewApp(strings.NewReader(""), &out, &errw), []string{"login", "bob"}, true); code != ExitUsage || !strings.Contains(errw.String(), "CHATCTL_USER_SIG is set but empty") {
		t.Errorf("CHATCTL_USER_SIG blank: exit %d, %q", code, errw.String())
	}
	// config.yaml's user_sig set to null: as blank, not a UserSig minted.
	os.Unsetenv("CHATCTL_USER_SIG")
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("user_sig:\n"), 0o600)
	out.Reset()
	errw.Reset()
	if code := run(NewApp(strings.NewReader(""), &out, &errw), []string{"login", "bob"}, true); code != ExitUsage || !strings.Contains(errw.String(), "config.yaml: user_sig is set but empty") {
		t.Errorf("user_sig null: exit %d, %q", code, errw.String())
	}
	os.Remove(filepath.Join(dir, "config.yaml"))
	// The same rule for files and --key.
	two := filepath.Join(dir, "two-lines")
	os.WriteFile(two, []byte("0123abcd\r\nsecond\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sig", "gen", "--user", "a", "--sdkappid", "1400000001", "--key-file", two}, "the secret key from " + two + " holds white space"},
		{[]string{"sig", "gen", "--user", "a", "--sdkappid", "1400000001", "--key", "ab\tcd"}, "--key holds white space"},
		{[]string{"sig", "gen", "--user", "a", "--sdkappid", "1400000001", "--key", " "}, "--key is empty"},
		{[]string{"login", "bob", "--user-sig-file", two}, "the UserSig from " + two + " holds white space"},
	} {
		out.Reset()
		errw.Reset()
		t.Setenv("CHATCTL_USER_SIG", "x")
		os.Unsetenv("CHATCTL_USER_SIG")
		if code := run(NewApp(strings.NewReader(""), &out, &errw), c.args, true); code != ExitUsage || !strings.Contains(errw.String(), c.want) {
			t.Errorf("%q: exit %d, %q; want %d, %q", c.args, code, errw.String(), ExitUsage, c.want)
		}
	}
	// A flag that gives the secret leaves the variable unread, empty or not.
	file := filepath.Join(dir, "secret")
	os.WriteFile(file, []byte("0123456789abcdef\n"), 0o600)
	t.Setenv("CHATCTL_SECRET_KEY", "")
	for _, args := range [][]string{
		{"sig", "gen", "--user", "a", "--sdkappid", "1400000001", "--key-file", file},
		{"login", "bob", "--user-sig-file", file, "--endpoint", "ws://127.0.0.1:1", "--timeout", "5s"},
	} {
		out.Reset()
		errw.Reset()
		if code := run(NewApp(strings.NewReader(""), &out, &errw), args, true); code == ExitUsage || strings.Contains(errw.String(), "set but empty") {
			t.Errorf("%q with the variables empty: exit %d, %q", args, code, errw.String())
		}
	}
}

// version -o json reports the commit the build was stamped with (make
// build's -X, where Go's own stamp is off).
func TestVersionCommit(t *testing.T) {
	defer func(c string) { Commit = c }(Commit)
	Commit = "0123abcd"
	isolateEnv(t, t.TempDir())
	var out bytes.Buffer
	if code := run(NewApp(strings.NewReader(""), &out, io.Discard), []string{"version", "-o", "json"}, true); code != 0 || !strings.Contains(out.String(), `"commit":"0123abcd"`) {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}
