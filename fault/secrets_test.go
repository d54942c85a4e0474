package fault

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/sig"
)

// secretScan collects every output of a run and every secret it learns.
type secretScan struct {
	t       *testing.T
	cfg     string
	outputs map[string]string // what → text
	exempt  map[string]bool   // outputs that print a secret because a flag asked
	secrets map[string]string // secret → what
}

func (s *secretScan) secret(v, what string) {
	if v != "" {
		s.secrets[v] = what
	}
}

func (s *secretScan) add(what, text string, exempt bool) {
	s.outputs[what] = text
	if exempt {
		s.exempt[what] = true
	}
}

// learnA2Keys adds every a2_key in sessions.json.
func (s *secretScan) learnA2Keys() {
	b, err := os.ReadFile(filepath.Join(s.cfg, "sessions.json"))
	if err != nil {
		return
	}
	var f sessionFile
	if json.Unmarshal(b, &f) == nil {
		for name, p := range f.Profiles {
			s.secret(p.A2Key, "the A2Key of profile "+name)
		}
	}
}

// sigWord matches words that could be a UserSig.
var sigWord = regexp.MustCompile(`[A-Za-z0-9*_\-+/=]{40,}`)

func (s *secretScan) check() (scanned int) {
	s.learnA2Keys()
	for what, text := range s.outputs {
		if s.exempt[what] {
			continue
		}
		scanned += strings.Count(text, "\n") + 1
		for v, sw := range s.secrets {
			if strings.Contains(text, v) {
				s.t.Errorf("%s appears in %s:\n%s", sw, what, text)
			}
		}
		for _, w := range sigWord.FindAllString(text, -1) {
			if _, err := sig.Decode(w); err == nil {
				s.t.Errorf("a UserSig appears in %s: %s", what, w)
			}
		}
	}
	return scanned
}

// A whole lifecycle through the binary — serve at debug level, sig gen,
// verify and decode, login (minted, from a file, from stdin, with a bad
// UserSig), whoami (--check), server-time, watch, admin kick and online,
// a watch that gets kicked, logout — and then a scan of every line the
// server logged and every stdout and stderr for the dev app's secret key,
// every UserSig minted and every A2Key the session file held. Only the
// outputs whose job is to print a secret (sig gen, whoami --show-token) are
// exempt, and they are checked to be the only ones.
func TestNoSecretsInOutput(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config")
	srv := startServe(t, cfg, "--log-level", "debug")
	sc := &secretScan{t: t, cfg: cfg, outputs: map[string]string{}, exempt: map[string]bool{}, secrets: map[string]string{}}
	sc.secret(srv.dev.SecretKey, "the dev app's secret key")
	env := cleanEnv(cfg, "CHATCTL_ENDPOINT="+srv.WS)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(srv.dev.SecretKey), 0o600)

	n := 0
	do := func(o runOptions, args ...string) result {
		t.Helper()
		e := append(append([]string(nil), env...), o.env...)
		r := runStdin(t, e, o.stdin, procLimit, args...)
		n++
		what := "chatctl " + strings.Join(args, " ")
		sc.add(what+" (stdout)", r.stdout, o.exemptOut)
		sc.add(what+" (stderr)", r.stderr, false)
		sc.learnA2Keys()
		if o.want >= 0 && r.code != o.want {
			t.Errorf("want exit %d: %v", o.want, r)
		}
		return r
	}

	gen := do(runOptions{exemptOut: true}, "sig", "gen", "--user", "alice", "--expire", "1h")
	minted := strings.TrimSpace(gen.stdout)
	sc.secret(minted, "a UserSig minted by sig gen")
	genJSON := do(runOptions{exemptOut: true}, "sig", "gen", "--user", "bob", "-o", "json")
	var gj struct {
		UserSig string `json:"sig"`
	}
	if err := json.Unmarshal([]byte(genJSON.stdout), &gj); err != nil || gj.UserSig == "" {
		t.Fatalf("sig gen -o json: %v: %v", err, genJSON)
	}
	sc.secret(gj.UserSig, "a UserSig minted by sig gen -o json")
	sigFile := filepath.Join(dir, "alice.sig")
	os.WriteFile(sigFile, []byte(minted+"\n"), 0o600)
	forged := sig.Gen(sig.Params{SDKAppID: srv.dev.SDKAppID, Key: randomKey(), UserID: "carol", Expire: 3600}, time.Now())
	sc.secret(forged, "a forged UserSig")

	do(runOptions{}, "sig", "verify", "--user", "alice", "--key-file", keyFile, minted)
	do(runOptions{want: 5}, "sig", "verify", "--user", "carol", forged)
	do(runOptions{}, "sig", "decode", minted)
	do(runOptions{}, "login", "alice", "--user-sig-file", sigFile)
	do(runOptions{}, "whoami")
	do(runOptions{}, "whoami", "--check", "-o", "json")
	do(runOptions{exemptOut: true}, "whoami", "--show-token")
	do(runOptions{}, "server-time")
	do(runOptions{}, "server-time", "-o", "json")
	do(runOptions{}, "watch", "--until", "SDK_READY", "--timeout", "10s")
	do(runOptions{stdin: gj.UserSig + "\n"}, "--profile", "bob", "login", "bob", "--user-sig", "-")
	do(runOptions{want: 5, stdin: forged}, "--profile", "carol", "login", "carol", "--user-sig", "-")
	do(runOptions{want: 5, env: []string{"CHATCTL_USER_SIG=" + forged}}, "--profile", "carol", "login", "carol")
	do(runOptions{}, "--profile", "dave", "login", "dave", "--key-file", keyFile, "-o", "json")
	do(runOptions{}, "--profile", "erin", "login", "erin", "--key", srv.dev.SecretKey)
	do(runOptions{}, "admin", "online", "alice", "bob", "--detail")
	do(runOptions{}, "admin", "online", "alice", "-o", "json")
	do(runOptions{}, "admin", "kick", "bob")
	do(runOptions{want: 4}, "--profile", "bob", "watch", "--timeout", "10s")
	do(runOptions{want: 4}, "--profile", "bob", "whoami", "--check")
	do(runOptions{}, "--profile", "dave", "logout")
	do(runOptions{}, "logout", "--all")
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	sc.add("serve's stdout", srv.stdout.String(), false)
	sc.add("serve's log (stderr, debug)", srv.stderr.String(), false)

	// The exempt outputs really are the ones that print secrets.
	// The exempt outputs do hold a secret: the scan would see a leak.
	sc.learnA2Keys()
	for what := range sc.exempt {
		found := false
		for v := range sc.secrets {
			found = found || strings.Contains(sc.outputs[what], v)
		}
		if !found {
			t.Errorf("%s holds no known secret: the scan is blind", what)
		}
	}
	if len(sc.exempt) != 3 {
		t.Errorf("exempt outputs: %v", sc.exempt)
	}
	if !strings.Contains(srv.stderr.String(), "login") {
		t.Errorf("the server logged no login at debug level: %q", srv.stderr.String())
	}
	lines := sc.check()
	t.Logf("%d commands, %d lines of output and server log scanned for %d secrets", n, lines, len(sc.secrets))
}

type runOptions struct {
	stdin     string
	env       []string
	exemptOut bool
	want      int
}

// runStdin is run with stdin.
func runStdin(t testing.TB, env []string, stdin string, limit time.Duration, args ...string) result {
	t.Helper()
	if stdin == "" {
		return run(t, env, limit, args...)
	}
	f := filepath.Join(t.TempDir(), "stdin")
	os.WriteFile(f, []byte(stdin), 0o600)
	in, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	return runWithStdin(t, env, in, limit, args...)
}
