// Package bolt is the embedded store.Store of chatctl serve: one bbolt file
// under the data dir. Every write but a login's import of a new account is
// committed and fsynced before the method returns (batched with concurrent
// writes: one transaction, one fsync, update), so it is durable then;
// login imports are committed together by a flusher (pending.go).
package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"chatctl/pkg/server/store"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket names, one per concern. Keys of per-user buckets are the SDKAppID
// (8 bytes big-endian) followed by the UserID bytes. (Files of earlier
// versions also hold a bucket "counts", a per-app account counter that
// nothing read; it is left as it is.)
var (
	bucketMeta       = []byte("meta")       // secret, instid (leased high-water mark)
	bucketAccounts   = []byte("accounts")   // app+user -> JSON store.Account
	bucketWatermarks = []byte("watermarks") // app+user -> unix ms (8 bytes)
	bucketRevoked    = []byte("revoked")    // app+instID -> until, unix ms (8 bytes) + reason

	keySecret = []byte("secret")
	keyInstID = []byte("instid")
)

// InstIDBlock is how many instance ids one persisted lease reserves: at most
// this many ids are skipped by a restart.
const InstIDBlock = 1024

// ErrLocked means another process holds the store file.
var ErrLocked = errors.New("store is locked by another process (is another `chatctl serve` running on this data dir?)")

// Options tune Open; the zero value gives the defaults.
type Options struct {
	// LockTimeout bounds the wait for the file lock (default 2s).
	LockTimeout time.Duration
	// PurgeEvery is how often expired revocations are deleted, in the
	// background, the first time at Open (default 10m; negative disables
	// the purge).
	PurgeEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// FlushEvery is how long a login's import of a new account may stay
	// in memory only (default DefaultFlushEvery): the flusher commits
	// every import of that time in one transaction (pending.go).
	FlushEvery time.Duration
}

// DefaultFlushEvery is Options.FlushEvery's default: at thousands of logins
// a second one commit holds tens of new accounts, and a crash loses at
// most the imports of the last few ms (store.Store.LoginAccount).
const DefaultFlushEvery = 5 * time.Millisecond

// Store is a store.Store in one bbolt file.
type Store struct {
	db     *bbolt.DB
	path   string
	now    func() time.Time
	secret []byte

	idMu     sync.Mutex
	idNext   uint64 // next id to hand out
	idLimit  uint64 // first id not leased
	stop     chan struct{}
	done     chan struct{}
	closeOne sync.Once
	closeErr error

	// Login imports not committed yet (pending.go), by userKey.
	pendMu    sync.Mutex
	pending   map[string]pendingAccount
	closing   bool          // Close has begun: no more pending imports
	flushErr  error         // the last flush's, nil once one succeeds
	pendWake  chan struct{} // the first pending import wakes the flusher
	flushMu   sync.Mutex    // one flush at a time
	flushDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store file at path (its directory is created
// 0700, the file 0600) with the default options.
func Open(path string) (*Store, error) { return OpenOptions(path, Options{}) }

// OpenOptions is Open with options.
func OpenOptions(path string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.PurgeEvery == 0 {
		o.PurgeEvery = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db, err := openChecked(path, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	// Writes of concurrent callers share one transaction and one fsync
	// (update). A lone write waits at most this long for company.
	db.MaxBatchDelay = time.Millisecond
	s := &Store{db: db, path: path, now: o.Now, stop: make(chan struct{}), done: make(chan struct{}),
		pending: map[string]pendingAccount{}, pendWake: make(chan struct{}, 1), flushDone: make(chan struct{})}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketAccounts, bucketWatermarks, bucketRevoked} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if sec := meta.Get(keySecret); sec != nil {
			if len(sec) != store.SecretSize {
				return fmt.Errorf("secret has %d bytes, want %d", len(sec), store.SecretSize)
			}
			s.secret = bytes.Clone(sec)
			return nil
		}
		sec := make([]byte, store.SecretSize)
		if _, err := rand.Read(sec); err != nil {
			return err
		}
		s.secret = sec
		return meta.Put(keySecret, sec)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// The first purge runs in the background too: millions of run-out
	// revocations (a long-stopped server's) would hold the start for
	// seconds, and until they go they are only disk.
	if o.PurgeEvery > 0 {
		go s.purgeLoop(o.PurgeEvery)
	} else {
		close(s.done)
	}
	go s.flushLoop(o.FlushEvery)
	return s, nil
}

func (s *Store) purgeLoop(every time.Duration) {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop: // Close: a purge in progress stops between chunks
			cancel()
		case <-ctx.Done():
		}
	}()
	_, _ = s.PurgeRevoked(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_, _ = s.PurgeRevoked(ctx)
		}
	}
}

// Close stops the purge and the flusher, commits the pending login
// imports and closes the file; later calls return the first result.
func (s *Store) Close() error {
	s.closeOne.Do(func() {
		s.pendMu.Lock()
		s.closing = true
		s.pendMu.Unlock()
		close(s.stop)
		<-s.done
		<-s.flushDone
		ferr := s.flush()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store %s: %w", s.path, err)
		}
		s.closeErr = errors.Join(ferr, s.closeErr)
	})
	return s.closeErr
}

// wrap turns a bbolt error into the store's: a closed database or a done
// context is store.ErrUnavailable.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: store %s: %w", op, s.path, err)
	}
}

func (s *Store) view(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return s.wrap(op, err)
	}
	return s.wrap(op, s.db.View(fn))
}

// errNoChange ends an update that would change nothing: it is found in a
// read-only transaction and never committed, which spares the writer lock
// and an fsync (a login's auto-import of an existing account is the common
// case).
var errNoChange = errors.New("no change")

func (s *Store) update(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return s.wrap(op, err)
	}
	// First in a read-only transaction: most updates on the login path
	// change nothing (the auto-import of a known account), and finding that
	// out needs neither the writer lock nor an fsync.
	err := s.db.View(fn)
	switch {
	case err == nil || errors.Is(err, errNoChange):
		return nil
	case !errors.Is(err, bolterrors.ErrTxNotWritable):
		return s.wrap(op, err)
	}
	// It writes: commit it together with the writes of concurrent callers
	// (one transaction, one fsync for all of them). fn may run more than
	// once, so it must set its results afresh on every run. The state may
	// have changed since the read: errNoChange is then a plain no-op.
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		if err := fn(tx); !errors.Is(err, errNoChange) {
			return err
		}
		return nil
	})
	return s.wrap(op, err)
}

func userKey(app uint64, user string) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(user)), app), user...)
}

func instKey(app, inst uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), app), inst)
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func put64(b *bbolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

// Secret returns a copy of the 32-byte A2Key secret created on first open.
func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("secret", err)
	}
	return bytes.Clone(s.secret), nil
}

// NextInstID hands out ids from a block leased by a durable write of the
// block's end: a restart resumes after the last leased block, so ids are
// unique across restarts (at most InstIDBlock are skipped per restart).
func (s *Store) NextInstID(ctx context.Context) (uint64, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if s.idNext == 0 || s.idNext >= s.idLimit {
		var start, limit uint64
		err := s.update(ctx, "next instance id", func(tx *bbolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			start = max(u64(meta.Get(keyInstID)), 1)
			limit = start + InstIDBlock
			if limit > store.MaxInstID+1 {
				return errors.New("instance ids exhausted")
			}
			return put64(meta, keyInstID, limit)
		})
		if err != nil {
			return 0, err
		}
		s.idNext, s.idLimit = start, limit
	}
	id := s.idNext
	s.idNext++
	return id, nil
}
