//go:build !unix

package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// flock is not implemented without flock(2): refusing is safer than writing
// the file unlocked.
func (s *Store) flock(ctx context.Context, path string, exclusive bool, deadline time.Time) (unlock func(), err error) {
	return nil, fmt.Errorf("cannot lock %s: %w", s.path, errors.ErrUnsupported)
}
