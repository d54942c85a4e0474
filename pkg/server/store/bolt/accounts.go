package bolt

// Accounts, kick watermarks and revocations (bolt.go opens the file and
// holds the secret and the instance ids).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"chatctl/pkg/server/store"

	bbolt "go.etcd.io/bbolt"
)

// ImportAccount adds a, or updates the account: a non-empty Nick or FaceURL
// replaces the stored one, an empty one keeps it, and Created stays the
// first import's (a zero Created becomes now). A pending login import of
// the user is committed first, so this one is ordered after it.
func (s *Store) ImportAccount(ctx context.Context, app uint64, a store.Account) (created bool, err error) {
	if a.UserID == "" {
		return false, store.ErrEmptyUser
	}
	if err := s.flushUser(ctx, app, a.UserID); err != nil {
		return false, err
	}
	k := userKey(app, a.UserID)
	err = s.update(ctx, "import account", func(tx *bbolt.Tx) (err error) {
		created, err = s.importTx(tx, a, k)
		return err
	})
	return created, err
}

// importTx is ImportAccount in tx; k is the user's key. It returns
// errNoChange when the account is already as a would make it.
func (s *Store) importTx(tx *bbolt.Tx, a store.Account, k []byte) (created bool, err error) {
	old := tx.Bucket(bucketAccounts).Get(k)
	if old == nil {
		return true, s.createTx(tx, a, k)
	}
	var prev store.Account
	if err := json.Unmarshal(old, &prev); err != nil {
		return false, fmt.Errorf("account %q: %w", a.UserID, err)
	}
	if a.Nick == "" {
		a.Nick = prev.Nick
	}
	if a.FaceURL == "" {
		a.FaceURL = prev.FaceURL
	}
	a.Created = prev.Created
	if a == prev {
		return false, errNoChange
	}
	return false, putAccount(tx, a, k)
}

// createTx adds a, which tx does not hold (a zero Created becomes now).
func (s *Store) createTx(tx *bbolt.Tx, a store.Account, k []byte) error {
	if a.Created.IsZero() {
		a.Created = s.now()
	}
	a.Created = a.Created.UTC().Truncate(time.Millisecond)
	return putAccount(tx, a, k)
}

func putAccount(tx *bbolt.Tx, a store.Account, k []byte) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketAccounts).Put(k, v)
}

// flushUser commits the pending imports when user's is among them: a
// write of the account that follows is then ordered after it.
func (s *Store) flushUser(ctx context.Context, app uint64, user string) error {
	if err := ctx.Err(); err != nil {
		return s.wrap("flush", err)
	}
	if _, ok := s.pendingAccountOf(app, user); !ok {
		return nil
	}
	return s.flush()
}

// Account returns user's account.
func (s *Store) Account(ctx context.Context, app uint64, user string) (a store.Account, ok bool, err error) {
	// Pending first: the flusher drops an import only once it is committed.
	pa, pok := s.pendingAccountOf(app, user)
	err = s.view(ctx, "get account", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketAccounts).Get(userKey(app, user))
		if v == nil {
			a, ok = pa, pok
			return nil
		}
		ok = true
		return json.Unmarshal(v, &a)
	})
	return a, ok, err
}

// AccountExists reports whether user is imported.
func (s *Store) AccountExists(ctx context.Context, app uint64, user string) (ok bool, err error) {
	_, pok := s.pendingAccountOf(app, user)
	err = s.view(ctx, "account exists", func(tx *bbolt.Tx) error {
		ok = pok || tx.Bucket(bucketAccounts).Get(userKey(app, user)) != nil
		return nil
	})
	return ok, err
}

// DeleteAccount removes user. Its kick watermark stays, so UserSigs minted
// before a kick stay refused if the account is imported again. A pending
// login import of the user is committed first, so the delete wins it.
func (s *Store) DeleteAccount(ctx context.Context, app uint64, user string) (existed bool, err error) {
	if err := s.flushUser(ctx, app, user); err != nil {
		return false, err
	}
	err = s.update(ctx, "delete account", func(tx *bbolt.Tx) error {
		existed = false
		b := tx.Bucket(bucketAccounts)
		k := userKey(app, user)
		if b.Get(k) == nil {
			return errNoChange
		}
		existed = true
		return b.Delete(k)
	})
	return existed, err
}

// KickWatermark is the unix ms of user's last REST kick, 0 if none.
func (s *Store) KickWatermark(ctx context.Context, app uint64, user string) (ms int64, err error) {
	err = s.view(ctx, "kick watermark", func(tx *bbolt.Tx) error {
		ms = int64(u64(tx.Bucket(bucketWatermarks).Get(userKey(app, user))))
		return nil
	})
	return ms, err
}

// SetKickWatermark records a kick at ms. The watermark never moves back: a
// smaller ms than the stored one (a clock step back) keeps the stored one.
func (s *Store) SetKickWatermark(ctx context.Context, app uint64, user string, ms int64) error {
	if store.BadWatermark(ms) {
		return fmt.Errorf("set kick watermark: bad time %d", ms)
	}
	return s.update(ctx, "set kick watermark", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWatermarks)
		k := userKey(app, user)
		if int64(u64(b.Get(k))) >= ms {
			return errNoChange
		}
		return put64(b, k, uint64(ms))
	})
}

// RevokeInstance refuses instID until `until`, for reason. A later until
// extends an earlier revocation (and takes its reason); an earlier one never
// shortens it. An until already past records nothing.
func (s *Store) RevokeInstance(ctx context.Context, app uint64, instID uint64, until time.Time, reason string) error {
	ms := until.UnixMilli()
	if ms <= s.now().UnixMilli() {
		return nil // already run out: nothing to refuse
	}
	return s.update(ctx, "revoke instance", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRevoked)
		k := instKey(app, instID)
		if old, _ := decodeRevocation(b.Get(k)); old >= ms {
			return errNoChange
		}
		return b.Put(k, append(binary.BigEndian.AppendUint64(nil, uint64(ms)), reason...))
	})
}

// decodeRevocation splits a revocation value: until (unix ms) and reason.
func decodeRevocation(v []byte) (until int64, reason string) {
	if len(v) < 8 {
		return 0, ""
	}
	return int64(binary.BigEndian.Uint64(v)), string(v[8:])
}

// Revoked returns why instID was revoked, while the revocation runs.
func (s *Store) Revoked(ctx context.Context, app uint64, instID uint64) (reason string, revoked bool, err error) {
	now := s.now().UnixMilli()
	err = s.view(ctx, "revoked", func(tx *bbolt.Tx) error {
		until, why := decodeRevocation(tx.Bucket(bucketRevoked).Get(instKey(app, instID)))
		if until > now {
			reason, revoked = why, true
		}
		return nil
	})
	return reason, revoked, err
}

// PurgeRevoked deletes revocations that have run out and returns how many.
// A background loop runs it at Open and every Options.PurgeEvery.
//
// It finds them in read-only transactions and deletes at most purgeChunk
// per write: deleted in one transaction, 3 million held the writer, and
// every login's write batched behind it, for 3 s, and their keys took
// 650 MB (docs/RELIABILITY.md, finding 25).
func (s *Store) PurgeRevoked(ctx context.Context) (n int, err error) {
	now := s.now().UnixMilli()
	var from []byte // where the next chunk's scan starts; nil: the first key
	for {
		var dead [][]byte
		var next []byte
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketRevoked).Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for seen := 0; k != nil; k, v = c.Next() {
				// A scan stops at a chunk of run-out ones, or after
				// purgeScan keys: millions still running must not hold
				// one read transaction (and Close) for the whole bucket.
				if len(dead) == purgeChunk || seen == purgeScan {
					next = bytes.Clone(k)
					break
				}
				seen++
				if until, _ := decodeRevocation(v); until <= now {
					dead = append(dead, bytes.Clone(k))
				}
			}
			return nil
		})
		if err != nil {
			return n, s.wrap("purge revocations", err)
		}
		if len(dead) > 0 {
			var m int
			err = s.update(ctx, "purge revocations", func(tx *bbolt.Tx) error {
				m = 0
				b := tx.Bucket(bucketRevoked)
				for _, k := range dead {
					// Revoked again meanwhile, until later: kept.
					if v := b.Get(k); v == nil {
						continue
					} else if until, _ := decodeRevocation(v); until > now {
						continue
					}
					if err := b.Delete(k); err != nil {
						return err
					}
					m++
				}
				if m == 0 {
					return errNoChange
				}
				return nil
			})
			if err != nil {
				return n, err
			}
			n += m
			if purgeWrote != nil {
				purgeWrote(m)
			}
		}
		if next == nil {
			return n, nil
		}
		if err := ctx.Err(); err != nil {
			return n, s.wrap("purge revocations", err)
		}
		from = next
	}
}

// purgeChunk bounds the revocations one write of PurgeRevoked deletes, and
// purgeScan the keys one of its read-only scans looks at (variables for
// the tests).
var (
	purgeChunk = 10_000
	purgeScan  = 100_000
	purgeWrote func(deleted int) // after each write (tests)
)
