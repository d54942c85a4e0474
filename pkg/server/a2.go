package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/sig"
)

// a2Claims is what an A2Key carries. The key is stateless: a version byte,
// the fields below in binary, and an HMAC-SHA256 over them with the
// server's secret (store.Secret), so it verifies after a restart. Whether it
// is still honoured (revocation, kick watermark, expiry) is checked apart.
type a2Claims struct {
	App      uint64
	TinyID   uint64
	InstID   uint64
	IssuedMs int64 // unix milliseconds of the first (UserSig) login
	Expires  int64 // unix seconds: the UserSig's expiry; valid up to and including it
	User     string
}

// instance is the instance c names, as far as an A2Key says: no node or
// platform.
func (c a2Claims) instance() store.Instance {
	return store.Instance{App: c.App, User: c.User, InstID: c.InstID, LoginAt: time.UnixMilli(c.IssuedMs), Expires: c.Expires}
}

const (
	a2Version = 1
	a2MACLen  = 20
	a2MaxUser = 1024
)

var errA2 = errors.New("a2: malformed or forged")

var a2Enc = base64.RawURLEncoding

// encode returns the A2Key string for c.
func (c a2Claims) encode(secret []byte) string {
	b := make([]byte, 0, 1+8*5+len(c.User))
	b = append(b, a2Version)
	b = binary.BigEndian.AppendUint64(b, c.App)
	b = binary.BigEndian.AppendUint64(b, c.TinyID)
	b = binary.BigEndian.AppendUint64(b, c.InstID)
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedMs))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires))
	b = append(b, c.User...)
	var mac [a2MACLen]byte
	return a2Enc.EncodeToString(b) + "." + a2Enc.EncodeToString(a2MAC(secret, b, mac[:0]))
}

// a2MAC appends the A2Key MAC of payload to dst.
func a2MAC(secret, payload, dst []byte) []byte {
	m := macFor(secret)
	m.h.Write(a2Domain)
	m.h.Write(payload)
	dst = append(dst, m.h.Sum(m.sum[:0])[:a2MACLen]...)
	m.put()
	return dst
}

var (
	a2Domain     = []byte("chatctl-a2\x00")
	tinyIDDomain = []byte("chatctl-tinyid\x00")
)

// A login computes two HMAC-SHA256 with the server secret (its A2Key's MAC
// and its tinyID), an a2 re-login and a logout one. hmac.New for each
// cost allocations and the key's two SHA-256 blocks every time
// (docs/BENCHMARKS.md, "Where serve's extra µs per login go"), so keyed
// hashes are pooled, Reset to the keyed state crypto/hmac saves on first
// use, as pkg/sig pools the UserSig key's. A process serves one secret;
// another one (tests start servers of several) replaces the pool.
type macPool struct {
	key  []byte
	pool sync.Pool
}

// macState is a pooled keyed hash with room for its input and sum.
type macState struct {
	h    hash.Hash
	in   []byte
	sum  [sha256.Size]byte
	pool *macPool
}

var lastMACs atomic.Pointer[macPool]

// macFor is a reset hash keyed with secret; put it back when done.
func macFor(secret []byte) *macState {
	p := lastMACs.Load()
	if p == nil || !bytes.Equal(p.key, secret) {
		p = &macPool{key: bytes.Clone(secret)}
		p.pool.New = func() any { return &macState{h: hmac.New(sha256.New, p.key), pool: p} }
		lastMACs.Store(p)
	}
	m := p.pool.Get().(*macState)
	m.h.Reset()
	return m
}

func (m *macState) put() {
	if cap(m.in) > 256 {
		m.in = nil // a long UserID's buffer is not kept
	}
	m.pool.pool.Put(m)
}

// parseA2 checks the MAC and decodes the claims; it does not look at time.
func parseA2(secret []byte, s string) (a2Claims, error) {
	var c a2Claims
	p, m, ok := strings.Cut(s, ".")
	if !ok || len(p) > 4*(41+a2MaxUser)/3+4 {
		return c, errA2
	}
	payload, err := a2Enc.DecodeString(p)
	if err != nil || len(payload) < 41 || payload[0] != a2Version {
		return c, errA2
	}
	mac, err := a2Enc.DecodeString(m)
	var want [a2MACLen]byte
	if err != nil || !hmac.Equal(mac, a2MAC(secret, payload, want[:0])) {
		return c, errA2
	}
	c.App = binary.BigEndian.Uint64(payload[1:])
	c.TinyID = binary.BigEndian.Uint64(payload[9:])
	c.InstID = binary.BigEndian.Uint64(payload[17:])
	c.IssuedMs = int64(binary.BigEndian.Uint64(payload[25:]))
	// Capped as loginSig caps it (sig.Info.End), for keys issued before
	// it was: every later use adds to it or counts it in milliseconds.
	c.Expires = min(int64(binary.BigEndian.Uint64(payload[33:])), sig.MaxEnd)
	c.User = string(payload[41:])
	if c.InstID == 0 || c.User == "" {
		return c, errA2
	}
	return c, nil
}

// tinyID is the stable numeric id of (app, user): Tencent-like values around
// 1.44e17, derived from the server secret so they survive restarts.
func tinyID(secret []byte, app uint64, user string) uint64 {
	m := macFor(secret)
	m.in = append(binary.BigEndian.AppendUint64(m.in[:0], app), user...)
	m.h.Write(tinyIDDomain)
	m.h.Write(m.in)
	id := 144115000000000000 + binary.BigEndian.Uint64(m.h.Sum(m.sum[:0]))%1_000_000_000_000
	m.put()
	return id
}
