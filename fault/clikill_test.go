package fault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// 120 chatctl login/logout processes on 20 profiles, each killed with
// SIGKILL after a random 0–250 ms (mid-dial, mid-login, holding the session
// file's lock or mid-write): the file always parses, a killed lock holder
// never blocks the next process (the kernel drops its flock), and every
// profile then logs in normally and is saved.
func TestCLIKilledMidWrite(t *testing.T) {
	t.Parallel()
	cfg, env, path := seededConfig(t)

	var wg sync.WaitGroup
	var mu sync.Mutex
	killed, finished := 0, 0
	for i := range 120 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prof := fmt.Sprintf("k%02d", i%20)
			args := []string{"--profile", prof, "login", "u" + prof}
			if i%3 == 2 {
				args = []string{"--profile", prof, "logout"}
			}
			cmd := exec.Command(builtBinary(t), args...)
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				mu.Lock()
				finished++
				mu.Unlock()
				if c := exitCode(err); c != 0 && c != 3 && c != 4 {
					t.Errorf("chatctl %s: exit %d: %s", strings.Join(args, " "), c, out.String())
				}
			case <-time.After(time.Duration(rand.IntN(250)) * time.Millisecond):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				mu.Lock()
				killed++
				mu.Unlock()
			}
			if b, err := os.ReadFile(path); err == nil {
				var f sessionFile
				if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
					t.Errorf("sessions.json does not parse after a kill (%v): %q", err, b)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d processes killed, %d finished", killed, finished)

	// Nothing is stuck: every profile logs in, within the usual bound.
	for i := range 20 {
		prof := fmt.Sprintf("k%02d", i)
		r := run(t, env, procLimit, "--profile", prof, "login", "u"+prof)
		if r.code != 0 {
			t.Errorf("after the kills: %v", r)
		}
	}
	f := finalSessions(t, path)
	for i := range 20 {
		prof := fmt.Sprintf("k%02d", i)
		if p, ok := f.Profiles[prof]; !ok || p.UserID != "u"+prof || p.State != "ready" {
			t.Errorf("profile %s: %+v (present %v)", prof, p, ok)
		}
	}
	var stale []string
	for _, n := range dirNames(t, cfg) {
		if strings.Contains(n, ".tmp") {
			stale = append(stale, n)
		}
	}
	// Each write removes the temp files of writers killed before their
	// rename (they may hold A2Keys): the logins above leave none.
	if len(stale) > 0 {
		t.Errorf("temp files left by killed writers: %v", stale)
	}
}
