package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// procLocks holds, per lock file path, a one-slot channel that queues this
// process's goroutines (first come, first served) before they contend for
// flock with other processes; without it, goroutines polling flock could
// starve each other.
var procLocks sync.Map // string -> chan struct{}

// lock takes the store's lock, exclusive or shared, waiting until
// s.timeout() has passed or ctx ends. The returned func releases it.
func (s *Store) lock(ctx context.Context, exclusive bool) (unlock func(), err error) {
	deadline := time.Now().Add(s.timeout())
	v, _ := procLocks.LoadOrStore(s.lockPath(), make(chan struct{}, 1))
	slot := v.(chan struct{})
	select {
	case slot <- struct{}{}: // the usual case, with no timer to make
	default:
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			return nil, s.waitErr(ctx.Err())
		case <-timer.C:
			return nil, s.waitErr(nil)
		}
	}
	unlockFile, err := s.flock(ctx, exclusive, deadline)
	if err != nil {
		<-slot
		return nil, err
	}
	return func() { unlockFile(); <-slot }, nil
}

// waitErr is the error for a lock wait that ended: by the timeout when
// ctxErr is nil, else by the context.
func (s *Store) waitErr(ctxErr error) error {
	switch {
	case ctxErr == nil:
		return fmt.Errorf("%w: %s is still locked by another chatctl after %v (lock file %s)",
			ErrLockTimeout, s.path, s.timeout(), s.lockPath())
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s is still locked by another chatctl (lock file %s): %w",
			ErrLockTimeout, s.path, s.lockPath(), ctxErr)
	}
	return fmt.Errorf("waiting for the lock on %s: %w", s.path, ctxErr)
}
