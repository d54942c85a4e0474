package sig

import (
	"crypto/hmac"
	"hash"
	"sync"
	"sync/atomic"
	"time"
)

// macPool pools HMAC-SHA256 hashes keyed with one secret key. crypto/hmac
// saves the inner and outer SHA-256 states after the key block on first
// use, so a pooled hash costs only the message's blocks.
type macPool struct {
	key  string
	pool sync.Pool
}

func newMACPool(key string) *macPool {
	m := &macPool{key: key}
	m.pool.New = func() any { return newMAC(key) }
	return m
}

func (m *macPool) get() hash.Hash  { return m.pool.Get().(hash.Hash) }
func (m *macPool) put(h hash.Hash) { m.pool.Put(h) }

// lastKey is the pool of the key the package-level Gen and Verify used
// last: callers nearly always repeat one app's key.
var lastKey atomic.Pointer[macPool]

func macPoolFor(key string) *macPool {
	if m := lastKey.Load(); m != nil && m.key == key {
		return m
	}
	m := newMACPool(key)
	lastKey.Store(m)
	return m
}

// Verifier verifies (and mints) the UserSigs of one app. It keeps
// HMAC-SHA256 hashes keyed with the secret key in a pool and decodes into
// pooled buffers, so Verify allocates nothing when the UserSig is valid.
// Safe for concurrent use.
type Verifier struct {
	appID uint64
	macs  *macPool
}

// NewVerifier returns a Verifier for the app (sdkappid, secret key).
func NewVerifier(sdkappid uint64, key string) *Verifier {
	return &Verifier{appID: sdkappid, macs: newMACPool(key)}
}

// SDKAppID is the app this Verifier checks.
func (v *Verifier) SDKAppID() uint64 { return v.appID }

// Verify checks userSig for userID at now: appid (70014), identifier
// (70013), expiry (70001), userbuf (an empty but present userbuf, 70009),
// then the MAC in constant time (70009); an empty UserSig is 70002 and one
// that cannot be parsed 70003. A rejection is a *Error.
//
// A UserSig carrying a non-empty userbuf (GenUserSigWithBuf,
// PrivateMapKey) is accepted when its MAC verifies.
func (v *Verifier) Verify(userID, userSig string, now time.Time) (Info, error) {
	return verify(v.appID, v.macs, userID, userSig, now)
}

func verify(appID uint64, macs *macPool, userID, userSig string, now time.Time) (Info, error) {
	s := getScratch()
	defer putScratch(s)
	f, err := s.parse(userSig)
	if err != nil {
		return Info{}, err
	}
	if f.appID != appID {
		return Info{}, errf(CodeAppMismatch, "sdkappid mismatch")
	}
	if string(f.ident) != userID {
		return Info{}, errf(CodeUserMismatch, "identifier mismatch")
	}
	if expired(f.time, f.expire, now.Unix()) {
		return Info{}, errf(CodeExpired, "usersig expired")
	}
	if f.hasUserBuf && len(f.userBuf) == 0 {
		return Info{}, errf(CodeBadSignature, "empty userbuf")
	}
	h := macs.get()
	defer macs.put(h)
	h.Reset()
	s.msg = appendMACInput(s.msg[:0], userID, f.appID, f.time, f.expire, f.userBuf, f.hasUserBuf)
	h.Write(s.msg)
	if !hmac.Equal(h.Sum(s.sum[:0]), f.mac) { // constant time
		return Info{}, errf(CodeBadSignature, "signature mismatch")
	}
	return Info{Time: f.time, Expire: f.expire}, nil
}

// Gen mints a UserSig for userID with this app's key at now, as the
// package-level Gen does.
func (v *Verifier) Gen(userID string, expire int64, userBuf []byte, now time.Time) string {
	h := v.macs.get()
	defer v.macs.put(h)
	return gen(h, v.appID, userID, expire, userBuf, now.Unix())
}
