package redis

// Accounts, kick watermarks and revocations (redis.go connects and holds
// the secret and the instance ids; presence.go and attach.go the
// presence).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"chatctl/pkg/server/store"

	goredis "github.com/redis/go-redis/v9"
)

// ImportAccount adds a, or updates it: a non-empty Nick or FaceURL replaces
// the stored one, an empty one keeps it; Created stays the first import's
// (a zero Created becomes now). One MULTI/EXEC.
func (s *Store) ImportAccount(ctx context.Context, app uint64, a store.Account) (created bool, err error) {
	const op = "import account"
	if a.UserID == "" {
		return false, store.ErrEmptyUser
	}
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	if a.Created.IsZero() {
		a.Created = s.now()
	}
	var setnx *goredis.BoolCmd
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		setnx = p.HSetNX(ctx, s.appKey(app, "acct"), a.UserID, a.Created.UnixMilli())
		if a.Nick != "" {
			p.HSet(ctx, s.appKey(app, "nick"), a.UserID, a.Nick)
		}
		if a.FaceURL != "" {
			p.HSet(ctx, s.appKey(app, "face"), a.UserID, a.FaceURL)
		}
		return nil
	})
	if err != nil {
		return false, s.wrap(op, err)
	}
	return setnx.Val(), nil
}

// LoginAccount reads the watermark and whether the account exists in one
// round trip and, when admit takes the watermark and there is none,
// imports user with HSETNX (which keeps an account imported meanwhile):
// before it returns, as every write here (Redis has no commit to share).
func (s *Store) LoginAccount(ctx context.Context, app uint64, user string, at time.Time, admit func(wm int64) bool) (bool, error) {
	const op = "login account"
	if user == "" {
		return false, store.ErrEmptyUser
	}
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	var wm *goredis.FloatCmd
	var exists *goredis.BoolCmd
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		wm = p.ZScore(ctx, s.appKey(app, "wm"), user)
		exists = p.HExists(ctx, s.appKey(app, "acct"), user)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, s.wrap(op, err)
	}
	ms, err := wm.Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, s.wrap(op, err)
	}
	if !admit(int64(ms)) {
		return false, nil
	}
	if exists.Val() {
		return true, nil
	}
	if err := s.c.HSetNX(ctx, s.appKey(app, "acct"), user, at.UnixMilli()).Err(); err != nil {
		return false, s.wrap(op, err)
	}
	return true, nil
}

// AccountExists reports whether user is imported.
func (s *Store) AccountExists(ctx context.Context, app uint64, user string) (bool, error) {
	const op = "account exists"
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	ok, err := s.c.HExists(ctx, s.appKey(app, "acct"), user).Result()
	return ok, s.wrap(op, err)
}

// DeleteAccount removes user; the kick watermark stays.
func (s *Store) DeleteAccount(ctx context.Context, app uint64, user string) (existed bool, err error) {
	const op = "delete account"
	if err := s.begin(ctx, op); err != nil {
		return false, err
	}
	var del *goredis.IntCmd
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		del = p.HDel(ctx, s.appKey(app, "acct"), user)
		p.HDel(ctx, s.appKey(app, "nick"), user)
		p.HDel(ctx, s.appKey(app, "face"), user)
		return nil
	})
	if err != nil {
		return false, s.wrap(op, err)
	}
	return del.Val() > 0, nil
}

// KickWatermark is the unix ms of user's last REST kick, 0 if none.
func (s *Store) KickWatermark(ctx context.Context, app uint64, user string) (int64, error) {
	const op = "kick watermark"
	if err := s.begin(ctx, op); err != nil {
		return 0, err
	}
	ms, err := s.c.ZScore(ctx, s.appKey(app, "wm"), user).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	return int64(ms), s.wrap(op, err)
}

// SetKickWatermark records a kick at ms with ZADD GT: the watermark never
// moves back, atomically across nodes. (A score is a float64: exact for
// every unix ms below 2^53.)
func (s *Store) SetKickWatermark(ctx context.Context, app uint64, user string, ms int64) error {
	const op = "set kick watermark"
	if store.BadWatermark(ms) {
		return fmt.Errorf("%s: bad time %d", op, ms)
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return s.wrap(op, s.c.ZAddGT(ctx, s.appKey(app, "wm"), goredis.Z{Score: float64(ms), Member: user}).Err())
}

// revokeScript stores "UNTIL:reason" expiring at UNTIL unless a revocation
// that runs as long or longer is there.
var revokeScript = &lazyScript{src: `
local v = redis.call('GET', KEYS[1])
if v then
  local u = tonumber(string.match(v, '^(%d+):'))
  if u and u >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`}

// RevokeInstance refuses instID until `until`, for reason; the key expires
// then. A later until extends an earlier revocation (and takes its reason);
// an earlier one never shortens it. An until already past records nothing.
func (s *Store) RevokeInstance(ctx context.Context, app uint64, instID uint64, until time.Time, reason string) error {
	const op = "revoke instance"
	ms := until.UnixMilli()
	if ms <= s.now().UnixMilli() {
		return nil
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return s.wrap(op, revokeScript.Run(ctx, s.c, []string{s.revKey(app, instID)}, ms, reason).Err())
}

// Revoked returns why instID was revoked, while the revocation runs (by this
// node's clock; Redis deletes the key at the same instant by its own).
func (s *Store) Revoked(ctx context.Context, app uint64, instID uint64) (reason string, revoked bool, err error) {
	const op = "revoked"
	if err := s.begin(ctx, op); err != nil {
		return "", false, err
	}
	v, err := s.c.Get(ctx, s.revKey(app, instID)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, s.wrap(op, err)
	}
	ustr, why, ok := strings.Cut(v, ":")
	until, perr := strconv.ParseInt(ustr, 10, 64)
	if !ok || perr != nil {
		return "", false, fmt.Errorf("%s: redis %s: malformed revocation %q", op, s.addr, v)
	}
	if until <= s.now().UnixMilli() {
		return "", false, nil
	}
	return why, true, nil
}
