package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func tcpAddr(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }

// allowN asks for n connections from ip at now, each closed at once, and
// returns how many were allowed and how many of the refusals were flagged
// for the log.
func allowN(l *connLimit, ip string, now time.Time, n int) (allowed, firsts int) {
	for range n {
		v := l.allow(tcpAddr(ip), now)
		if v.ok {
			allowed++
			if v.src != nil {
				l.release(v.src)
			}
		}
		if v.first {
			firsts++
		}
	}
	return allowed, firsts
}

// chargeAddr charges cost to ip's source, as a refused wslogin on one of
// its sockets does.
func chargeAddr(l *connLimit, ip string, now time.Time, cost float64) {
	k, _, _ := sourceKey(tcpAddr(ip))
	l.mu.Lock()
	src := l.entry(&l.sources, k, now, 1)
	l.mu.Unlock()
	l.charge(src, now, cost)
}

// The per-source bucket on a fake clock: a burst, then the rate; a refused
// connection costs nothing; a source's refusals are flagged for the log
// once a minute.
func TestConnLimitBurstAndRefill(t *testing.T) {
	l := newConnLimit(2, 5, 0, true)
	now := time.Unix(1_700_000_000, 0)
	if got, firsts := allowN(l, "203.0.113.7", now, 8); got != 5 || firsts != 1 {
		t.Fatalf("burst: %d allowed, %d first refusals; want 5, 1", got, firsts)
	}
	// Knocking while empty buys nothing: after 0.4 s (0.8 token) still none.
	now = now.Add(400 * time.Millisecond)
	if got, _ := allowN(l, "203.0.113.7", now, 100); got != 0 {
		t.Fatalf("0.8 token: %d allowed", got)
	}
	// 1.5 s after the burst: 3 tokens at 2 a second, whatever was knocked.
	now = now.Add(1100 * time.Millisecond)
	got, firsts := allowN(l, "203.0.113.7", now, 10)
	if got != 3 || firsts != 0 {
		t.Fatalf("after 1.5 s: %d allowed, %d refusals to log; want 3, 0 (one a minute)", got, firsts)
	}
	// Another source has its own bucket.
	if got, _ := allowN(l, "203.0.113.8", now, 5); got != 5 {
		t.Fatalf("another source: %d allowed, want 5", got)
	}
	// Idle long enough, the bucket is full again, not more; the next
	// refusal is logged again.
	now = now.Add(time.Hour)
	if got, firsts := allowN(l, "203.0.113.7", now, 10); got != 5 || firsts != 1 {
		t.Fatalf("after an hour: %d allowed, %d refusals to log; want the burst of 5, 1", got, firsts)
	}
	// A clock that goes back refills nothing.
	if got, _ := allowN(l, "203.0.113.7", now.Add(-time.Minute), 3); got != 0 {
		t.Fatalf("clock went back: %d allowed", got)
	}
}

// A refused wslogin charges its source a connection, into debt.
func TestConnLimitCharge(t *testing.T) {
	l := newConnLimit(1, 4, 0, true)
	now := time.Unix(1_700_000_000, 0)
	if got, _ := allowN(l, "198.51.100.1", now, 1); got != 1 {
		t.Fatal("first connection refused")
	}
	for range 7 {
		chargeAddr(l, "198.51.100.1", now, 1)
	}
	// 4 − 1 − 7 = −4: 5 s until the next connection.
	if got, _ := allowN(l, "198.51.100.1", now.Add(4900*time.Millisecond), 1); got != 0 {
		t.Fatal("allowed while in debt")
	}
	if got, _ := allowN(l, "198.51.100.1", now.Add(5100*time.Millisecond), 2); got != 1 {
		t.Fatalf("after the debt: %d allowed, want 1", got)
	}
	// Debt stops at one burst however much is charged.
	for range 1000 {
		chargeAddr(l, "198.51.100.2", now, 1)
	}
	if got, _ := allowN(l, "198.51.100.2", now.Add(8100*time.Millisecond), 1); got != 1 {
		t.Fatal("debt grew past one burst")
	}
}

// IPv6 sources are grouped by /64; IPv4-mapped ones are IPv4.
func TestConnLimitIPv6Prefix(t *testing.T) {
	l := newConnLimit(1, 3, 0, true)
	now := time.Unix(1_700_000_000, 0)
	var got int
	for i := range 6 {
		g, _ := allowN(l, fmt.Sprintf("2001:db8:1:2:%x::%x", i, i+1), now, 1)
		got += g
	}
	if got != 3 {
		t.Fatalf("one /64 from 6 addresses: %d allowed, want 3", got)
	}
	if g, _ := allowN(l, "2001:db8:1:3::1", now, 3); g != 3 {
		t.Fatalf("the next /64: %d allowed, want 3", g)
	}
	if g, _ := allowN(l, "::ffff:192.0.2.9", now, 2); g != 2 {
		t.Fatal("mapped address refused")
	}
	if g, _ := allowN(l, "192.0.2.9", now, 2); g != 1 {
		t.Fatalf("the same IPv4 unmapped: %d allowed, want the 1 left", g)
	}
	for _, a := range []struct {
		addr net.Addr
		key  string
	}{
		{tcpAddr("2001:db8:aa:bb:cc:dd:ee:ff"), "2001:db8:aa:bb::"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, "fe80::"},
		{tcpAddr("::ffff:10.1.2.3"), "10.1.2.3"},
		{&net.UDPAddr{IP: net.ParseIP("10.9.9.9"), Port: 1}, "10.9.9.9"},
	} {
		k, _, ok := sourceKey(a.addr)
		if !ok || k.String() != a.key {
			t.Errorf("sourceKey(%v) = %v %v, want %s", a.addr, k, ok, a.key)
		}
	}
	if _, _, ok := sourceKey(&net.UnixAddr{Name: "/tmp/x", Net: "unix"}); ok {
		t.Error("a Unix socket address got a key")
	}
}

// Loopback is exempt unless asked; 0 turns the limit off; addresses that
// are not IP are not limited.
func TestConnLimitExemptAndOff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exempt := newConnLimit(1, 2, 0, false)
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
		if got, _ := allowN(exempt, ip, now, 50); got != 50 {
			t.Errorf("loopback %s limited by default: %d of 50", ip, got)
		}
	}
	if got, _ := allowN(exempt, "192.0.2.1", now, 5); got != 2 {
		t.Errorf("non-loopback with loopback exempt: %d allowed, want 2", got)
	}
	if exempt.size() != 1 {
		t.Errorf("table holds %d sources, want only the limited one", exempt.size())
	}
	limited := newConnLimit(1, 2, 0, true)
	if got, _ := allowN(limited, "127.0.0.2", now, 5); got != 2 {
		t.Errorf("loopback limited on request: %d allowed, want 2", got)
	}
	for _, l := range []*connLimit{newConnLimit(0, 10, 0, true), newConnLimit(10, 0, 0, true), nil} {
		if got, _ := allowN(l, "192.0.2.1", now, 1000); got != 1000 {
			t.Errorf("disabled limit refused: %d of 1000", got)
		}
	}
	if !limited.allow(&net.UnixAddr{Name: "/x", Net: "unix"}, now).ok {
		t.Error("a Unix socket refused")
	}
}

// The table is bounded: many sources never grow it past its cap; at the
// cap, sources idle long enough to be full again go first, and without
// them an arbitrary one makes room.
func TestConnLimitTableBound(t *testing.T) {
	l := newConnLimit(1, 2, 0, true)
	l.max = 100
	now := time.Unix(1_700_000_000, 0)
	for i := range 10_000 {
		l.allow(tcpAddr(fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)), now)
		if n := l.size(); n > 100 {
			t.Fatalf("table at %d sources after %d", n, i+1)
		}
	}

	// At the cap, the sweep drops the sources whose buckets are full again
	// and keeps one still in debt: an attacker cannot flush its own bucket
	// out of the table while others are idle.
	l = newConnLimit(1, 2, 0, true)
	l.max = 100
	for i := range 99 {
		allowN(l, fmt.Sprintf("172.16.0.%d", i), now, 1) // 1 of 2 left: full in 1 s
	}
	for range 10 {
		chargeAddr(l, "192.0.2.66", now, 1) // −2: full in 4 s
	}
	later := now.Add(2 * time.Second)
	if !l.allow(tcpAddr("172.17.0.1"), later).ok {
		t.Fatal("a new source refused")
	}
	if n := l.size(); n != 2 {
		t.Fatalf("after the sweep the table holds %d sources, want the attacker and the new one", n)
	}
	if l.allow(tcpAddr("192.0.2.66"), later).ok {
		t.Fatal("the attacker's debt was forgotten")
	}
}

// A source is handed to the kernel only when it keeps dialing while
// refused: blockAfter refusals within connBlockWindow, not spread wider;
// its block ends when its bucket admits again. Exempt loopback never is.
func TestConnLimitBlockSignal(t *testing.T) {
	l := newConnLimit(2, 4, 0, true)
	l.blockAfter = 10
	now := time.Unix(1_700_000_000, 0)
	allowN(l, "203.0.113.7", now, 4) // the burst
	// 9 refusals in one window, 9 in the next (2 s later, the refill
	// drained again): refused, never blocked.
	var start time.Time
	for w := range 2 {
		start = now.Add(time.Duration(w) * 2 * time.Second)
		if w == 1 {
			allowN(l, "203.0.113.7", start, 4)
		}
		for i := range 9 {
			if v := l.allow(tcpAddr("203.0.113.7"), start.Add(time.Duration(i)*50*time.Millisecond)); v.ok || !v.block.IsZero() {
				t.Fatalf("window %d, refusal %d: %+v, want refused and not blocked", w+1, i+1, v)
			}
		}
	}
	// The tenth in the window asks for a block until one token is back:
	// 0.5 s at 2 a second after the bucket was drained.
	at := start.Add(460 * time.Millisecond)
	v := l.allow(tcpAddr("203.0.113.7"), at)
	if v.ok || v.block.IsZero() || v.key.String() != "203.0.113.7" {
		t.Fatalf("tenth refusal in the window: %+v, want a block", v)
	}
	if want := start.Add(500 * time.Millisecond); v.block.Sub(want).Abs() > time.Millisecond {
		t.Errorf("block until %v, want %v (when the bucket admits again)", v.block, want)
	}
	// Counted afresh: the next refusal does not ask again.
	if v := l.allow(tcpAddr("203.0.113.7"), at); !v.block.IsZero() {
		t.Errorf("asked again at once: %+v", v)
	}
	// In debt (refused logins), the block lasts until the debt is paid.
	chargeAddr(l, "198.51.100.1", now, 5) // 4 − 5 = −1: 1 s to one token
	var last verdict
	for range 10 {
		last = l.allow(tcpAddr("198.51.100.1"), now)
	}
	if want := now.Add(time.Second); !last.block.Equal(want) {
		t.Errorf("in debt: block until %v, want %v", last.block, want)
	}
	// Loopback, exempt, is never refused and so never blocked.
	exempt := newConnLimit(2, 4, 0, false)
	exempt.blockAfter = 1
	for range 100 {
		if v := exempt.allow(tcpAddr("127.0.0.2"), now); !v.ok || !v.block.IsZero() {
			t.Fatalf("exempt loopback: %+v", v)
		}
	}
}

// The cap on a source's open connections, with or without a rate: the
// connection past it is refused as full (and flagged for the log), a
// release makes room, other sources and exempt loopback are not counted.
func TestConnLimitOpenCap(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, l := range []*connLimit{newConnLimit(0, 0, 3, false), newConnLimit(100, 100, 3, false)} {
		var held []*connSource
		for i := range 3 {
			v := l.allow(tcpAddr("203.0.113.9"), now)
			if !v.ok || v.src == nil {
				t.Fatalf("rate %v: connection %d refused or not counted: %+v", l.rate, i+1, v)
			}
			held = append(held, v.src)
		}
		v := l.allow(tcpAddr("203.0.113.9"), now)
		if v.ok || !v.full || !v.first {
			t.Fatalf("rate %v: a fourth open connection: %+v, want refused as full, flagged", l.rate, v)
		}
		if v := l.allow(tcpAddr("203.0.113.10"), now); !v.ok {
			t.Fatalf("rate %v: another source refused", l.rate)
		}
		for range 5 {
			if v := l.allow(tcpAddr("127.0.0.1"), now); !v.ok || v.src != nil {
				t.Fatalf("rate %v: exempt loopback %+v", l.rate, v)
			}
		}
		l.release(held[0])
		if v := l.allow(tcpAddr("203.0.113.9"), now); !v.ok {
			t.Fatalf("rate %v: refused after a release", l.rate)
		}
	}
	if newConnLimit(0, 0, 0, true).on() || newConnLimit(5, 0, 0, true).on() {
		t.Fatal("a limit with neither a rate nor a cap is on")
	}
}

// Making room in a full table takes a source that holds no connection and
// owes nothing, not one that holds connections or is in debt.
func TestConnLimitMakeRoomKeepsHolders(t *testing.T) {
	l := newConnLimit(1, 2, 0, true)
	l.max = 100
	now := time.Unix(1_700_000_000, 0)
	for i := range 50 {
		l.allow(tcpAddr(fmt.Sprintf("10.0.0.%d", i)), now) // held open
	}
	for i := range 49 {
		allowN(l, fmt.Sprintf("10.0.1.%d", i), now, 1) // closed; 1 of 2 tokens, not full for 1 s
	}
	for range 10 {
		chargeAddr(l, "192.0.2.66", now, 1) // in debt
	}
	soon := now.Add(500 * time.Millisecond) // nobody is full again: the sweep drops none
	for i := range 40 {
		// Closed at once too: at least 49 of the 100 may go, so any 64
		// looked at hold one.
		if got, _ := allowN(l, fmt.Sprintf("10.0.2.%d", i), soon, 1); got != 1 {
			t.Fatal("a new source refused")
		}
		l.mu.Lock()
		for j := range 50 {
			if k, _, _ := sourceKey(tcpAddr(fmt.Sprintf("10.0.0.%d", j))); l.sources.m[k] == nil {
				t.Fatalf("after %d new sources, 10.0.0.%d, which holds a connection, went", i+1, j)
			}
		}
		k, _, _ := sourceKey(tcpAddr("192.0.2.66"))
		if l.sources.m[k] == nil {
			t.Fatalf("after %d new sources, the source in debt went", i+1)
		}
		l.mu.Unlock()
	}
}

// With every source holding connections, making room takes the one that
// holds the fewest: it loses the least count to a fresh start.
func TestConnLimitMakeRoomFewest(t *testing.T) {
	l := newConnLimit(100, 100, 0, true)
	l.max = 10 // below connEvictLook: every source is looked at
	now := time.Unix(1_700_000_000, 0)
	for i := range 9 {
		for range 3 {
			l.allow(tcpAddr(fmt.Sprintf("10.0.0.%d", i)), now)
		}
	}
	l.allow(tcpAddr("10.0.0.99"), now)
	if !l.allow(tcpAddr("10.0.1.1"), now.Add(time.Second)).ok {
		t.Fatal("a new source refused")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range 9 {
		if k, _, _ := sourceKey(tcpAddr(fmt.Sprintf("10.0.0.%d", i))); l.sources.m[k] == nil || l.sources.m[k].open != 3 {
			t.Errorf("10.0.0.%d, holding 3, went or lost its count", i)
		}
	}
	if k, _, _ := sourceKey(tcpAddr("10.0.0.99")); l.sources.m[k] != nil {
		t.Error("10.0.0.99, holding 1, stayed")
	}
}

// An IPv6 /48 is limited as a whole too, at SiteFactor times one source's
// limits: its /64s each get their own burst and cap until the site's are
// spent, then none of them gets more; another /48 and IPv4 are not held
// back. Before, a /48's 65,536 /64s each had a full burst, cap and frame
// bucket.
func TestConnLimitIPv6Site(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newConnLimit(1, 2, 0, true)
	l.siteFactor = 4 // a site: 4 sources' worth, a burst of 8
	for i := range 4 {
		if g, _ := allowN(l, fmt.Sprintf("2001:db8:7:%x::1", i), now, 3); g != 2 {
			t.Fatalf("/64 %d of the site: %d allowed, want its burst of 2", i, g)
		}
	}
	if g, _ := allowN(l, "2001:db8:7:ff::1", now, 1); g != 0 {
		t.Fatal("a fifth /64 got a connection past its site's burst")
	}
	if g, _ := allowN(l, "2001:db8:8:ff::1", now, 2); g != 2 {
		t.Fatalf("another /48: %d allowed, want 2", g)
	}
	if g, _ := allowN(l, "192.0.2.1", now, 2); g != 2 {
		t.Fatalf("IPv4: %d allowed, want 2", g)
	}
	// The site refills at its rate: 4 a second.
	if g, _ := allowN(l, "2001:db8:7:fe::1", now.Add(500*time.Millisecond), 2); g != 2 {
		t.Fatalf("half a second on: %d allowed, want the site's 2 tokens", g)
	}

	// Open connections: a cap of 1 per source, 4 per site.
	l = newConnLimit(0, 0, 1, true)
	l.siteFactor = 4
	var held []verdict
	for i := range 4 {
		v := l.allow(tcpAddr(fmt.Sprintf("2001:db8:7:%x::1", i)), now)
		if !v.ok || v.src == nil || v.src.site == nil {
			t.Fatalf("/64 %d: %+v", i, v)
		}
		held = append(held, v)
	}
	if v := l.allow(tcpAddr("2001:db8:7:ff::1"), now); v.ok || !v.full {
		t.Fatalf("a fifth /64 of a site holding 4: %+v, want refused as full", v)
	}
	l.release(held[0].src)
	if v := l.allow(tcpAddr("2001:db8:7:ff::1"), now); !v.ok {
		t.Fatal("refused after one of the site's connections closed")
	}

	// Frames: the site's bucket, shared by its /64s.
	l = newConnLimit(100, 100, 0, true)
	l.siteFactor, l.frameRate, l.frameBurst = 2, 1e-6, 3 // a site: 6 frames
	a, b := l.allow(tcpAddr("2001:db8:7:1::1"), now), l.allow(tcpAddr("2001:db8:7:2::1"), now)
	for range 3 {
		if d := l.frame(a.src, now, 1); d > 0 {
			t.Fatal("a /64's frames within its bucket wait")
		}
		if d := l.frame(b.src, now, 1); d > 0 {
			t.Fatal("the other /64's frames within its bucket wait")
		}
	}
	c := l.allow(tcpAddr("2001:db8:7:3::1"), now)
	if d := l.frame(c.src, now, 1); d <= 0 {
		t.Fatal("a third /64's first frame went through a site whose bucket the others emptied")
	}
}

// A refused wslogin is charged to its /64, not to the /64's site: one
// /64 failing logins as fast as it can does not keep the site's other
// hosts out, as two of them did.
func TestConnLimitChargeSparesTheSite(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newConnLimit(1, 2, 0, true)
	l.siteFactor = 4
	for range 1000 {
		chargeAddr(l, "2001:db8:7:1::1", now, 1)
		chargeAddr(l, "2001:db8:7:2::1", now, 1)
	}
	if g, _ := allowN(l, "2001:db8:7:1::1", now, 1); g != 0 {
		t.Fatal("the failing /64 got a connection while in debt")
	}
	for i := 3; i < 7; i++ {
		if g, _ := allowN(l, fmt.Sprintf("2001:db8:7:%x::1", i), now, 2); g != 2 {
			t.Fatalf("/64 %d of the site: %d allowed, want its burst of 2", i, g)
		}
	}
}

// RELIABILITY.md finding 32's figure, at the defaults: 1,000 /64s of one
// /48, 250 dials each at one instant, get the site's burst (3,200), where
// without the site they got 200 each (200,000).
func TestConnLimitIPv6SiteFigure(t *testing.T) {
	l := newConnLimit(DefaultConnRate, DefaultConnBurst, 0, false)
	now := time.Unix(1_700_000_000, 0)
	admitted := 0
	for i := range 1000 {
		for range 250 {
			if l.allow(tcpAddr(fmt.Sprintf("2001:db8:9:%x::1", i)), now).ok {
				admitted++
			}
		}
	}
	if want := SiteFactor * DefaultConnBurst; admitted != want {
		t.Fatalf("%d connections admitted, want the site's burst of %d", admitted, want)
	}
}

// The page counts a request's event streams under its limited source, an
// IPv6 one's /48, and none when the per-source limits do not cover it.
func TestUISource(t *testing.T) {
	l := newConnLimit(1000, 1000, 0, true)
	b := &uiBackend{s: &Server{connLimit: l}}
	source := func(addr string) any {
		v := l.allow(tcpAddr(addr), time.Now())
		r := httptest.NewRequest(http.MethodGet, "/ui/api/events", nil)
		if v.src != nil {
			r = r.WithContext(context.WithValue(r.Context(), connSourceKey{}, v.src))
		}
		return b.Source(r)
	}
	if a, b := source("2001:db8:1:1::1"), source("2001:db8:1:2::1"); a == nil || a != b {
		t.Errorf("two /64s of one /48: sources %p and %p, want the /48's", a, b)
	}
	if a, b := source("192.0.2.1"), source("192.0.2.2"); a == nil || a == b {
		t.Errorf("two IPv4 addresses: sources %p and %p", a, b)
	}
	if b.Source(httptest.NewRequest(http.MethodGet, "/", nil)) != nil {
		t.Error("a request of no limited source has one")
	}
}
