package server

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Connections are limited per source address: a token bucket of new ones
// (Config.ConnRate, ConnBurst), and a cap on those it holds open at once
// (Config.ConnMax), per IPv4 address or IPv6 /64 (what one host gets),
// and per IPv6 /48 at SiteFactor times those (what one customer gets).
// The listener asks before it does anything else with a
// connection; one over a limit is reset at once, before any read,
// goroutine or buffer (upgrade.go). Pacing (pace.go) works per socket and
// per user and cannot tell an attacker's new connection from a new SDK's;
// this is what bounds a flood of them, and the sockets one address can
// keep open without logging in (docs/RELIABILITY.md). The table also holds
// each source's frame bucket, which every frame of its sockets draws on
// (pace.go).
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
	// DefaultConnMax: a NAT of a thousand SDKs, each a socket; with the
	// rate above a source reaches it in 40 s.
	DefaultConnMax = 1000
	// connTableMax bounds the table of buckets: an attacker with many
	// addresses cannot grow it further. At the cap, sources back at their
	// idle state are dropped, at most once a second; if none is, makeRoom
	// drops one of those that lose least by it.
	connTableMax = 65536
	// SiteFactor: an IPv6 /48 (a site: what one customer of an ISP or a
	// cloud is commonly given, 65,536 /64s) is limited as a whole too, at
	// this many times one source's limits, which each of its /64s also
	// has: an attacker with a /48 gets 16 sources' worth, not 65,536.
	SiteFactor = 16
	// connEvictLook: at the cap, this many sources are looked at for one
	// that holds no connection and owes nothing before an arbitrary one
	// goes, so that making room costs a few steps, not a walk of the table.
	connEvictLook = 64
)

// connLimit is the table of per-source buckets. Its zero value (rate and
// maxOpen 0) allows everything.
type connLimit struct {
	rate     float64
	burst    float64
	maxOpen  int  // connections a source holds at once (0: any number)
	loopback bool // limit loopback sources too
	// frameRate, frameBurst: the sources' frame buckets (SourceFrameRate,
	// SourceFrameBurst; tests lower them).
	frameRate, frameBurst float64
	max                   int // table cap (connTableMax; tests lower it)
	// blockAfter is connBlockRefusals (tests lower it).
	blockAfter int

	// siteFactor is SiteFactor (tests lower it).
	siteFactor float64

	mu      sync.Mutex
	sources sweptMap[netip.Addr, connSource]
	sites   sweptMap[netip.Addr, connSource] // IPv6 /48s, keyed by their prefix's address
}

// connSource is one source's bucket, the bucket its sockets' frames draw
// on, how many connections it holds, when a refusal of it was last
// reported for the log, and its refusals in the current connBlockWindow.
type connSource struct {
	bucket
	frames   bucket
	open     int         // accepted, not yet closed (heldConn)
	site     *connSource // an IPv6 source's /48, whose limits it shares; nil for IPv4
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

// newConnLimit limits new connections to burst, then rate a second (off
// when either is 0), and open ones to maxOpen (0: off), per source.
func newConnLimit(rate float64, burst, maxOpen int, loopback bool) *connLimit {
	if rate <= 0 || burst <= 0 {
		rate, burst = 0, 0
	}
	if rate == 0 && maxOpen <= 0 {
		return &connLimit{}
	}
	return &connLimit{rate: rate, burst: float64(burst), maxOpen: max(maxOpen, 0), loopback: loopback,
		frameRate: SourceFrameRate, frameBurst: SourceFrameBurst, siteFactor: SiteFactor, max: connTableMax,
		blockAfter: connBlockRefusals}
}

// on reports whether any source is limited.
func (l *connLimit) on() bool { return l != nil && (l.rate > 0 || l.maxOpen > 0) }

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
	// src is the admitted connection's source, which counts it open until
	// release (with its site's, src.site); nil when the source is not
	// limited.
	src *connSource
	// full: refused because the source holds maxOpen connections.
	full bool
}

// allow takes a token of addr's bucket at now and counts the connection
// open (a nil connLimit allows all): an admitted one with a src must be
// released once closed.
func (l *connLimit) allow(addr net.Addr, now time.Time) verdict {
	if !l.on() {
		return verdict{ok: true}
	}
	k, loopback, valid := sourceKey(addr)
	if !valid || loopback && !l.loopback {
		return verdict{ok: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	src := l.entry(&l.sources, k, now, 1)
	if k.Is6() && src.open == 0 {
		// Looked up again only while the source holds nothing: its
		// connections release, and charge frames to, the site they were
		// admitted with, which their count keeps in the table.
		p, _ := k.Prefix(48)
		src.site = l.entry(&l.sites, p.Addr(), now, l.siteFactor)
	}
	site := src.site
	// A refused connection costs nothing: the bucket is below one token
	// and stays there until it refills, so that a source that keeps
	// knocking gets its rate, no less.
	wait, full := l.room(src, now, 1)
	if site != nil {
		w, f := l.room(site, now, l.siteFactor)
		wait, full = max(wait, w), full || f
	}
	if wait == 0 && !full {
		l.spend(src, now, 1, 1)
		l.spend(site, now, 1, l.siteFactor)
		src.open++
		if site != nil {
			site.open++
		}
		return verdict{ok: true, key: k, src: src}
	}
	v := verdict{key: k, full: full}
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
		if full {
			// Until one of its connections closes, which no clock says:
			// the window's length, then asked again.
			v.block = now.Add(connBlockWindow)
		} else {
			v.block = now.Add(wait)
		}
	}
	return v
}

// entry is k's entry of t (sources, or sites with their factor f),
// making room in a full table first.
func (l *connLimit) entry(t *sweptMap[netip.Addr, connSource], k netip.Addr, now time.Time, f float64) *connSource {
	if _, ok := t.m[k]; !ok && len(t.m) >= l.max {
		t.sweep(now, 0, func(s *connSource) bool { return l.idle(s, now, f) })
		if len(t.m) >= l.max {
			l.makeRoom(t, now, f)
		}
	}
	return t.get(k)
}

// room says how long s (limited at f times a source's limits) makes a new
// connection wait for a token, and whether it holds as many as it may.
func (l *connLimit) room(s *connSource, now time.Time, f float64) (wait time.Duration, full bool) {
	if l.rate > 0 {
		if tokens := s.level(now, l.rate*f, l.burst*f); tokens < 1 {
			wait = time.Duration((1 - tokens) / (l.rate * f) * float64(time.Second))
		}
	}
	return wait, l.maxOpen > 0 && float64(s.open) >= float64(l.maxOpen)*f
}

// spend takes cost tokens of s's bucket (f as room's); s may be nil.
func (l *connLimit) spend(s *connSource, now time.Time, cost, f float64) {
	if s != nil && l.rate > 0 {
		s.bucket.spend(now, cost, l.rate*f, l.burst*f)
	}
}

// idle reports whether s (f as room's) is back at its idle state, the
// same as no entry: it can be forgotten.
func (l *connLimit) idle(s *connSource, now time.Time, f float64) bool {
	return s.open == 0 && (l.rate == 0 || s.full(now, l.rate*f, l.burst*f)) &&
		s.frames.full(now, l.frameRate*f, l.frameBurst*f)
}

// makeRoom deletes a source from the full table: among the first
// connEvictLook (in map order, which is random), one that holds no
// connection and owes no token, so that an attacker's debts and counts
// are not what goes; failing that, the one of them holding the fewest
// connections. A source deleted while it holds connections starts afresh
// (a fresh burst, count and frame bucket: the price of a bounded table,
// paid only when 65,536 sources are all busy), and its connections still
// charge and release the deleted entry.
func (l *connLimit) makeRoom(t *sweptMap[netip.Addr, connSource], now time.Time, f float64) {
	var least netip.Addr
	fewest, n := -1, 0
	for k, s := range t.m {
		if s.open == 0 && (l.rate == 0 || s.level(now, l.rate*f, l.burst*f) >= 1) {
			delete(t.m, k)
			return
		}
		if fewest < 0 || s.open < fewest {
			least, fewest = k, s.open
		}
		if n++; n == connEvictLook {
			break
		}
	}
	delete(t.m, least)
}

// charge takes cost tokens of src's bucket, the socket's source, as
// connections would: what a refused wslogin costs its source besides its
// socket's pacing. It goes into debt (bounded at one burst by
// bucket.spend), so that a source failing logins waits for its next
// connections. Not the site's: a site in debt refuses all its /64s, and
// two failing logins as fast as pacing let them kept a /48's 65,534 other
// hosts out; their connections pay the site.
func (l *connLimit) charge(src *connSource, now time.Time, cost float64) {
	l.mu.Lock()
	l.spend(src, now, cost, 1)
	l.mu.Unlock()
}

// release counts one of src's connections closed, and of its site's
// (none for IPv4), which is the one it was admitted with (allow).
func (l *connLimit) release(src *connSource) {
	l.mu.Lock()
	src.open--
	if src.site != nil {
		src.site.open--
	}
	l.mu.Unlock()
}

// sourceOf is the source entry that the connection nc (as the listener
// admitted it, or wrapped since: sockConn, readConn) counts against, nil
// when its source is not limited. Its frames and requests are charged to
// it (pace.go), kept from the accept on, not looked up again: an entry
// deleted from a full table still paces the connections that hold it.
func sourceOf(nc net.Conn) *connSource {
	for {
		switch c := nc.(type) {
		case *heldConn:
			return c.src
		case *sockConn:
			nc = c.Conn
		case *readConn:
			nc = c.Conn
		default:
			return nil
		}
	}
}

// siteOf is src's IPv6 /48, nil for an IPv4 source.
func (l *connLimit) siteOf(src *connSource) *connSource {
	l.mu.Lock()
	defer l.mu.Unlock()
	return src.site
}

// connSourceKey is the request context's key of its connection's source.
type connSourceKey struct{}

// requestSource is the limited source of r's connection (server.go's
// ConnContext put it there), nil when the limits do not cover it.
func requestSource(r *http.Request) *connSource {
	src, _ := r.Context().Value(connSourceKey{}).(*connSource)
	return src
}

// frame charges cost to the frame bucket of src, and of its site, and
// returns how long to wait.
func (l *connLimit) frame(src *connSource, now time.Time, cost float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := src.frames.spend(now, cost, l.frameRate, l.frameBurst)
	if site := src.site; site != nil {
		d = max(d, site.frames.spend(now, cost, l.frameRate*l.siteFactor, l.frameBurst*l.siteFactor))
	}
	return d
}

// heldConn is an accepted TCP connection that its source counts open
// until it is closed, whoever closes it (net/http, the socket's end, a
// refusal of its request).
type heldConn struct {
	*net.TCPConn
	l    *connLimit
	src  *connSource
	once sync.Once
}

func (c *heldConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.TCPConn.Close()
}

// size is the number of sources in the table.
func (l *connLimit) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources.m)
}
