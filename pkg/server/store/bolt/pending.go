package bolt

// A login's import of a new account, committed in the background: the
// login's reply does not wait for it (store.Store.LoginAccount says why
// that is safe). Every read of accounts sees pending imports; a write of an
// account (ImportAccount, DeleteAccount) whose user has one pending commits
// the pending imports first, so it is ordered after it; Close commits them
// last.

import (
	"context"
	"fmt"
	"maps"
	"time"

	"chatctl/pkg/server/store"

	bbolt "go.etcd.io/bbolt"
)

// pendingMax is how many pending imports the flusher does not wait for:
// the login that finds this many commits them itself (and waits), so that
// a disk that lags keeps at most this many in memory and logins feel it.
const pendingMax = 4096

// flushRetry is how soon the flusher tries again after a failed flush.
const flushRetry = time.Second

// errClosed is what LoginAccount returns once Close has begun.
var errClosed = fmt.Errorf("login import: %w", store.ErrUnavailable)

// LoginAccount reads user's kick watermark and whether the account exists
// in one read transaction; when admit(wm) and it does not, the account is
// imported (Created at) in memory and committed by the flusher within
// Options.FlushEvery.
func (s *Store) LoginAccount(ctx context.Context, app uint64, user string, at time.Time, admit func(wm int64) bool) (bool, error) {
	if user == "" {
		return false, store.ErrEmptyUser
	}
	k := string(userKey(app, user))
	var wm int64
	var inFile bool
	err := s.view(ctx, "login account", func(tx *bbolt.Tx) error {
		wm = int64(u64(tx.Bucket(bucketWatermarks).Get([]byte(k))))
		inFile = tx.Bucket(bucketAccounts).Get([]byte(k)) != nil
		return nil
	})
	if err != nil || !admit(wm) {
		return false, err
	}
	// The file first, then the pending imports: the flusher drops an
	// entry only after its commit, so one of the two has an import queued
	// before the read (one that vanished from both was dropped by its
	// refused login, and is queued again here; a second queue of one
	// committed meanwhile is skipped by the flush).
	if inFile {
		return true, nil
	}
	s.pendMu.Lock()
	if pa, ok := s.pending[k]; ok {
		// Another login's: this one was admitted on it, so it is never
		// dropped (relied), only committed.
		pa.relied = true
		s.pending[k] = pa
		s.pendMu.Unlock()
		return true, nil
	}
	if s.closing {
		s.pendMu.Unlock()
		return false, errClosed
	}
	s.pending[k] = pendingAccount{user: user, created: at}
	n, failing := len(s.pending), s.flushErr != nil
	s.pendMu.Unlock()
	if failing || n >= pendingMax {
		// The disk failed the last flush, or lags: this login commits
		// and waits, as every login did before, and is refused with its
		// error: its own import is dropped (the login did not happen)
		// unless another login was admitted on it meanwhile, whose
		// account it is then, committed by a later flush.
		if err := s.flush(); err != nil {
			s.pendMu.Lock()
			if pa, ok := s.pending[k]; ok && !pa.relied {
				delete(s.pending, k)
			}
			s.pendMu.Unlock()
			return false, err
		}
		return true, nil
	}
	if n == 1 {
		s.wake()
	}
	return true, nil
}

type pendingAccount struct {
	user    string
	created time.Time
	// relied: a login other than the one that queued it was admitted on
	// it, so it is never dropped, only committed.
	relied bool
}

// flushLoop commits pending imports FlushEvery after the first of them.
func (s *Store) flushLoop(every time.Duration) {
	defer close(s.flushDone)
	t := time.NewTimer(every)
	t.Stop()
	wait := every
	for {
		select {
		case <-s.stop:
			return
		case <-s.pendWake:
		}
		t.Reset(wait)
		select {
		case <-s.stop:
			t.Stop()
			return // Close flushes
		case <-t.C:
		}
		// An error keeps them pending: the flusher tries again after
		// flushRetry, and until a flush succeeds each login that
		// imports flushes itself (flushErr).
		wait = every
		if s.flush() != nil {
			wait = max(every, flushRetry)
			s.wake()
		}
	}
}

// flush commits every pending import in one transaction and drops them
// from memory once committed. Flushes are serialized, so a write that
// flushes first is ordered after every import pending when it started.
func (s *Store) flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.pendMu.Lock()
	if len(s.pending) == 0 {
		s.pendMu.Unlock()
		return nil
	}
	batch := maps.Clone(s.pending)
	s.pendMu.Unlock()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		accts := tx.Bucket(bucketAccounts)
		for k, p := range batch {
			// Absent when queued; an account there now is kept as it is.
			if accts.Get([]byte(k)) != nil {
				continue
			}
			if err := s.createTx(tx, store.Account{UserID: p.user, Created: p.created}, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if err != nil {
		s.flushErr = s.wrap("login import", err)
		return s.flushErr
	}
	s.flushErr = nil
	for k := range batch {
		delete(s.pending, k)
	}
	// Imports queued during the commit found the map non-empty and woke
	// no one: wake the flusher for them.
	if len(s.pending) > 0 {
		s.wake()
	}
	return nil
}

// wake wakes the flusher, unless a wake is pending already.
func (s *Store) wake() {
	select {
	case s.pendWake <- struct{}{}:
	default:
	}
}

// pendingAccountOf is user's pending import, if any.
func (s *Store) pendingAccountOf(app uint64, user string) (store.Account, bool) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	p, ok := s.pending[string(userKey(app, user))]
	if !ok {
		return store.Account{}, false
	}
	return store.Account{UserID: user, Created: p.created.UTC().Truncate(time.Millisecond)}, true
}
