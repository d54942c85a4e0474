package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"chatctl/pkg/server/store"
)

// putScript sets an entry and moves the hash's expiry to the latest
// EXPIRES of its entries, as Attach does, without the policy.
var putScript = lazyScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local at = tonumber(ARGV[3])
if redis.call('PEXPIRETIME', KEYS[1]) < at then redis.call('PEXPIREAT', KEYS[1], at) end
return 1
`)

// PutInstance writes in's entry as it is, for tests that set up what
// several nodes wrote (a dead node's entry, a takeover) without the
// policy Attach applies.
func (s *Store) PutInstance(ctx context.Context, in store.Instance) error {
	if badInstance(in) {
		return fmt.Errorf("put instance: bad instance %+v", in)
	}
	err := putScript().Run(ctx, s.c, []string{s.onKey(in.App, in.User)}, in.InstID, encodeInstance(in), (in.Expires+1)*1000).Err()
	return s.wrap("put instance", err)
}

// Account returns user's account.
func (s *Store) Account(ctx context.Context, app uint64, user string) (a store.Account, ok bool, err error) {
	const op = "get account"
	if err := s.begin(ctx, op); err != nil {
		return a, false, err
	}
	var c, n, f *goredis.StringCmd
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		c = p.HGet(ctx, s.appKey(app, "acct"), user)
		n = p.HGet(ctx, s.appKey(app, "nick"), user)
		f = p.HGet(ctx, s.appKey(app, "face"), user)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return a, false, s.wrap(op, err)
	}
	ms, err := c.Int64()
	if errors.Is(err, goredis.Nil) {
		return a, false, nil
	}
	if err != nil {
		return a, false, s.wrap(op, err)
	}
	return store.Account{UserID: user, Nick: n.Val(), FaceURL: f.Val(), Created: time.UnixMilli(ms).UTC()}, true, nil
}
