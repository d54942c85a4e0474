package server

import (
	"sync"
	"time"
)

// Failed-login lockout: LockoutFailures failed UserSig logins of one user
// within LockoutWindow lock that user's UserSig logins for LockoutDuration;
// they are answered 70050 without looking at the UserSig.
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
	mu    sync.Mutex
	m     map[userKey]*failures
	swept time.Time // last sweep of stale entries
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
	if l.m == nil {
		l.m = map[userKey]*failures{}
	}
	// A sweep walks the whole map: at most once a second, so that a flood
	// of failures does not cost a walk each.
	if len(l.m) >= 4096 && now.Sub(l.swept) >= time.Second {
		l.swept = now
		for k, f := range l.m {
			if now.Sub(f.first) > LockoutWindow && !now.Before(f.until) {
				delete(l.m, k)
			}
		}
	}
	f := l.m[k]
	if f == nil && len(l.m) >= lockoutMaxUsers {
		for k2, f2 := range l.m { // random order: evict one unlocked user
			if !now.Before(f2.until) {
				delete(l.m, k2)
				break
			}
		}
		if len(l.m) >= lockoutMaxUsers {
			return false // every tracked user is locked: do not track more
		}
	}
	if f == nil {
		f = &failures{first: now}
		l.m[k] = f
	}
	if now.Sub(f.first) > LockoutWindow {
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
