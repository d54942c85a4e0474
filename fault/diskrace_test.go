package fault

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatctl/pkg/client"
	"chatctl/pkg/config"
	"chatctl/pkg/sig"
)

// serveStart is a `chatctl serve` started without waiting for it.
type serveStart struct {
	cmd    *exec.Cmd
	ready  chan string // its ready line, or closed without one
	stderr *lockedBuffer
	done   chan struct{}
	code   int
}

func startServeAsync(t *testing.T, cfg string, args ...string) *serveStart {
	t.Helper()
	cmd := exec.Command(builtBinary(t), append([]string{"serve", "-o", "json", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...)...)
	cmd.Env = cleanEnv(cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &serveStart{cmd: cmd, ready: make(chan string, 1), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		l, err := bufio.NewReader(out).ReadString('\n')
		if err == nil {
			s.ready <- l
		}
		close(s.ready)
	}()
	go func() {
		s.code = exitCode(cmd.Wait())
		close(s.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	return s
}

// wait returns the ready line's ws URL, or "" when it exited without one.
func (s *serveStart) wait(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-s.ready:
		if !ok {
			<-s.done
			return ""
		}
		var r struct {
			WS string `json:"ws"`
		}
		json.Unmarshal([]byte(l), &r)
		if r.WS == "" {
			// With -o json a failed start prints its error document
			// there instead of the ready line: wait for its exit code.
			<-s.done
		}
		return r.WS
	case <-time.After(30 * time.Second):
		t.Fatalf("serve neither ready nor exited after 30 s; stderr:\n%s", s.stderr.String())
		return ""
	}
}

// loginWith logs user in at ws with a UserSig minted from dev.
func loginWith(t *testing.T, ws string, dev config.DevApp, user string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoint: ws, SDKAppID: dev.SDKAppID})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Login(ctx, user, sig.Gen(sig.Params{SDKAppID: dev.SDKAppID, Key: dev.SecretKey, UserID: user, Expire: 3600}, time.Now()))
	return err
}

// Two `chatctl serve` started at once on one empty config dir. With the
// default data dir, one serves and the other exits 1 naming the store's
// lock; with a data dir each, both serve, and both with the dev app on
// disk: a UserSig minted from devapp.json logs in on each (before, each
// generated its own key and renamed it over the other's, so one of them
// refused every UserSig minted from the file).
func TestTwoServesOneConfigDir(t *testing.T) {
	t.Parallel()
	for round := range 4 {
		cfg := t.TempDir()
		a, b := startServeAsync(t, cfg), startServeAsync(t, cfg)
		wa, wb := a.wait(t), b.wait(t)
		if (wa == "") == (wb == "") {
			t.Fatalf("round %d, one data dir: ready %q and %q; want exactly one", round, wa, wb)
		}
		loser, ws := b, wa
		if wa == "" {
			loser, ws = a, wb
		}
		<-loser.done
		if loser.code != 1 || !strings.Contains(loser.stderr.String(), "lock") {
			t.Fatalf("round %d: the second serve exited %d: %s", round, loser.code, loser.stderr.String())
		}
		dev, err := config.LoadDevApp(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := loginWith(t, ws, dev, "alice"); err != nil {
			t.Fatalf("round %d: login with the key on disk: %v", round, err)
		}
	}
	for round := range 4 {
		cfg := t.TempDir()
		a := startServeAsync(t, cfg, "--data-dir", filepath.Join(cfg, "a"))
		b := startServeAsync(t, cfg, "--data-dir", filepath.Join(cfg, "b"))
		wa, wb := a.wait(t), b.wait(t)
		if wa == "" || wb == "" {
			t.Fatalf("round %d, two data dirs: ready %q and %q; stderr:\n%s\n%s", round, wa, wb, a.stderr.String(), b.stderr.String())
		}
		dev, err := config.LoadDevApp(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, ws := range []string{wa, wb} {
			if err := loginWith(t, ws, dev, "bob"); err != nil {
				t.Fatalf("round %d: login at %s with the key on disk: %v", round, ws, err)
			}
		}
	}
}

// The store file replaced by garbage: serve exits 1 with one line naming
// the file, and leaves the file as it was (no panic, no truncation).
func TestGarbageStoreFile(t *testing.T) {
	t.Parallel()
	cfg := t.TempDir()
	path := filepath.Join(cfg, "data", "chatctl.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServeAsync(t, cfg)
	if ws := s.wait(t); ws != "" {
		t.Fatalf("served on a garbage store at %s", ws)
	}
	errText := strings.TrimSpace(s.stderr.String())
	if s.code != 1 || strings.Contains(errText, "panic") || strings.Count(errText, "\n") > 2 {
		t.Fatalf("exit %d, stderr:\n%s", s.code, errText)
	}
	if b, _ := os.ReadFile(path); string(b) != string(junk) {
		t.Fatal("the garbage store file was changed")
	}
	t.Logf("stderr: %s", errText)
}
