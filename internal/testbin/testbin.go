// Package testbin builds the chatctl binary once per test process, for the
// tests where the process boundary matters (exit codes, stdout/stderr,
// signals, concurrent processes), and removes it when the tests end.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	path string
	err  error
)

// Main runs a test package that calls Path, then removes the binary: a
// t.TempDir cannot hold it, as it outlives any one test. Call it from the
// package's TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// Path returns the path of a chatctl built from this checkout, building it
// on the first call.
func Path(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		dir, err = os.MkdirTemp("", "chatctl-bin-")
		if err != nil {
			return
		}
		path = filepath.Join(dir, "chatctl")
		if out, berr := exec.Command("go", "build", "-o", path, "chatctl").CombinedOutput(); berr != nil {
			err = fmt.Errorf("%v\n%s", berr, out)
		}
	})
	if err != nil {
		tb.Fatalf("building chatctl: %v", err)
	}
	return path
}
