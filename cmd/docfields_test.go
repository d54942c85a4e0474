package cmd_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docs/OUTPUT.md is the one list of what a script may rely on: the exit
// code of each error kind and the fields of each JSON document. These
// tests read it (it is in the repository, beside the code it describes)
// rather than repeat it, so that the code and the document cannot part:
// a renamed field fails here, where a test that decodes into the struct
// that wrote the JSON cannot see the rename.

// outputDoc is what docs/OUTPUT.md's tables say.
type outputDoc struct {
	kinds   map[string][]int           // error kind → its exit codes ("Exit codes")
	docs    map[string]map[string]bool // command → its fields ("The documents")
	row     map[string]int             // command → its row there (sig gen and privmap share one)
	failure map[string]bool            // the error object's fields ("On failure")
	watch   map[string]bool            // every name in the "watch" section
}

var (
	backticked = regexp.MustCompile("`([^`]*)`")
	fieldName  = regexp.MustCompile(`^"?([A-Za-z][A-Za-z0-9_]*)(":.*)?$`)
)

// names are the backticked words of s that can be JSON field names (not
// flags, values with spaces, or ""), and the names of backticked JSON
// pairs (`"recorded": true`).
func names(s string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(s, -1) {
		if f := fieldName.FindStringSubmatch(m[1]); f != nil && (f[2] == "") == !strings.HasPrefix(m[1], `"`) {
			out = append(out, f[1])
		}
	}
	return out
}

func readOutputDoc(t *testing.T) outputDoc {
	t.Helper()
	b, err := os.ReadFile("../docs/OUTPUT.md")
	if err != nil {
		t.Fatal(err)
	}
	d := outputDoc{kinds: map[string][]int{}, docs: map[string]map[string]bool{}, row: map[string]int{}, failure: map[string]bool{}, watch: map[string]bool{}}
	section, rows := "", 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		if section == "watch" {
			for _, n := range names(line) {
				d.watch[n] = true
			}
		}
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 2 {
			continue
		}
		switch section {
		case "Exit codes":
			if len(cells) != 3 {
				continue // the per-command table
			}
			for _, c := range strings.Split(strings.TrimPrefix(cells[0], "| "), ", ") {
				code, err := strconv.Atoi(c)
				if err != nil {
					break // the header
				}
				for _, k := range names(cells[2]) {
					d.kinds[k] = append(d.kinds[k], code)
				}
			}
		case "On failure":
			if n := names(cells[0]); len(n) == 1 {
				d.failure[n[0]] = true
			}
		case "The documents":
			fields := map[string]bool{}
			for _, n := range names(strings.Join(cells[1:], " | ")) {
				fields[n] = n != "error" // "On failure"'s, in any document
			}
			rows++
			for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
				cmd := strings.TrimSuffix(m[1], " …")
				d.docs[cmd], d.row[cmd] = fields, rows
			}
		}
	}
	// Rows that point at other rows.
	delete(d.docs["logout --all"], "logout") // "a list of logout's documents"
	for n := range d.docs["logout"] {
		d.docs["logout --all"][n] = true
	}
	for _, c := range []string{"sig gen", "sig privmap"} {
		for n := range d.docs["sig decode"] {
			d.docs[c][n] = true // "the decoded fields of sig decode"
		}
	}
	for _, want := range []string{"login", "whoami", "server-time", "logout", "logout --all", "status", "admin", "sig gen", "sig privmap", "sig decode", "sig verify", "bench", "serve", "version"} {
		if len(d.docs[want]) == 0 {
			t.Fatalf("docs/OUTPUT.md, The documents: no fields for %q (read: %v)", want, d.docs)
		}
	}
	if len(d.kinds) < 10 || len(d.failure) < 5 || len(d.watch) < 5 {
		t.Fatalf("docs/OUTPUT.md read as %d kinds, %d error fields, %d watch names", len(d.kinds), len(d.failure), len(d.watch))
	}
	return d
}

// keysOf adds the field names of the JSON document line to into, the
// nested objects' too (and those in arrays) unless top is set; an "error"
// object's go to errs.
func keysOf(line string, top bool, into, errs map[string]bool) error {
	var v any
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		return err
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "error" {
					for ek := range c.(map[string]any) {
						errs[ek] = true
					}
					continue
				}
				into[k] = true
				if !top {
					walk(c)
				}
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
	return nil
}

// TestDocumentedFields runs every command with -o json as a script would,
// in the states that bring out each field, and holds its documents to
// docs/OUTPUT.md both ways: no field it does not name, and every field it
// names printed by some run.
func TestDocumentedFields(t *testing.T) {
	t.Parallel()
	doc := readOutputDoc(t)
	c := newCLI(t, "")
	srv := c.withServer(serveOpts{})

	seen := map[string]map[string]bool{} // command → fields printed
	errSeen := map[string]bool{}
	// topOnly: the document's inner objects are the REST API's (admin)
	// or figures named by the text table (bench), not listed field by field.
	topOnly := map[string]bool{"admin": true, "bench": true}
	add := func(command, line string) {
		t.Helper()
		if seen[command] == nil {
			seen[command] = map[string]bool{}
		}
		if err := keysOf(line, topOnly[command], seen[command], errSeen); err != nil {
			t.Errorf("%s: %q is not JSON: %v", command, line, err)
		}
	}
	run := func(command string, code int, o runOpts, args ...string) {
		t.Helper()
		r := c.runWith(o, append(args, "-o", "json")...)
		if r.code != code {
			t.Fatalf("want exit %d:\n%v", code, r)
		}
		checkOneDoc(t, r)
		add(command, r.stdout)
	}
	add("serve", srv.Ready)

	run("version", 0, runOpts{}, "version")
	run("login", 0, runOpts{}, "login", "alice")
	run("login", 0, runOpts{}, "login", "alice") // repeatLogin
	run("whoami", 0, runOpts{}, "whoami")
	run("whoami", 0, runOpts{showsToken: true}, "whoami", "--check", "--show-token")
	run("server-time", 0, runOpts{}, "server-time")
	run("server-time", 0, runOpts{}, "server-time", "--cached")

	// A watch that sees its session kicked by another login, and the
	// recorded end after it.
	w := c.start("watch", "-o", "json")
	w.expect("SDK_READY", "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE connected")
	run("login", 0, runOpts{}, "--profile", "phone", "login", "alice")
	w.expect("KICKED_OUT multipleAccount", "NET_STATE_CHANGE connecting", "NET_STATE_CHANGE connected")
	if code := w.wait(15 * time.Second); code != 4 {
		t.Fatalf("watch of a kicked session exited %d", code)
	}
	lines := append(w.output(), splitLines(c.run("watch", "-o", "json").stdout)...)
	// A session logged out elsewhere (a copy of the profile logged out):
	// the server's refusal, with its code and info.
	run("login", 0, runOpts{}, "--profile", "out", "login", "dave")
	c.copyProfile(t, "out", "out-copy")
	mustRun(t, c, 0, "--profile", "out", "logout")
	lines = append(lines, splitLines(c.run("--profile", "out-copy", "watch", "-o", "json").stdout)...)
	// A server that goes away under a watch: NET_STATE_CHANGE.
	gone := startServe(t, c.cfg, serveOpts{dataDir: t.TempDir()})
	run("login", 0, runOpts{}, "--profile", "net", "login", "ivan", "--endpoint", gone.WS)
	nw := c.start("--profile", "net", "watch", "-o", "json", "--endpoint", gone.WS)
	nw.expect("SDK_READY")
	gone.stop(t)
	nw.expect("NET_STATE_CHANGE disconnected", "NET_STATE_CHANGE connecting")
	nw.signal(syscall.SIGTERM)
	if code := nw.wait(15 * time.Second); code != 0 {
		t.Fatalf("watch stopped by SIGTERM exited %d", code)
	}
	lines = append(lines, nw.output()...)
	mustRun(t, c, 0, "--profile", "net", "logout", "--local")
	seen["watch"] = map[string]bool{}
	for _, l := range lines {
		if err := keysOf(l, false, seen["watch"], errSeen); err != nil {
			t.Errorf("watch: %q is not JSON: %v", l, err)
		}
	}

	// status: a fine profile, a kicked one (its error and kick_type).
	run("status", 4, runOpts{}, "status", "--check")
	run("status", 4, runOpts{}, "status")
	// Failures: a kick the server names (tencent_code), as documented.
	run("whoami", 4, runOpts{}, "whoami", "--check")

	run("logout", 0, runOpts{}, "--profile", "phone", "logout")
	run("logout", 3, runOpts{}, "logout") // its end was recorded: removed, with a note
	run("login", 0, runOpts{}, "--profile", "x", "login", "erin")
	run("logout --all", 0, runOpts{}, "logout", "--all")

	// sig: gen with a userbuf, privmap both ways, decode and verify.
	gen := c.runWith(runOpts{showsToken: true}, "sig", "gen", "--user", "frank", "--userbuf", "aGk=", "-o", "json")
	add("sig gen", gen.stdout)
	var g struct {
		Sig string `json:"sig"`
	}
	json.Unmarshal([]byte(gen.stdout), &g)
	c.secret(g.Sig, "a UserSig minted for frank")
	for _, room := range [][]string{{"--room", "7"}, {"--room-str", "lobby"}} {
		r := c.runWith(runOpts{showsToken: true}, append([]string{"sig", "privmap", "--user", "frank", "-o", "json"}, room...)...)
		add("sig privmap", r.stdout)
		var p struct {
			Sig string `json:"sig"`
		}
		json.Unmarshal([]byte(r.stdout), &p)
		c.secret(p.Sig, "a PrivateMapKey minted for frank")
		run("sig decode", 0, runOpts{stdin: p.Sig}, "sig", "decode", "-")
	}
	run("sig decode", 0, runOpts{stdin: g.Sig}, "sig", "decode", "-")
	run("sig verify", 0, runOpts{stdin: g.Sig}, "sig", "verify", "--user", "frank", "-")
	run("sig verify", 5, runOpts{stdin: g.Sig}, "sig", "verify", "--user", "grace", "-")

	for _, args := range [][]string{{"import", "gina"}, {"import", "--batch", "gina", "hank"}, {"check", "gina"}, {"online", "gina"}, {"kick", "gina"}, {"delete", "gina"}} {
		run("admin", 0, runOpts{}, append([]string{"admin"}, args...)...)
	}
	run("bench", 0, runOpts{}, "bench", "logins", "--users", "2")

	// Both ways, command by command.
	exempt := map[string]string{
		"serve node": "only with --store redis:// (TestServeRedisReadyLine)",
	}
	for command, fields := range doc.docs {
		for f := range seen[command] {
			if !fields[f] && f != "schema_version" {
				t.Errorf("%s -o json prints %q, which docs/OUTPUT.md does not name for it", command, f)
			}
		}
		for f, field := range fields {
			printed := false
			for other, r := range doc.row { // a field of a row shared by commands: printed by one
				printed = printed || r == doc.row[command] && seen[other][f]
			}
			if field && !printed && exempt[command+" "+f] == "" {
				t.Errorf("docs/OUTPUT.md names %q for %s, which no run printed", f, command)
			}
		}
	}
	for f := range errSeen {
		if !doc.failure[f] {
			t.Errorf("an error object holds %q, which docs/OUTPUT.md (On failure) does not name", f)
		}
	}
	for f := range doc.failure {
		if !errSeen[f] && f != "tried" { // tried: TestCloudUnreachable (several URLs)
			t.Errorf("docs/OUTPUT.md names the error field %q, which no run printed", f)
		}
	}
	for f := range seen["watch"] {
		if !doc.watch[f] {
			t.Errorf("watch prints %q, which docs/OUTPUT.md (watch) does not name", f)
		}
	}
	for _, f := range []string{"schema_version", "event", "time", "profile", "user", "state", "type", "code", "info", "recorded"} {
		if !seen["watch"][f] {
			t.Errorf("no watch line printed %q", f)
		}
	}
	var cmds []string
	for k := range seen {
		cmds = append(cmds, k)
	}
	sort.Strings(cmds)
	if !slices.Equal(cmds, []string{"admin", "bench", "login", "logout", "logout --all", "serve", "server-time", "sig decode", "sig gen", "sig privmap", "sig verify", "status", "version", "watch", "whoami"}) {
		t.Errorf("commands run: %v", cmds)
	}
}

// copyProfile copies profile from to to in the session file, as a user
// copying the file to another machine would: one session, two profiles.
func (c *cli) copyProfile(t *testing.T, from, to string) {
	t.Helper()
	var f map[string]any
	if err := json.Unmarshal([]byte(c.sessionBytes()), &f); err != nil {
		t.Fatal(err)
	}
	ps := f["profiles"].(map[string]any)
	ps[to] = ps[from]
	b, _ := json.Marshal(f)
	if err := os.WriteFile(c.sessionPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
