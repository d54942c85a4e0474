package cmd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The tests where the process boundary matters (exit codes, stdout/stderr,
// signals, concurrent processes) run the real binary, built once per test
// run into a temp dir.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// builtBinary returns the path of a freshly built chatctl.
func builtBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "chatctl-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "chatctl")
		out, err := exec.Command("go", "build", "-o", binPath, "chatctl").CombinedOutput()
		if err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	if binErr != nil {
		t.Fatalf("building chatctl: %v", binErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }
