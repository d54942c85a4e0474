package server

import "time"

// sweptMap is a table of per-key state that a flood of new keys cannot
// grow without bound: sweep forgets the entries that are back at their
// idle state, and evict makes room at a cap.
type sweptMap[K comparable, V any] struct {
	m     map[K]*V
	swept time.Time
}

// get returns k's entry, adding a zero one.
func (t *sweptMap[K, V]) get(k K) *V {
	if t.m == nil {
		t.m = map[K]*V{}
	}
	v := t.m[k]
	if v == nil {
		v = new(V)
		t.m[k] = v
	}
	return v
}

// sweep deletes the entries that idle reports once the map holds at least
// from, at most once a second: a sweep walks the whole map, and a flood
// must not cost a walk per key.
func (t *sweptMap[K, V]) sweep(now time.Time, from int, idle func(*V) bool) {
	if len(t.m) < from || now.Sub(t.swept) < time.Second {
		return
	}
	t.swept = now
	for k, v := range t.m {
		if idle(v) {
			delete(t.m, k)
		}
	}
}

// evict deletes entries that may go (any ones: map order) until the map
// holds fewer than max; false if it still does not.
func (t *sweptMap[K, V]) evict(max int, mayGo func(*V) bool) bool {
	for k, v := range t.m {
		if len(t.m) < max {
			break
		}
		if mayGo(v) {
			delete(t.m, k)
		}
	}
	return len(t.m) < max
}
