package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
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
	return a2Enc.EncodeToString(b) + "." + a2Enc.EncodeToString(a2MAC(secret, b))
}

func a2MAC(secret, payload []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("chatctl-a2\x00"))
	h.Write(payload)
	return h.Sum(nil)[:a2MACLen]
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
	if err != nil || !hmac.Equal(mac, a2MAC(secret, payload)) {
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
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("chatctl-tinyid\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, app))
	h.Write([]byte(user))
	return 144115000000000000 + binary.BigEndian.Uint64(h.Sum(nil))%1_000_000_000_000
}
