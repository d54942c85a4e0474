// Package sig mints, decodes and verifies Tencent Cloud Chat UserSigs
// (TLSSigAPIv2), byte-compatible with the official Go library v1.4.0.
// It imports nothing of ours.
//
// A UserSig is base64 (alphabet "+/=" replaced by "*-_") of a zlib stream of
// a JSON document whose TLS.sig is an HMAC-SHA256, keyed by the app's secret
// key string, over the other fields. See docs/USERSIG.md.
//
// Servers verify with a [Verifier] (one per app), which is safe for
// concurrent use and allocates nothing on success.
package sig

import (
	"fmt"
	"time"
)

// Error codes a verifier reports (Tencent's numbering).
const (
	CodeExpired      = 70001
	CodeEmpty        = 70002
	CodeMalformed    = 70003
	CodeBadSignature = 70009
	CodeUserMismatch = 70013
	CodeAppMismatch  = 70014
)

// Error is a rejected UserSig with Tencent's code.
type Error struct {
	Code   int
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("usersig rejected (%d): %s", e.Code, e.Reason) }

func errf(code int, reason string) *Error { return &Error{Code: code, Reason: reason} }

// MaxInflated caps the decompressed size of a UserSig document.
const MaxInflated = 4096

// MaxLen caps the length of a UserSig string: a stored (level 0) document of
// MaxInflated bytes plus zlib framing, in base64.
const MaxLen = 4 * ((MaxInflated + 64 + 2) / 3)

// Params are the inputs of a UserSig.
type Params struct {
	SDKAppID uint64
	Key      string // the secret key string; its bytes are the HMAC key
	UserID   string
	Expire   int64  // validity in seconds from the mint time
	UserBuf  []byte // nil for none; non-nil but empty is signed but not sent, as the official library does
}

// Gen mints a UserSig at time now, byte-identical to the official
// GenUserSig/GenUserSigWithBuf.
func Gen(p Params, now time.Time) string {
	m := macPoolFor(p.Key)
	h := m.get()
	defer m.put(h)
	return gen(h, p.SDKAppID, p.UserID, p.Expire, p.UserBuf, now.Unix())
}

// GenPrivateMapKey mints a UserSig whose userbuf grants privileges in a
// numeric room (official GenPrivateMapKey).
func GenPrivateMapKey(p Params, roomID uint32, priv uint32, now time.Time) string {
	p.UserBuf = PrivMap{UserID: p.UserID, SDKAppID: uint32(p.SDKAppID), RoomID: roomID,
		ExpireAt: uint32(now.Unix() + p.Expire), Privilege: priv}.Encode()
	return Gen(p, now)
}

// GenPrivateMapKeyWithStringRoomID is GenPrivateMapKey for a string room.
// Like the official library, an empty room string gives the numeric layout
// (version 0, room 0).
func GenPrivateMapKeyWithStringRoomID(p Params, room string, priv uint32, now time.Time) string {
	m := PrivMap{UserID: p.UserID, SDKAppID: uint32(p.SDKAppID), RoomStr: room,
		ExpireAt: uint32(now.Unix() + p.Expire), Privilege: priv}
	if room != "" {
		m.Version = 1
	}
	p.UserBuf = m.Encode()
	return Gen(p, now)
}

// Claims are the decoded fields of a UserSig.
type Claims struct {
	Version    string // TLS.ver, "2.0" from every official port; not checked
	Identifier string
	SDKAppID   uint64
	Time       int64 // mint time, unix seconds
	Expire     int64 // validity in seconds
	UserBuf    []byte
	HasUserBuf bool   // TLS.userbuf present (possibly empty)
	MAC        []byte // TLS.sig, decoded
}

// ExpiresAt is the last instant the UserSig is valid, and false when
// Time+Expire overflows (such a UserSig is treated as expired).
func (c *Claims) ExpiresAt() (time.Time, bool) {
	end, ok := expiry(c.Time, c.Expire)
	return time.Unix(end, 0), ok
}

// PrivMap decodes the userbuf as a PrivateMapKey layout; ok is false when
// there is no userbuf or it is not one.
func (c *Claims) PrivMap() (PrivMap, bool) {
	if len(c.UserBuf) == 0 {
		return PrivMap{}, false
	}
	return DecodePrivMap(c.UserBuf)
}

// expiry is t+expire, and false when the sum overflows.
func expiry(t, expire int64) (int64, bool) {
	end := t + expire
	if (expire > 0 && end < t) || (expire < 0 && end > t) {
		return 0, false
	}
	return end, true
}

// expired applies the expiry policy of docs/USERSIG.md: valid while
// now <= time+expire; a negative expire or an overflowing sum is expired.
// There is no not-before check (a time in the future is accepted, as the
// official verifier does).
func expired(t, expire, now int64) bool {
	if expire < 0 {
		return true
	}
	end, ok := expiry(t, expire)
	return !ok || now > end
}

// Decode parses a UserSig without checking its MAC. A failure is a *Error
// with CodeEmpty or CodeMalformed.
func Decode(s string) (*Claims, error) {
	sc := getScratch()
	defer putScratch(sc)
	f, err := sc.parse(s)
	if err != nil {
		return nil, err
	}
	c := &Claims{
		Version:    string(f.ver),
		Identifier: string(f.ident),
		SDKAppID:   f.appID,
		Time:       f.time,
		Expire:     f.expire,
		HasUserBuf: f.hasUserBuf,
		MAC:        append([]byte(nil), f.mac...),
	}
	if f.hasUserBuf {
		c.UserBuf = append([]byte{}, f.userBuf...)
	}
	return c, nil
}

// Info is what a verified UserSig tells the server.
type Info struct {
	Time   int64 // mint time, unix seconds
	Expire int64 // validity in seconds
}

// MaxEnd is the latest expiry Info.End reports: 9999-12-31T23:59:59Z. A
// UserSig may be valid far later (anything up to the top of int64 verifies),
// but an instant that late overflows time.Time's milliseconds (past the
// year 292,277,026) and any "+1": a server keeping the expiry of what it
// issued, and revocations lasting as long, would wrap to the past and
// record nothing.
const MaxEnd int64 = 253402300799

// End is the last second the UserSig is valid, Time+Expire, capped at
// MaxEnd (an overflowing sum, which Verify refuses, is MaxEnd too).
func (i Info) End() int64 {
	end, ok := expiry(i.Time, i.Expire)
	if !ok || end > MaxEnd {
		return MaxEnd
	}
	return end
}

// Verify checks a UserSig for (sdkappid, userID) with the app's key at now,
// in the official order: appid, identifier, expiry, userbuf, MAC.
// A rejection is a *Error. The HMAC state of the last key used is cached;
// a server holding several apps' keys should keep one [Verifier] per app.
func Verify(sdkappid uint64, key, userID, userSig string, now time.Time) (Info, error) {
	return verify(sdkappid, macPoolFor(key), userID, userSig, now)
}
