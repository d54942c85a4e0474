package server

import (
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// The kernel's share of the per-source limit (connlimit.go). A source the
// limit refuses over and over (connBlockRefusals in connBlockWindow) is
// put on a blocklist that the listening socket's packet filter applies
// (synfilter_linux.go): the kernel drops its SYNs, and the final ACKs of
// handshakes it had begun, before any accept, so that its dials wait in
// SYN retransmission (again after 1 s, 3 s, 7 s…) instead of costing an
// accept, a reset and a new dial each, on the cores the good clients need.
// A source leaves the list when its bucket would admit again; the accept
// loop's reset still refuses whatever the list does not hold.
//
// Bounds: at most synFilterMax sources (a source beyond it is reset by the
// accept loop as before), and the filter is replaced at most once every
// synFilterPace, so a list that changes all the time costs a few
// setsockopt calls a second. A source therefore enters the kernel up to
// synFilterPace after it asked, and leaves up to synFilterPace after its
// expiry: its dials in that time are reset as before, or wait.
//
// Loopback is blocked only when it is limited (Config.ConnLimitLoopback):
// a source is blocked only after the limit refused it.
//
// Where the filter cannot be set (not Linux, a listener that is not
// plain TCP, such as Go's default Multipath TCP listener, or a kernel that
// refuses it), newSynFilter says so once at Info and returns nil: the
// accept loop's reset alone, as before. A failure later (the kernel
// refusing a new list: its size against net.core.optmem_max) does the
// same from then on, with no filter left in the kernel.
const (
	synFilterMax  = 256
	synFilterPace = 250 * time.Millisecond
)

// synFilter is one listener's kernel blocklist. A nil *synFilter blocks
// nothing.
type synFilter struct {
	set  func(keys []netip.Addr) error // replaces the kernel's list (synfilter_linux.go)
	log  *slog.Logger
	max  int           // synFilterMax; tests lower it
	pace time.Duration // synFilterPace; tests lower it

	mu     sync.Mutex
	until  map[netip.Addr]time.Time // source key (sourceKey) → end of its block
	dirty  bool                     // until holds keys the kernel's list does not, or the reverse
	setAt  time.Time                // when the kernel's list was last replaced
	inKern int                      // sources in the kernel's list (for tests)
	timer  *time.Timer
	closed bool
}

// newSynFilter returns ln's kernel blocklist, or nil when the per-source
// limit is off or the kernel cannot filter ln (logged once, at Info).
func newSynFilter(ln net.Listener, limit *connLimit, log *slog.Logger) *synFilter {
	if !limit.on() {
		return nil
	}
	set, err := kernelFilter(ln)
	if err != nil {
		args := []any{"err", err}
		if errors.Is(err, os.ErrPermission) {
			// Some kernels allow a socket filter with CAP_NET_ADMIN only
			// (6.18 here refuses root in a user namespace too).
			args = append(args, "hint", "give chatctl serve CAP_NET_ADMIN (docs/SERVER.md)")
		}
		log.Info("connections over the per-source limit are reset after accept: the kernel cannot drop their SYNs", args...)
		return nil
	}
	return &synFilter{set: set, log: log, max: synFilterMax, pace: synFilterPace,
		until: map[netip.Addr]time.Time{}}
}

// block asks for key's SYNs to be dropped until until. ok is false when
// the list is full (the source is then refused by the accept loop alone)
// or the filter is gone; added is true when key was not on the list.
func (f *synFilter) block(key netip.Addr, until time.Time) (ok, added bool) {
	if f == nil {
		return false, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false, false
	}
	old, in := f.until[key]
	if !in && len(f.until) >= f.max {
		return false, false
	}
	if until.After(old) {
		f.until[key] = until
	}
	if !in {
		f.dirty = true
	}
	f.schedule(time.Now())
	return true, !in
}

// schedule arms the timer for the next change of the kernel's list: now
// if entries were added (but not within pace of the last change), else the
// earliest expiry. f.mu is held.
func (f *synFilter) schedule(now time.Time) {
	var next time.Time
	if f.dirty {
		next = now
	} else {
		for _, u := range f.until {
			if next.IsZero() || u.Before(next) {
				next = u
			}
		}
		if next.IsZero() {
			return
		}
	}
	if paced := f.setAt.Add(f.pace); next.Before(paced) {
		next = paced
	}
	if f.timer == nil {
		f.timer = time.AfterFunc(next.Sub(now), f.apply)
	} else {
		f.timer.Reset(next.Sub(now))
	}
}

// apply drops the expired sources and gives the kernel the list if it
// changed.
func (f *synFilter) apply() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	now := time.Now()
	if now.Before(f.setAt.Add(f.pace)) {
		f.schedule(now)
		return
	}
	for k, u := range f.until {
		if !u.After(now) {
			delete(f.until, k)
			f.dirty = true
		}
	}
	if !f.dirty {
		f.schedule(now)
		return
	}
	keys := slices.SortedFunc(maps.Keys(f.until), netip.Addr.Compare)
	err := f.set(keys)
	f.setAt, f.dirty = now, false
	if err != nil {
		// The listener closed under us (Shutdown) says nothing; anything
		// else turns the filter off for good, once.
		// (set leaves no filter in the kernel when it fails.)
		if !errors.Is(err, net.ErrClosed) {
			f.log.Info("the kernel refused the per-source SYN filter; over-limit connections are reset after accept from now on", "err", err)
		}
		f.closed = true
		clear(f.until)
		f.inKern = 0
		return
	}
	f.inKern = len(keys)
	f.schedule(now)
}

// close stops the timer; the filter goes with the listening socket.
func (f *synFilter) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
}
