package cmd_test

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
)

// 50 chatctl processes log in on 50 profiles at once while whoami processes
// read the same session file: every login succeeds, every whoami sees a
// valid file (exit 0 or 3, never a corrupt file), and the file ends up
// holding all 50.
func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	const n = 50
	c := newCLI(t, "")
	c.withServer(serveOpts{})
	// A first login creates the file, so that whoami races with writers
	// from the start.
	if r := c.run("--profile", "p00", "login", "u00"); r.code != 0 {
		t.Fatalf("%v", r)
	}

	var wg sync.WaitGroup
	logins := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			logins[i] = c.run("--profile", fmt.Sprintf("p%02d", i), "login", fmt.Sprintf("u%02d", i), "-o", "json")
		}(i)
	}
	const readers = 4
	whoamis := make([][]result, readers)
	for w := 0; w < readers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 5 {
				whoamis[w] = append(whoamis[w], c.run("--profile", fmt.Sprintf("p%02d", i), "whoami"))
			}
		}(w)
	}
	wg.Wait()

	for i, r := range logins {
		if r.code != 0 {
			t.Errorf("login %d: %v", i, r)
			continue
		}
		var out struct {
			Profile, User string
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.User != fmt.Sprintf("u%02d", i) {
			t.Errorf("login %d printed %q (%v)", i, r.stdout, err)
		}
	}
	for _, rs := range whoamis {
		for _, r := range rs {
			if r.code != 0 && r.code != 3 {
				t.Errorf("whoami during the logins: %v", r)
			}
			if r.code == 0 && r.stdout != "u"+r.args[1][1:]+"\n" {
				t.Errorf("whoami printed the wrong user: %v", r)
			}
		}
	}

	b, err := os.ReadFile(c.sessionPath())
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version  int
		Profiles map[string]struct {
			UserID string `json:"user_id"`
			State  string `json:"state"`
			A2Key  string `json:"a2_key"`
		}
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("the session file is not valid JSON: %v\n%s", err, b)
	}
	if len(f.Profiles) != n {
		t.Errorf("the session file holds %d profiles, want %d", len(f.Profiles), n)
	}
	for i := 0; i < n; i++ {
		p, ok := f.Profiles[fmt.Sprintf("p%02d", i)]
		if !ok || p.UserID != fmt.Sprintf("u%02d", i) || p.State != "ready" || p.A2Key == "" {
			t.Errorf("profile p%02d: %+v (present %v)", i, p, ok)
		}
	}
	// Afterwards every profile reads back.
	for i := 0; i < n; i += 7 {
		if r := c.run("--profile", fmt.Sprintf("p%02d", i), "whoami"); r.code != 0 || r.stdout != fmt.Sprintf("u%02d\n", i) {
			t.Errorf("%v", r)
		}
	}
	if fi, err := os.Stat(c.sessionPath()); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %v, want 0600", fi.Mode().Perm())
	}
}
