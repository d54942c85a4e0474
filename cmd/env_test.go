package cmd

import (
	"os"
	"strings"
	"testing"
)

// DeveloperSetting reports whether the environment entry kv ("K=V") is a
// setting of the developer's that no test may inherit: any CHATCTL_
// variable, and XDG_CONFIG_HOME (where the config dir is found). The
// process-level tests (cmd_test) leave these out of a child's environment.
func DeveloperSetting(kv string) bool {
	return strings.HasPrefix(kv, "CHATCTL_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=")
}

// isolateEnv gives an in-process test a config dir, dir, and no chatctl
// setting but that: TestMain removed the developer's; this unsets, until
// the test ends, any the test set itself before (set but empty is an error
// of its own for most keys).
func isolateEnv(t *testing.T, dir string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if DeveloperSetting(kv) {
			k, _, _ := strings.Cut(kv, "=")
			t.Setenv(k, "") // restores the value when the test ends
			os.Unsetenv(k)
		}
	}
	t.Setenv("CHATCTL_CONFIG_DIR", dir)
}

// ChildEnv is the environment of a chatctl child process: the test's own
// without any DeveloperSetting, with the config dir cfg and extra after.
func ChildEnv(cfg string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !DeveloperSetting(kv) {
			env = append(env, kv)
		}
	}
	return append(append(env, "CHATCTL_CONFIG_DIR="+cfg), extra...)
}
