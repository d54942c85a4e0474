package redistest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig kills the redis-server if the test binary dies first (a
// panic, a -timeout), so no server outlives its test.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
