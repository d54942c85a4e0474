package session

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a helper process (re-executed with
// SESSION_TEST_HELPER set) so that tests can exercise locking across real
// processes.
const helperEnv = "SESSION_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv("SESSION_TEST_DIR"), os.Getenv("SESSION_TEST_PROFILE")))
	}
	os.Exit(m.Run())
}

func runHelper(mode, dir, profile string) int {
	s := Open(dir)
	s.LockTimeout = time.Minute // a generous bound: correctness, not speed, is under test
	ctx := context.Background()
	switch mode {
	case "put":
		if err := s.Put(ctx, profile, sample(profile)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "hold", "hold-shared":
		// Hold the lock until stdin closes.
		unlock, _, err := s.lock(ctx, mode == "hold")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		unlock()
		return 0
	case "fsize":
		// Writes past 64 bytes fail with EFBIG (even for root), so saving
		// a profile fails half way through the temp file.
		signal.Ignore(syscall.SIGXFSZ)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			return 2
		}
		err := s.Put(ctx, profile, sample(profile))
		if err == nil {
			fmt.Fprintln(os.Stderr, "Put succeeded despite RLIMIT_FSIZE")
			return 1
		}
		fmt.Println(err)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helper returns a command running the helper process in mode.
func helper(t *testing.T, mode, dir, profile string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "SESSION_TEST_DIR="+dir, "SESSION_TEST_PROFILE="+profile)
	return cmd
}

// startHolder starts a helper process holding the lock of dir (exclusive
// or shared) and returns once it holds it; the lock is released when the
// test ends or release is called.
func startHolder(t *testing.T, dir string, exclusive bool) (release func()) {
	t.Helper()
	mode := "hold-shared"
	if exclusive {
		mode = "hold"
	}
	cmd := helper(t, mode, dir, "")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("lock holder: %v; stderr: %s", err, stderr.String())
		}
	}
	t.Cleanup(release)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		release()
		t.Fatalf("lock holder did not lock: %q, %v; stderr: %s", line, err, stderr.String())
	}
	return release
}

// checkNoLeak fails the test if goroutines started during it are still
// running when it ends (after a short grace period for exiting ones).
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for i := 0; i < 100 && runtime.NumGoroutine() > before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("goroutines: %d before, %d after", before, n)
		}
	})
}
