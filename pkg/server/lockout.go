package server

import (
	"sync"
	"time"
)

// Failed-login lockout: LockoutFailures failed UserSig logins of one user
// within LockoutWindow lock that user for LockoutDuration: a UserSig that
// fails meanwhile is answered 70050 instead of its own code. A valid one
// still logs in (loginSig).
const (
	LockoutFailures = 10
	LockoutWindow   = time.Minute
	LockoutDuration = time.Minute
)

type failures struct {
	n     int
	first time.Time
	until time.Time
}

// lockoutMaxUsers caps how many users the lockout tracks at once, so that
// failed logins under ever new user IDs cannot grow the server's memory
// without bound (docs/RELIABILITY.md). Past it, an untracked user's failure
// evicts a user that is not locked; locked users are never evicted.
const lockoutMaxUsers = 1 << 16

type lockout struct {
	mu sync.Mutex
	sweptMap[userKey, failures]
}

func (l *lockout) locked(k userKey, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[k]
	return f != nil && now.Before(f.until)
}

// fail records one failed login; it reports whether the user is now locked.
func (l *lockout) fail(k userKey, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now, 4096, func(f *failures) bool {
		return now.Sub(f.first) > LockoutWindow && !now.Before(f.until)
	})
	unlocked := func(f *failures) bool { return !now.Before(f.until) }
	if _, ok := l.m[k]; !ok && !l.evict(lockoutMaxUsers, unlocked) {
		return false // every tracked user is locked: do not track more
	}
	f := l.get(k)
	if now.Sub(f.first) > LockoutWindow { // a new entry's first is zero
		f.n, f.first = 0, now
	}
	f.n++
	if f.n >= LockoutFailures {
		f.until = now.Add(LockoutDuration)
		f.n, f.first = 0, now
		return true
	}
	return false
}

// ok forgets the failures of a user who just logged in.
func (l *lockout) ok(k userKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, k)
}
