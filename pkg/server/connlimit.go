package server

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// New connections are limited per source address (Config.ConnRate,
// ConnBurst): a token bucket per IPv4 address, or per IPv6 /64 (what one
// host or one customer gets). The listener asks before it does anything
// else with a connection; one over the limit is reset at once, before any
// read, goroutine or buffer (upgrade.go). Pacing (pace.go) works per socket
// and per user and cannot tell an attacker's new connection from a new
// SDK's; this is what bounds a flood of them (docs/RELIABILITY.md).
//
// Loopback sources are not limited unless Config.ConnLimitLoopback
// (docs/SERVER.md: the host itself, or a reverse proxy on it). A source
// that keeps dialing while refused is handed to the kernel besides
// (connBlockRefusals, synfilter.go).

// Defaults of `chatctl serve` (cmd/serve.go; Config's zero value is off):
// far above what SDKs send, even 200 behind one NAT reconnecting together
// after a restart; docs/SERVER.md ("Connections per source") says why.
const (
	DefaultConnRate  = 20
	DefaultConnBurst = 200
	// connTableMax bounds the table of buckets: an attacker with many
	// addresses cannot grow it further. At the cap, buckets that are full
	// again (idle for burst/rate seconds) are dropped, at most once a
	// second; if none is, an arbitrary one is, which at worst hands one
	// address a fresh burst.
	connTableMax = 65536
)

// connLimit is the table of per-source buckets. Its zero value (rate 0)
// allows everything.
type connLimit struct {
	rate     float64
	burst    float64
	loopback bool // limit loopback sources too
	max      int  // table cap (connTableMax; tests lower it)
	// blockAfter is connBlockRefusals (tests lower it).
	blockAfter int

	mu      sync.Mutex
	sources sweptMap[netip.Addr, connSource]
}

// connSource is one source's bucket, when a refusal of it was last
// reported for the log, and its refusals in the current connBlockWindow.
type connSource struct {
	bucket
	logged   time.Time
	window   time.Time // start of the connBlockWindow that refusals counts in
	refusals int
}

// A source is blocked in the kernel (synfilter.go), its SYNs dropped until
// its bucket would admit again, once it was refused connBlockRefusals
// times within connBlockWindow: a client that keeps dialing as fast as its
// resets come back, not one refused now and then, such as the SDKs of a
// NAT that an attacker behind it got refused (docs/SERVER.md, "Connections
// per source", says why this number).
const (
	connBlockRefusals = 100
	connBlockWindow   = time.Second
)

// connLogEvery: a source's refusals are reported for the log at most once
// in that long (and then through the limiter of unauthenticated failures).
const connLogEvery = time.Minute

func newConnLimit(rate float64, burst int, loopback bool) *connLimit {
	if rate <= 0 || burst <= 0 {
		return &connLimit{}
	}
	return &connLimit{rate: rate, burst: float64(burst), loopback: loopback, max: connTableMax,
		blockAfter: connBlockRefusals}
}

// sourceKey is the bucket's key of a remote address: the IPv4 address (an
// IPv4-mapped IPv6 one unmapped), or the IPv6 /64. ok is false for an
// address that is not IP (a Unix socket): not limited. loopback is the
// address's, before the /64 (which would make ::1 "::").
func sourceKey(addr net.Addr) (key netip.Addr, loopback, ok bool) {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return netip.Addr{}, false, false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return netip.Addr{}, false, false
	}
	loopback = ip.IsLoopback()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, loopback, true
}

// verdict is connLimit.allow's answer about one connection.
type verdict struct {
	ok    bool // admit it; otherwise it must be refused
	first bool // a refusal worth a log line: the source's first in connLogEvery
	// block, when not zero, asks for the source (key) to be blocked in the
	// kernel until then: when its bucket admits again.
	block time.Time
	key   netip.Addr
}

// allow takes a token of addr's bucket at now (a nil connLimit allows all).
func (l *connLimit) allow(addr net.Addr, now time.Time) verdict {
	return l.take(addr, now, 1, false)
}

// charge takes cost tokens of addr's bucket, as a connection would: what
// a refused wslogin costs its source besides its socket's pacing.
// The charge is taken even into debt (bounded at one burst by bucket.spend),
// so that a source failing logins waits for its next connections.
func (l *connLimit) charge(addr net.Addr, now time.Time, cost float64) {
	l.take(addr, now, cost, true)
}

func (l *connLimit) take(addr net.Addr, now time.Time, cost float64, force bool) verdict {
	if l == nil || l.rate == 0 {
		return verdict{ok: true}
	}
	k, loopback, valid := sourceKey(addr)
	if !valid || loopback && !l.loopback {
		return verdict{ok: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.sources.m[k]; !ok && len(l.sources.m) >= l.max {
		l.sources.sweep(now, 0, func(s *connSource) bool { return s.full(now, l.rate, l.burst) })
		l.sources.evict(l.max, func(*connSource) bool { return true })
	}
	src := l.sources.get(k)
	// A refused connection costs nothing: the bucket is below one token
	// and stays there until it refills, so that a source that keeps
	// knocking gets its rate, no less.
	tokens := src.level(now, l.rate, l.burst)
	if force || tokens >= 1 {
		src.spend(now, cost, l.rate, l.burst)
		return verdict{ok: true, key: k}
	}
	v := verdict{key: k}
	if v.first = src.logged.IsZero() || now.Sub(src.logged) >= connLogEvery; v.first {
		src.logged = now
	}
	if now.Sub(src.window) >= connBlockWindow || now.Before(src.window) {
		src.window, src.refusals = now, 0
	}
	if src.refusals++; src.refusals >= l.blockAfter {
		// Counted afresh: a source still getting through (its block not
		// yet in the kernel, or not taken: the kernel's list is full) asks
		// again after as many refusals, not at each.
		src.refusals = 0
		v.block = now.Add(time.Duration((1 - tokens) / l.rate * float64(time.Second)))
	}
	return v
}

// size is the number of sources in the table.
func (l *connLimit) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources.m)
}
