package bolt

import (
	"context"
	"errors"

	bbolt "go.etcd.io/bbolt"
)

// PendingMax is pendingMax, for the external tests.
const PendingMax = pendingMax

// HoldFlushes makes every flush wait until release: a test's interleaving.
func HoldFlushes(s *Store) (release func()) {
	s.flushMu.Lock()
	return s.flushMu.Unlock
}

// FailWrites reopens the file read-only, so that every commit fails while
// reads work (a full disk), and marks the last flush failed. RestoreWrites
// reopens it writable. Neither may run beside another use of s.
func FailWrites(s *Store) error {
	if err := s.db.Close(); err != nil {
		return err
	}
	db, err := bbolt.Open(s.path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	s.db = db
	s.pendMu.Lock()
	s.flushErr = errors.New("test: writes fail")
	s.pendMu.Unlock()
	return nil
}

func RestoreWrites(s *Store) error {
	if err := s.db.Close(); err != nil {
		return err
	}
	db, err := bbolt.Open(s.path, 0o600, nil)
	s.db = db
	return err
}

// Pending reports whether user's import is pending.
func Pending(s *Store, app uint64, user string) bool {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	_, ok := s.pending[string(userKey(app, user))]
	return ok
}

// AccountsInFile is the number of accounts the file holds (pending
// imports not counted).
func AccountsInFile(s *Store) (n int, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketAccounts).Stats().KeyN
		return nil
	})
	return n, err
}

// Revocations is the number of stored revocations, run out or not (those
// the next purge deletes included).
func (s *Store) Revocations(ctx context.Context) (n int, err error) {
	err = s.view(ctx, "revocations", func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketRevoked).Stats().KeyN
		return nil
	})
	return n, err
}

// SetPurgeChunk makes PurgeRevoked delete at most chunk per write, and
// look at most at scan keys per read, until restore.
func SetPurgeChunk(chunk, scan int) (restore func()) {
	oldChunk, oldScan := purgeChunk, purgeScan
	purgeChunk, purgeScan = chunk, scan
	return func() { purgeChunk, purgeScan = oldChunk, oldScan }
}

// OnPurgeWrite calls f with the count each write of PurgeRevoked deletes,
// until restore.
func OnPurgeWrite(f func(deleted int)) (restore func()) {
	purgeWrote = f
	return func() { purgeWrote = nil }
}
