package redis

import (
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// lazyScript is a Lua script whose goredis.Script (and so its SHA-1) is
// made on first use, not at package init: every chatctl command links
// this package, and hashing its scripts at init was 8 % of the
// instructions `chatctl whoami` runs (docs/BENCHMARKS.md, "CLI start").
// Its Run is goredis.Script.Run: EVALSHA, then EVAL if Redis lacks the
// script.
func lazyScript(src string) func() *goredis.Script {
	return sync.OnceValue(func() *goredis.Script { return goredis.NewScript(src) })
}
