package session

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeFast parses a session file written as this package writes it: the
// fields of File and Profile under their exact JSON names, strings without
// escapes, integers in plain decimal, any white space and key order. It
// reports ok=false for anything else (an escape, null, an unknown or
// differently cased key, a fraction, a duplicated "profiles", a syntax
// error...) and decode then falls back to encoding/json, so every file
// decodes exactly as encoding/json decodes it. It exists for start-up time:
// encoding/json's first use of a type (reflection over File, Profile and
// time.Time) was most of `chatctl whoami`'s own work. FuzzDecodeFast checks
// that it agrees with encoding/json on every input it accepts.
func decodeFast(b []byte) (f *File, ok bool) {
	d := fastDecoder{b: b}
	f = &File{}
	version, profiles := false, false
	ok = d.object(func(key string) bool {
		switch key {
		case "version":
			n, ok := d.int(strconv.IntSize)
			f.Version, version = int(n), true
			return ok
		case "profiles":
			if profiles {
				return false // encoding/json merges the two maps
			}
			profiles = true
			f.Profiles = map[string]Profile{}
			return d.object(func(name string) bool {
				var p Profile
				if !d.profile(&p) {
					return false
				}
				f.Profiles[name] = p
				return true
			})
		}
		return false
	})
	d.space()
	if !ok || !version || d.i != len(d.b) {
		return nil, false
	}
	return f, true
}

type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c.
func (d *fastDecoder) next(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object parses {"key": value, ...}, calling member for each key with the
// value next.
func (d *fastDecoder) object(member func(key string) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		key, ok := d.string()
		if !ok || !d.next(':') || !member(key) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// rawString consumes a string without escapes and returns it with its
// quotes.
func (d *fastDecoder) rawString() ([]byte, bool) {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i
	for d.i++; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			raw := d.b[start:d.i]
			return raw, utf8.Valid(raw)
		case c == '\\' || c < ' ':
			return nil, false
		}
	}
	return nil, false
}

func (d *fastDecoder) string() (string, bool) {
	raw, ok := d.rawString()
	if !ok {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// digits consumes a JSON integer: an optional minus (when signed), then 0
// or a non-zero digit and more digits, and no fraction or exponent.
func (d *fastDecoder) digits(signed bool) (string, bool) {
	d.space()
	start := d.i
	if signed && d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	first := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	n := d.i - first
	if n == 0 || n > 1 && d.b[first] == '0' {
		return "", false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return "", false
		}
	}
	return string(d.b[start:d.i]), true
}

func (d *fastDecoder) int(bits int) (int64, bool) {
	s, ok := d.digits(true)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, bits)
	return n, err == nil
}

func (d *fastDecoder) uint() (uint64, bool) {
	s, ok := d.digits(false)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// time parses a string with time.Time's own UnmarshalJSON, as
// encoding/json does.
func (d *fastDecoder) time(t *time.Time) bool {
	raw, ok := d.rawString()
	return ok && t.UnmarshalJSON(raw) == nil
}

func (d *fastDecoder) profile(p *Profile) bool {
	return d.object(func(key string) bool {
		var ok bool
		var n int64
		switch key {
		case "endpoint":
			p.Endpoint, ok = d.string()
		case "sdkappid":
			p.SDKAppID, ok = d.uint()
		case "user_id":
			p.UserID, ok = d.string()
		case "a2_key":
			p.A2Key, ok = d.string()
		case "tiny_id":
			p.TinyID, ok = d.string()
		case "inst_id":
			p.InstID, ok = d.uint()
		case "platform":
			n, ok = d.int(strconv.IntSize)
			p.Platform = int(n)
		case "clock_offset_ms":
			p.ClockOffsetMS, ok = d.int(64)
		case "clock_rtt_ms":
			p.ClockRTTMS, ok = d.int(64)
		case "clock_measured_at":
			ok = d.time(&p.ClockMeasuredAt)
		case "login_at":
			ok = d.time(&p.LoginAt)
		case "usersig_expires_at":
			ok = d.time(&p.SigExpiresAt)
		case "hello_interval_s":
			n, ok = d.int(strconv.IntSize)
			p.HelloIntervalSec = int(n)
		case "state":
			var s string
			s, ok = d.string()
			p.State = State(s)
		case "kick_type":
			p.KickType, ok = d.string()
		case "state_at":
			ok = d.time(&p.StateAt)
		case "checked_at":
			ok = d.time(&p.CheckedAt)
		}
		return ok
	})
}
