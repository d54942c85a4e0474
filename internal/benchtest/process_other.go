//go:build !linux

package benchtest

import (
	"errors"
	"time"
)

func processCPU(int) (time.Duration, error) { return 0, errors.ErrUnsupported }
