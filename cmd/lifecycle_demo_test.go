package cmd_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scripts/demo.sh (`make demo`) runs green end to end against the built
// binary, and shows the kicks it is about.
func TestDemoScript(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command(bash, filepath.Join("..", "scripts", "demo.sh"))
	cmd.Env = cliEnv(t.TempDir(), "BIN="+builtBinary(t), "TMPDIR="+t.TempDir())
	done := make(chan struct{})
	var out []byte
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("demo still running after 60 s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{"$ chatctl login alice", `"KICKED_OUT","type":"multipleAccount"`, `"KICKED_OUT","type":"REST_API_Kick"`, "demo ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's output has no %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "\033[") {
		t.Errorf("escape codes in the demo's output to a pipe:\n%s", out)
	}
}
