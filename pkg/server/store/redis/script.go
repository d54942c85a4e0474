package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// lazyScript is a Lua script whose goredis.Script (and so its SHA-1) is
// made on first use, not at package init: every chatctl command links
// this package, and hashing its scripts at init was 8 % of the
// instructions `chatctl whoami` runs (docs/BENCHMARKS.md, "CLI start").
type lazyScript struct {
	src  string
	once sync.Once
	s    *goredis.Script
}

// Run is goredis.Script.Run: EVALSHA, then EVAL if Redis lacks the script.
func (l *lazyScript) Run(ctx context.Context, c goredis.Scripter, keys []string, args ...any) *goredis.Cmd {
	l.once.Do(func() { l.s = goredis.NewScript(l.src) })
	return l.s.Run(ctx, c, keys, args...)
}
