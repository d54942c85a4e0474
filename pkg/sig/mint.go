package sig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash"
	"hash/adler32"
	"strconv"
	"sync"
)

// sigEncoding is the UserSig's outer base64: standard with "+/=" replaced by
// "*-_" (not RFC 4648 URL-safe).
var sigEncoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-").WithPadding('_')

// appendMACInput appends the text the MAC covers. Note time before expire,
// and the userbuf line only when a userbuf (possibly empty) is present.
func appendMACInput(b []byte, user string, appID uint64, t, expire int64, userBuf []byte, hasBuf bool) []byte {
	b = append(b, "TLS.identifier:"...)
	b = append(b, user...)
	b = append(b, "\nTLS.sdkappid:"...)
	b = strconv.AppendUint(b, appID, 10)
	b = append(b, "\nTLS.time:"...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, "\nTLS.expire:"...)
	b = strconv.AppendInt(b, expire, 10)
	b = append(b, '\n')
	if hasBuf {
		b = append(b, "TLS.userbuf:"...)
		b = base64.StdEncoding.AppendEncode(b, userBuf)
		b = append(b, '\n')
	}
	return b
}

// genBuf holds the working buffers of one mint.
type genBuf struct {
	msg, doc, z, out []byte
	sum              [sha256.Size]byte
}

var genPool = sync.Pool{New: func() any { return new(genBuf) }}

// gen mints with h, an HMAC-SHA256 keyed with the secret key (Reset here).
// The document is what the official library's json.Encoder writes: fields
// in struct order, zero values left out, then "\n".
func gen(h hash.Hash, appID uint64, user string, expire int64, userBuf []byte, t int64) string {
	g := genPool.Get().(*genBuf)
	defer genPool.Put(g)

	g.msg = appendMACInput(g.msg[:0], user, appID, t, expire, userBuf, userBuf != nil)
	h.Reset()
	h.Write(g.msg)
	mac := h.Sum(g.sum[:0])

	d := append(g.doc[:0], `{"TLS.ver":"2.0"`...)
	if user != "" {
		d = append(d, `,"TLS.identifier":`...)
		d = appendJSONString(d, user)
	}
	if appID != 0 {
		d = append(d, `,"TLS.sdkappid":`...)
		d = strconv.AppendUint(d, appID, 10)
	}
	if expire != 0 {
		d = append(d, `,"TLS.expire":`...)
		d = strconv.AppendInt(d, expire, 10)
	}
	if t != 0 {
		d = append(d, `,"TLS.time":`...)
		d = strconv.AppendInt(d, t, 10)
	}
	if len(userBuf) > 0 {
		d = append(d, `,"TLS.userbuf":"`...)
		d = base64.StdEncoding.AppendEncode(d, userBuf)
		d = append(d, '"')
	}
	d = append(d, `,"TLS.sig":"`...)
	d = base64.StdEncoding.AppendEncode(d, mac)
	d = append(d, "\"}\n"...)
	g.doc = d

	g.z = appendStoredZlib(g.z[:0], d)
	g.out = sigEncoding.AppendEncode(g.out[:0], g.z)
	return string(g.out)
}

// appendStoredZlib appends data as Go's compress/zlib writes it at
// NoCompression: header 78 01, non-final stored blocks of at most 65535
// bytes, an empty final stored block, then the Adler-32 of data.
func appendStoredZlib(b, data []byte) []byte {
	b = append(b, 0x78, 0x01)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 0xffff)
		b = append(b, 0x00)
		b = binary.LittleEndian.AppendUint16(b, uint16(n))
		b = binary.LittleEndian.AppendUint16(b, ^uint16(n))
		b = append(b, rest[:n]...)
		rest = rest[n:]
	}
	b = append(b, 0x01, 0x00, 0x00, 0xff, 0xff)
	return binary.BigEndian.AppendUint32(b, adler32.Checksum(data))
}

// appendJSONString appends s quoted as encoding/json does by default.
// Plain printable ASCII (the identifiers Tencent documents) is copied; any
// other string goes through encoding/json for its exact escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func newMAC(key string) hash.Hash { return hmac.New(sha256.New, []byte(key)) }
