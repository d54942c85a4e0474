package fault

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// procLimit is how long one CLI process may take before the test calls it
// stuck and kills it: the session file's lock timeout (10 s) plus a network
// round trip, with room for a loaded CI machine.
const procLimit = 60 * time.Second

// sessionFile is the part of sessions.json the checks need.
type sessionFile struct {
	Version  int `json:"version"`
	Profiles map[string]struct {
		UserID string `json:"user_id"`
		A2Key  string `json:"a2_key"`
		State  string `json:"state"`
	} `json:"profiles"`
}

// seededConfig starts a server for a new config dir and logs profile seed
// in: the dir, the commands' environment and the sessions file's path.
func seededConfig(t *testing.T) (cfg string, env []string, path string) {
	t.Helper()
	cfg = filepath.Join(t.TempDir(), "config")
	srv := startServe(t, cfg)
	env = cleanEnv(cfg, "CHATCTL_ENDPOINT="+srv.WS)
	if r := run(t, env, procLimit, "--profile", "seed", "login", "seed"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	return cfg, env, filepath.Join(cfg, "sessions.json")
}

// finalSessions parses the sessions file at path, which must still hold
// the seed profile, logged in.
func finalSessions(t *testing.T, path string) sessionFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f sessionFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("final sessions.json: %v\n%s", err, b)
	}
	if p, ok := f.Profiles["seed"]; !ok || p.State != "ready" {
		t.Errorf("profile seed lost: %+v", p)
	}
	return f
}

// 200 chatctl processes at once on one config dir: 40 profiles each run
// login, whoami, server-time (and logout for every other one) in order,
// while 60 more log in, log out, whoami and server-time on one shared
// profile, and a reader parses sessions.json the whole time. Every read of
// the file parses; every process exits (none waits forever on the lock)
// with a documented code; the profiles of the sequences end exactly as
// their last command left them (no update lost).
func TestCLIFlood(t *testing.T) {
	t.Parallel()
	// The seed's login creates the file, so the reader races with writers
	// from the start.
	_, env, path := seededConfig(t)

	stop := make(chan struct{})
	var reads, readErrs atomic.Int64
	var readerDone sync.WaitGroup
	readerDone.Add(1)
	go func() {
		defer readerDone.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err == nil {
				var f sessionFile
				if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
					readErrs.Add(1)
					t.Errorf("sessions.json does not parse mid-run (%v): %q", err, b)
				}
				reads.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	const seqs, shared = 40, 60
	var mu sync.Mutex
	var all []result
	record := func(r result) {
		mu.Lock()
		all = append(all, r)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prof, user := fmt.Sprintf("d%02d", i), fmt.Sprintf("u%02d", i)
			steps := [][]string{{"login", user}, {"whoami"}, {"server-time"}}
			if i%2 == 0 {
				steps = append(steps, []string{"logout"})
			}
			for _, s := range steps {
				r := run(t, env, procLimit, append([]string{"--profile", prof}, s...)...)
				record(r)
				if r.code != 0 {
					t.Errorf("profile %s: %v", prof, r)
				}
			}
		}()
	}
	ops := [][]string{{"login", "shared"}, {"whoami"}, {"server-time"}, {"logout"}}
	sharedCodes := map[string]map[int]bool{
		"login":       {0: true},
		"whoami":      {0: true, 3: true, 4: true},
		"server-time": {0: true, 3: true, 4: true},
		"logout":      {0: true, 3: true, 4: true},
	}
	for i := range shared {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := ops[i%len(ops)]
			r := run(t, env, procLimit, append([]string{"--profile", "shared"}, op...)...)
			record(r)
			if !sharedCodes[op[0]][r.code] {
				t.Errorf("shared profile: %v", r)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readerDone.Wait()

	var slowest time.Duration
	codes := map[string]int{}
	for _, r := range all {
		if r.args[1] == "shared" {
			codes[fmt.Sprintf("%s=%d", r.args[2], r.code)]++
		}
		if r.code == -2 {
			t.Errorf("still running after %v (killed): %v", procLimit, r)
		} else if _, ok := documentedCodes[r.code]; !ok {
			t.Errorf("undocumented exit code: %v", r)
		}
		slowest = max(slowest, r.took)
	}
	t.Logf("%d processes (+1 seed), %d reads of the file mid-run, slowest process %v",
		len(all), reads.Load(), slowest.Round(time.Millisecond))
	t.Logf("shared profile exit codes: %v", codes)
	if len(all) < 200 {
		t.Errorf("only %d processes ran", len(all))
	}

	f := finalSessions(t, path)
	for i := range seqs {
		prof, user := fmt.Sprintf("d%02d", i), fmt.Sprintf("u%02d", i)
		p, ok := f.Profiles[prof]
		switch {
		case i%2 == 0 && ok:
			t.Errorf("profile %s was logged out but is in the file: %+v", prof, p)
		case i%2 == 1 && (!ok || p.UserID != user || p.State != "ready" || p.A2Key == ""):
			t.Errorf("profile %s ended logged in as %s but the file has %+v (present %v)", prof, user, p, ok)
		}
	}
	// The shared profile ends either absent or as "shared"; and it agrees
	// with whoami.
	r := run(t, env, procLimit, "--profile", "shared", "whoami")
	if p, ok := f.Profiles["shared"]; ok && p.UserID != "shared" {
		t.Errorf("shared profile holds %+v", p)
	} else if !ok && r.code != 3 {
		t.Errorf("shared profile absent but whoami: %v", r)
	}
}
