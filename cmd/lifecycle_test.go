package cmd_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The whole lifecycle through the built binary against a real `chatctl
// serve`, pinned by golden transcripts (testdata/cli/lifecycle_*.golden;
// `go test ./cmd -run TestLifecycle -update` rewrites them).

type lifecycleStep struct {
	args     []string
	code     int
	stdout   []string // substrings stdout must have ("" : stdout must be empty)
	stderr   []string // substrings stderr must have
	token    bool     // --show-token: the output shows the A2Key
	stopHere bool     // stop the server before this step
}

func lifecycleSteps() []lifecycleStep {
	return []lifecycleStep{
		{args: []string{"login", "alice"}, stdout: []string{"alice"}},
		{args: []string{"login", "alice"}, stdout: []string{"repeatLogin"}},
		{args: []string{"whoami"}, stdout: []string{"alice"}},
		{args: []string{"whoami", "--check"}, stdout: []string{"alice"}},
		{args: []string{"whoami", "--show-token"}, stdout: []string{"alice"}, token: true},
		{args: []string{"server-time"}},
		{args: []string{"server-time", "--ms"}},
		{args: []string{"server-time", "--cached"}},
		{args: []string{"server-time", "--cached", "--ms"}},
		{args: []string{"login", "bob"}, code: 1, stdout: []string{""}, stderr: []string{"logout", "--profile"}},
		{args: []string{"watch", "--until", "SDK_READY", "--timeout", "10s"}, stdout: []string{`"SDK_READY"`, `"alice"`}},
		{args: []string{"logout"}},
		{args: []string{"logout"}, code: 3, stdout: []string{""}, stderr: []string{"not logged in"}},
		{args: []string{"whoami"}, code: 3, stdout: []string{""}, stderr: []string{"not logged in"}},
		{args: []string{"server-time", "--cached"}, code: 3, stdout: []string{""}},
		{args: []string{"watch", "--until", "SDK_READY", "--timeout", "10s"}, code: 3, stdout: []string{""}},
		// logout --all: three profiles, one of them kicked (multipleAccount)
		// by a fourth without anyone watching: the server knows, the file
		// not yet.
		{args: []string{"login", "alice"}},
		{args: []string{"--profile", "phone", "login", "carol"}},
		{args: []string{"--profile", "tablet", "login", "alice"}},
		{args: []string{"--profile", "phone", "whoami"}, stdout: []string{"carol"}},
		{args: []string{"logout", "--all"}, stderr: []string{"multipleAccount", "phone", "tablet"}},
		{args: []string{"logout", "--all"}, code: 3, stdout: []string{""}},
		// the server gone: logout keeps the session unless --local
		{args: []string{"login", "alice"}},
		{args: []string{"logout"}, code: 6, stdout: []string{""}, stderr: []string{"--local", "kept"}, stopHere: true},
		{args: []string{"whoami"}, stdout: []string{"alice"}},
		{args: []string{"logout", "--local"}},
		{args: []string{"whoami"}, code: 3, stdout: []string{""}},
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"text", "json"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			runLifecycle(t, mode)
		})
	}
}

func runLifecycle(t *testing.T, mode string) {
	c := newCLI(t, "")
	srv := c.withServer(serveOpts{})
	tr := &transcript{norm: append(goldenNormalizers(srv.App, c.cfg), c.hideA2Keys)}
	var logins []string // stdout of the first two logins
	for i, st := range lifecycleSteps() {
		if st.stopHere {
			if code := srv.stop(t); code != 0 {
				t.Fatalf("serve exited %d on SIGTERM", code)
			}
			tr.note("the server stopped")
		}
		args := st.args
		if mode == "json" {
			args = append(append([]string(nil), args...), "-o", "json")
		}
		before := c.sessionBytes()
		r := c.runWith(runOpts{showsToken: st.token}, args...)
		tr.add(r)
		if r.code != st.code {
			t.Fatalf("want exit %d:\n%v", st.code, r)
		}
		if mode == "json" {
			checkOneDoc(t, r)
		}
		for _, s := range st.stdout {
			if s == "" && mode == "json" && r.code != 0 {
				continue // the error document, checked above
			}
			if s == "" && r.stdout != "" || !strings.Contains(r.stdout, s) {
				t.Errorf("stdout should have %q:\n%v", s, r)
			}
		}
		for _, s := range st.stderr {
			if (mode == "text" || r.code != 0) && !strings.Contains(r.stderr, s) {
				t.Errorf("stderr should have %q:\n%v", s, r)
			}
		}
		if r.code != 0 && r.code != 3 && c.sessionBytes() != before {
			t.Errorf("a failed command changed the session file:\n%v", r)
		}
		if mode == "json" || args[0] == "watch" {
			for _, l := range splitLines(r.stdout) {
				if !json.Valid([]byte(l)) {
					t.Errorf("stdout line is not JSON: %q\n%v", l, r)
				}
			}
		}
		if i < 2 {
			logins = append(logins, r.stdout)
		}
		if st.token {
			p := c.profileA2Key("default")
			if p == "" || !strings.Contains(r.stdout, p) {
				t.Errorf("--show-token does not print the A2Key:\n%v", r)
			}
		}
		if r.code != 0 && (!strings.HasPrefix(r.stderr, "chatctl: ") || strings.Count(r.stderr, "\n") != 1) {
			t.Errorf("the error is not one line `chatctl: ...`:\n%v", r)
		}
	}
	checkGolden(t, "lifecycle_"+mode+".golden", tr.String())

	// The repeated login did not log in twice: same instance.
	inst := regexp.MustCompile(`instance"?:? ?(\d+)`)
	if a, b := inst.FindStringSubmatch(logins[0]), inst.FindStringSubmatch(logins[1]); a == nil || b == nil || a[1] != b[1] {
		t.Errorf("the repeated login has another instance:\n%s%s", logins[0], logins[1])
	}

	// The secret scan (run at cleanup) knows the app key and every A2Key
	// the file held, and it does see the one --show-token printed.
	if n := c.countSecrets(); n["dev"] != 1 || n["A2Key"] < 4 {
		t.Errorf("the scan looks for %v: want the dev app's key and at least 4 A2Keys", n)
	}
	if len(c.leaks(true)) == 0 {
		t.Errorf("the scan does not see the A2Key that whoami --show-token printed")
	}
}

// profileA2Key is the A2Key saved for profile ("" if none).
// checkOneDoc checks a -o json run's stdout: exactly one JSON object with
// "schema_version" (watch: one a line), and on failure an "error" whose
// code is the exit code.
func checkOneDoc(t *testing.T, r result) {
	t.Helper()
	lines := splitLines(r.stdout)
	if len(lines) == 0 {
		t.Errorf("-o json printed nothing:\n%v", r)
		return
	}
	if !slices.Contains(r.args, "watch") && len(lines) != 1 {
		t.Errorf("-o json printed %d lines, want one document:\n%v", len(lines), r)
	}
	for i, l := range lines {
		var doc struct {
			Schema *int `json:"schema_version"`
			Error  *struct {
				Code    int    `json:"code"`
				Kind    string `json:"kind"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &doc); err != nil || doc.Schema == nil || *doc.Schema != 1 {
			t.Errorf("-o json line %q: not a document with schema_version 1 (%v)", l, err)
			continue
		}
		last := i == len(lines)-1
		switch {
		case r.code == 0 && doc.Error != nil, r.code != 0 && last && doc.Error == nil:
			t.Errorf("exit %d with line %q", r.code, l)
		case doc.Error != nil && (doc.Error.Code != r.code || doc.Error.Kind == "" || doc.Error.Message == ""):
			t.Errorf("error document %q does not match exit %d", l, r.code)
		}
	}
}

func (c *cli) profileA2Key(profile string) string {
	b, err := os.ReadFile(c.sessionPath())
	if err != nil {
		return ""
	}
	var f struct {
		Profiles map[string]struct {
			A2Key string `json:"a2_key"`
		} `json:"profiles"`
	}
	json.Unmarshal(b, &f)
	return f.Profiles[profile].A2Key
}

// hideA2Keys replaces every A2Key the test has seen by $A2KEY.
func (c *cli) hideA2Keys(s string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, what := range c.secrets {
		if strings.HasPrefix(what, "the A2Key") {
			s = strings.ReplaceAll(s, k, "$A2KEY")
		}
	}
	return s
}
