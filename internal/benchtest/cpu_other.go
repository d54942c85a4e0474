//go:build !unix

package benchtest

import (
	"errors"
	"time"
)

func selfCPU() (time.Duration, error) { return 0, errors.ErrUnsupported }
