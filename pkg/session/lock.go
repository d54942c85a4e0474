package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"chatctl/pkg/config"
)

// procLocks holds, per lock file path, a one-slot channel that queues this
// process's goroutines (first come, first served) before they contend for
// flock with other processes; without it, goroutines polling flock could
// starve each other.
var procLocks sync.Map // string -> chan struct{}

// lock takes the store's lock, exclusive or shared, waiting until
// s.timeout() has passed or ctx ends. The returned func releases it; file
// is the session file itself, resolved once (config.Resolved): its lock
// is beside it, and the caller reads and writes that file, not the path
// again, which a re-pointed link would make another. Two config dirs
// whose sessions.json link to one file so take one lock; each beside its
// own link, their read-modify-writes interleaved, and logins that had
// said they saved were lost. For a plain file it is dir/LockName.
func (s *Store) lock(ctx context.Context, exclusive bool) (unlock func(), file string, err error) {
	file = config.Resolved(s.path)
	unlock, err = s.lockFile(ctx, file+".lock", exclusive, time.Now().Add(s.timeout()))
	return unlock, file, err
}

// LockLogin takes the profile's login lock, a lock file of its own in the
// directory LoginLocksDir beside the session file's lock (lock files are never
// removed: unlinking one that another process waits on would let two
// hold it), waiting until ctx ends. `chatctl login` holds it from reading
// the profile to saving the new session, so that two logins of one profile
// run one after the other: the second sees the first's session (and so
// answers repeatLogin) instead of saving a session the other one kicked.
// Other commands do not take it; the session file's own lock still guards
// every read and write. name must be valid (ValidateName).
func (s *Store) LockLogin(ctx context.Context, name string) (unlock func(), err error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	// Beside the file's own lock: in the config dir, which may be made,
	// or in a symlink's target's dir, which must be there (a link must
	// not decide where a dir is made).
	dir := filepath.Join(filepath.Dir(config.Resolved(s.path)), LoginLocksDir)
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the config dir for %s: %w", s.path, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cannot create %s: %w (%w)", dir, err, ErrUnreadable)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(loginLockTimeout)
	}
	return s.lockFile(ctx, filepath.Join(dir, name+".lock"), true, deadline)
}

// LoginLocksDir holds the profiles' login lock files (LockLogin).
const LoginLocksDir = "login-locks"

// loginLockTimeout bounds LockLogin's wait when ctx has no deadline: a
// login's own round trips (its reply timeout is 90 s) come first.
const loginLockTimeout = 2 * time.Minute

// lockFile takes flock on path, exclusive or shared, waiting until
// deadline or the end of ctx.
func (s *Store) lockFile(ctx context.Context, path string, exclusive bool, deadline time.Time) (unlock func(), err error) {
	v, _ := procLocks.LoadOrStore(path, make(chan struct{}, 1))
	slot := v.(chan struct{})
	select {
	case slot <- struct{}{}: // the usual case, with no timer to make
	default:
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			return nil, s.waitErr(ctx, path, deadline)
		case <-timer.C:
			return nil, s.waitErr(ctx, path, deadline)
		}
	}
	unlockFile, err := s.flock(ctx, path, exclusive, deadline)
	if err != nil {
		<-slot
		return nil, err
	}
	return func() { unlockFile(); <-slot }, nil
}

// LockWaitError is a wait for a lock file that ended (ErrLockTimeout):
// by the lock's own bound, or by the context (Err), a --timeout included.
type LockWaitError struct {
	Held string // what was held, e.g. "sessions.json is still locked by another chatctl"
	Path string // the lock file
	Err  error  // the context's error; nil when the lock's bound ended it
}

func (e *LockWaitError) Error() string {
	msg := fmt.Sprintf("%v: %s (lock file %s)", ErrLockTimeout, e.Held, e.Path)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *LockWaitError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrLockTimeout}
	}
	return []error{ErrLockTimeout, e.Err}
}

// waitErr is the error for a wait for the lock file path that ended: by
// ctx, or at deadline. The end of a deadline ctx has too (LockLogin's) is
// the context's, whichever of the two noticed it first.
func (s *Store) waitErr(ctx context.Context, path string, deadline time.Time) error {
	e := &LockWaitError{Held: s.path + " is still locked by another chatctl", Path: path, Err: ctx.Err()}
	if filepath.Base(filepath.Dir(path)) == LoginLocksDir {
		e.Held = "the profile's login is held by another chatctl login"
	}
	if d, ok := ctx.Deadline(); e.Err == nil && ok && !d.After(deadline) {
		// The context's deadline has passed too: its end is due, and
		// the caller reads it (its cause: --timeout's) from the context.
		<-ctx.Done()
		e.Err = ctx.Err()
	}
	if e.Err != nil && !errors.Is(e.Err, context.DeadlineExceeded) {
		return fmt.Errorf("waiting for the lock file %s: %w", path, e.Err)
	}
	return e
}
