package loadgen

import (
	"os"
	"testing"

	"chatctl/internal/leaktest"
)

// The generator runs goroutines per connection, reader and ticker: none may
// outlive its run.
func TestMain(m *testing.M) { os.Exit(leaktest.Run(m)) }
