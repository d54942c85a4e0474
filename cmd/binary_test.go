package cmd_test

import (
	"testing"

	"chatctl/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// builtBinary returns the path of a freshly built chatctl.
func builtBinary(t testing.TB) string { return testbin.Path(t) }
