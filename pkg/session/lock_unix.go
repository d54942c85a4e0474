//go:build unix

package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// flock takes flock(2) on the lock file, exclusive or shared, until
// deadline or the end of ctx. It polls with LOCK_NB so that no goroutine is
// left blocked in the kernel when the wait ends. For a shared lock in a dir
// where the lock file cannot be created (read-only dir, no lock file yet) it
// returns a no-op unlock: the reader then relies on the data file being
// replaced only by rename.
func (s *Store) flock(ctx context.Context, path string, exclusive bool, deadline time.Time) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil && !exclusive && (errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS)) {
		f, err = os.Open(path) // flock works on a read-only descriptor too
		if errors.Is(err, os.ErrNotExist) {
			return func() {}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open the lock file of %s: %w (%w)", s.path, err, ErrUnreadable)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for wait := time.Millisecond; ; {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the descriptor releases the lock
		}
		if err == syscall.EINTR {
			continue
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: %w (%w)", path, err, ErrUnreadable)
		}
		left := time.Until(deadline)
		if left <= 0 {
			f.Close()
			return nil, s.waitErr(ctx, path, deadline)
		}
		if timer == nil {
			timer = time.NewTimer(min(wait, left))
		} else {
			timer.Reset(min(wait, left))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, s.waitErr(ctx, path, deadline)
		case <-timer.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}
