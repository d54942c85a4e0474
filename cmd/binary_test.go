package cmd_test

import (
	"os"
	"strings"
	"testing"

	"chatctl/cmd"
	"chatctl/internal/testbin"
)

// TestMain runs the tests, in-process ones too (some in parallel, where
// t.Setenv cannot be used), without the developer's chatctl settings.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if cmd.DeveloperSetting(kv) {
			k, _, _ := strings.Cut(kv, "=")
			os.Unsetenv(k)
		}
	}
	testbin.Main(m)
}

// builtBinary returns the path of a freshly built chatctl.
func builtBinary(t testing.TB) string { return testbin.Path(t) }
