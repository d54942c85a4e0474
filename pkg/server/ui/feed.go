package ui

import (
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Kinds of Event.
const (
	KindLogin   = "login"   // an instance logged in (UserSig or A2Key re-login)
	KindLogout  = "logout"  // an instance logged out
	KindKick    = "kick"    // an instance was kicked; KickType says why
	KindExpired = "expired" // an instance's UserSig ran out (70001)
	KindRefused = "refused" // a login was refused; Code says why
)

// Bounds of what the feed keeps of a value that came from the network.
const (
	MaxUser   = 32  // bytes of a user ID (the UserID rule's bound)
	MaxReason = 120 // bytes of a reason
)

// Event is one lifecycle event of the feed. It never holds a secret
// (UserSig, A2Key, secret key): the server fills only these fields.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	App      uint64    `json:"sdkappid,omitempty"`
	User     string    `json:"user,omitempty"`
	Inst     uint64    `json:"inst,omitempty"`
	Platform string    `json:"platform,omitempty"`
	Form     string    `json:"form,omitempty"`      // login: "usersig" or "a2"
	KickType string    `json:"kick_type,omitempty"` // kick: multipleAccount, multipleDevice, REST_API_Kick
	By       uint64    `json:"by,omitempty"`        // kick: the instance whose login kicked (0: REST)
	Code     int       `json:"code,omitempty"`      // refused: the error code answered
	Reason   string    `json:"reason,omitempty"`
}

// clip cuts s to at most n bytes of valid UTF-8, what strconv.IsPrint
// refuses (control and format characters) replaced:
// a user ID of a refused login is whatever the client sent.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		// The logs' rule (logbound.go), format characters included:
		// invisible, they made "administrator\u200b" look like the admin.
		if !strconv.IsPrint(r) {
			return '\uFFFD'
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// subQueue is how many events wait for one subscriber; past it the
// subscriber is too slow and is dropped (its channel closed), never waited for.
const subQueue = 64

// Sub is one subscriber of a Feed: C delivers the events published after
// Subscribe and is closed when the subscriber is dropped or the feed closes.
type Sub struct {
	C      chan Event
	closed bool // guarded by Feed.mu
}

// Feed keeps the last events in memory and hands new ones to subscribers.
// Publish never blocks. Its methods are safe for concurrent use.
type Feed struct {
	now     func() time.Time
	maxSubs int

	mu     sync.Mutex
	ring   []Event // the last len(ring) events, oldest at next once full
	next   int
	full   bool
	seq    uint64
	subs   map[*Sub]struct{}
	closed bool
}

// NewFeed keeps the last keep events and admits at most maxSubs subscribers.
func NewFeed(keep, maxSubs int, now func() time.Time) *Feed {
	if now == nil {
		now = time.Now
	}
	return &Feed{now: now, maxSubs: maxSubs, ring: make([]Event, keep), subs: map[*Sub]struct{}{}}
}

// Publish stamps e (sequence number, time), bounds its strings, keeps it
// and hands it to every subscriber; a subscriber whose queue is full is dropped.
func (f *Feed) Publish(e Event) {
	e.User = clip(e.User, MaxUser)
	e.Reason = clip(e.Reason, MaxReason)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.seq++
	e.Seq, e.Time = f.seq, f.now().UTC()
	if len(f.ring) > 0 {
		f.ring[f.next] = e
		f.next = (f.next + 1) % len(f.ring)
		f.full = f.full || f.next == 0
	}
	for s := range f.subs {
		select {
		case s.C <- e:
		default:
			f.dropLocked(s)
		}
	}
}

// Recent is the events kept, oldest first.
func (f *Feed) Recent() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.full {
		return append([]Event{}, f.ring[:f.next]...)
	}
	return append(append([]Event{}, f.ring[f.next:]...), f.ring[:f.next]...)
}

// Subscribe adds a subscriber; false when the feed is closed or has
// maxSubs subscribers already.
func (f *Feed) Subscribe() (*Sub, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || len(f.subs) >= f.maxSubs {
		return nil, false
	}
	s := &Sub{C: make(chan Event, subQueue)}
	f.subs[s] = struct{}{}
	return s, true
}

// Unsubscribe removes s (dropped already is fine).
func (f *Feed) Unsubscribe(s *Sub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropLocked(s)
}

func (f *Feed) dropLocked(s *Sub) {
	delete(f.subs, s)
	if !s.closed {
		s.closed = true
		close(s.C)
	}
}

// Close drops every subscriber (their streams end: a server's shutdown
// does not wait for them) and refuses new ones.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		f.dropLocked(s)
	}
}
