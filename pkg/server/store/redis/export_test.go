package redis

import (
	"context"
	"fmt"

	"chatctl/pkg/server/store"
)

// putScript sets an entry and moves the hash's expiry to the latest
// EXPIRES of its entries, as Attach does, without the policy.
var putScript = &lazyScript{src: `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local at = tonumber(ARGV[3])
if redis.call('PEXPIRETIME', KEYS[1]) < at then redis.call('PEXPIREAT', KEYS[1], at) end
return 1
`}

// PutInstance writes in's entry as it is, for tests that set up what
// several nodes wrote (a dead node's entry, a takeover) without the
// policy Attach applies.
func (s *Store) PutInstance(ctx context.Context, in store.Instance) error {
	if badInstance(in) {
		return fmt.Errorf("put instance: bad instance %+v", in)
	}
	err := putScript.Run(ctx, s.c, []string{s.onKey(in.App, in.User)}, in.InstID, encodeInstance(in), (in.Expires+1)*1000).Err()
	return s.wrap("put instance", err)
}
