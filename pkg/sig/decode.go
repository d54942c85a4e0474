package sig

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/adler32"
	"io"
	"sync"
)

// toStdBase64 maps the UserSig alphabet's "*-_" to "+/=" and every other
// byte to itself.
var toStdBase64 = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	t['*'], t['-'], t['_'] = '+', '/', '='
	return t
}()

// plainJSON marks the bytes scanJSON takes in a string as they are:
// printable ASCII except '"' and '\\'.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// fields are the parsed members of a UserSig document. The slices point
// into a scratch's buffers, so they are valid until the scratch is put back.
type fields struct {
	ver, ident []byte
	appID      uint64
	time       int64
	expire     int64
	userBuf    []byte // decoded
	hasUserBuf bool
	mac        []byte // decoded TLS.sig
}

// scratch holds the working memory of one decode, pooled so that a verify
// allocates nothing.
type scratch struct {
	b64  [MaxLen]byte              // the UserSig's bytes (mapped to "+/=" if needed)
	raw  [MaxLen / 4 * 3]byte      // the zlib stream
	doc  [MaxInflated + 1]byte     // the JSON document (+1 to detect overflow)
	bin  [MaxInflated / 4 * 3]byte // decoded userbuf and TLS.sig
	f    fields
	fr   io.ReadCloser // pooled flate reader for compressed streams
	br   bytes.Reader
	msg  []byte // MAC input
	sum  [32]byte
	jdoc jsonDoc // the slow path's target
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch  { return scratchPool.Get().(*scratch) }
func putScratch(s *scratch) { s.jdoc = jsonDoc{}; s.f = fields{}; scratchPool.Put(s) }

// parse decodes a UserSig into s.f: base64 ("*-_" or "+/="), zlib (any
// level; trailing bytes rejected; inflated size capped), then JSON (any key
// order and spacing).
func (s *scratch) parse(sig string) (*fields, error) {
	if sig == "" {
		return nil, errf(CodeEmpty, "usersig is empty")
	}
	if len(sig) > MaxLen {
		return nil, errf(CodeMalformed, "usersig too long")
	}
	b := s.b64[:len(sig)]
	copy(b, sig)
	n, err := sigEncoding.Decode(s.raw[:], b)
	if err != nil {
		// The official decoder maps "*-_" to "+/=" and decodes standard
		// base64, so "+/=" (even mixed with "*-_") decodes too.
		for i := 0; i < len(sig); i++ {
			b[i] = toStdBase64[sig[i]]
		}
		if n, err = base64.StdEncoding.Decode(s.raw[:], b); err != nil {
			return nil, errf(CodeMalformed, "usersig is not base64")
		}
	}
	doc, reason := s.inflate(s.raw[:n])
	if reason != "" {
		return nil, errf(CodeMalformed, reason)
	}
	if !s.scanJSON(doc) {
		if reason := s.slowJSON(doc); reason != "" {
			return nil, errf(CodeMalformed, reason)
		}
	}
	if s.f.mac == nil {
		return nil, errf(CodeMalformed, "no TLS.sig in usersig")
	}
	return &s.f, nil
}

// inflate checks the zlib framing of z and returns the document. Stored
// blocks (level 0, what the Go and most official libraries write) are
// copied directly; anything else goes through a pooled flate reader.
func (s *scratch) inflate(z []byte) ([]byte, string) {
	if len(z) < 2+4 {
		return nil, "truncated zlib stream"
	}
	cmf, flg := z[0], z[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return nil, "not a zlib stream"
	}
	if flg&0x20 != 0 {
		return nil, "zlib preset dictionary not supported"
	}
	body := z[2:]
	doc, used, ok := s.stored(body)
	if !ok {
		var reason string
		if doc, used, reason = s.flate(body); reason != "" {
			return nil, reason
		}
	}
	if len(doc) > MaxInflated {
		return nil, "usersig document too large"
	}
	tail := body[used:]
	if len(tail) < 4 {
		return nil, "truncated zlib stream"
	}
	if len(tail) > 4 {
		return nil, "junk after the zlib stream"
	}
	if binary.BigEndian.Uint32(tail) != adler32.Checksum(doc) {
		return nil, "zlib checksum mismatch"
	}
	return doc, ""
}

// stored reads a deflate stream made only of stored blocks. ok is false
// when a block is compressed (the caller then inflates from the start) or
// the stream is cut short; used is the number of bytes of the stream.
func (s *scratch) stored(d []byte) (doc []byte, used int, ok bool) {
	doc = s.doc[:0]
	for i := 0; ; {
		if len(d)-i < 5 || d[i]&0x06 != 0 { // BTYPE != 00: compressed
			return nil, 0, false
		}
		final := d[i]&1 == 1 // the other 5 bits are padding, ignored as flate does
		n := int(binary.LittleEndian.Uint16(d[i+1:]))
		if binary.LittleEndian.Uint16(d[i+3:]) != ^uint16(n) || len(d)-i-5 < n {
			return nil, 0, false
		}
		if len(doc)+n > MaxInflated {
			return s.doc[:MaxInflated+1], 0, true // too large; the caller rejects it
		}
		doc = append(doc, d[i+5:i+5+n]...)
		i += 5 + n
		if final {
			return doc, i, true
		}
	}
}

// flate inflates d with a pooled reader, reading at most MaxInflated+1
// bytes, and reports how much of d the deflate stream used.
func (s *scratch) flate(d []byte) ([]byte, int, string) {
	s.br.Reset(d)
	if s.fr == nil {
		s.fr = flate.NewReader(&s.br)
	} else if err := s.fr.(flate.Resetter).Reset(&s.br, nil); err != nil {
		return nil, 0, "bad deflate stream"
	}
	n := 0
	for {
		m, err := s.fr.Read(s.doc[n:])
		n += m
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, "bad or truncated deflate stream"
		}
		if n == len(s.doc) {
			return s.doc[:n], 0, "usersig document too large"
		}
	}
	// bytes.Reader is an io.ByteReader, so flate read no further than the
	// end of its stream.
	return s.doc[:n], len(d) - s.br.Len(), ""
}

// scanJSON is the fast path for the documents the official ports write:
// one object of the known TLS.* keys, printable-ASCII strings without
// escapes, integers. It returns false for anything else (escapes,
// non-ASCII, unknown or differently cased keys, null, floats, bad syntax),
// which slowJSON then decides with encoding/json.
func (s *scratch) scanJSON(doc []byte) bool {
	f := &s.f
	*f = fields{}
	bin := s.bin[:0]
	p := jscan{b: doc}
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		switch string(key) {
		case "TLS.ver":
			f.ver, ok = p.str()
		case "TLS.identifier":
			f.ident, ok = p.str()
		case "TLS.sdkappid":
			var v int64
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == '-' {
				return false // not a uint64, even "-0"
			}
			v, ok = p.int()
			f.appID = uint64(v)
		case "TLS.expire":
			f.expire, ok = p.int()
		case "TLS.time":
			f.time, ok = p.int()
		case "TLS.userbuf", "TLS.sig":
			var v []byte
			if v, ok = p.str(); !ok {
				return false
			}
			start := len(bin)
			if cap(bin)-start < base64.StdEncoding.DecodedLen(len(v)) {
				return false
			}
			n, err := base64.StdEncoding.Decode(bin[start:cap(bin)], v)
			if err != nil {
				return false
			}
			bin = bin[:start+n]
			if string(key) == "TLS.sig" {
				f.mac = bin[start:]
			} else {
				f.userBuf, f.hasUserBuf = bin[start:], true
			}
		default:
			return false
		}
		if !ok {
			return false
		}
		if p.byte('}') {
			return p.end()
		}
		if !p.byte(',') {
			return false
		}
	}
}

// jscan is a cursor over a JSON document for scanJSON.
type jscan struct {
	b []byte
	i int
}

func (p *jscan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte skips white space and then c if it is next.
func (p *jscan) byte(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jscan) end() bool { p.ws(); return p.i == len(p.b) }

// str reads a string of printable ASCII without escapes.
func (p *jscan) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) && plainJSON[p.b[p.i]] {
		p.i++
	}
	if p.i == len(p.b) || p.b[p.i] != '"' {
		return nil, false // escape, control or non-ASCII byte, or no end
	}
	p.i++
	return p.b[start : p.i-1], true
}

// int reads a JSON integer that fits an int64.
func (p *jscan) int() (int64, bool) {
	p.ws()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	var v uint64
	for ; p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9'; p.i++ {
		if v > (1<<63)/10 {
			return 0, false
		}
		v = v*10 + uint64(p.b[p.i]-'0')
	}
	n := p.i - start
	if n == 0 || (n > 1 && p.b[start] == '0') || v > 1<<63 || (!neg && v == 1<<63) {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	if neg {
		return -int64(v), true // -(1<<63) wraps to itself, which is right
	}
	return int64(v), true
}

// jsonDoc is a UserSig document as encoding/json sees it, typed as the
// official library types it (so case-insensitive keys, escapes and
// duplicate keys behave the same).
type jsonDoc struct {
	Ver        *string `json:"TLS.ver"`
	Identifier *string `json:"TLS.identifier"`
	SDKAppID   *uint64 `json:"TLS.sdkappid"`
	Expire     *int64  `json:"TLS.expire"`
	Time       *int64  `json:"TLS.time"`
	UserBuf    *[]byte `json:"TLS.userbuf"`
	Sig        *[]byte `json:"TLS.sig"`
}

// slowJSON parses doc with encoding/json into s.f; it allocates, and is
// only reached for unusual (or malformed) documents.
func (s *scratch) slowJSON(doc []byte) string {
	s.f = fields{}
	s.jdoc = jsonDoc{}
	j := &s.jdoc
	if err := json.Unmarshal(doc, j); err != nil {
		return "usersig document is not valid JSON with integer fields"
	}
	f := &s.f
	if j.Ver != nil {
		f.ver = []byte(*j.Ver)
	}
	if j.Identifier != nil {
		f.ident = []byte(*j.Identifier)
	}
	if j.SDKAppID != nil {
		f.appID = *j.SDKAppID
	}
	if j.Expire != nil {
		f.expire = *j.Expire
	}
	if j.Time != nil {
		f.time = *j.Time
	}
	if j.UserBuf != nil && *j.UserBuf != nil { // null is no userbuf
		f.userBuf, f.hasUserBuf = *j.UserBuf, true
	}
	if j.Sig != nil && *j.Sig != nil {
		f.mac = *j.Sig
	}
	return ""
}
