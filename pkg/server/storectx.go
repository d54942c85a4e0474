package server

import (
	"context"
	"sync"
	"time"
)

// storeTimeout bounds the store calls of one request.
const storeTimeout = 5 * time.Second

// storeCtx is the context of a wslogin's store calls: it ends storeTimeout
// after it was made, or at end. context.WithTimeout starts a timer for
// each (1.7 µs of a login's CPU in its profile, with its allocations);
// storeCtx starts one only when something waits on Done (the Redis
// store's network calls, a context derived from it) and otherwise answers
// Err from the clock, which is all the embedded store asks.
type storeCtx struct {
	deadline time.Time
	mu       sync.Mutex
	ctx      context.Context // nil until Done, Err past the deadline, or end
	cancel   context.CancelFunc
}

// canceledCtx is what a storeCtx ended before anything waited on it is.
var canceledCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func newStoreCtx(now time.Time, d time.Duration) *storeCtx {
	return &storeCtx{deadline: now.Add(d)}
}

func (c *storeCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *storeCtx) Value(any) any               { return nil }
func (c *storeCtx) Done() <-chan struct{}       { return c.inner(false).Done() }

func (c *storeCtx) Err() error {
	if ctx := c.inner(true); ctx != nil {
		return ctx.Err()
	}
	return nil
}

// inner is the context that carries c's Done from now on; made on the
// first call, unless lazy and c is before its deadline (nil then: not done).
func (c *storeCtx) inner(lazy bool) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil && (!lazy || !time.Now().Before(c.deadline)) {
		c.ctx, c.cancel = context.WithDeadline(context.Background(), c.deadline)
	}
	return c.ctx
}

// end cancels c: the request is over.
func (c *storeCtx) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx = canceledCtx
	} else if c.cancel != nil {
		c.cancel()
	}
}
