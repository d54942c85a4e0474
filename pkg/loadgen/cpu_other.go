//go:build !linux

package loadgen

import (
	"errors"
	"time"
)

// ProcessCPU is process pid's CPU time: Linux only.
func ProcessCPU(int) (time.Duration, error) { return 0, errors.ErrUnsupported }
