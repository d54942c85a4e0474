package redis

// Accounts, kick watermarks and revocations (redis.go connects and holds
// the secret and the instance ids; presence.go and attach.go the
// presence).

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	ms, err := s.watermark(op, app, user, wm)
	if err != nil {
		return false, err
	}
	if !admit(ms) {
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
	return s.watermark(op, app, user, s.c.ZScore(ctx, s.appKey(app, "wm"), user))
}

// watermarkLua is the scripts' reading of a kick watermark, as
// Store.watermark's in Go (TestCorruptWatermark's table holds the two
// equal). watermark is the unix ms that the score s (ZSCORE's reply)
// stands for, or nil when SetKickWatermark cannot have written it (see
// validWatermark). kicked says whether an A2Key issued at unix ms issued
// is refused by user's watermark in wms (store.A2Kicked), and fails the
// script on a corrupt one.
const watermarkLua = `
local function watermark(s)
  local w = tonumber(s)
  if w and w >= 1 and w <= 9007199254740991 and w == math.floor(w) then return w end
  return nil
end
local function kicked(wms, user, issued)
  local s = redis.call('ZSCORE', wms, user)
  if not s then return false end
  local w = watermark(s)
  if not w then error({err = 'corrupt kick watermark ' .. s .. ' of ' .. user .. ' in ' .. wms}) end
  return w > tonumber(issued)
end
`

// validWatermark reports whether the score f of a user's kick watermark
// is one SetKickWatermark can have written: a whole number of unix ms
// that store.BadWatermark takes (1 to 2^53-1). Anything else (+inf,
// -inf, 2^63 and more, a fraction, zero or less: written by another tool
// with access to Redis) is corrupt, and every read of it fails, in Go and
// in Lua alike, rather than read one way here and another there: Go's
// int64(+inf) is MinInt64 ("never kicked") where Lua's +inf is "kicked",
// so every login was answered and then kicked at once. A REST kick of
// the user replaces a corrupt watermark (SetKickWatermark); ZREM clears it.
func validWatermark(f float64) bool {
	return f == math.Trunc(f) && math.Abs(f) <= 1<<53 && !store.BadWatermark(int64(f))
}

// watermark reads the reply of ZSCORE of user's watermark: 0 when there
// is none, an error naming the key when it is corrupt (validWatermark).
func (s *Store) watermark(op string, app uint64, user string, c *goredis.FloatCmd) (int64, error) {
	f, err := c.Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.wrap(op, err)
	}
	if !validWatermark(f) {
		return 0, fmt.Errorf("%s: redis %s: corrupt kick watermark %v of %q in %s", op, s.addr, f, user, s.appKey(app, "wm"))
	}
	return int64(f), nil
}

// setWatermarkScript writes user ARGV[2]'s watermark ARGV[1] in KEYS[1]
// unless a valid one as late or later is there: as ZADD GT, but a corrupt
// one (watermarkLua's watermark) is replaced, which ZADD GT would keep if
// it is +inf or past ARGV[1].
var setWatermarkScript = lazyScript(watermarkLua + `
local s = redis.call('ZSCORE', KEYS[1], ARGV[2])
if s then
  local w = watermark(s)
  if w and w >= tonumber(ARGV[1]) then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// SetKickWatermark records a kick at ms: the watermark never moves back,
// atomically across nodes (one script). A corrupt watermark
// (validWatermark) is replaced, so a REST kick of the user repairs it.
// (A score is a float64: exact for every unix ms below 2^53.)
func (s *Store) SetKickWatermark(ctx context.Context, app uint64, user string, ms int64) error {
	const op = "set kick watermark"
	if store.BadWatermark(ms) {
		return fmt.Errorf("%s: bad time %d", op, ms)
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return s.wrap(op, setWatermarkScript().Run(ctx, s.c, []string{s.appKey(app, "wm")}, ms, user).Err())
}

// revocationLua is the scripts' reading of an instance's revocation, as
// Store.Revoked's in Go (TestCorruptRevocation's table holds the two
// equal). revocation(v) is the unix ms until which the value v runs, or
// nil when RevokeInstance cannot have written it (see parseRevocation);
// revoked(key, now) is the value of a revocation running past unix ms now,
// false when there is none or it has run out, and fails the script on a
// malformed one.
const revocationLua = `
local function revocation(v)
  local u = string.match(v, '^(%d+):')
  u = u and #u <= 16 and tonumber(u)
  if u and u >= 1 and u <= 9007199254740991 then return u end
  return nil
end
local function revoked(key, now)
  local v = redis.call('GET', key)
  if not v then return false end
  local u = revocation(v)
  if not u then error({err = 'malformed revocation in ' .. key}) end
  if u > tonumber(now) then return v end
  return false
end
`

// parseRevocation reads a revocation's value, "UNTIL:REASON" as
// RevokeInstance writes it: UNTIL is unix ms, 1 to 2^53-1, in at most 16
// decimal digits. Any other value (written by another tool with access to
// Redis) is malformed, and every read of it fails, in Go and in Lua alike,
// rather than read one way here and another there: Go's ParseInt took a
// sign and refused 2^63, where Lua took 2^63 and refused a sign, so a
// login that Revoked refused was attached. A new revocation of the
// instance (RevokeInstance) replaces a malformed one.
//
// REASON is cut to maxReason bytes: RevokeInstance writes a kick type's
// name, and what another writer put there goes on to a login's refusal,
// the page's feed and the log.
func parseRevocation(v string) (until int64, why string, ok bool) {
	u, why, found := strings.Cut(v, ":")
	if !found || u == "" || len(u) > 16 || strings.Trim(u, "0123456789") != "" {
		return 0, "", false
	}
	if len(why) > maxReason {
		why = strings.ToValidUTF8(why[:maxReason], "")
	}
	until, _ = strconv.ParseInt(u, 10, 64)
	return until, why, until >= 1 && until <= 1<<53-1
}

// maxReason bounds a revocation's reason as read (parseRevocation).
const maxReason = 64

// revokeScript stores "UNTIL:reason" expiring at UNTIL unless a revocation
// that runs as long or longer is there; it replaces a malformed one.
var revokeScript = lazyScript(revocationLua + `
local v = redis.call('GET', KEYS[1])
local u = v and revocation(v)
if u and u >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`)

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
	return s.wrap(op, revokeScript().Run(ctx, s.c, []string{s.revKey(app, instID)}, ms, reason).Err())
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
	until, why, ok := parseRevocation(v)
	if !ok { // its value is not told: it may be huge
		return "", false, fmt.Errorf("%s: redis %s: malformed revocation in %s", op, s.addr, s.revKey(app, instID))
	}
	if until <= s.now().UnixMilli() {
		return "", false, nil
	}
	return why, true, nil
}
