// Package sig mints, decodes and verifies Tencent Cloud Chat UserSigs
// (TLSSigAPIv2), byte-compatible with the official Go library v1.4.0.
// It imports nothing of ours.
package sig

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
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

// Params are the inputs of a UserSig.
type Params struct {
	SDKAppID uint64
	Key      string // the secret key string; its bytes are the HMAC key
	UserID   string
	Expire   int64  // validity in seconds from the mint time
	UserBuf  []byte // nil for none
}

// Gen mints a UserSig at time now.
func Gen(p Params, now time.Time) string {
	t := now.Unix()
	mac := computeMAC(p.Key, p.UserID, p.SDKAppID, t, p.Expire, p.UserBuf, p.UserBuf != nil)
	var doc bytes.Buffer
	doc.WriteString(`{"TLS.ver":"2.0","TLS.identifier":`)
	writeJSONString(&doc, p.UserID)
	if p.SDKAppID != 0 {
		doc.WriteString(`,"TLS.sdkappid":`)
		doc.WriteString(strconv.FormatUint(p.SDKAppID, 10))
	}
	if p.Expire != 0 {
		doc.WriteString(`,"TLS.expire":`)
		doc.WriteString(strconv.FormatInt(p.Expire, 10))
	}
	if t != 0 {
		doc.WriteString(`,"TLS.time":`)
		doc.WriteString(strconv.FormatInt(t, 10))
	}
	if len(p.UserBuf) > 0 {
		doc.WriteString(`,"TLS.userbuf":"`)
		doc.WriteString(base64.StdEncoding.EncodeToString(p.UserBuf))
		doc.WriteByte('"')
	}
	doc.WriteString(`,"TLS.sig":"`)
	doc.WriteString(base64.StdEncoding.EncodeToString(mac))
	doc.WriteString("\"}\n")

	var z bytes.Buffer
	w, _ := zlib.NewWriterLevel(&z, zlib.NoCompression)
	w.Write(doc.Bytes())
	w.Close()
	return escape(base64.StdEncoding.EncodeToString(z.Bytes()))
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // json.Marshal escapes <, >, & like the official Encoder
	b.Write(enc)
}

func escape(s string) string {
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(s)
}

func unescape(s string) string {
	return strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(s)
}

func computeMAC(key, user string, appID uint64, t, expire int64, userbuf []byte, hasBuf bool) []byte {
	h := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(h, "TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n", user, appID, t, expire)
	if hasBuf {
		fmt.Fprintf(h, "TLS.userbuf:%s\n", base64.StdEncoding.EncodeToString(userbuf))
	}
	return h.Sum(nil)
}

// Privilege bits of a PrivateMapKey.
const (
	PrivCreate = 1 << iota
	PrivEnter
	PrivSendAudio
	PrivRecvAudio
	PrivSendVideo
	PrivRecvVideo
	PrivSendScreen
	PrivRecvScreen
	PrivAll = 255
)

// PrivMap is the PrivateMapKey layout carried in a userbuf.
type PrivMap struct {
	Version   uint8  `json:"version"` // 0 numeric room, 1 string room
	UserID    string `json:"userid"`
	SDKAppID  uint32 `json:"sdkappid"`
	RoomID    uint32 `json:"roomid"`
	RoomStr   string `json:"roomstr,omitempty"`
	ExpireAt  uint32 `json:"expire_at"` // absolute, truncated to 32 bits
	Privilege uint32 `json:"privilege"`
	AcctType  uint32 `json:"account_type"`
}

// Encode returns the big-endian userbuf bytes.
func (m PrivMap) Encode() []byte {
	var b []byte
	b = append(b, m.Version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.UserID)))
	b = append(b, m.UserID...)
	b = binary.BigEndian.AppendUint32(b, m.SDKAppID)
	b = binary.BigEndian.AppendUint32(b, m.RoomID)
	b = binary.BigEndian.AppendUint32(b, m.ExpireAt)
	b = binary.BigEndian.AppendUint32(b, m.Privilege)
	b = binary.BigEndian.AppendUint32(b, m.AcctType)
	if m.Version == 1 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.RoomStr)))
		b = append(b, m.RoomStr...)
	}
	return b
}

// DecodePrivMap parses a PrivateMapKey userbuf; ok is false when b is not one.
func DecodePrivMap(b []byte) (m PrivMap, ok bool) {
	if len(b) < 3 || b[0] > 1 {
		return m, false
	}
	m.Version = b[0]
	n := int(binary.BigEndian.Uint16(b[1:]))
	b = b[3:]
	if len(b) < n+20 {
		return m, false
	}
	m.UserID = string(b[:n])
	b = b[n:]
	m.SDKAppID = binary.BigEndian.Uint32(b)
	m.RoomID = binary.BigEndian.Uint32(b[4:])
	m.ExpireAt = binary.BigEndian.Uint32(b[8:])
	m.Privilege = binary.BigEndian.Uint32(b[12:])
	m.AcctType = binary.BigEndian.Uint32(b[16:])
	b = b[20:]
	if m.Version == 1 {
		if len(b) < 2 {
			return m, false
		}
		n = int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if len(b) != n {
			return m, false
		}
		m.RoomStr = string(b)
		return m, true
	}
	return m, len(b) == 0
}

// GenPrivateMapKey mints a UserSig whose userbuf grants privileges in a
// numeric room.
func GenPrivateMapKey(p Params, roomID uint32, priv uint32, now time.Time) string {
	p.UserBuf = PrivMap{UserID: p.UserID, SDKAppID: uint32(p.SDKAppID), RoomID: roomID,
		ExpireAt: uint32(now.Unix() + p.Expire), Privilege: priv}.Encode()
	return Gen(p, now)
}

// GenPrivateMapKeyWithStringRoomID is GenPrivateMapKey for a string room.
func GenPrivateMapKeyWithStringRoomID(p Params, room string, priv uint32, now time.Time) string {
	p.UserBuf = PrivMap{Version: 1, UserID: p.UserID, SDKAppID: uint32(p.SDKAppID), RoomStr: room,
		ExpireAt: uint32(now.Unix() + p.Expire), Privilege: priv}.Encode()
	return Gen(p, now)
}

// Claims are the decoded fields of a UserSig.
type Claims struct {
	Version    string
	Identifier string
	SDKAppID   uint64
	Time       int64
	Expire     int64
	UserBuf    []byte
	HasUserBuf bool
	MAC        []byte
}

// ExpiresAt is the last instant the UserSig is valid, and false when
// Time+Expire overflows.
func (c *Claims) ExpiresAt() (time.Time, bool) {
	end, ok := expiry(c.Time, c.Expire)
	return time.Unix(end, 0), ok
}

func expiry(t, expire int64) (int64, bool) {
	end := t + expire
	if (expire > 0 && end < t) || (expire < 0 && end > t) {
		return 0, false
	}
	return end, true
}

// Decode parses a UserSig without checking its MAC.
func Decode(s string) (*Claims, error) {
	if s == "" {
		return nil, errf(CodeEmpty, "usersig is empty")
	}
	raw, err := base64.StdEncoding.DecodeString(unescape(s))
	if err != nil {
		return nil, errf(CodeMalformed, "not base64")
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, errf(CodeMalformed, "not a zlib stream")
	}
	doc, err := io.ReadAll(io.LimitReader(zr, MaxInflated+1))
	if err != nil {
		return nil, errf(CodeMalformed, "truncated zlib stream")
	}
	if len(doc) > MaxInflated {
		return nil, errf(CodeMalformed, "document too large")
	}
	var j struct {
		Ver        *string `json:"TLS.ver"`
		Identifier *string `json:"TLS.identifier"`
		SDKAppID   *uint64 `json:"TLS.sdkappid"`
		Expire     *int64  `json:"TLS.expire"`
		Time       *int64  `json:"TLS.time"`
		UserBuf    *string `json:"TLS.userbuf"`
		Sig        *string `json:"TLS.sig"`
	}
	if err := json.Unmarshal(doc, &j); err != nil {
		return nil, errf(CodeMalformed, "bad JSON document")
	}
	c := &Claims{}
	if j.Ver != nil {
		c.Version = *j.Ver
	}
	if j.Identifier != nil {
		c.Identifier = *j.Identifier
	}
	if j.SDKAppID != nil {
		c.SDKAppID = *j.SDKAppID
	}
	if j.Expire != nil {
		c.Expire = *j.Expire
	}
	if j.Time != nil {
		c.Time = *j.Time
	}
	if j.UserBuf != nil {
		c.HasUserBuf = true
		if c.UserBuf, err = base64.StdEncoding.DecodeString(*j.UserBuf); err != nil {
			return nil, errf(CodeMalformed, "bad userbuf")
		}
	}
	if j.Sig == nil {
		return nil, errf(CodeMalformed, "no TLS.sig")
	}
	if c.MAC, err = base64.StdEncoding.DecodeString(*j.Sig); err != nil {
		return nil, errf(CodeMalformed, "bad TLS.sig")
	}
	return c, nil
}

// Info is what a verified UserSig tells the server.
type Info struct {
	Time   int64 // mint time, unix seconds
	Expire int64 // validity in seconds
}

// Verify checks a UserSig for (sdkappid, userID) with the app's key at now,
// in the official order: appid, identifier, expiry, userbuf, MAC.
// A rejection is a *Error.
func Verify(sdkappid uint64, key, userID, userSig string, now time.Time) (Info, error) {
	c, err := Decode(userSig)
	if err != nil {
		return Info{}, err
	}
	if c.SDKAppID != sdkappid {
		return Info{}, errf(CodeAppMismatch, "sdkappid mismatch")
	}
	if c.Identifier != userID {
		return Info{}, errf(CodeUserMismatch, "identifier mismatch")
	}
	end, ok := expiry(c.Time, c.Expire)
	if !ok || now.Unix() > end {
		return Info{}, errf(CodeExpired, "usersig expired")
	}
	if c.HasUserBuf && len(c.UserBuf) == 0 {
		return Info{}, errf(CodeBadSignature, "empty userbuf")
	}
	want := computeMAC(key, c.Identifier, c.SDKAppID, c.Time, c.Expire, c.UserBuf, c.HasUserBuf)
	if !hmac.Equal(want, c.MAC) {
		return Info{}, errf(CodeBadSignature, "signature mismatch")
	}
	return Info{Time: c.Time, Expire: c.Expire}, nil
}
