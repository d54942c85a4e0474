package client

import (
	"math/rand/v2"
	"time"
)

// Backoff yields reconnect delays: Min, 2*Min, 4*Min, ... capped at Max,
// each with "equal jitter" (a random value in [d/2, d]) so that many
// clients that lost the same server do not come back in lockstep.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a float in [0,1); nil means math/rand/v2.Float64.
	Rand    func() float64
	attempt int
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	b.attempt++
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	half := d / 2
	return half + time.Duration(r()*float64(d-half))
}

// Reset starts again from Min.
func (b *Backoff) Reset() { b.attempt = 0 }
