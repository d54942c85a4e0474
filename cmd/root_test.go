package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Each named command declares, in register, every config key it binds or
// declares: a run of another command does not build it, and the unknown-key
// check of config.yaml needs them all.
func TestRegisteredKeys(t *testing.T) {
	names := 0
	for _, c := range commands {
		if c.name == "" {
			continue
		}
		names++
		app := NewApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if got := c.new(app).Name(); got != c.name {
			t.Errorf("command registered as %q is named %q", c.name, got)
		}
		// Every key the command knows is declared, itself or by a
		// declared section ("serve.*"), and nothing else is.
		var got []string
		for _, p := range app.prefixes {
			got = append(got, p+"*")
		}
		for k := range app.known {
			if !slices.ContainsFunc(app.prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
				got = append(got, k)
			}
		}
		want := slices.Clone(c.keys)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(slices.Compact(got), slices.Compact(want)) {
			t.Errorf("%s declares config keys %q; register it with %q", c.name, want, got)
		}
	}
	if names < 8 {
		t.Fatalf("only %d named commands", names)
	}
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
		if got := commandName(c.args); got != c.want {
			t.Errorf("commandName(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// A run that builds only its command prints exactly what a run with the
// whole tree prints: help, usage errors, config warnings, results.
func TestLazyTreeSameAsFull(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CHATCTL_CONFIG_DIR", dir)
	for _, k := range []string{"CHATCTL_SECRET_KEY", "CHATCTL_SDKAPPID", "CHATCTL_ADMIN", "CHATCTL_REST_URL", "CHATCTL_ENDPOINT", "CHATCTL_OUTPUT", "CHATCTL_PROFILE", "CHATCTL_USER_SIG"} {
		t.Setenv(k, "")
	}
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
		only := commandName(args)
		if only == "" {
			t.Fatalf("%q builds the whole tree", args)
		}
		var fullOut, fullErr, lazyOut, lazyErr bytes.Buffer
		fullCode := run(args, strings.NewReader(""), &fullOut, &fullErr, "")
		lazyCode := run(args, strings.NewReader(""), &lazyOut, &lazyErr, only)
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
